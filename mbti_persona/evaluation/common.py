"""What the evaluations share: configurations (base / prompt / adapter / memory), persona
setups that build the chat for each configuration, type lists and resource paths."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Sequence

from ..prompts import LANGUAGES, persona_system_prompt
from ..types import ALL_TYPES, DIMENSIONS, POLES, MBTIType

__all__ = [
    "CONFIGS",
    "DEFAULT_CONFIGS",
    "EvalError",
    "ConfigUnavailable",
    "PersonaSetup",
    "parse_configs",
    "parse_types",
    "resources_dir",
    "default_resource",
    "open_setup",
    "pole_scores_from_dimensions",
    "predicted_type",
    "read_json_list",
    "ConfigSummary",
    "summarize",
]

#: Configurations compared by every evaluation (``+``-joined parts; "base" = none of them).
#: prompt: the persona system prompt; adapter: the persona's LoRA adapter(s); memory: the
#: retrieved self-knowledge block in the system prompt.
DEFAULT_CONFIGS: tuple[str, ...] = ("base", "prompt", "adapter", "adapter+memory")
_PARTS = ("prompt", "adapter", "memory")
CONFIGS: tuple[str, ...] = ("base", "prompt", "adapter", "adapter+memory", "adapter+prompt",
                            "adapter+prompt+memory", "memory", "prompt+memory")


class EvalError(ValueError):
    """Bad evaluation input (item file, type list, configuration); the message says which."""


class ConfigUnavailable(RuntimeError):
    """A configuration that cannot run here (e.g. adapter configs without adapters)."""


def parse_configs(value: "str | Iterable[str] | None") -> list[str]:
    """"base,prompt,adapter,adapter+memory" -> canonical names (parts in a fixed order)."""
    if value is None:
        return list(DEFAULT_CONFIGS)
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for raw in items:
        name = str(raw).strip().lower().replace(" ", "")
        if not name:
            continue
        if name in ("base", "none"):
            canon = "base"
        else:
            parts = set(name.split("+"))
            bad = parts - set(_PARTS)
            if bad:
                raise EvalError(f"unknown configuration {raw!r}: use base, or prompt, adapter "
                                f"and memory joined by '+' (e.g. {', '.join(DEFAULT_CONFIGS)})")
            canon = "+".join(p for p in ("adapter", "prompt", "memory") if p in parts)
        if canon not in out:
            out.append(canon)
    if not out:
        raise EvalError("no configuration given: use e.g. base,prompt,adapter,adapter+memory")
    return out


def parse_types(value: "str | Iterable[str] | None") -> list[str]:
    """"all", "INFP", "INFP,ESTJ" or a list -> type letters (validated, order kept)."""
    if value is None:
        return list(ALL_TYPES)
    items = value.replace(" ", ",").split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for raw in items:
        s = str(raw).strip()
        if not s:
            continue
        if s.lower() == "all":
            out.extend(t for t in ALL_TYPES if t not in out)
            continue
        t = MBTIType.parse(s).letters
        if t not in out:
            out.append(t)
    if not out:
        raise EvalError("no MBTI type given: use --mbti all, or e.g. --mbti INFP,ESTJ")
    return out


def resources_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "resources"


def default_resource(kind: str, language: str = "en") -> Path:
    """Path of a shipped evaluation file: kind in items, prompts, self-awareness, mcq, judge."""
    if language not in LANGUAGES:
        raise EvalError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
    root = resources_dir()
    names = {
        "items": root / "questionnaire" / f"items_{language}.json",
        "prompts": root / "evaluation" / f"style_prompts_{language}.json",
        "self-awareness": root / "evaluation" / f"self_awareness_{language}.json",
        "mcq": root / "evaluation" / f"mcq_{language}.json",
        "judge": root / "evaluation" / f"style_judge_{language}.json",
    }
    if kind not in names:
        raise EvalError(f"unknown resource kind {kind!r}")
    return names[kind]


def read_json_list(path: "str | os.PathLike[str]", what: str) -> list:
    p = Path(path).expanduser()
    if not p.is_file():
        raise EvalError(f"{what} file not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvalError(f"{what} file {p} is not valid JSON: {e}") from None
    if not isinstance(data, list):
        raise EvalError(f"{what} file {p} must hold a JSON list, got {type(data).__name__}")
    return data


def pole_scores_from_dimensions(dim_scores: dict[str, float]) -> dict[str, float]:
    """{"EI": 0.7, ...} (share of the first pole) -> {"E": 0.7, "I": 0.3, ...}."""
    out: dict[str, float] = {}
    for d, v in dim_scores.items():
        a, b = DIMENSIONS[d].poles
        out[a], out[b] = v, 1.0 - v
    return out


def predicted_type(dim_scores: dict[str, float], fallback: str = "?") -> str:
    """Letters of the poles holding more than half of each dimension ('?' where not measured
    or exactly balanced)."""
    letters = []
    for d in sorted(DIMENSIONS.values(), key=lambda x: x.position):
        v = dim_scores.get(d.code)
        if v is None or abs(v - 0.5) < 1e-9:
            letters.append(fallback)
        else:
            letters.append(d.poles[0] if v > 0.5 else d.poles[1])
    return "".join(letters)


MemoryFactory = Callable[[MBTIType, str], Any]


def default_memory_factory(mbti: MBTIType, language: str) -> Any:
    """An in-memory :class:`~mbti_persona.memory.PersonaMemory` seeded with self-knowledge."""
    from ..memory import PersonaMemory

    return PersonaMemory(mbti, user="evaluation", in_memory=True, languages=language)


@dataclass
class PersonaSetup:
    """How one configuration presents one persona to the model."""

    config: str
    mbti: MBTIType | None
    language: str = "en"
    adapter: str | None = None
    adapter_source: str = "none"
    memory: Any = None
    memory_k: int = 4
    memory_token_budget: int = 200
    count_tokens: Callable[[str], int] | None = None
    memory_log: list[dict[str, Any]] = field(default_factory=list)
    _blocks: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def uses_prompt(self) -> bool:
        return "prompt" in self.config.split("+")

    @property
    def uses_memory(self) -> bool:
        return "memory" in self.config.split("+")

    def system(self, query: str) -> str | None:
        """The system prompt for a user message ``query`` (None: the model's default)."""
        block = ""
        if self.uses_memory and self.memory is not None:
            if query not in self._blocks:  # the same question asked twice gets the same block
                block, items = self.memory.context(
                    query, k=self.memory_k, token_budget=self.memory_token_budget,
                    count_tokens=self.count_tokens, language=self.language)
                self._blocks[query] = block
                if len(self.memory_log) < 1000:
                    self.memory_log.append({"query": query[:80], "memories": len(items)})
            block = self._blocks[query]
        if self.uses_prompt and self.mbti is not None:
            return persona_system_prompt(self.mbti, self.language, block)
        return block or None

    def messages(self, user: str, query: str | None = None) -> list[dict[str, str]]:
        system = self.system(query if query is not None else user)
        chat = [{"role": "user", "content": user}]
        return ([{"role": "system", "content": system}] + chat) if system else chat

    def describe(self) -> dict[str, Any]:
        return {"config": self.config, "mbti": self.mbti.key() if self.mbti else None,
                "adapter": self.adapter, "adapter_source": self.adapter_source,
                "language": self.language}

    def close(self) -> None:
        if self.memory is not None and hasattr(self.memory, "close"):
            self.memory.close()
        self.memory = None


def open_setup(engine: Any, config: str, mbti: "str | MBTIType | None", *, language: str = "en",
               adapter_mode: str = "auto", memory_factory: MemoryFactory | None = None,
               memory_k: int = 4, memory_token_budget: int = 200) -> PersonaSetup:
    """Resolve a configuration for a persona on ``engine``.

    Raises :class:`ConfigUnavailable` when an adapter configuration has no adapter to run (no
    pole or type adapters loaded for this persona) or the memory cannot be opened.
    """
    config = parse_configs(config)[0]
    if language not in LANGUAGES:
        raise EvalError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
    t = MBTIType.parse(mbti) if mbti is not None else None
    parts = set(config.split("+")) if config != "base" else set()
    if parts and t is None:
        raise EvalError(f"configuration {config!r} needs a persona type")
    setup = PersonaSetup(config, t, language, memory_k=memory_k,
                         memory_token_budget=memory_token_budget,
                         count_tokens=getattr(engine, "count_tokens", None))
    if "adapter" in parts:
        mode = adapter_mode if adapter_mode in ("auto", "dimensions", "type") else "auto"
        try:
            resolved = engine.persona(t, mode)
        except Exception as e:  # AdapterError: say why and go on with other configurations
            raise ConfigUnavailable(f"no adapter for {t} ({e})") from e
        if resolved.adapter is None:
            raise ConfigUnavailable(
                f"no adapter for {t}: the pole adapters are not loaded (ship or train them: "
                "mbti-persona train --recipe dimension)")
        setup.adapter, setup.adapter_source = resolved.adapter, resolved.source
    if "memory" in parts:
        factory = memory_factory or default_memory_factory
        try:
            setup.memory = factory(t, language)
        except ImportError as e:
            raise ConfigUnavailable(f"memory unavailable ({e}); pip install "
                                    "'mbti-persona[memory]'") from e
    return setup


class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.t0, 2)


