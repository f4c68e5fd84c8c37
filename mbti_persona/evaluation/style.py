"""Style judge: does an open answer show the intended pole of each dimension?

One logistic regression per dimension on all-MiniLM-L6-v2 sentence embeddings (the model the
memory already embeds with), trained on the behaviour data: the two answers of a pair (same
instruction, one per pole) are the examples. Pairs are split by a hash of the instruction
(:func:`mbti_persona.data.split_pairs`): the judge is fitted on the training pairs and its own
accuracy is measured on the held-out ones (per answer, and per pair: is the pole's own answer
scored more towards that pole than the other answer).

A judge trained on the full English data ships as ``resources/evaluation/style_judge_en.json``
(coefficients only, 384 numbers per dimension), so ``eval style`` needs neither the data nor
scikit-learn; ``--data`` retrains one.

The evaluation generates greedy answers to open prompts (``--prompts FILE``, a JSON list of
strings; 20 shipped) under every configuration and persona, and scores each answer with the
judge: P(first pole) per dimension. A persona's dimension score is the mean over its answers;
an answer *agrees* on a dimension when P(target pole) > 0.5.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

from ..types import DIMENSIONS, MBTIType
from .common import (DEFAULT_CONFIGS, EvalReport, EvalError, Timer, default_resource,
                     dimension_match, parse_configs, parse_types, pole_scores_from_dimensions,
                     predicted_type, read_json_list, default_engine, each_setup, generate_texts,
                     summarize)

__all__ = [
    "DimensionJudge",
    "StyleJudge",
    "StyleAnswer",
    "StyleResult",
    "StyleReport",
    "default_embedder",
    "train_style_judge",
    "load_prompts",
    "score_answers",
    "run_style",
]

Embedder = Callable[[Sequence[str]], list[list[float]]]


def default_embedder(device: str = "cpu") -> Embedder:
    """Texts -> unit-length all-MiniLM-L6-v2 vectors (the embedded model, offline)."""
    from ..embeddings import EMBEDDED_EMBEDDING_MODEL, embedded_embeddings

    emb = embedded_embeddings(device)

    def embed(texts: Sequence[str]) -> list[list[float]]:
        return emb.embed_documents(list(texts)) if texts else []

    embed.model_name = EMBEDDED_EMBEDDING_MODEL  # type: ignore[attr-defined]
    return embed


@dataclass
class DimensionJudge:
    dimension: str
    poles: tuple[str, str]  # (first, second): probability is of the first
    coef: list[float]
    intercept: float
    train_pairs: int = 0
    validation_pairs: int = 0
    validation_accuracy: float | None = None  # per answer
    validation_pair_accuracy: float | None = None  # per pair

    def probability(self, vector: Sequence[float]) -> float:
        z = self.intercept + sum(c * x for c, x in zip(self.coef, vector))
        return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


@dataclass
class StyleJudge:
    """Per-dimension logistic regressions on sentence embeddings."""

    dimensions: dict[str, DimensionJudge]
    language: str = "en"
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    data: list[str] = field(default_factory=list)
    embed: Embedder | None = field(default=None, repr=False, compare=False)

    def _embedder(self) -> Embedder:
        if self.embed is None:
            self.embed = default_embedder()
        return self.embed

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """P(first pole) of each dimension the judge knows, for each text."""
        return self.score_vectors(self._embedder()(list(texts)))

    def score_vectors(self, vecs: Sequence[Sequence[float]]) -> list[dict[str, float]]:
        """:meth:`score` for texts already embedded with the judge's embedder."""
        return [{d: j.probability(v) for d, j in self.dimensions.items()} for v in vecs]

    def on_topic(self, prompts: Sequence[str], texts: Sequence[str],
                 text_vectors: Sequence[Sequence[float]] | None = None) -> list[float]:
        """Cosine similarity between each prompt and its answer, in the judge's embedding
        space: a cheap check that a persona still answers the question (a style pushed too
        far drifts into the same few sentences whatever is asked)."""
        embed = self._embedder()
        uniq = sorted(set(prompts))
        pv = dict(zip(uniq, embed(uniq)))
        tv = embed(list(texts)) if text_vectors is None else text_vectors
        return [_cosine(pv[p], v) for p, v in zip(prompts, tv)]

    def accuracy(self) -> dict[str, float | None]:
        return {d: j.validation_accuracy for d, j in self.dimensions.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"format": 1, "kind": "mbti-persona style judge", "language": self.language,
                "embedding_model": self.embedding_model, "data": self.data,
                "dimensions": {d: {**asdict(j), "poles": list(j.poles)}
                               for d, j in self.dimensions.items()}}

    def save(self, path: "str | os.PathLike[str]") -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        d = self.to_dict()
        for j in d["dimensions"].values():
            j["coef"] = [round(c, 6) for c in j["coef"]]
        p.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "StyleJudge":
        p = Path(path)
        if not p.is_file():
            raise EvalError(f"style judge file not found: {p}")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            dims = {k: DimensionJudge(**{**v, "poles": tuple(v["poles"])})
                    for k, v in d["dimensions"].items()}
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise EvalError(f"{p} is not a style judge file: {e}") from None
        return cls(dims, d.get("language", "en"), d.get("embedding_model", ""),
                   list(d.get("data", [])))

    @classmethod
    def default(cls, language: str = "en") -> "StyleJudge":
        """The judge shipped with the package for ``language``."""
        p = default_resource("judge", language)
        if not p.is_file():
            raise EvalError(f"no style judge ships for {language!r}: train one with "
                            f"`mbti-persona eval judge --data DIR --language {language}`")
        return cls.load(p)


