"""mbti-persona: stable MBTI personalities for LangChain agents.

    from mbti_persona import ChatMBTI
    ChatMBTI(mbti="INFP").invoke("hi")
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .types import ALL_TYPES, MBTIType, MBTITypeError, parse_type

__version__ = "0.1.0"

# Heavy parts (torch, chromadb) load on first use.
_LAZY = {
    "ChatMBTI": "chat_model",
    "PersonaEngine": "engine",
    "get_engine": "engine",
    "GenerationRequest": "generation",
    "GenerationResult": "generation",
    "load_base_model": "base_model",
    "BaseModelError": "base_model",
    "AdapterError": "adapters",
}

__all__ = ["ALL_TYPES", "MBTIType", "MBTITypeError", "parse_type", "__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .adapters import AdapterError
    from .base_model import BaseModelError, load_base_model
    from .chat_model import ChatMBTI
    from .engine import PersonaEngine, get_engine
    from .generation import GenerationRequest, GenerationResult


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'mbti_persona' has no attribute {name!r}")
    value = getattr(import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value
