"""``mbti-persona train``: argument parsing and the command itself.

The main CLI wires it as a sub-command::

    from mbti_persona.training.cli import add_train_arguments, run_train
    p = subparsers.add_parser("train", help="train personality adapters")
    add_train_arguments(p)
    p.set_defaults(func=run_train)

It also runs on its own: ``python -m mbti_persona.training.cli --recipe dimension --data DIR``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .config import RECIPES, TrainConfig

__all__ = ["add_train_arguments", "run_train", "config_from_args", "main"]

# flag dest -> TrainConfig field (same name unless listed)
_FIELDS = [
    "recipe", "poles", "types", "language", "base_model", "base_model_name", "device", "data",
    "validation_fraction", "max_samples", "max_eval_samples", "system_prompt", "use_author_dpo",
    "rehearsal_ratio", "init_adapters", "rank", "alpha", "dropout", "target_modules", "epochs",
    "max_steps", "lr", "batch_size", "grad_accum", "max_length", "warmup_ratio", "weight_decay",
    "lr_scheduler", "seed", "bf16", "gradient_checkpointing", "dpo_beta", "replay_ratio",
    "replay_max_new_tokens", "replay_batch_size", "output", "work_dir", "save_steps",
    "save_total_limit", "eval_steps", "logging_steps", "eval", "resume", "overwrite", "progress",
    "interrupt_after_steps",
]


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``. Every value flag defaults to None, so that the
    config file and the recipe defaults apply where a flag is not given."""
    g = parser.add_argument_group("what to train")
    g.add_argument("--recipe", choices=RECIPES, default=None,
                   help="dimension: one LoRA per pole (default); type: one LoRA per whole type "
                        "(Machine Mindset recipe); self-awareness: continue stage-1 adapters on "
                        "questions about oneself; dpo: preference optimisation from stage 1")
    g.add_argument("--config", metavar="FILE", default=None,
                   help="YAML, JSON or TOML file of training options (flags override it)")
    g.add_argument("--poles", nargs="+", metavar="POLE", default=None,
                   help="pole adapters to train, e.g. E I (default: all eight), or 'all'")
    g.add_argument("--types", nargs="+", metavar="TYPE", default=None,
                   help="type adapters to train, e.g. INFP ENTJ, or 'all'")
    g.add_argument("--language", default=None, help="data language: en (default) or zh")
    g = parser.add_argument_group("data")
    g.add_argument("--data", nargs="+", action="extend", metavar="DIR", default=None,
                   help="folders of behaviour files ({lang}_{dimension}_{pole}.json, searched "
                        "recursively; several may be given), or the hub dataset "
                        "FarReelAILab/Machine_Mindset when online")
    g.add_argument("--max-samples", type=int, default=None,
                   help="cap on training records per adapter (quick runs)")
    g.add_argument("--max-eval-samples", type=int, default=None,
                   help="cap on held-out records evaluated per adapter (default 64)")
    g.add_argument("--validation-fraction", type=float, default=None,
                   help="share of instructions held out, chosen by hash (default 0.05)")
    g.add_argument("--system-prompt", default=None,
                   help="system turn for every training example (default: the chat template's)")
    g.add_argument("--use-author-dpo", action="store_true", default=None,
                   help="dpo: also use the authors' dpo/ files (their order is checked first)")
    g.add_argument("--rehearsal-ratio", type=float, default=None,
                   help="self-awareness: behaviour records rehearsed per self-awareness pair "
                        "(default 1.0)")
    g.add_argument("--init-adapters", metavar="DIR", default=None,
                   help="self-awareness/dpo: folder holding the stage-1 adapters (default: "
                        "--output)")
    g = parser.add_argument_group("model and LoRA")
    g.add_argument("--base-model", default=None,
                   help="base model: 'embedded' (default), a folder, a .gguf file or a hub id")
    g.add_argument("--base-model-name", default=None,
                   help="canonical name to record when --base-model is a file, e.g. "
                        "HuggingFaceTB/SmolLM2-135M-Instruct")
    g.add_argument("--device", default=None, help="auto (default), cuda, cpu, mps")
    g.add_argument("--rank", type=int, default=None, help="LoRA rank (default 4)")
    g.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default 2 x rank)")
    g.add_argument("--dropout", type=float, default=None, help="LoRA dropout (default 0.05)")
    g.add_argument("--target-modules", default=None,
                   help="'all-linear' (default) or a comma-separated list, e.g. q_proj,v_proj")
    g = parser.add_argument_group("optimisation")
    g.add_argument("--epochs", type=float, default=None)
    g.add_argument("--max-steps", type=int, default=None, help="> 0 overrides --epochs")
    g.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 5e-4 for SFT recipes, 5e-5 for dpo)")
    g.add_argument("--batch-size", type=int, default=None, help="per device (default 8)")
    g.add_argument("--grad-accum", type=int, default=None, help="gradient accumulation (default 1)")
    g.add_argument("--max-length", type=int, default=None, help="tokens per example (default 384)")
    g.add_argument("--warmup-ratio", type=float, default=None)
    g.add_argument("--weight-decay", type=float, default=None)
    g.add_argument("--lr-scheduler", default=None, help="cosine (default), linear, constant...")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 mixed precision (default: on with CUDA)")
    g.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction,
                   default=None)
    g.add_argument("--dpo-beta", type=float, default=None, help="DPO beta (default 0.1)")
    g.add_argument("--replay-ratio", type=float, default=None,
                   help="base-model replay records per training record, to keep general ability "
                        "(default 0.2; 0 turns replay off)")
    g.add_argument("--replay-max-new-tokens", type=int, default=None)
    g.add_argument("--replay-batch-size", type=int, default=None)
    g = parser.add_argument_group("output and checkpoints")
    g.add_argument("--output", "-o", metavar="DIR", default=None,
                   help="folder of the finished adapters, one sub-folder each (default "
                        "runs/adapters)")
    g.add_argument("--work-dir", default=None,
                   help="checkpoints and replay cache (default OUTPUT/.mbti-train)")
    g.add_argument("--save-steps", type=int, default=None, help="checkpoint every N steps "
                   "(default 200)")
    g.add_argument("--save-total-limit", type=int, default=None)
    g.add_argument("--eval-steps", type=int, default=None, help="default: --save-steps")
    g.add_argument("--logging-steps", type=int, default=None)
    g.add_argument("--no-eval", dest="eval", action="store_false", default=None,
                   help="skip held-out evaluation")
    g.add_argument("--resume", action="store_true", default=None,
                   help="continue an interrupted run from its last checkpoint")
    g.add_argument("--overwrite", action="store_true", default=None,
                   help="retrain adapters that are already finished")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bars")
    g.add_argument("--interrupt-after-steps", type=int, default=None, help=argparse.SUPPRESS)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {f: getattr(args, f, None) for f in _FIELDS}
    return TrainConfig.from_sources(getattr(args, "config", None), overrides)


