"""Evaluating personas: questionnaire, style judge, self-awareness and general ability.

Each evaluation compares configurations (``base``: no persona; ``prompt``: the persona system
prompt only; ``adapter``: the persona's adapters, no prompt; ``adapter+memory``: adapters plus
retrieved self-knowledge in the system prompt) over the 16 types, and writes JSON results,
radar charts and a Markdown table (:func:`write_report`)::

    from mbti_persona.evaluation import run_questionnaire, write_report
    report = run_questionnaire(types="INFP,ESTJ", configs="base,adapter")
    write_report(report, "eval-results")

Torch, the model and matplotlib load only when an evaluation runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    # common
    "CONFIGS": "common", "DEFAULT_CONFIGS": "common", "EvalError": "common",
    "ConfigUnavailable": "common", "PersonaSetup": "common", "ConfigSummary": "common",
    "open_setup": "common", "parse_configs": "common", "parse_types": "common",
    # scoring
    "LogProbScorer": "scoring", "ScoreRequest": "scoring", "OptionScore": "scoring",
    # questionnaire
    "Item": "questionnaire", "ItemFileError": "questionnaire", "ItemResult": "questionnaire",
    "QuestionnaireResult": "questionnaire", "QuestionnaireReport": "questionnaire",
    "validate_items": "questionnaire", "load_items": "questionnaire",
    "select_items": "questionnaire", "score_questionnaire": "questionnaire",
    "run_questionnaire": "questionnaire",
    # style
    "StyleJudge": "style", "DimensionJudge": "style", "StyleReport": "style",
    "StyleResult": "style", "train_style_judge": "style", "load_prompts": "style",
    "run_style": "style",
    # self-awareness
    "SelfQuestion": "self_awareness", "SelfAwarenessReport": "self_awareness",
    "SelfAwarenessResult": "self_awareness", "load_questions": "self_awareness",
    "validate_questions": "self_awareness", "classify_answer": "self_awareness",
    "run_self_awareness": "self_awareness",
    # ability
    "MCQ": "ability", "AbilityReport": "ability", "AbilityResult": "ability",
    "load_mcq": "ability", "validate_mcq": "ability", "run_ability": "ability",
    # reports
    "write_report": "report", "radar_chart": "report", "radar_grid": "report",
    "summary_markdown": "report", "write_json": "report",
    # cli
    "add_eval_arguments": "cli", "run_eval": "cli",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'mbti_persona.evaluation' has no attribute {name!r}")
    value = getattr(import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value
