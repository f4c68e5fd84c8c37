"""Reports: JSON results, radar charts (one PNG per persona) and Markdown summary tables.

Every evaluation report (questionnaire, style, self-awareness, ability) is written by
:func:`write_report` into ``out_dir/<kind>/``::

    results.json        everything measured (summaries, per-persona and per-item results)
    summary.md          Markdown tables: configurations compared, and per persona
    radar/<TYPE>.png    4 axes, one per dimension: the score of the persona's own pole for each
                        configuration, against the target (1.0); the dotted ring is 0.5, "no
                        preference". When every score lies in 0.2-0.8 the radial scale is
                        zoomed to 0.2-0.8 and the target drawn at the rim.
    radar_all.png       the 16 (or fewer) radars in one grid

Radar charts use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..types import DIMENSIONS, MBTIType

__all__ = ["write_json", "radar_chart", "radar_grid", "summary_markdown", "write_report",
           "radars_from_json", "CONFIG_STYLE"]

#: Colour and line style per configuration (others get matplotlib's cycle).
CONFIG_STYLE: dict[str, dict[str, Any]] = {
    "base": {"color": "#7f7f7f", "linestyle": ":"},
    "prompt": {"color": "#1f77b4", "linestyle": "--"},
    "adapter": {"color": "#d62728", "linestyle": "-"},
    "adapter+memory": {"color": "#2ca02c", "linestyle": "-"},
    "adapter+prompt": {"color": "#9467bd", "linestyle": "-."},
}
_DIMS = sorted(DIMENSIONS, key=lambda d: DIMENSIONS[d].position)


def write_json(obj: Any, path: "str | os.PathLike[str]") -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)

    def clean(x: Any) -> Any:
        if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    p.write_text(json.dumps(clean(obj), ensure_ascii=False, indent=1), encoding="utf-8")
    return p


def _own_pole_values(mbti: str, scores: Mapping[str, float]) -> list[float | None]:
    t = MBTIType.parse(mbti)
    out: list[float | None] = []
    for d in _DIMS:
        v = scores.get(d)
        if v is None:
            out.append(None)
        else:
            out.append(v if t.pole(d) == DIMENSIONS[d].poles[0] else 1.0 - v)
    return out


def _draw_radar(ax: Any, mbti: str, series: Mapping[str, Mapping[str, float]],
                title: str | None, small: bool = False, zoom: bool | None = None) -> None:
    """``zoom``: radial scale 0.2-0.8 (target drawn at the rim) when every measured value fits
    in it (None: decide from the values), else 0-1."""
    t = MBTIType.parse(mbti)
    n = len(_DIMS)
    angles = [2 * math.pi * i / n for i in range(n)] + [0.0]
    values = {c: _own_pole_values(mbti, sc) for c, sc in series.items()}
    values = {c: v for c, v in values.items() if all(x is not None for x in v)}
    flat = [x for v in values.values() for x in v]
    if zoom is None:
        zoom = bool(flat) and min(flat) >= 0.2 and max(flat) <= 0.8
    lo, hi = (0.2, 0.8) if zoom else (0.0, 1.0)
    ax.set_theta_offset(math.pi / 2)
    ax.set_theta_direction(-1)
    ax.set_ylim(lo, hi)
    ticks = [0.35, 0.5, 0.65] if zoom else [0.25, 0.5, 0.75]
    ax.set_yticks(ticks)
    ax.set_yticklabels([] if small else [f"{x:g}" for x in ticks], fontsize=6)
    ax.set_xticks(angles[:-1])
    ax.set_xticklabels([t.pole(d) for d in _DIMS], fontsize=7 if small else 9)
    ax.tick_params(pad=1 if small else 3)
    target = [min(hi, t.intensity(t.pole(d))) for d in _DIMS]
    ax.plot(angles, target + target[:1], color="black", linewidth=0.8,
            label="target (1.0, at the rim)" if zoom else "target")
    ax.plot(angles, [0.5] * (n + 1), color="black", linewidth=0.6, linestyle=(0, (1, 2)),
            alpha=0.6)
    for i, (config, vals) in enumerate(values.items()):
        style = CONFIG_STYLE.get(config, {"color": f"C{i}", "linestyle": "-"})
        ax.plot(angles, vals + vals[:1], linewidth=1.3, label=config, **style)
        if config == "adapter":
            ax.fill(angles, vals + vals[:1], color=style["color"], alpha=0.10)
    if title:
        ax.set_title(title, fontsize=8 if small else 10, pad=10 if small else 14)


def radar_chart(path: "str | os.PathLike[str]", mbti: str,
                series: Mapping[str, Mapping[str, float]], title: str | None = None,
                dpi: int = 80) -> Path:
    """One persona: each configuration's score of the persona's own pole on the 4 axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(3.6, 3.4))
    ax = fig.add_subplot(111, polar=True)
    _draw_radar(ax, mbti, series, title or mbti)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.12), fontsize=6, frameon=False)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    _shrink(p)
    return p