def progress(iterable: Iterable, total: int | None = None, desc: str = "",
             enabled: bool = True) -> Iterable:
    """tqdm when enabled and installed, else the plain iterable."""
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def target_pole(mbti: MBTIType | None, dimension: str) -> str | None:
    return mbti.pole(dimension) if mbti is not None else None


def pole_name(letter: str) -> str:
    return POLES[letter].name


def default_engine(engine: Any = None) -> Any:
    """``engine``, or the process-wide default engine when it is None."""
    if engine is not None:
        return engine
    from ..engine import get_engine

    return get_engine()


def each_setup(engine: Any, configs: Sequence[str], types: Sequence[str],
               skipped: dict[str, dict[str, str]], *, desc: str | None = None,
               show_progress: bool = True, **kw: Any) -> Iterator[tuple[str, str | None, Any]]:
    """Yield (config, type, PersonaSetup) for every combination that can run; "base" once,
    with type None (it does not depend on the persona). A combination that cannot run is
    recorded as ``skipped[config][type] = reason``. Each set-up is closed when the caller moves
    on to the next one. ``desc`` turns on a progress bar over the combinations."""
    def combinations():
        for config in configs:
            if config == "base":
                yield config, None, open_setup(engine, "base", None, **kw), None
                continue
            for t in types:
                try:
                    yield config, t, open_setup(engine, config, t, **kw), None
                except ConfigUnavailable as e:
                    yield config, t, None, str(e)

    total = sum(1 if c == "base" else len(types) for c in configs)
    for config, t, setup, reason in progress(combinations(), total=total, desc=desc or "",
                                             enabled=show_progress and desc is not None):
        if setup is None:
            skipped.setdefault(config, {})[t] = reason or "not run"
            continue
        try:
            yield config, t, setup
        finally:
            setup.close()


