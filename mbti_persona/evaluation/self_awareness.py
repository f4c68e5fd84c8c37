"""Self-awareness: does the persona describe itself consistently with its type?

Question file: a JSON list; each question either names the two poles' answers::

    {"id": "SA-EI01", "dimension": "EI",
     "question": "Would you say you are more introverted or more extraverted?",
     "answers": {"I": "I'm more introverted.", "E": "I'm more extraverted."}}

or is a yes/no question with the pole that "yes" indicates (the answers are then "Yes." and
"No.", or 是的。/不是。 in Chinese)::

    {"id": "SA-JP03", "dimension": "JP", "question": "Do you make schedules and stick to them?",
     "yes": "J"}

The shipped sets (English and Chinese, 6 questions per dimension) balance yes/no questions
between the two poles, so a model that says "yes" to everything scores one half. They are
phrased differently from the questions the shipped adapters were trained on.

Two ways to read the answer (``method``):

* ``logprob`` (default, deterministic): the two answers are scored as the assistant's reply,
  length-normalised; a softmax gives the probability of each pole.
* ``generate``: a greedy free answer is classified by keyword rules: for yes/no questions the
  opening words (yes, of course, I do ... / no, not really, I don't ...), for the others the
  pole words (introvert, outgoing, details, possibilities, logic, feelings, organised,
  spontaneous ...), a word preceded by a negation ("not", "n't", "never") counting for the
  opposite pole. Answers with no clear pole count as inconsistent and are reported as unclear.

Consistency = share of questions whose answer indicates the target type's pole.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

from ..types import DIMENSIONS, MBTIType
from .common import (DEFAULT_CONFIGS, EvalReport, EvalError, PersonaSetup, Timer,
                     default_resource, dimension_match, parse_configs, parse_types,
                     pole_scores_from_dimensions, predicted_type, read_json_list,
                     default_engine, each_setup, generate_texts, summarize)
from .scoring import LogProbScorer, ScoreRequest, two_way_probability

__all__ = [
    "SA_METHODS",
    "SelfQuestion",
    "SelfAnswer",
    "SelfAwarenessResult",
    "SelfAwarenessReport",
    "validate_questions",
    "load_questions",
    "classify_answer",
    "score_self_awareness",
    "run_self_awareness",
]

SA_METHODS = ("logprob", "generate")
_YES_NO = {"en": ("Yes.", "No."), "zh": ("是的。", "不是。")}


@dataclass(frozen=True)
class SelfQuestion:
    id: str
    dimension: str
    question: str
    answers: dict[str, str]  # pole -> answer text
    yes: str | None = None  # yes/no question: the pole that "yes" indicates


def validate_questions(data: Any, source: str = "<questions>",
                       language: str = "en") -> list[SelfQuestion]:
    """Check a parsed question list; raises :class:`EvalError` naming the question."""
    if not isinstance(data, list) or not data:
        raise EvalError(f"{source}: a self-awareness file must hold a non-empty JSON list")
    out: list[SelfQuestion] = []
    seen: set[str] = set()
    for i, raw in enumerate(data):
        name = raw.get("id") if isinstance(raw, dict) else None
        where = (f"{source}: question {name!r} (#{i + 1})" if name
                 else f"{source}: question #{i + 1}")
        if not isinstance(raw, dict):
            raise EvalError(f"{where} must be an object")
        extra = sorted(set(raw) - {"id", "dimension", "question", "answers", "yes", "note"})
        if extra:
            raise EvalError(f"{where} has unknown field(s) {', '.join(extra)}")
        if not isinstance(name, str) or not name.strip():
            raise EvalError(f"{where}: id must be a non-empty string")
        if name in seen:
            raise EvalError(f"{where}: duplicate id")
        seen.add(name)
        dim = str(raw.get("dimension", "")).upper()
        if dim not in DIMENSIONS:
            raise EvalError(f"{where}: dimension must be one of EI, SN, TF, JP")
        q = raw.get("question")
        if not isinstance(q, str) or not q.strip():
            raise EvalError(f"{where}: question must be a non-empty string")
        poles = DIMENSIONS[dim].poles
        if ("answers" in raw) == ("yes" in raw):
            raise EvalError(f"{where}: give either answers (one per pole) or yes (the pole a "
                            "'yes' indicates), not both or neither")
        if "yes" in raw:
            yes = str(raw["yes"]).upper()
            if yes not in poles:
                raise EvalError(f"{where}: yes must be {poles[0]} or {poles[1]}, "
                                f"got {raw['yes']!r}")
            y, n = _YES_NO.get(language, _YES_NO["en"])
            other = poles[1] if yes == poles[0] else poles[0]
            out.append(SelfQuestion(name, dim, q.strip(), {yes: y, other: n}, yes))
            continue
        ans = raw["answers"]
        if not isinstance(ans, dict) or {str(k).upper() for k in ans} != set(poles) or any(
                not isinstance(v, str) or not v.strip() for v in ans.values()):
            raise EvalError(f"{where}: answers must map {poles[0]} and {poles[1]} to "
                            "non-empty answer texts")
        out.append(SelfQuestion(name, dim, q.strip(),
                                {str(k).upper(): v.strip() for k, v in ans.items()}))
    return out


def load_questions(path: "str | os.PathLike[str] | None" = None,
                   language: str = "en") -> list[SelfQuestion]:
    p = Path(path) if path is not None else default_resource("self-awareness", language)
    return validate_questions(read_json_list(p, "self-awareness"), str(p), language)


# -- keyword rules (generate mode) -------------------------------------------------------------

_KEYWORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "E": ("extravert", "extrovert", "outgoing", "sociable", "gives me energy",
              "energised by people", "energized by people", "centre of attention",
              "center of attention", "love meeting", "talkative"),
        "I": ("introvert", "reserved", "solitude", "alone", "quiet time", "drains",
              "by myself", "on my own", "recharge"),
        "S": ("facts", "details", "detail", "practical", "realist", "concrete",
              "tried-and-tested", "proven", "down-to-earth"),
        "N": ("ideas", "possibilities", "dreamer", "imagine", "imagination", "intuition",
              "intuitive", "big picture", "theories", "future"),
        "T": ("logic", "logical", "tough-minded", "objective", "analyse", "analyze",
              "analysis", "truth", "reason"),
        "F": ("feelings", "feel", "heart", "tender-hearted", "empathy", "emotions",
              "harmony", "kind", "caring"),
        "J": ("organised", "organized", "plan", "planning", "schedule", "settled",
              "structure", "deadline", "list"),
        "P": ("spontaneous", "flexible", "options open", "go with the flow", "improvise",
              "last minute", "last-minute", "adapt"),
    },
    "zh": {
        "E": ("外向", "充满能量", "焦点", "热闹", "社交"),
        "I": ("内向", "独处", "安静", "疲惫", "一个人"),
        "S": ("事实", "细节", "实际", "现实", "具体", "检验"),
        "N": ("想法", "可能性", "梦想", "想象", "直觉", "未来", "抽象"),
        "T": ("逻辑", "理性", "客观", "分析", "真相", "头脑"),
        "F": ("感受", "情感", "心肠", "和睦", "和谐", "体贴"),
        "J": ("条理", "计划", "日程", "定下来", "提前"),
        "P": ("随性", "顺其自然", "余地", "灵活", "即兴", "改变计划"),
    },
}
_NEG_EN = re.compile(r"\b(not|never|n't|no|less|hardly|rarely)\b\W+(\w+\W+){0,2}$")
_YES_EN = re.compile(r"^\W*(yes|yeah|yep|absolutely|definitely|of course|sure|certainly|"
                     r"i do\b|i am\b|i'm\b(?! not)|i really|i love|i enjoy|i always|i usually|"
                     r"i often|i tend to|i like)", re.I)
_NO_EN = re.compile(r"^\W*(no\b|nope|not really|not at all|not\b|never|rarely|i don't|i do not|"
                    r"i'm not|i am not|i wouldn't|i would not|i can't|i rarely|i never|"
                    r"i'd rather not)", re.I)
_YES_ZH = re.compile(r"^\W*(是|对|当然|会|喜欢|我会|我喜欢|我是|确实|没错|嗯)")
_NO_ZH = re.compile(r"^\W*(不|没有|并不|我不|我没|很少|从不)")
_NEG_ZH = ("不", "没", "并非", "很少")


def _keyword_votes(text: str, dimension: str, language: str) -> dict[str, int]:
    words = _KEYWORDS.get(language, _KEYWORDS["en"])
    a, b = DIMENSIONS[dimension].poles
    votes = {a: 0, b: 0}
    low = text.lower()
    for pole, other in ((a, b), (b, a)):
        for kw in words[pole]:
            for m in re.finditer(re.escape(kw), low):
                before = low[max(0, m.start() - 24):m.start()]
                if language == "zh":
                    negated = any(n in before[-3:] for n in _NEG_ZH)
                else:
                    if kw[0].isalpha() and m.start() > 0 and low[m.start() - 1].isalpha():
                        continue  # inside another word
                    negated = bool(_NEG_EN.search(before))
                votes[other if negated else pole] += 1
    return votes


def classify_answer(text: str, question: SelfQuestion, language: str = "en") -> str | None:
    """The pole a free answer indicates, or None when unclear (see the module doc).

    The rules of ``language`` come first; an answer they cannot read is tried with the other
    language's rules (a persona may answer a Chinese question in English)."""
    pole = _classify(text, question, language)
    if pole is None:
        pole = _classify(text, question, "en" if language == "zh" else "zh")
    return pole


