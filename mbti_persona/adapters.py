"""Personality adapters on disk: their metadata, validation and discovery.

An adapter is a PEFT LoRA folder (``adapter_config.json`` + ``adapter_model.safetensors``) with an
``mbti_persona.json`` beside them::

    {"format": 1, "kind": "pole", "pole": "I", "type": null, "language": "en",
     "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
     "base_fingerprint": "llama-h576-l30-v49152-i1536", "recipe": "dimension"}

``kind`` is "pole" (one of the eight dimension adapters), "type" (a whole-type adapter, the
Machine Mindset recipe) or "custom". A plain PEFT folder without ``mbti_persona.json`` loads as
"custom"; its fit to the base model is then checked by tensor shapes when it is loaded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .types import POLES, MBTIType, MBTITypeError

__all__ = [
    "AdapterError",
    "AdapterMeta",
    "META_FILE",
    "read_adapter",
    "write_adapter_meta",
    "save_adapter",
    "check_base_model",
    "discover_adapters",
    "shipped_adapters_dir",
    "base_slug",
]

META_FILE = "mbti_persona.json"
WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
_KINDS = ("pole", "type", "custom")


class AdapterError(ValueError):
    """An adapter folder that is missing, malformed, unsafe or made for another base model."""


@dataclass
class AdapterMeta:
    kind: str
    base_model: str | None = None
    base_fingerprint: str | None = None
    pole: str | None = None
    type: str | None = None
    language: str = "en"
    recipe: str | None = None
    format: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        """Registry name: 'pole:I', 'type:INFP' or 'custom:<folder>'."""
        if self.kind == "pole":
            return f"pole:{self.pole}"
        if self.kind == "type":
            return f"type:{self.type}"
        return f"custom:{self.path.name if self.path else 'adapter'}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("path")
        extra = d.pop("extra")
        d.update(extra)
        return d


def base_slug(name: str) -> str:
    """Folder name for a base model's shipped adapters ('HuggingFaceTB/SmolLM2-135M-Instruct' ->
    'smollm2-135m-instruct')."""
    return name.rsplit("/", 1)[-1].lower()


def shipped_adapters_dir(base_model_name: str) -> Path:
    """Where the package keeps the adapters trained for a base model (may not exist)."""
    return Path(__file__).parent / "resources" / "adapters" / base_slug(base_model_name)


def read_adapter(path: str | Path) -> AdapterMeta:
    """Validate an adapter folder and read its metadata (no weights are loaded)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise AdapterError(f"adapter folder {p} does not exist")
    if not p.is_dir():
        raise AdapterError(f"{p} is a file; an adapter is a folder holding {CONFIG_FILE} and "
                           f"{WEIGHTS_FILE}")
    if not (p / CONFIG_FILE).is_file():
        raise AdapterError(f"{p} has no {CONFIG_FILE}: is it a PEFT adapter folder "
                           "(saved with model.save_pretrained)?")
    if not (p / WEIGHTS_FILE).is_file():
        if any(p.glob("*.bin")) or any(p.glob("*.pt")):
            raise AdapterError(
                f"{p} holds pickle weights (.bin/.pt), which can run code when loaded and are "
                f"refused: re-save it as {WEIGHTS_FILE} (save_pretrained(safe_serialization=True))"
            )
        raise AdapterError(f"{p} has no {WEIGHTS_FILE}")
    try:
        cfg = json.loads((p / CONFIG_FILE).read_text(encoding="utf-8"))
    except ValueError as e:
        raise AdapterError(f"{p / CONFIG_FILE} is not valid JSON: {e}") from e
    if str(cfg.get("peft_type", "")).upper() != "LORA":
        raise AdapterError(f"{p} is a {cfg.get('peft_type')!r} adapter; only LoRA is supported")
    meta_path = p / META_FILE
    if not meta_path.is_file():
        return AdapterMeta(kind="custom", base_model=cfg.get("base_model_name_or_path"), path=p)
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise AdapterError(f"{meta_path} is not valid JSON: {e}") from e
    known = {f for f in AdapterMeta.__dataclass_fields__ if f not in ("extra", "path")}
    meta = AdapterMeta(**{k: v for k, v in raw.items() if k in known},
                       extra={k: v for k, v in raw.items() if k not in known}, path=p)
    if meta.kind not in _KINDS:
        raise AdapterError(f"{meta_path}: kind must be one of {_KINDS}, got {meta.kind!r}")
    if meta.kind == "pole" and (meta.pole or "").upper() not in POLES:
        raise AdapterError(f"{meta_path}: pole must be one of {', '.join(POLES)}, got {meta.pole!r}")
    if meta.kind == "pole":
        meta.pole = meta.pole.upper()  # type: ignore[union-attr]
    if meta.kind == "type":
        try:
            meta.type = MBTIType.parse(meta.type or "").letters
        except MBTITypeError as e:
            raise AdapterError(f"{meta_path}: {e}") from e
    return meta


def write_adapter_meta(path: str | Path, meta: AdapterMeta) -> Path:
    out = Path(path) / META_FILE
    out.write_text(json.dumps(meta.to_json(), indent=2, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    return out


def save_adapter(peft_model: Any, adapter_name: str, out_dir: str | Path,
                 meta: AdapterMeta) -> Path:
    """Save one adapter of a PEFT model as an engine adapter folder (safetensors + metadata).

    PEFT writes a non-default adapter into a sub-folder named after it; it is flattened so the
    folder loads with ``PeftModel.from_pretrained(base, out_dir)`` and ``engine.load_adapter``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out), selected_adapters=[adapter_name],
                               safe_serialization=True)
    sub = out / adapter_name
    if sub.is_dir():
        for f in sub.iterdir():
            f.replace(out / f.name)
        sub.rmdir()
    write_adapter_meta(out, meta)
    return out


def check_base_model(meta: AdapterMeta, base_name: str, base_fingerprint: str) -> None:
    """Refuse an adapter recorded as made for another base model."""
    where = meta.path or "adapter"
    if meta.base_fingerprint and meta.base_fingerprint != base_fingerprint:
        raise AdapterError(
            f"{where} was made for base model {meta.base_model!r} "
            f"(architecture {meta.base_fingerprint}), but the loaded base model is {base_name!r} "
            f"({base_fingerprint}): load that base model, or use adapters trained for this one"
        )
    if (meta.kind != "custom" and meta.base_model and base_slug(meta.base_model) != base_slug(base_name)):
        raise AdapterError(
            f"{where} was made for base model {meta.base_model!r}, but the loaded base model is "
            f"{base_name!r}: load that base model (ChatMBTI(model=...)), or train adapters for "
            "this one (mbti-persona train)"
        )


def discover_adapters(dirs: Iterable[str | Path]) -> list[AdapterMeta]:
    """Adapter folders directly inside each of ``dirs`` (or the dir itself if it is one)."""
    found: list[AdapterMeta] = []
    for d in dirs:
        d = Path(d).expanduser()
        if not d.is_dir():
            raise AdapterError(f"adapter directory {d} does not exist")
        candidates = [d] if (d / CONFIG_FILE).is_file() else sorted(
            c for c in d.iterdir() if c.is_dir() and (c / CONFIG_FILE).is_file()
        )
        found.extend(read_adapter(c) for c in candidates)
    return found
