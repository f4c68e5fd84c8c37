"""The training report written next to each adapter: ``training_report.json`` + ``loss_curve.png``."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

__all__ = ["REPORT_FILE", "CURVE_FILE", "library_versions", "device_description", "write_report",
           "read_report", "plot_loss_curve"]

REPORT_FILE = "training_report.json"
CURVE_FILE = "loss_curve.png"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("torch", "transformers", "peft", "trl", "datasets", "accelerate"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - optional
            out[mod] = "missing"
    try:
        from importlib.metadata import version

        out["mbti_persona"] = version("mbti-persona")
    except Exception:
        out["mbti_persona"] = "source"
    return out


def device_description(device: str) -> str:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        idx = torch.device(device).index or 0
        return f"{device} ({torch.cuda.get_device_name(idx)})"
    if str(device) == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return str(device)


def write_report(folder: str | Path, report: dict[str, Any]) -> Path:
    path = Path(folder) / REPORT_FILE
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n",
                    encoding="utf-8")
    return path


def read_report(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / REPORT_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def plot_loss_curve(log_history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Train loss per logged step, eval losses as markers (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    if train:
        ax.plot(*zip(*train), label="train loss", color="tab:blue", marker="." if len(train) < 30
                else None)
    eval_keys = sorted({k for h in log_history for k in h
                        if k.startswith("eval") and k.endswith("loss")})
    markers = "osD^v"
    for i, key in enumerate(eval_keys):
        pts = [(h["step"], h[key]) for h in log_history if key in h and "step" in h]
        if pts:
            ax.plot(*zip(*pts), linestyle="--", marker=markers[i % len(markers)],
                    label=key.replace("_", " "))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title or "training loss", fontsize=10)
    ax.grid(alpha=0.3)
    if train or eval_keys:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no loss logged", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path

