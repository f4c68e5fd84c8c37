"""Training personality adapters (needs the ``train`` extra: trl, datasets, accelerate, matplotlib).

Public API::

    TrainConfig                      # dataclass of every option; TrainConfig.from_sources(file, overrides)
    train(config, base=None) -> list[AdapterResult]
    TrainingError, TrainingInterrupted, ConfigError
    add_train_arguments(parser); run_train(args) -> int     # the `mbti-persona train` command

Heavy modules (torch, trl) are imported only when training starts.
"""

from .config import RECIPES, ConfigError, TrainConfig, load_config_file

__all__ = [
    "RECIPES",
    "ConfigError",
    "TrainConfig",
    "load_config_file",
    "train",
    "AdapterResult",
    "TrainingError",
    "TrainingInterrupted",
    "add_train_arguments",
    "run_train",
]


def __getattr__(name: str):
    if name in ("train", "AdapterResult", "TrainingError"):
        from . import recipes

        return getattr(recipes, name)
    if name == "TrainingInterrupted":
        from .callbacks import TrainingInterrupted

        return TrainingInterrupted
    if name in ("add_train_arguments", "run_train"):
        from . import cli

        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
