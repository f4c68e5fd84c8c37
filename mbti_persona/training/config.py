"""Training configuration: one dataclass, read from a YAML/JSON/TOML file and/or CLI flags.

Precedence: dataclass defaults < recipe defaults (:data:`RECIPE_DEFAULTS`) < config file < flags.
A config file holds the same keys as :class:`TrainConfig` (dashes or underscores), e.g.::

    recipe: dimension
    data: [/data/machine-mindset, /data/mbti-extra]
    language: en
    poles: [E, I]
    rank: 4
    epochs: 2
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..types import ALL_TYPES, POLES, MBTIType, MBTITypeError

__all__ = ["RECIPES", "RECIPE_DEFAULTS", "TrainConfig", "ConfigError", "load_config_file"]

RECIPES = ("dimension", "type", "self-awareness", "dpo")

#: Per-recipe defaults, applied where neither the config file nor a flag sets the key.
RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "dimension": {"lr": 5e-4, "epochs": 2.0},
    "type": {"lr": 5e-4, "epochs": 2.0},
    "self-awareness": {"lr": 3e-4, "epochs": 3.0},
    "dpo": {"lr": 5e-5, "epochs": 1.0, "replay_ratio": 0.0},
}


class ConfigError(ValueError):
    """A training option that is unknown or out of range."""


@dataclass
class TrainConfig:
    # what to train
    recipe: str = "dimension"
    poles: list[str] = field(default_factory=list)  # dimension / self-awareness / dpo
    types: list[str] = field(default_factory=list)  # type / self-awareness / dpo
    language: str = "en"
    # base model (None = the embedded SmolLM2-135M-Instruct)
    base_model: str | None = None
    base_model_name: str | None = None  # canonical name when base_model is a file
    device: str | None = None  # auto: cuda > mps > cpu
    # data
    data: list[str] = field(default_factory=list)  # folders and/or hub dataset ids
    validation_fraction: float = 0.05
    max_samples: int | None = None  # cap on behaviour training records per adapter
    max_eval_samples: int | None = 64
    system_prompt: str | None = None  # None: the chat template's default
    use_author_dpo: bool = False  # dpo: add the authors' order-checked dpo/ pairs
    rehearsal_ratio: float = 1.0  # self-awareness: behaviour records per self-awareness pair
    # stage inputs (self-awareness, dpo): folder holding the stage-1 adapters (default: output)
    init_adapters: str | None = None
    # LoRA
    rank: int = 4
    alpha: float | None = None  # default 2 * rank
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"
    # optimisation
    epochs: float = 2.0
    max_steps: int = -1  # > 0 overrides epochs
    lr: float = 5e-4
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 384
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    seed: int = 0
    bf16: bool | None = None  # None: on when CUDA supports it
    gradient_checkpointing: bool = False
    dpo_beta: float = 0.1
    # general-ability replay: base model's own answers mixed into SFT data
    replay_ratio: float = 0.2  # replay records per behaviour record
    replay_max_new_tokens: int = 160
    replay_batch_size: int = 32
    # output, checkpoints, logging
    output: str = "runs/adapters"
    work_dir: str | None = None  # checkpoints + replay cache; default <output>/.mbti-train
    save_steps: int = 200
    save_total_limit: int = 2
    eval_steps: int | None = None  # default: save_steps
    logging_steps: int = 10
    eval: bool = True
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    interrupt_after_steps: int | None = None  # testing aid: stop after this checkpoint

    # -- derived ------------------------------------------------------------------------
    @property
    def lora_alpha(self) -> float:
        return float(self.alpha) if self.alpha is not None else 2.0 * self.rank

    @property
    def output_dir(self) -> Path:
        return Path(self.output).expanduser()

    @property
    def work_path(self) -> Path:
        return Path(self.work_dir).expanduser() if self.work_dir else self.output_dir / ".mbti-train"

    @property
    def init_path(self) -> Path:
        return Path(self.init_adapters).expanduser() if self.init_adapters else self.output_dir

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # -- checks -------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        if self.recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {self.recipe!r}: use one of {', '.join(RECIPES)}")
        self.poles = [str(p).strip().upper() for p in self.poles]
        for p in self.poles:
            if p not in POLES:
                raise ConfigError(f"unknown pole {p!r}: use letters among {' '.join(POLES)}")
        types = []
        for t in self.types:
            try:
                types.append(MBTIType.parse(t).letters)
            except MBTITypeError as e:
                raise ConfigError(str(e)) from None
        self.types = types
        if self.recipe == "type" and self.poles:
            raise ConfigError("the type recipe trains whole-type adapters: give --types, not "
                              "--poles")
        if self.recipe == "dimension" and self.types:
            raise ConfigError("the dimension recipe trains pole adapters: give --poles, not "
                              "--types (or use --recipe type)")
        if self.recipe in ("self-awareness", "dpo") and self.poles and self.types:
            raise ConfigError("give either --poles or --types, not both")
        if isinstance(self.target_modules, str) and self.target_modules != "all-linear":
            self.target_modules = [t.strip() for t in self.target_modules.split(",") if t.strip()]
        for name, lo in (("rank", 1), ("batch_size", 1), ("grad_accum", 1), ("max_length", 16),
                         ("save_steps", 1), ("logging_steps", 1), ("replay_max_new_tokens", 1),
                         ("replay_batch_size", 1)):
            if int(getattr(self, name)) < lo:
                raise ConfigError(f"{name} must be at least {lo}, got {getattr(self, name)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("epochs must be > 0 (or give max_steps > 0)")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(f"validation_fraction must be in [0, 1), got "
                              f"{self.validation_fraction}")
        if self.rehearsal_ratio < 0:
            raise ConfigError(f"rehearsal_ratio must be >= 0, got {self.rehearsal_ratio}")
        if self.replay_ratio < 0:
            raise ConfigError(f"replay_ratio must be >= 0, got {self.replay_ratio}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"max_samples must be at least 1, got {self.max_samples}")
        return self

    def targets(self) -> list[tuple[str, str]]:
        """[(kind, name)] to train: ("pole", "E") or ("type", "INFP"); defaults per recipe."""
        if self.recipe == "dimension":
            return [("pole", p) for p in (self.poles or list(POLES))]
        if self.recipe == "type":
            if not self.types:
                raise ConfigError("the type recipe needs --types (e.g. --types INFP ENTJ), or "
                                  "--types all")
            return [("type", t) for t in self.types]
        if self.types:
            return [("type", t) for t in self.types]
        return [("pole", p) for p in (self.poles or list(POLES))]

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_sources(cls, file: str | os.PathLike | None = None,
                     overrides: Mapping[str, Any] | None = None) -> "TrainConfig":
        """Defaults < recipe defaults < ``file`` < ``overrides`` (None values ignored)."""
        values: dict[str, Any] = {}
        if file is not None:
            values.update(load_config_file(file))
        for k, v in (overrides or {}).items():
            if v is not None:
                values[_key(k)] = v
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}")
        recipe = values.get("recipe", cls.recipe)
        merged = dict(RECIPE_DEFAULTS.get(recipe, {}))
        merged.update(values)
        for list_key in ("poles", "types", "data"):
            v = merged.get(list_key)
            if isinstance(v, str):
                merged[list_key] = [x for x in v.replace(",", " ").split() if x]
        if [t.lower() for t in merged.get("types", [])] == ["all"]:
            merged["types"] = list(ALL_TYPES)
        if [p.lower() for p in merged.get("poles", [])] == ["all"]:
            merged["poles"] = list(POLES)
        return cls(**merged).validate()


def _key(k: str) -> str:
    return str(k).strip().replace("-", "_")


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a .yaml/.yml, .json or .toml config (a ``[train]`` table / ``train:`` key is used when
    present)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as e:
                raise ConfigError("YAML config files need PyYAML: pip install pyyaml") from e
            raw = yaml.safe_load(text) or {}
        elif suffix == ".json":
            raw = json.loads(text)
        elif suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            raw = tomllib.loads(text)
        else:
            raise ConfigError(f"config file {p}: use a .yaml, .json or .toml file")
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"config file {p} could not be parsed: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {p} must hold a mapping of options")
    if isinstance(raw.get("train"), dict):
        raw = raw["train"]
    return {_key(k): v for k, v in raw.items()}
