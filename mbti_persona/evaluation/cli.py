"""``mbti-persona eval``: argument parsing and the command itself.

The main CLI wires it as a sub-command::

    from mbti_persona.evaluation.cli import add_eval_arguments, run_eval
    p = subparsers.add_parser("eval", help="evaluate personas")
    add_eval_arguments(p)
    p.set_defaults(func=run_eval)

It also runs on its own: ``python -m mbti_persona.evaluation.cli questionnaire --mbti INFP``.
Heavy imports (torch, the model, matplotlib) happen only when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

__all__ = ["add_eval_arguments", "run_eval", "main"]

_KINDS = ("questionnaire", "style", "self-awareness", "ability", "judge", "all")


def _common(p: argparse.ArgumentParser, *, configs: bool = True) -> None:
    g = p.add_argument_group("personas and configurations")
    g.add_argument("--mbti", default="all",
                   help="type(s) to evaluate: 'all' (default), INFP, or INFP,ESTJ")
    if configs:
        g.add_argument("--configs", default="base,prompt,adapter,adapter+memory",
                       help="comma-separated configurations: base (no persona), prompt "
                            "(persona system prompt only), adapter (adapters, no prompt), "
                            "adapter+memory (adapters + retrieved self-knowledge in the system "
                            "prompt); also adapter+prompt, adapter+prompt+memory "
                            "(default: %(default)s)")
    g.add_argument("--language", default="en", choices=["en", "zh"])
    g.add_argument("--adapter-mode", default="auto", choices=["auto", "dimensions", "type"],
                   help="how adapter configs pick adapters (default: auto)")
    g.add_argument("--memory-k", type=int, default=4, help="memories retrieved per question")
    g.add_argument("--memory-budget", type=int, default=200,
                   help="token budget of the memory block (default: %(default)s)")
    g = p.add_argument_group("model and output")
    g.add_argument("--model", default="embedded",
                   help="base model: 'embedded' (default), a hub id or a local folder")
    g.add_argument("--adapters", action="append", metavar="DIR", default=None,
                   help="extra adapter folder(s) to load (repeatable)")
    g.add_argument("--device", default=None, help="cpu, cuda, ... (default: auto)")
    g.add_argument("--out", default="eval-results", metavar="DIR",
                   help="output folder (default: %(default)s); each evaluation writes "
                        "DIR/<kind>/results.json, summary.md and radar charts")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    g.add_argument("--no-radar", action="store_true", help="skip the radar charts")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def _questionnaire_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("questionnaire")
    g.add_argument("--items", default=None, metavar="FILE",
                   help="item file (JSON list; default: the shipped bank for --language)")
    g.add_argument("--method", default="texts", choices=["texts", "letters", "both", "cloze"],
                   help="what is scored: option texts (default), answer letters, both, or "
                        "cloze (the question alone, option texts as the answer)")
    g.add_argument("--items-per-dimension", type=int, default=None, metavar="N",
                   help="use at most N items per dimension (balanced between the poles)")


def _style_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("style")
    g.add_argument("--prompts", default=None, metavar="FILE",
                   help="JSON list of open prompts (default: the 20 shipped ones)")
    g.add_argument("--max-prompts", type=int, default=None, metavar="N")
    g.add_argument("--judge", default=None, metavar="FILE",
                   help="style judge file (default: the shipped one)")
    g.add_argument("--data", nargs="+", action="extend", default=None, metavar="DIR",
                   help="behaviour data folder(s): train a fresh judge on them instead")
    g.add_argument("--max-train-pairs", type=int, default=None, metavar="N",
                   help="cap on training pairs per dimension when training a judge")
    g.add_argument("--style-max-new-tokens", type=int, default=64, metavar="N")


def _self_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("self-awareness")
    g.add_argument("--questions", default=None, metavar="FILE",
                   help="self-awareness question file (default: the shipped set)")
    g.add_argument("--sa-method", default="logprob", choices=["logprob", "generate"],
                   help="log-probability of the answers (default) or keyword rules on a "
                        "greedy answer")
    g.add_argument("--sa-max-new-tokens", type=int, default=40, metavar="N")


def _ability_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ability")
    g.add_argument("--mcq", default=None, metavar="FILE",
                   help="multiple-choice file (default: the 60 shipped questions)")
    g.add_argument("--max-questions", type=int, default=None, metavar="N")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval`` sub-commands (questionnaire, style, self-awareness, ability, judge,
    all) to ``parser``."""
    sub = parser.add_subparsers(dest="eval_command", metavar="{" + ",".join(_KINDS) + "}")
    sub.required = True
    p = sub.add_parser("questionnaire", help="forced-choice questionnaire, log-prob scored")
    _questionnaire_args(p)
    _common(p)
    p = sub.add_parser("style", help="open answers judged for style per dimension")
    _style_args(p)
    _common(p)
    p = sub.add_parser("self-awareness", help="questions about oneself, consistency with type")
    _self_args(p)
    _common(p)
    p = sub.add_parser("ability", help="general-knowledge multiple choice: ability kept")
    _ability_args(p)
    _common(p)
    p = sub.add_parser("judge", help="train the style judge on behaviour data and save it")
    p.add_argument("--data", nargs="+", action="extend", required=True, metavar="DIR")
    p.add_argument("--language", default="en", choices=["en", "zh"])
    p.add_argument("--max-train-pairs", type=int, default=None, metavar="N")
    p.add_argument("--max-validation-pairs", type=int, default=None, metavar="N")
    p.add_argument("--validation-fraction", type=float, default=0.2)
    p.add_argument("--out", default="style_judge.json", metavar="FILE")
    p.add_argument("--threads", type=int, default=None)
    p = sub.add_parser("all", help="questionnaire, self-awareness, ability and style")
    _questionnaire_args(p)
    _style_args(p)
    _self_args(p)
    _ability_args(p)
    p.add_argument("--style-mbti", default=None,
                   help="types for the style evaluation (default: --mbti); generation is the "
                        "slow part")
    p.add_argument("--ability-mbti", default=None,
                   help="types for the ability evaluation (default: --mbti)")
    _common(p)