def _classify(text: str, question: SelfQuestion, language: str) -> str | None:
    t = text.strip()
    if not t:
        return None
    a, b = DIMENSIONS[question.dimension].poles
    if question.yes is not None:
        other = b if question.yes == a else a
        yes_re, no_re = (_YES_ZH, _NO_ZH) if language == "zh" else (_YES_EN, _NO_EN)
        head = t[:60]
        if no_re.search(head):
            return other
        if yes_re.search(head):
            return question.yes
    votes = _keyword_votes(t, question.dimension, language)
    if votes[a] == votes[b]:
        return None
    return a if votes[a] > votes[b] else b


# -- results -----------------------------------------------------------------------------------

@dataclass
class SelfAnswer:
    id: str
    dimension: str
    share: float  # share of the dimension's first pole (logprob: probability; generate: 1/0/0.5)
    chosen: str | None  # the pole indicated (None: unclear)
    target: str | None = None
    consistent: bool | None = None
    text: str | None = None  # the generated answer (generate mode)


@dataclass
class SelfAwarenessResult:
    config: str
    mbti: str | None
    language: str
    method: str
    adapter: str | None
    adapter_source: str
    answers: list[SelfAnswer]
    dimension_scores: dict[str, float]
    pole_scores: dict[str, float]
    predicted: str
    agreement: float | None  # consistency: share of answers indicating the target's pole
    dimension_match: dict[str, bool] | None
    unclear: float = 0.0  # share of answers with no clear pole (generate mode)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SelfAwarenessReport(EvalReport):
    kind: ClassVar[str] = "self-awareness"


