"""mbti-persona: stable MBTI personalities for LangChain agents.

    from mbti_persona import ChatMBTI, MBTIPersona, PersonaMemory, Simulation
    ChatMBTI(mbti="INFP").invoke("hi")                      # a persona on the local model
    MBTIPersona(mbti="INTJ")                                # agent middleware / runnable / tool
    PersonaMemory("INFP")                                   # Chroma-backed self-knowledge + episodes
    Simulation(["INFP", "ESTJ"], "Plan a trip").run()       # several personas, batched per round
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
    "MBTIPersona": "persona",
    "PersonaRunnable": "persona",
    "Simulation": "simulation",
    "SimulationError": "simulation",
    "Turn": "simulation",
    "turn_stats": "simulation",
    "PersonaMemory": "memory",
    "RetrievedMemory": "memory",
    "MemoryStoreError": "memory",
    "embedded_embeddings": "embeddings",
}

__all__ = ["ALL_TYPES", "MBTIType", "MBTITypeError", "parse_type", "__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .adapters import AdapterError
    from .base_model import BaseModelError, load_base_model
    from .chat_model import ChatMBTI
    from .engine import PersonaEngine, get_engine
    from .embeddings import embedded_embeddings
    from .generation import GenerationRequest, GenerationResult
    from .memory import MemoryStoreError, PersonaMemory, RetrievedMemory
    from .persona import MBTIPersona, PersonaRunnable
    from .simulation import Simulation, SimulationError, Turn, turn_stats


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'mbti_persona' has no attribute {name!r}")
    value = getattr(import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value