def _engine(args: argparse.Namespace) -> Any:
    from ..engine import get_engine

    return get_engine(None if args.model == "embedded" else args.model, device=args.device,
                      adapter_dirs=tuple(args.adapters or ()))


def _opts(args: argparse.Namespace) -> dict[str, Any]:
    return {"language": args.language, "adapter_mode": args.adapter_mode,
            "memory_k": args.memory_k, "memory_token_budget": args.memory_budget,
            "show_progress": not args.no_progress}


def _emit(report: Any, args: argparse.Namespace) -> None:
    from .report import summary_markdown, write_report

    written = write_report(report, args.out, radar=not args.no_radar)
    print(summary_markdown(report))
    print(f"wrote {written['json']}, {written['markdown']}"
          + (f" and {len(written.get('radar', []))} radar chart(s)" if written.get("radar")
             else ""), file=sys.stderr)


def _judge(args: argparse.Namespace, language: str) -> Any:
    from .style import StyleJudge, train_style_judge

    if getattr(args, "data", None):
        judge = train_style_judge(args.data, language, max_train_pairs=args.max_train_pairs)
        acc = ", ".join(f"{d} {j.validation_accuracy:.0%}" for d, j in judge.dimensions.items())
        print(f"style judge trained; held-out accuracy: {acc}", file=sys.stderr)
        return judge
    if getattr(args, "judge", None):
        return StyleJudge.load(args.judge)
    return StyleJudge.default(language)


def run_eval(args: argparse.Namespace) -> int:
    """Run the ``eval`` sub-command in ``args``; returns the exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    kind = args.eval_command
    if kind == "judge":
        from .style import train_style_judge

        judge = train_style_judge(args.data, args.language,
                                  max_train_pairs=args.max_train_pairs,
                                  max_validation_pairs=args.max_validation_pairs,
                                  validation_fraction=args.validation_fraction)
        path = judge.save(args.out)
        for d, j in judge.dimensions.items():
            print(f"{d}: {j.train_pairs} train pairs, {j.validation_pairs} held out, accuracy "
                  f"{j.validation_accuracy:.1%} per answer, {j.validation_pair_accuracy:.1%} "
                  "per pair")
        print(f"wrote {path}", file=sys.stderr)
        return 0
    from .common import parse_configs, parse_types

    types, configs = parse_types(args.mbti), parse_configs(args.configs)  # fail fast
    engine = _engine(args)
    opts = _opts(args)
    if kind in ("questionnaire", "all"):
        from .questionnaire import run_questionnaire

        _emit(run_questionnaire(engine, types, configs, items=args.items, method=args.method,
                                per_dimension=args.items_per_dimension, **opts), args)
    if kind in ("self-awareness", "all"):
        from .self_awareness import run_self_awareness

        _emit(run_self_awareness(engine, types, configs, questions=args.questions,
                                 method=args.sa_method, max_new_tokens=args.sa_max_new_tokens,
                                 **opts), args)
    if kind in ("ability", "all"):
        from .ability import run_ability

        at = parse_types(args.ability_mbti) if getattr(args, "ability_mbti", None) else types
        _emit(run_ability(engine, at, configs, questions=args.mcq,
                          max_questions=args.max_questions, **opts), args)
    if kind in ("style", "all"):
        from .style import run_style

        st = parse_types(args.style_mbti) if getattr(args, "style_mbti", None) else types
        _emit(run_style(engine, st, configs, prompts=args.prompts,
                        judge=_judge(args, args.language), max_prompts=args.max_prompts,
                        max_new_tokens=args.style_max_new_tokens, **opts), args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mbti-persona eval",
                                     description="Evaluate MBTI personas.")
    add_eval_arguments(parser)
    args = parser.parse_args(argv)
    from .common import EvalError

    try:
        return run_eval(args)
    except (EvalError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