def _fit(x: list[list[float]], y: list[int], c: float, seed: int) -> tuple[list[float], float]:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as e:
        raise EvalError("training the style judge needs scikit-learn: "
                        "pip install 'mbti-persona[eval]'") from e
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    clf.fit(x, y)
    return [float(v) for v in clf.coef_[0]], float(clf.intercept_[0])


def train_style_judge(data_dirs: "str | os.PathLike[str] | Sequence[str | os.PathLike[str]]",
                      language: str = "en", *, dimensions: Iterable[str] | None = None,
                      max_train_pairs: int | None = None,
                      max_validation_pairs: int | None = None,
                      validation_fraction: float = 0.2, seed: int = 0, c: float = 1.0,
                      embed: Embedder | None = None) -> StyleJudge:
    """Fit one judge per dimension on the behaviour pairs found in ``data_dirs``.

    Dimensions without data are left out (an error if none has any). ``max_train_pairs``
    caps the training pairs per dimension (a seeded random sample), for quick runs.
    """
    from ..data import load_dimension, split_pairs

    embed = embed or default_embedder()
    dims = [d.upper() for d in dimensions] if dimensions else list(DIMENSIONS)
    judges: dict[str, DimensionJudge] = {}
    for d in dims:
        if d not in DIMENSIONS:
            raise EvalError(f"unknown dimension {d!r}: use EI, SN, TF or JP")
        pairs = load_dimension(data_dirs, language, d, required=False)
        if not pairs:
            continue
        train, val = split_pairs(pairs, validation_fraction, seed)
        rng = random.Random(f"style-judge:{d}:{seed}")
        if max_train_pairs is not None and len(train) > max_train_pairs:
            train = rng.sample(train, max_train_pairs)
        if max_validation_pairs is not None and len(val) > max_validation_pairs:
            val = rng.sample(val, max_validation_pairs)
        if not train or not val:
            raise EvalError(f"too few {language} pairs for {d} to train and validate a judge "
                            f"({len(train)} train, {len(val)} held out)")
        a, b = DIMENSIONS[d].poles
        x = embed([p.outputs[a] for p in train] + [p.outputs[b] for p in train])
        y = [1] * len(train) + [0] * len(train)
        coef, icpt = _fit(x, y, c, seed)
        j = DimensionJudge(d, (a, b), coef, icpt, len(train), len(val))
        va = embed([p.outputs[a] for p in val])
        vb = embed([p.outputs[b] for p in val])
        pa = [j.probability(v) for v in va]
        pb = [j.probability(v) for v in vb]
        right = sum(p > 0.5 for p in pa) + sum(p < 0.5 for p in pb)
        j.validation_accuracy = right / (2 * len(val))
        j.validation_pair_accuracy = sum(x_ > y_ for x_, y_ in zip(pa, pb)) / len(val)
        judges[d] = j
    if not judges:
        raise EvalError(f"no {language} behaviour data for any of {', '.join(dims)} in "
                        f"{data_dirs}")
    if isinstance(data_dirs, (str, os.PathLike)):
        data_dirs = [data_dirs]
    return StyleJudge(judges, language, getattr(embed, "model_name", "custom"),
                      [Path(p).name for p in data_dirs], embed)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b)) / (na * nb) if na and nb else 0.0


def load_prompts(path: "str | os.PathLike[str] | None" = None, language: str = "en") -> list[str]:
    """A JSON list of open prompts (strings); default: the shipped set."""
    p = Path(path) if path is not None else default_resource("prompts", language)
    data = read_json_list(p, "prompt")
    for i, x in enumerate(data):
        if not isinstance(x, str) or not x.strip():
            raise EvalError(f"{p}: prompt #{i + 1} must be a non-empty string, got {x!r}")
    if not data:
        raise EvalError(f"{p}: the prompt list is empty")
    return [x.strip() for x in data]


# -- evaluation ------------------------------------------------------------------------------

@dataclass
class StyleAnswer:
    prompt: str
    text: str
    scores: dict[str, float]  # P(first pole) per dimension
    on_topic: float | None = None  # cosine similarity of prompt and answer (judge's embedder)


