"""Behaviour data (Alpaca files, one per pole), preference pairs and hub loading.

Public API::

    discover_behaviour_files(dirs, language=None) -> list[PoleFilePair]
    load_dimension(dirs, language, dimension) -> list[BehaviourPair]    # validated pairs
    load_pole(dirs, language, pole, split=None) -> list[BehaviourRecord]
    split_of(instruction, input="", validation_fraction=0.05, seed=0) -> "train" | "validation"
    preference_pairs(dirs, language, pole, split=None) -> list[PreferencePair]
    load_author_dpo(dirs, language=None, pole=None) -> list[PreferencePair]  # order-checked
    resolve_data_dirs(sources) -> list[Path]      # folders and/or hub ids
    DataError
"""

from .behaviour import (
    BehaviourPair,
    BehaviourRecord,
    DataError,
    PoleFilePair,
    available_poles,
    discover_behaviour_files,
    load_dimension,
    load_pole,
    read_alpaca_file,
    split_of,
    split_pairs,
)
from .hub import HUB_DATASET, download_hub_dataset, is_hub_id, resolve_data_dirs
from .preferences import (
    AuthorDpoFile,
    PreferencePair,
    discover_author_dpo,
    load_author_dpo,
    preference_pairs,
)

__all__ = [
    "BehaviourPair",
    "BehaviourRecord",
    "DataError",
    "PoleFilePair",
    "available_poles",
    "discover_behaviour_files",
    "load_dimension",
    "load_pole",
    "read_alpaca_file",
    "split_of",
    "split_pairs",
    "HUB_DATASET",
    "download_hub_dataset",
    "is_hub_id",
    "resolve_data_dirs",
    "AuthorDpoFile",
    "PreferencePair",
    "discover_author_dpo",
    "load_author_dpo",
    "preference_pairs",
]