def _aggregate(config: str, mbti: MBTIType | None, language: str, method: str,
               adapter: str | None, source: str, answers: list[SelfAnswer]
               ) -> SelfAwarenessResult:
    answers = [SelfAnswer(a.id, a.dimension, a.share, a.chosen, text=a.text) for a in answers]
    dims: dict[str, list[float]] = {}
    for a in answers:
        dims.setdefault(a.dimension, []).append(a.share)
    scores = {d: sum(v) / len(v) for d, v in dims.items()}
    pred = predicted_type(scores)
    agreement = match = None
    if mbti is not None and answers:
        for a in answers:
            a.target = mbti.pole(a.dimension)
            a.consistent = a.chosen == a.target
        agreement = sum(bool(a.consistent) for a in answers) / len(answers)
        match = dimension_match(pred, mbti, scores)
    unclear = sum(a.chosen is None for a in answers) / len(answers) if answers else 0.0
    return SelfAwarenessResult(config, mbti.letters if mbti else None, language, method, adapter,
                               source, answers, scores, pole_scores_from_dimensions(scores),
                               pred, agreement, match, unclear)


def score_self_awareness(engine: Any, setup: PersonaSetup, questions: Sequence[SelfQuestion],
                         *, scorer: LogProbScorer | None = None) -> list[SelfAnswer]:
    """Log-probability answers of one setup (see the module doc)."""
    scorer = scorer or LogProbScorer(engine)
    reqs = []
    for q in questions:
        a, b = DIMENSIONS[q.dimension].poles
        reqs.append(ScoreRequest(setup.messages(q.question), (q.answers[a], q.answers[b])))
    out = []
    for q, sc in zip(questions, scorer.score_batch(reqs, setup.adapter)):
        p = two_way_probability(sc[0].mean, sc[1].mean)
        a, b = DIMENSIONS[q.dimension].poles
        out.append(SelfAnswer(q.id, q.dimension, p, a if p >= 0.5 else b))
    return out