@dataclass
class StyleResult:
    config: str
    mbti: str | None
    language: str
    adapter: str | None
    adapter_source: str
    answers: list[StyleAnswer]
    dimension_scores: dict[str, float]
    pole_scores: dict[str, float]
    predicted: str
    agreement: float | None  # share of (answer, dimension) judged as the target pole
    dimension_match: dict[str, bool] | None
    hits: dict[str, float] | None = None  # per dimension: share of answers on the target pole
    on_topic: float | None = None  # mean prompt-answer cosine similarity of the answers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StyleReport(EvalReport):
    kind: ClassVar[str] = "style"
    judge: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "judge": self.judge}


def score_answers(config: str, mbti: MBTIType | None, answers: list[StyleAnswer],
                  language: str = "en", adapter: str | None = None,
                  adapter_source: str = "none") -> StyleResult:
    """Aggregate judged answers into per-dimension scores against a target type."""
    dims = sorted({d for a in answers for d in a.scores}, key=lambda d: DIMENSIONS[d].position)
    scores = {d: sum(a.scores[d] for a in answers) / len(answers) for d in dims} if answers \
        else {}
    pred = predicted_type(scores)
    agreement = match = hits = None
    if mbti is not None and answers:
        hits = {}
        for d in dims:
            first = DIMENSIONS[d].poles[0] == mbti.pole(d)
            hits[d] = sum((a.scores[d] > 0.5) == first for a in answers) / len(answers)
        agreement = sum(hits.values()) / len(hits) if hits else None
        match = dimension_match(pred, mbti, dims)
    rel = [a.on_topic for a in answers if a.on_topic is not None]
    return StyleResult(config, mbti.letters if mbti else None, language, adapter,
                       adapter_source, answers, scores, pole_scores_from_dimensions(scores),
                       pred, agreement, match, hits, sum(rel) / len(rel) if rel else None)


def run_style(engine: Any = None, types: "str | Iterable[str] | None" = "all",
              configs: "str | Iterable[str] | None" = DEFAULT_CONFIGS, *,
              prompts: "Sequence[str] | str | os.PathLike[str] | None" = None,
              judge: StyleJudge | None = None, language: str = "en",
              max_new_tokens: int = 64, max_prompts: int | None = None,
              adapter_mode: str = "auto", memory_factory: Callable[..., Any] | None = None,
              memory_k: int = 4, memory_token_budget: int = 200, batch_size: int = 16,
              show_progress: bool = True) -> StyleReport:
    """Greedy answers to open prompts for every persona and configuration, judged for style.

    All requests go to the engine's batched mixed-adapter generation together (sorted by
    prompt length); "base" is generated once and compared with every target type.
    """
    from ..generation import GenerationRequest

    engine = default_engine(engine)
    type_list, config_list = parse_types(types), parse_configs(configs)
    if prompts is None or isinstance(prompts, (str, os.PathLike)):
        prompts = load_prompts(prompts, language)
    prompts = list(prompts)[:max_prompts] if max_prompts else list(prompts)
    judge = judge or StyleJudge.default(language)
    timer = Timer()
    units: list[tuple[str, str | None, Any]] = []
    requests: list[GenerationRequest] = []
    skipped: dict[str, dict[str, str]] = {c: {} for c in config_list}
    for config, t, setup in each_setup(
            engine, config_list, type_list, skipped, language=language,
            adapter_mode=adapter_mode, memory_factory=memory_factory, memory_k=memory_k,
            memory_token_budget=memory_token_budget):
        for i, p in enumerate(prompts):
            requests.append(GenerationRequest(setup.messages(p), adapter=setup.adapter,
                                              max_new_tokens=max_new_tokens,
                                              temperature=0.0, seed=0, tag=(len(units), i)))
        units.append((config, t, setup))
    texts = generate_texts(engine, requests, batch_size, "style: generating", show_progress)
    keys = list(texts.keys())
    vecs = judge._embedder()([texts[k] for k in keys])
    judged = dict(zip(keys, judge.score_vectors(vecs)))
    topical = dict(zip(keys, judge.on_topic([prompts[i] for _, i in keys],
                                            [texts[k] for k in keys], vecs)))
    results: dict[str, list[StyleResult]] = {c: [] for c in config_list}
    for u, (config, t, setup) in enumerate(units):
        answers = [StyleAnswer(p, texts[(u, i)], judged[(u, i)], round(topical[(u, i)], 4))
                   for i, p in enumerate(prompts)]
        targets = type_list if config == "base" else [t]
        for x in targets:
            results[config].append(score_answers(config, MBTIType(x), answers, language,
                                                 setup.adapter, setup.adapter_source))
    summaries = {c: summarize(c, results[c], skipped[c]) for c in config_list}
    meta = {"types": type_list, "configs": config_list, "language": language,
            "prompts": len(prompts), "max_new_tokens": max_new_tokens, "decoding": "greedy",
            "adapter_mode": adapter_mode, "seconds": timer.seconds,
            "model": getattr(getattr(engine, "info", None), "name", None)}
    return StyleReport(results, summaries, meta, judge=judge.to_dict() | {"dimensions": {
        d: {k: v for k, v in asdict(j).items() if k != "coef"}
        for d, j in judge.dimensions.items()}})
