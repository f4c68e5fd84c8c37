"""General ability kept: multiple-choice questions scored by log-probability.

File: a JSON list of ``{"question": ..., "choices": [...], "answer": index}`` (2 or more
choices, ``answer`` the 0-based index of the right one). The shipped set
(``resources/evaluation/mcq_en.json``) holds 60 easy questions written for this project: facts,
arithmetic and common sense, the right answer spread evenly over the four positions.

The model reads the question (followed by "Answer in a few words."; the choices are not
listed: on the 135M model listing them lowered base accuracy from 53% to 35-40%) and
each choice text is scored as the assistant's answer. The choice with the highest summed
log-probability is the model's answer (``accuracy``); ``accuracy_norm`` uses the
length-normalised (per token) log-probability instead. A persona's *ability kept* is its
accuracy divided by the base model's.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

from .common import (DEFAULT_CONFIGS, EvalReport, EvalError, PersonaSetup, Timer, default_resource,
                     parse_configs, parse_types, read_json_list, default_engine, each_setup)
from .scoring import LogProbScorer, ScoreRequest

__all__ = ["MCQ", "AbilityResult", "AbilitySummary", "AbilityReport", "validate_mcq", "load_mcq",
           "mcq_prompt", "score_mcq", "run_ability"]

_TEMPLATE = {"en": "{question} Answer in a few words.", "zh": "{question} 请用几个字回答。"}


@dataclass(frozen=True)
class MCQ:
    question: str
    choices: tuple[str, ...]
    answer: int


def validate_mcq(data: Any, source: str = "<mcq>") -> list[MCQ]:
    if not isinstance(data, list) or not data:
        raise EvalError(f"{source}: a multiple-choice file must hold a non-empty JSON list")
    out = []
    for i, raw in enumerate(data):
        where = f"{source}: question #{i + 1}"
        if not isinstance(raw, dict):
            raise EvalError(f"{where} must be an object")
        extra = sorted(set(raw) - {"question", "choices", "answer", "id", "note"})
        if extra:
            raise EvalError(f"{where} has unknown field(s) {', '.join(extra)}; allowed: "
                            "question, choices, answer (id, note)")
        q, ch, ans = raw.get("question"), raw.get("choices"), raw.get("answer")
        if not isinstance(q, str) or not q.strip():
            raise EvalError(f"{where}: question must be a non-empty string")
        if not isinstance(ch, list) or len(ch) < 2 or any(
                not isinstance(c, str) or not c.strip() for c in ch):
            raise EvalError(f"{where} ({q[:40]!r}): choices must be a list of at least two "
                            "non-empty strings")
        if len({c.strip() for c in ch}) != len(ch):
            raise EvalError(f"{where} ({q[:40]!r}): choices repeat")
        if isinstance(ans, bool) or not isinstance(ans, int) or not 0 <= ans < len(ch):
            raise EvalError(f"{where} ({q[:40]!r}): answer must be the 0-based index of the "
                            f"right choice (0..{len(ch) - 1}), got {ans!r}")
        out.append(MCQ(q.strip(), tuple(c.strip() for c in ch), ans))
    return out


def load_mcq(path: "str | os.PathLike[str] | None" = None, language: str = "en") -> list[MCQ]:
    p = Path(path) if path is not None else default_resource("mcq", language)
    if path is None and not p.is_file():
        raise EvalError(f"no multiple-choice set ships for {language!r}: pass one with --mcq "
                        "FILE (a JSON list of {question, choices, answer})")
    return validate_mcq(read_json_list(p, "multiple-choice"), str(p))


def mcq_prompt(q: MCQ, language: str = "en") -> str:
    return _TEMPLATE.get(language, _TEMPLATE["en"]).format(question=q.question)


@dataclass
class AbilityResult:
    config: str
    mbti: str | None
    adapter: str | None
    adapter_source: str
    accuracy: float  # highest summed log-probability
    correct: int
    total: int
    accuracy_norm: float = 0.0  # highest mean log-probability per token
    chosen: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AbilitySummary:
    config: str
    types: int
    accuracy: float | None  # mean over the types
    min_accuracy: float | None
    kept: float | None  # accuracy / base accuracy
    accuracy_norm: float | None = None
    kept_norm: float | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AbilityReport(EvalReport):
    kind: ClassVar[str] = "ability"


def score_mcq(engine: Any, setup: PersonaSetup, questions: Sequence[MCQ], *,
              scorer: LogProbScorer | None = None) -> AbilityResult:
    scorer = scorer or LogProbScorer(engine)
    timer = Timer()
    reqs = []
    for q in questions:
        text = mcq_prompt(q, setup.language)
        reqs.append(ScoreRequest(setup.messages(text, query=q.question), q.choices))
    chosen, chosen_norm = [], []
    for sc in scorer.score_batch(reqs, setup.adapter):
        sums, means = [s.logprob for s in sc], [s.mean for s in sc]
        chosen.append(max(range(len(sums)), key=sums.__getitem__))
        chosen_norm.append(max(range(len(means)), key=means.__getitem__))
    correct = sum(c == q.answer for c, q in zip(chosen, questions))
    norm = sum(c == q.answer for c, q in zip(chosen_norm, questions)) / len(questions)
    return AbilityResult(setup.config, setup.mbti.letters if setup.mbti else None, setup.adapter,
                         setup.adapter_source, correct / len(questions), correct,
                         len(questions), norm, chosen, timer.seconds)


def run_ability(engine: Any = None, types: "str | Iterable[str] | None" = "all",
                configs: "str | Iterable[str] | None" = DEFAULT_CONFIGS, *,
                questions: "Sequence[MCQ] | str | os.PathLike[str] | None" = None,
                language: str = "en", max_questions: int | None = None,
                adapter_mode: str = "auto", memory_factory: Callable[..., Any] | None = None,
                memory_k: int = 4, memory_token_budget: int = 200,
                show_progress: bool = True,
                scorer: LogProbScorer | None = None) -> AbilityReport:
    """Multiple-choice accuracy per persona and configuration; ability kept vs the base."""
    engine = default_engine(engine)
    type_list, config_list = parse_types(types), parse_configs(configs)
    if questions is None or isinstance(questions, (str, os.PathLike)):
        questions = load_mcq(questions, language)
    questions = list(questions)[:max_questions] if max_questions else list(questions)
    scorer = scorer or LogProbScorer(engine)
    timer = Timer()
    run_configs = list(config_list) if "base" in config_list else ["base"] + config_list
    results: dict[str, list[AbilityResult]] = {c: [] for c in run_configs}
    skipped: dict[str, dict[str, str]] = {c: {} for c in run_configs}
    for config, t, setup in each_setup(
            engine, run_configs, type_list, skipped, desc="ability", show_progress=show_progress,
            language=language, adapter_mode=adapter_mode, memory_factory=memory_factory,
            memory_k=memory_k, memory_token_budget=memory_token_budget):
        results[config].append(score_mcq(engine, setup, questions, scorer=scorer))
    base = results["base"][0].accuracy if results.get("base") else None
    base_n = results["base"][0].accuracy_norm if results.get("base") else None
    summaries = {}
    for c in run_configs:
        accs = [r.accuracy for r in results[c]]
        norms = [r.accuracy_norm for r in results[c]]
        mean = sum(accs) / len(accs) if accs else None
        mean_n = sum(norms) / len(norms) if norms else None
        summaries[c] = AbilitySummary(
            config=c, types=0 if c == "base" else len(accs), accuracy=mean,
            min_accuracy=min(accs) if accs else None,
            kept=(mean / base) if (mean is not None and base) else None, skipped=skipped[c],
            accuracy_norm=mean_n,
            kept_norm=(mean_n / base_n) if (mean_n is not None and base_n) else None)
    meta = {"types": type_list, "configs": run_configs, "language": language,
            "questions": len(questions), "base_accuracy": base, "base_accuracy_norm": base_n,
            "chance": sum(1 / len(q.choices) for q in questions) / len(questions),
            "adapter_mode": adapter_mode, "seconds": timer.seconds,
            "model": getattr(getattr(engine, "info", None), "name", None),
            "example_prompt": mcq_prompt(questions[0], language)}
    return AbilityReport(results, summaries, meta)
