"""The ``mbti-persona`` command: chat with a persona, list types, train, evaluate."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .types import ALL_TYPES, NICKNAMES, POLES, MBTITypeError, MBTIType


def _parse_intensities(values: Sequence[str] | None) -> dict[str, float] | None:
    if not values:
        return None
    out: dict[str, float] = {}
    for v in values:
        key, sep, num = v.partition("=")
        if not sep:
            raise MBTITypeError(f"--intensity expects POLE=VALUE such as I=0.8, got {v!r}")
        try:
            out[key] = float(num)
        except ValueError:
            raise MBTITypeError(f"--intensity {v!r}: {num!r} is not a number") from None
    return out


def _cmd_types(args: argparse.Namespace) -> int:
    for t in ALL_TYPES:
        poles = ", ".join(POLES[l].name for l in t)
        print(f"{t}  {NICKNAMES[t]:<42} ({poles})")
    return 0


def _build_chat(args: argparse.Namespace):
    from .chat_model import ChatMBTI

    return ChatMBTI(
        mbti=args.mbti, intensities=_parse_intensities(args.intensity), model=args.model,
        adapter_mode=args.adapter_mode, adapter_dirs=args.adapters or [], device=args.device,
        temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
        language=args.language, persona_prompt=not args.no_persona_prompt,
    )


def _cmd_chat(args: argparse.Namespace) -> int:
    from langchain_core.messages import AIMessage, HumanMessage

    MBTIType.parse(args.mbti, _parse_intensities(args.intensity))  # fail fast on a bad type
    print(f"Loading the base model ({args.model}) ...", file=sys.stderr, flush=True)
    llm = _build_chat(args)
    engine = llm.get_engine()
    resolved = engine.persona(llm._type, llm.adapter_mode)
    how = {"dimensions": "composed pole adapters", "type-adapter": "a whole-type adapter",
           "none": "prompt only (no adapters found)", "custom": "a custom adapter"}
    print(f"{llm.persona_key} on {engine.info.name} ({engine.info.device}), "
          f"{how.get(resolved.source, resolved.source)}", file=sys.stderr, flush=True)

    def answer(history: list) -> str:
        parts = []
        for chunk in llm.stream(history):
            print(chunk.text, end="", flush=True)
            parts.append(chunk.text)
        print(flush=True)
        return "".join(parts)

    if args.message is not None:
        answer([HumanMessage(args.message)])
        return 0
    print("Type a message (empty line or Ctrl-D to quit).", file=sys.stderr)
    history: list = []
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if not line.strip():
            return 0
        history.append(HumanMessage(line))
        print(f"{llm.persona_key}> ", end="", flush=True)
        history.append(AIMessage(answer(history)))
        history = history[-8:]  # keep the context small for the tiny model


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="embedded",
                   help="base model: 'embedded' (default), a hub id or a local folder")
    p.add_argument("--adapters", action="append", metavar="DIR",
                   help="extra adapter folder(s) to load (repeatable)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mbti-persona",
                                     description="Stable MBTI personas on a local LLM.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("types", help="list the 16 types")
    p.set_defaults(func=_cmd_types)

    p = sub.add_parser("chat", help="chat with a persona (streaming)")
    p.add_argument("--mbti", required=True, help="type, e.g. INFP")
    p.add_argument("--intensity", action="append", metavar="POLE=VALUE",
                   help="pole strength in [0.5, 1], e.g. --intensity I=0.8 (repeatable)")
    p.add_argument("--message", "-m", default=None, help="answer one message and exit")
    p.add_argument("--adapter-mode", default="auto",
                   choices=["auto", "dimensions", "type", "none"])
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-tokens", type=int, default=200)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--language", default="en", choices=["en", "zh"])
    p.add_argument("--no-persona-prompt", action="store_true",
                   help="rely on the adapters alone (no system prompt describing the type)")
    _add_model_args(p)
    p.set_defaults(func=_cmd_chat)

    try:
        from .training.cli import add_train_arguments, run_train
    except ImportError:  # the training extras are not installed
        add_train_arguments = run_train = None  # type: ignore[assignment]
    if add_train_arguments is not None:
        p = sub.add_parser("train", help="train personality adapters (needs mbti-persona[train])")
        add_train_arguments(p)
        p.set_defaults(func=run_train)

    try:
        from .evaluation.cli import add_eval_arguments, run_eval
    except ImportError:  # the evaluation extras are not installed
        add_eval_arguments = run_eval = None  # type: ignore[assignment]
    if add_eval_arguments is not None:
        p = sub.add_parser("eval", help="measure personality fidelity and ability kept "
                                        "(needs mbti-persona[eval])")
        add_eval_arguments(p)
        p.set_defaults(func=run_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (MBTITypeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # clear one-line errors for the known failure kinds
        from .adapters import AdapterError
        from .base_model import BaseModelError

        if isinstance(e, (AdapterError, BaseModelError)):
            print(f"error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