def radar_grid(path: "str | os.PathLike[str]",
               by_type: Mapping[str, Mapping[str, Mapping[str, float]]],
               title: str | None = None, dpi: int = 70) -> Path:
    """All personas' radars in one grid (4 columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types = list(by_type)
    cols = min(4, max(1, len(types)))
    rows = math.ceil(len(types) / cols)
    fig = plt.figure(figsize=(2.3 * cols, 2.3 * rows + 0.5))
    ax = None
    for k, t in enumerate(types):
        ax = fig.add_subplot(rows, cols, k + 1, polar=True)
        _draw_radar(ax, t, by_type[t], t, small=True)
    if ax is not None:
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7,
                   frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    height = 2.3 * rows + 0.5
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1 - 0.3 / height))
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=dpi)
    plt.close(fig)
    _shrink(p)
    return p


# -- Markdown ----------------------------------------------------------------------------------

def _shrink(path: Path) -> None:
    """Re-save a chart with a 128-colour palette (a third of the size, same look)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow comes with matplotlib
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def _f(v: Any, pct: bool = False, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if pct:
        return f"{100 * v:.0f}%"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _skip_lines(summaries: Mapping[str, Any]) -> list[str]:
    lines = []
    for c, s in summaries.items():
        sk = s["skipped"] if isinstance(s, dict) else s.skipped
        if sk:
            reasons = sorted(set(sk.values()))
            lines.append(f"- `{c}` not run for {len(sk)} type(s): {'; '.join(reasons)[:300]}")
    return lines


def _dimension_summary_md(d: dict[str, Any], what: str) -> str:
    summaries, results = d["summaries"], d["results"]
    rows = []
    for c, s in summaries.items():
        if not s["types"]:
            rows.append([f"`{c}`", "0"] + ["not run"] + ["–"] * 8)
            continue
        da, gap = s["dimension_accuracy"], s["dimension_gap"]
        rows.append([f"`{c}`", str(s["types"]), _f(s["type_accuracy"], True)]
                    + [_f(da.get(x), True) for x in _DIMS]
                    + [_f(s["agreement"], True), _f(s["target_pole_score"])]
                    + [" / ".join(_f(gap.get(x), signed=True) for x in _DIMS)])
    head = ["config", "types", "type acc.", "EI acc.", "SN acc.", "TF acc.", "JP acc.",
            what, "own-pole score", "gap EI / SN / TF / JP"]
    parts = [_table(head, rows)]
    sk = _skip_lines(summaries)
    if sk:
        parts.append("\n".join(sk))
    configs = [c for c in summaries if results.get(c)]
    types = d["meta"].get("types", [])
    per = []
    for t in types:
        row = [t]
        for c in configs:
            r = next((x for x in results[c] if x["mbti"] == t), None)
            row.append("–" if r is None else f"{r['predicted']} ({_f(r['agreement'], True)})")
        per.append(row)
    if per and configs:
        parts.append("Per persona: predicted type (" + what + "):\n\n"
                     + _table(["target"] + [f"`{c}`" for c in configs], per))
    return "\n\n".join(parts)


def _ability_md(d: dict[str, Any]) -> str:
    rows = []
    for c, s in d["summaries"].items():
        rows.append([f"`{c}`", str(s["types"]) if c != "base" else "–", _f(s["accuracy"], True),
                     _f(s["min_accuracy"], True), _f(s["kept"]),
                     _f(s.get("accuracy_norm"), True), _f(s.get("kept_norm"))])
    parts = [_table(["config", "personas", "accuracy", "min", "kept", "accuracy (norm.)",
                     "kept (norm.)"], rows)]
    sk = _skip_lines(d["summaries"])
    if sk:
        parts.append("\n".join(sk))
    m = d["meta"]
    parts.append(f"{m['questions']} questions; chance {_f(m.get('chance'), True)}.")
    return "\n\n".join(parts)


_TITLES = {"questionnaire": "Questionnaire", "style": "Style judge",
           "self-awareness": "Self-awareness", "ability": "General ability (multiple choice)"}
_WHAT = {"questionnaire": "item agreement", "style": "answers on target pole",
         "self-awareness": "consistency"}


def summary_markdown(report: Any, heading_level: int = 2) -> str:
    """Markdown tables of a report (or of its ``to_dict()``)."""
    d = report if isinstance(report, dict) else report.to_dict()
    kind = d["kind"]
    h = "#" * heading_level
    m = d.get("meta", {})
    info = ", ".join(f"{k}: {m[k]}" for k in ("method", "items", "prompts", "questions",
                                                 "language", "seconds") if k in m)
    body = _ability_md(d) if kind == "ability" else _dimension_summary_md(d, _WHAT[kind])
    extra = ""
    if kind == "style" and d.get("judge"):
        acc = {k: v.get("validation_accuracy") for k, v in d["judge"]["dimensions"].items()}
        extra = ("\n\nJudge accuracy on held-out behaviour answers: "
                 + ", ".join(f"{k} {_f(v, True)}" for k, v in acc.items()) + ".")
        topical = _on_topic(d)
        if topical:
            extra += ("\n\nOn topic (mean cosine similarity of prompt and answer in the "
                      "judge's embedding space; a persona that drifts away from the question "
                      "scores lower than `base`): "
                      + ", ".join(f"`{c}` {_f(v)}" for c, v in topical.items()) + ".")
    return f"{h} {_TITLES.get(kind, kind)}\n\n{info}\n\n{body}{extra}\n"


def _on_topic(d: dict[str, Any]) -> dict[str, float]:
    out = {}
    for c, rs in d.get("results", {}).items():
        vals = [r["on_topic"] for r in rs if r.get("on_topic") is not None]
        if vals:
            out[c] = sum(vals) / len(vals)
    return out


def write_report(report: Any, out_dir: "str | os.PathLike[str]", *, radar: bool = True,
                 dpi: int = 80) -> dict[str, Any]:
    """Write results.json, summary.md and the radar charts; returns the paths written."""
    d = report.to_dict()
    kind = d["kind"]
    root = Path(out_dir) / kind
    root.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {"json": str(write_json(d, root / "results.json"))}
    md = root / "summary.md"
    md.write_text(summary_markdown(d), encoding="utf-8")
    written["markdown"] = str(md)
    if radar and hasattr(report, "dimension_scores"):
        by_type = report.dimension_scores()
        pngs = []
        for t, series in by_type.items():
            pngs.append(str(radar_chart(root / "radar" / f"{t}.png", t, series,
                                        f"{t}: {kind}", dpi=dpi)))
        if by_type:
            written["radar_all"] = str(radar_grid(root / "radar_all.png", by_type,
                                                  f"{_TITLES.get(kind, kind)}: own-pole score "
                                                  "per dimension"))
        written["radar"] = pngs
    return written


def _scores_by_type(d: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for config, rs in d.get("results", {}).items():
        for r in rs:
            if r.get("mbti") and r.get("dimension_scores"):
                out.setdefault(r["mbti"], {})[config] = r["dimension_scores"]
    return out


def radars_from_json(results_json: "str | os.PathLike[str]",
                     out_dir: "str | os.PathLike[str] | None" = None,
                     dpi: int = 80) -> dict[str, Any]:
    """Redraw the radar charts (and summary.md) of a written ``results.json`` without running
    anything again; ``out_dir`` defaults to the file's folder."""
    src = Path(results_json)
    d = json.loads(src.read_text(encoding="utf-8"))
    root = Path(out_dir) if out_dir is not None else src.parent
    kind = d["kind"]
    (root / "summary.md").parent.mkdir(parents=True, exist_ok=True)
    (root / "summary.md").write_text(summary_markdown(d), encoding="utf-8")
    by_type = _scores_by_type(d)
    written: dict[str, Any] = {"radar": [str(radar_chart(root / "radar" / f"{t}.png", t, s,
                                                         f"{t}: {kind}", dpi=dpi))
                                         for t, s in by_type.items()]}
    if by_type:
        written["radar_all"] = str(radar_grid(
            root / "radar_all.png", by_type,
            f"{_TITLES.get(kind, kind)}: own-pole score per dimension"))
    return written