def generate_texts(engine: Any, requests: Sequence[Any], batch_size: int, desc: str,
                   show_progress: bool = True) -> dict[Any, str]:
    """Greedy answers to tagged GenerationRequests in mixed-adapter batches (sorted by prompt
    length, so that a batch pads little); returns tag -> stripped text."""
    order = sorted(range(len(requests)),
                   key=lambda k: len(engine.encode_chat(requests[k].messages)))
    chunks = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    texts: dict[Any, str] = {}
    for chunk in progress(chunks, total=len(chunks), desc=desc, enabled=show_progress):
        for res in engine.generate([requests[k] for k in chunk]):
            texts[res.tag] = res.text.strip()
    return texts


@dataclass
class ConfigSummary:
    """One configuration over all target types (any evaluation with per-dimension scores)."""

    config: str
    types: int
    type_accuracy: float | None  # share of types whose predicted type is the target
    dimension_accuracy: dict[str, float]  # share of types whose pole on a dimension is right
    agreement: float | None  # mean share of items/answers that agree with the target
    target_pole_score: float | None  # mean score of the target's poles (0.5: no effect)
    dimension_gap: dict[str, float]  # mean first-pole score: targets with it minus without
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(config: str, results: Sequence[Any],
              skipped: dict[str, str] | None = None) -> ConfigSummary:
    """Accuracy over the types of one configuration. ``results`` need ``mbti`` (target),
    ``dimension_scores``, ``pole_scores``, ``predicted``, ``agreement`` and
    ``dimension_match``."""
    rs = [r for r in results if r.mbti]
    dim_acc: dict[str, float] = {}
    gap: dict[str, float] = {}
    for d, dim in DIMENSIONS.items():
        m = [r for r in rs if r.dimension_match and d in r.dimension_match]
        if m:
            dim_acc[d] = sum(bool(r.dimension_match[d]) for r in m) / len(m)
        with_first = [r.dimension_scores[d] for r in rs
                      if d in r.dimension_scores and r.mbti[dim.position] == dim.poles[0]]
        without = [r.dimension_scores[d] for r in rs
                   if d in r.dimension_scores and r.mbti[dim.position] != dim.poles[0]]
        if with_first and without:
            gap[d] = sum(with_first) / len(with_first) - sum(without) / len(without)
    tps = [r.pole_scores[p] for r in rs for p in r.mbti if p in r.pole_scores]
    agr = [r.agreement for r in rs if r.agreement is not None]
    return ConfigSummary(
        config, len(rs),
        sum(r.predicted == r.mbti for r in rs) / len(rs) if rs else None,
        dim_acc, sum(agr) / len(agr) if agr else None,
        sum(tps) / len(tps) if tps else None, gap, dict(skipped or {}))


def dimension_match(predicted: str, mbti: MBTIType, dims: Iterable[str]) -> dict[str, bool]:
    return {d: predicted[DIMENSIONS[d].position] == mbti.pole(d) for d in dims}


@dataclass
class EvalReport:
    """Results of one evaluation: per configuration, one result per persona, and summaries."""

    kind: ClassVar[str] = "evaluation"
    results: dict[str, list[Any]]  # config -> one result per type
    summaries: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "meta": self.meta,
                "summaries": {k: v.to_dict() for k, v in self.summaries.items()},
                "results": {k: [r.to_dict() for r in v] for k, v in self.results.items()}}

    def dimension_scores(self) -> dict[str, dict[str, dict[str, float]]]:
        """type -> config -> dimension scores (for radar charts)."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for config, rs in self.results.items():
            for r in rs:
                if getattr(r, "mbti", None) and hasattr(r, "dimension_scores"):
                    out.setdefault(r.mbti, {})[config] = r.dimension_scores
        return out
