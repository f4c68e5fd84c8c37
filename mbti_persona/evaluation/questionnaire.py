"""A forced-choice personality questionnaire scored from the model's log-probabilities.

Item file: a JSON list of items, each::

    {"id": "EI01", "dimension": "EI", "question": "After a long week, how do you recharge?",
     "options": {"A": "Quiet time alone.", "B": "Going out with friends."},
     "poles": {"A": "I", "B": "E"}}

Every item is asked twice, with its options in both orders (A/B swapped), so that a preference
for the first or the second position cancels out. In each order the model reads

    <question>
    A. <first option>
    B. <second option>
    Answer with A or B.

and the two options are scored as the assistant's answer (:class:`LogProbScorer`):

* ``texts`` (default): the option texts, length-normalised (mean log-probability per token);
* ``letters``: the answer letters "A" and "B";
* ``both``: the mean of the two probabilities;
* ``cloze``: no A/B format at all: the question alone is asked (once; there is no order to
  cancel) and the two option texts are scored as the answer, length-normalised.

A softmax over the two scores gives the probability of each pole in that order; the item's
share of a pole is the mean over the two orders. A dimension's score is the mean share of its
first pole (E, S, T, J) over its items; the predicted type takes the pole with more than half.
With a target type, an item *agrees* when the target pole's share is above one half.

On SmolLM2-135M the letter probabilities carry no persona signal once position bias is
cancelled (0.48-0.51 for every configuration in a pilot: the tiny model does not seem to follow
the A/B format), which is why ``texts`` is the default; ``letters`` suits larger base models. The option texts
carry a weak signal when both are listed in the prompt (likely because the model partly repeats
what it just read); ``cloze`` shows the adapters' effect most clearly on the small model (see
``docs/evaluation.md`` for measured numbers of each method).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

from ..types import DIMENSIONS, MBTIType
from .common import (DEFAULT_CONFIGS, EvalReport, ConfigSummary, EvalError, PersonaSetup, Timer,
                     default_resource, parse_configs, parse_types, pole_scores_from_dimensions,
                     predicted_type, read_json_list, default_engine, each_setup, summarize)
from .scoring import LogProbScorer, ScoreRequest, two_way_probability

__all__ = [
    "METHODS",
    "Item",
    "ItemFileError",
    "ItemResult",
    "QuestionnaireResult",
    "ConfigSummary",
    "QuestionnaireReport",
    "validate_items",
    "load_items",
    "select_items",
    "item_prompt",
    "score_questionnaire",
    "summarize",
    "run_questionnaire",
]

METHODS = ("texts", "letters", "both", "cloze")
_INSTRUCTION = {"en": "Answer with A or B.", "zh": "请回答 A 或 B。"}
_REQUIRED = ("id", "dimension", "question", "options", "poles")
_OPTIONAL = ("note",)


class ItemFileError(EvalError):
    """An item file that does not follow the format (the message names the item)."""


@dataclass(frozen=True)
class Item:
    id: str
    dimension: str  # "EI", "SN", "TF" or "JP"
    question: str
    options: dict[str, str]  # {"A": ..., "B": ...}
    poles: dict[str, str]  # {"A": "E", "B": "I"}
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "dimension": self.dimension, "question": self.question,
             "options": dict(self.options), "poles": dict(self.poles)}
        if self.note:
            d["note"] = self.note
        return d


def _name(raw: Any, index: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"].strip():
        return f"item {raw['id'].strip()!r} (#{index + 1})"
    return f"item #{index + 1}"


def validate_items(data: Any, source: str = "<items>") -> list[Item]:
    """Check a parsed item list and return it as :class:`Item` objects.

    Raises :class:`ItemFileError` naming the source, the item and what is wrong.
    """
    if not isinstance(data, list):
        raise ItemFileError(f"{source}: the item file must hold a JSON list of items, got "
                            f"{type(data).__name__}")
    if not data:
        raise ItemFileError(f"{source}: the item list is empty")
    items: list[Item] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(data):
        where = f"{source}: {_name(raw, i)}"
        if not isinstance(raw, dict):
            raise ItemFileError(f"{where} must be an object, got {type(raw).__name__}")
        missing = [k for k in _REQUIRED if k not in raw]
        if missing:
            raise ItemFileError(f"{where} lacks {', '.join(missing)} (an item needs "
                                f"{', '.join(_REQUIRED)})")
        extra = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
        if extra:
            raise ItemFileError(f"{where} has unknown field(s) {', '.join(extra)}; allowed: "
                                f"{', '.join(_REQUIRED + _OPTIONAL)}")
        iid = raw["id"]
        if not isinstance(iid, str) or not iid.strip():
            raise ItemFileError(f"{where}: id must be a non-empty string, got {iid!r}")
        iid = iid.strip()
        if iid in seen:
            raise ItemFileError(f"{where}: duplicate id {iid!r} (also item #{seen[iid] + 1})")
        seen[iid] = i
        dim = raw["dimension"]
        if not isinstance(dim, str) or dim.strip().upper() not in DIMENSIONS:
            raise ItemFileError(f"{where}: dimension must be one of EI, SN, TF, JP, got {dim!r}")
        dim = dim.strip().upper()
        q = raw["question"]
        if not isinstance(q, str) or not q.strip():
            raise ItemFileError(f"{where}: question must be a non-empty string")
        opts, poles = raw["options"], raw["poles"]
        if not isinstance(opts, dict) or set(opts) != {"A", "B"}:
            got = sorted(opts) if isinstance(opts, dict) else type(opts).__name__
            raise ItemFileError(f"{where}: options must be an object with exactly the keys A "
                                f"and B, got {got}")
        for k in ("A", "B"):
            if not isinstance(opts[k], str) or not opts[k].strip():
                raise ItemFileError(f"{where}: option {k} must be a non-empty string")
        if opts["A"].strip() == opts["B"].strip():
            raise ItemFileError(f"{where}: options A and B are the same text")
        if not isinstance(poles, dict) or set(poles) != {"A", "B"}:
            got = sorted(poles) if isinstance(poles, dict) else type(poles).__name__
            raise ItemFileError(f"{where}: poles must be an object with exactly the keys A and "
                                f"B, got {got}")
        want = set(DIMENSIONS[dim].poles)
        pa, pb = (str(poles["A"]).strip().upper(), str(poles["B"]).strip().upper())
        if {pa, pb} != want:
            raise ItemFileError(
                f"{where}: poles must map A and B to the two poles of {dim} "
                f"({' and '.join(DIMENSIONS[dim].poles)}), one each; got A={poles['A']!r}, "
                f"B={poles['B']!r}")
        note = raw.get("note")
        if note is not None and not isinstance(note, str):
            raise ItemFileError(f"{where}: note must be a string")
        items.append(Item(iid, dim, q.strip(), {"A": opts["A"].strip(), "B": opts["B"].strip()},
                          {"A": pa, "B": pb}, note))
    return items


def load_items(path: "str | os.PathLike[str] | None" = None, language: str = "en") -> list[Item]:
    """Items from ``path`` (default: the shipped bank for ``language``), validated."""
    p = Path(path) if path is not None else default_resource("items", language)
    return validate_items(read_json_list(p, "item"), str(p))


def select_items(items: Sequence[Item], per_dimension: int | None = None,
                 dimensions: Iterable[str] | None = None) -> list[Item]:
    """At most ``per_dimension`` items per dimension, alternating which pole option A holds
    (so a subset stays balanced); file order otherwise."""
    dims = [d.upper() for d in dimensions] if dimensions else list(DIMENSIONS)
    out: list[Item] = []
    for d in dims:
        mine = [it for it in items if it.dimension == d]
        if per_dimension is None or per_dimension >= len(mine):
            out.extend(mine)
            continue
        first = DIMENSIONS[d].poles[0]
        a = [it for it in mine if it.poles["A"] == first]
        b = [it for it in mine if it.poles["A"] != first]
        pick: list[Item] = []
        while len(pick) < per_dimension and (a or b):
            src = a if (len(pick) % 2 == 0 and a) or not b else b
            pick.append(src.pop(0))
        out.extend(sorted(pick, key=mine.index))
    return out


def item_prompt(item: Item, order: str = "AB", language: str = "en") -> tuple[str, list[str],
                                                                             list[str]]:
    """The user message for one order ("AB": as in the file, "BA": swapped), the option texts
    as shown (first, second) and their poles."""
    if order not in ("AB", "BA"):
        raise ValueError(f"order must be 'AB' or 'BA', got {order!r}")
    keys = list(order)
    shown = [item.options[k] for k in keys]
    poles = [item.poles[k] for k in keys]
    text = (f"{item.question}\nA. {shown[0]}\nB. {shown[1]}\n"
            f"{_INSTRUCTION.get(language, _INSTRUCTION['en'])}")
    return text, shown, poles


# -- results ---------------------------------------------------------------------------------

@dataclass
class OrderScore:
    order: str  # "AB" or "BA" ("cloze": the question alone)
    letters: float  # P(first pole of the dimension) from the answer letters
    texts: float  # ... from the option texts (length-normalised)


@dataclass
class ItemResult:
    id: str
    dimension: str
    share: float  # share of the dimension's first pole (E, S, T, J), mean of both orders
    chosen: str  # the pole with share >= 0.5
    target: str | None = None
    agrees: bool | None = None
    orders: list[OrderScore] = field(default_factory=list)

    def target_share(self) -> float | None:
        if self.target is None:
            return None
        return self.share if self.target == DIMENSIONS[self.dimension].poles[0] \
            else 1.0 - self.share


@dataclass
class QuestionnaireResult:
    config: str
    mbti: str | None  # target type (None: no target)
    language: str
    method: str
    adapter: str | None
    adapter_source: str
    items: list[ItemResult]
    dimension_scores: dict[str, float]  # share of E, S, T, J
    pole_scores: dict[str, float]
    predicted: str
    agreement: float | None  # share of items agreeing with the target
    dimension_match: dict[str, bool] | None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QuestionnaireReport(EvalReport):
    kind: ClassVar[str] = "questionnaire"


def _finish(config: str, mbti: MBTIType | None, language: str, method: str,
            adapter: str | None, source: str, items: list[ItemResult],
            seconds: float) -> QuestionnaireResult:
    dims: dict[str, list[float]] = {}
    for r in items:
        dims.setdefault(r.dimension, []).append(r.share)
    scores = {d: sum(v) / len(v) for d, v in dims.items()}
    pred = predicted_type(scores)
    agreement = match = None
    if mbti is not None:
        for r in items:
            r.target = mbti.pole(r.dimension)
            ts = r.target_share()
            r.agrees = bool(ts is not None and ts > 0.5)
        agreement = sum(bool(r.agrees) for r in items) / len(items) if items else None
        match = {d: pred[DIMENSIONS[d].position] == mbti.pole(d) for d in scores}
    return QuestionnaireResult(config, mbti.letters if mbti else None, language, method, adapter,
                               source, items, scores, pole_scores_from_dimensions(scores), pred,
                               agreement, match, seconds)


def _retarget(result: QuestionnaireResult, mbti: MBTIType) -> QuestionnaireResult:
    items = [ItemResult(r.id, r.dimension, r.share, r.chosen, orders=r.orders)
             for r in result.items]
    return _finish(result.config, mbti, result.language, result.method, result.adapter,
                   result.adapter_source, items, result.seconds)


def score_questionnaire(engine: Any, setup: PersonaSetup, items: Sequence[Item], *,
                        method: str = "texts", scorer: LogProbScorer | None = None,
                        target: "str | MBTIType | None" = None) -> QuestionnaireResult:
    """Score every item in both orders under one persona setup.

    ``target`` (default: the setup's persona) is the type that agreement is measured against.
    """
    if method not in METHODS:
        raise EvalError(f"unknown scoring method {method!r}: use one of {', '.join(METHODS)}")
    if not items:
        raise EvalError("no questionnaire items to score")
    scorer = scorer or LogProbScorer(engine)
    timer = Timer()
    requests, meta = [], []
    for it in items:
        if method == "cloze":
            msgs = setup.messages(it.question, query=it.question)
            requests.append(ScoreRequest(msgs, (it.options["A"], it.options["B"])))
            meta.append((it, "cloze", [it.poles["A"], it.poles["B"]]))
            continue
        for order in ("AB", "BA"):
            user, shown, poles = item_prompt(it, order, setup.language)
            msgs = setup.messages(user, query=it.question)
            opts: tuple[str, ...] = ()
            if method in ("letters", "both"):
                opts += ("A", "B")
            if method in ("texts", "both"):
                opts += (shown[0], shown[1])
            requests.append(ScoreRequest(msgs, opts))
            meta.append((it, order, poles))
    scores = scorer.score_batch(requests, setup.adapter)
    by_item: dict[str, list[OrderScore]] = {}
    for (it, order, poles), sc in zip(meta, scores):
        first = DIMENSIONS[it.dimension].poles[0]
        flip = poles[0] != first
        letters = texts = float("nan")
        k = 0
        if method in ("letters", "both"):
            letters = two_way_probability(sc[0].logprob, sc[1].logprob)
            letters = 1.0 - letters if flip else letters
            k = 2
        if method in ("texts", "both", "cloze"):
            texts = two_way_probability(sc[k].mean, sc[k + 1].mean)
            texts = 1.0 - texts if flip else texts
        by_item.setdefault(it.id, []).append(OrderScore(order, letters, texts))
    results = []
    for it in items:
        orders = by_item[it.id]
        vals = []
        for o in orders:
            if method == "letters":
                vals.append(o.letters)
            elif method in ("texts", "cloze"):
                vals.append(o.texts)
            else:
                vals.append((o.letters + o.texts) / 2)
        share = sum(vals) / len(vals)
        a, b = DIMENSIONS[it.dimension].poles
        results.append(ItemResult(it.id, it.dimension, share, a if share >= 0.5 else b,
                                  orders=orders))
    t = MBTIType.parse(target) if target is not None else setup.mbti
    return _finish(setup.config, t, setup.language, method, setup.adapter,
                   setup.adapter_source, results, timer.seconds)


def run_questionnaire(engine: Any = None, types: "str | Iterable[str] | None" = "all",
                      configs: "str | Iterable[str] | None" = DEFAULT_CONFIGS, *,
                      items: "Sequence[Item] | str | os.PathLike[str] | None" = None,
                      language: str = "en", method: str = "texts",
                      per_dimension: int | None = None, adapter_mode: str = "auto",
                      memory_factory: Callable[..., Any] | None = None,
                      memory_k: int = 4, memory_token_budget: int = 200,
                      show_progress: bool = True,
                      scorer: LogProbScorer | None = None) -> QuestionnaireReport:
    """The questionnaire for every type under every configuration.

    "base" runs once (it does not depend on the persona) and is compared with every target
    type. Configurations that cannot run (adapter configs without adapters) are listed in the
    summary's ``skipped``.
    """
    engine = default_engine(engine)
    type_list = parse_types(types)
    config_list = parse_configs(configs)
    if items is None or isinstance(items, (str, os.PathLike)):
        items = load_items(items, language)
    items = select_items(list(items), per_dimension)
    scorer = scorer or LogProbScorer(engine)
    timer = Timer()
    results: dict[str, list[QuestionnaireResult]] = {c: [] for c in config_list}
    skipped: dict[str, dict[str, str]] = {c: {} for c in config_list}
    for config, t, setup in each_setup(
            engine, config_list, type_list, skipped, desc="questionnaire",
            show_progress=show_progress, language=language, adapter_mode=adapter_mode,
            memory_factory=memory_factory, memory_k=memory_k,
            memory_token_budget=memory_token_budget):
        res = score_questionnaire(engine, setup, items, method=method, scorer=scorer)
        if config == "base":
            results[config] = [_retarget(res, MBTIType(x)) for x in type_list]
        else:
            results[config].append(res)
    summaries = {c: summarize(c, results[c], skipped[c]) for c in config_list}
    meta = {"types": type_list, "configs": config_list, "language": language,
            "method": method, "items": len(items), "orders": 1 if method == "cloze" else 2,
            "items_per_dimension": {d: sum(it.dimension == d for it in items)
                                    for d in DIMENSIONS},
            "adapter_mode": adapter_mode, "memory_k": memory_k,
            "memory_token_budget": memory_token_budget, "seconds": timer.seconds,
            "tokens_run": scorer.tokens_run,
            "model": getattr(getattr(engine, "info", None), "name", None),
            "example_prompt": (items[0].question if method == "cloze"
                               else item_prompt(items[0], "AB", language)[0])}
    return QuestionnaireReport(results, summaries, meta)
