"""Trainer callbacks: a JSON-lines log, an interruption point for tests, checkpoint helpers."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from transformers import TrainerCallback

__all__ = [
    "TrainingInterrupted",
    "InterruptAfterStep",
    "JsonlLogger",
    "last_checkpoint",
    "checkpoint_step",
    "clear_checkpoints",
]

_CKPT = re.compile(r"^checkpoint-(\d+)$")


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped before its end (Ctrl-C, or the ``interrupt_after_steps`` testing aid).

    A KeyboardInterrupt, so that code catching Ctrl-C handles both alike."""

    def __init__(self, message: str, checkpoint: str | None = None):
        super().__init__(message)
        self.checkpoint = checkpoint


class InterruptAfterStep(TrainerCallback):
    """Raise :class:`TrainingInterrupted` once a checkpoint at or after ``step`` is saved, as if the
    process had been killed right after it: used to test ``--resume``."""

    def __init__(self, step: int):
        self.step = int(step)

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            raise TrainingInterrupted(
                f"training interrupted after step {state.global_step} (checkpoint {ckpt})",
                str(ckpt),
            )
        return control


class JsonlLogger(TrainerCallback):
    """Append every log record (loss, lr, eval metrics) with a time stamp to a JSON-lines file."""

    def __init__(self, path: str | Path, name: str):
        self.path = Path(path)
        self.name = name
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            rec = {"adapter": self.name, "time": round(time.time(), 3), "step": state.global_step,
                   "epoch": state.epoch, **logs}
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, default=str) + "\n")
        return control


def checkpoint_step(path: str | Path) -> int | None:
    m = _CKPT.match(Path(path).name)
    return int(m.group(1)) if m else None


def last_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint folder with the highest step in ``folder`` that holds a trainer state."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    ckpts = [(checkpoint_step(c), c) for c in folder.iterdir()
             if c.is_dir() and checkpoint_step(c) is not None
             and (c / "trainer_state.json").is_file()]
    return max(ckpts)[1] if ckpts else None


def clear_checkpoints(folder: str | Path) -> None:
    folder = Path(folder)
    if folder.is_dir():
        for c in folder.iterdir():
            if c.is_dir() and checkpoint_step(c) is not None:
                shutil.rmtree(c, ignore_errors=True)