def run_train(args: argparse.Namespace) -> int:
    """Run ``mbti-persona train``; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    from ..adapters import AdapterError
    from ..base_model import BaseModelError
    from ..data import DataError
    from .callbacks import TrainingInterrupted
    from .config import ConfigError
    from .recipes import TrainingError, train

    def err(msg: str) -> None:
        print(f"mbti-persona train: error: {msg}", file=sys.stderr, flush=True)

    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        err(str(e))
        return 2
    try:
        results = train(cfg)
    except TrainingInterrupted as e:
        err(str(e))
        return 130
    except KeyboardInterrupt:
        err("interrupted; rerun the same command with --resume to continue from the last "
            "checkpoint (finished adapters are skipped)")
        return 130
    except (ConfigError, DataError, TrainingError, BaseModelError, AdapterError) as e:
        err(str(e))
        return 2
    for r in results:
        extra = ""
        if r.report and r.status == "trained":
            ev = r.report.get("final_eval") or {}
            losses = ", ".join(f"{k}={v:.3f}" for k, v in ev.items()
                               if k.endswith("_loss") and isinstance(v, (int, float)))
            extra = (f" steps={r.report.get('steps')} "
                     f"samples/s={r.report.get('samples_per_second')}"
                     + (f" {losses}" if losses else ""))
        print(f"{r.status:8s} {r.path}{extra}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mbti-persona train",
                                     description="Train MBTI personality LoRA adapters.")
    add_train_arguments(parser)
    return run_train(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