def run_self_awareness(engine: Any = None, types: "str | Iterable[str] | None" = "all",
                       configs: "str | Iterable[str] | None" = DEFAULT_CONFIGS, *,
                       questions: "Sequence[SelfQuestion] | str | os.PathLike[str] | None" = None,
                       language: str = "en", method: str = "logprob",
                       max_new_tokens: int = 40, adapter_mode: str = "auto",
                       memory_factory: Callable[..., Any] | None = None, memory_k: int = 4,
                       memory_token_budget: int = 200, batch_size: int = 16,
                       show_progress: bool = True,
                       scorer: LogProbScorer | None = None) -> SelfAwarenessReport:
    """Self-awareness questions for every persona and configuration."""
    from ..generation import GenerationRequest

    if method not in SA_METHODS:
        raise EvalError(f"unknown self-awareness method {method!r}: use logprob or generate")
    engine = default_engine(engine)
    type_list, config_list = parse_types(types), parse_configs(configs)
    if questions is None or isinstance(questions, (str, os.PathLike)):
        questions = load_questions(questions, language)
    questions = list(questions)
    scorer = scorer or LogProbScorer(engine)
    timer = Timer()
    skipped: dict[str, dict[str, str]] = {c: {} for c in config_list}
    units: list[tuple[str, str | None, str | None, str, list[SelfAnswer]]] = []
    gen: list[Any] = []
    for config, t, setup in each_setup(
            engine, config_list, type_list, skipped, desc="self-awareness",
            show_progress=show_progress, language=language, adapter_mode=adapter_mode,
            memory_factory=memory_factory, memory_k=memory_k,
            memory_token_budget=memory_token_budget):
        if method == "logprob":
            answers = score_self_awareness(engine, setup, questions, scorer=scorer)
        else:
            answers = []
            for i, q in enumerate(questions):
                gen.append(GenerationRequest(setup.messages(q.question), adapter=setup.adapter,
                                             max_new_tokens=max_new_tokens, temperature=0.0,
                                             seed=0, tag=(len(units), i)))
        units.append((config, t, setup.adapter, setup.adapter_source, answers))
    if gen:
        texts = generate_texts(engine, gen, batch_size, "self-awareness: generating",
                               show_progress)
        for u, unit in enumerate(units):
            for i, q in enumerate(questions):
                text = texts[(u, i)]
                pole = classify_answer(text, q, language)
                a = DIMENSIONS[q.dimension].poles[0]
                share = 0.5 if pole is None else (1.0 if pole == a else 0.0)
                unit[4].append(SelfAnswer(q.id, q.dimension, share, pole, text=text))
    results: dict[str, list[SelfAwarenessResult]] = {c: [] for c in config_list}
    for config, t, adapter, source, answers in units:
        for x in (type_list if config == "base" else [t]):
            results[config].append(_aggregate(config, MBTIType(x), language, method, adapter,
                                              source, answers))
    summaries = {c: summarize(c, results[c], skipped[c]) for c in config_list}
    meta = {"types": type_list, "configs": config_list, "language": language, "method": method,
            "questions": len(questions),
            "questions_per_dimension": {d: sum(q.dimension == d for q in questions)
                                        for d in DIMENSIONS},
            "max_new_tokens": max_new_tokens if method == "generate" else None,
            "adapter_mode": adapter_mode, "seconds": timer.seconds,
            "model": getattr(getattr(engine, "info", None), "name", None)}
    return SelfAwarenessReport(results, summaries, meta)
