"""Retrieval-backed self-awareness memory for a persona, on a local Chroma store.

One Chroma collection per (persona, user): what the persona knows about itself (seeded from
the shipped self-knowledge corpus) and what it remembers of its conversations with that user.
Retrieval ranks memories Generative-Agents style by relevance, recency and importance (see
:mod:`mbti_persona.memory_scoring`)::

    from mbti_persona.memory import PersonaMemory

    with PersonaMemory(mbti="INFP", user="alice") as mem:
        mem.add_turn("My cat Miso is sick.", "Oh no, I hope Miso feels better soon.")
        block, items = mem.context("How is my cat?", token_budget=200)
        # block -> "Things you know about yourself and remember:\\n- (just now) The user said ..."

The store lives on disk (``platformdirs.user_cache_dir("mbti-persona")/memory`` unless
``path=`` is given, or the ``MBTI_PERSONA_MEMORY_DIR`` environment variable) or in memory
(``in_memory=True``). Embeddings are always computed here with a LangChain embeddings object
(the embedded all-MiniLM-L6-v2 by default) and handed to Chroma: a collection never has
Chroma's default embedding function, which would download a model.

Several processes may share one store: every operation holds a file lock in the store
folder, and a process reloads its view of the store when another one has written since.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from .memory_scoring import (
    ScoringConfig,
    check_importance,
    cjk_overlap,
    combine_scores,
    default_count_tokens,
    detect_language,
    heuristic_importance,
    recency,
)
from .types import MBTIType

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.embeddings import Embeddings

__all__ = [
    "PersonaMemory",
    "MemoryItem",
    "RetrievedMemory",
    "MemoryStoreError",
    "default_memory_dir",
    "collection_name_for",
    "SCHEMA_VERSION",
]

#: Version of the collection layout written in each collection's metadata.
SCHEMA_VERSION = 1

_LOCK_FILE = ".mbti-persona.lock"
_GENERATION_FILE = ".mbti-persona.generation"
_SQLITE_FILE = "chroma.sqlite3"
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Self-knowledge categories that speak to a type's four dimensions: seeded more important.
_CORE_CATEGORIES = frozenset({"energy", "information", "decisions", "organisation"})
_SELF_IMPORTANCE_CORE = 0.8
_SELF_IMPORTANCE_OTHER = 0.6
_MAX_REPLY_CHARS = 300
_BATCH = 1000

_HEADERS = {
    "en": "Things you know about yourself and remember:",
    "zh": "关于你自己，你知道并记得这些：",
}

_FIX = "move it aside (or restore it from a backup) or choose another path"


class MemoryStoreError(RuntimeError):
    """The memory store cannot be opened or used: missing, not a store, corrupt, locked, or
    made with another embedding model. The message names the path and the fix; nothing is
    ever deleted to recover."""


# -- records ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryItem:
    """One stored memory."""

    id: str
    text: str
    kind: str  # "self" (self-knowledge), "episodic", or any kind given to add()
    category: str | None
    language: str
    session: str | None
    created_at: datetime
    importance: float
    last_accessed_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class RetrievedMemory:
    """A memory returned by :meth:`PersonaMemory.retrieve`, with its score and components.

    ``relevance`` is the cosine similarity with the query (blended with character overlap
    for a Chinese query, see :func:`~mbti_persona.memory_scoring.cjk_overlap`), ``recency``
    the decay value in
    (0, 1] (``self_recency`` for self-knowledge), ``importance`` the stored importance;
    ``score`` is their weighted sum after normalisation.
    """

    id: str
    text: str
    kind: str
    category: str | None
    language: str
    session: str | None
    created_at: datetime
    importance: float
    relevance: float
    recency: float
    score: float


# -- helpers ------------------------------------------------------------------------------

def default_memory_dir() -> Path:
    """``$MBTI_PERSONA_MEMORY_DIR`` if set, else ``user_cache_dir("mbti-persona")/memory``."""
    env = os.environ.get("MBTI_PERSONA_MEMORY_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("mbti-persona")) / "memory"


def _slug(value: str, limit: int = 40) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:limit].strip("-")
    return s or "x"


def collection_name_for(persona_id: str, user: str) -> str:
    """A valid Chroma collection name for (persona, user), unique even when slugs collide."""
    digest = hashlib.sha256(f"{persona_id}\x1f{user}".encode("utf-8")).hexdigest()[:12]
    return f"mp-{_slug(persona_id)}--{_slug(user)}--{digest}"


def _norm_text(text: object, what: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string, got {type(text).__name__}")
    lines = (" ".join(line.split()) for line in text.splitlines())
    t = "\n".join(line for line in lines if line)
    if not t:
        raise ValueError(f"{what} is empty")
    return t


def _norm_language(language: object) -> str:
    lang = str(language).strip().lower().replace("_", "-")
    if lang in ("chinese", "中文", "cn"):
        return "zh"
    if lang in ("english",):
        return "en"
    lang = lang.split("-")[0]
    if not re.fullmatch(r"[a-z]{2,8}", lang):
        raise ValueError(f"unknown language {language!r}: use a code such as 'en' or 'zh'")
    return lang


def _to_ts(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()  # naive datetimes are local time, as in datetime.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise TypeError(f"{what} must be a datetime or a POSIX timestamp, got {value!r}")


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(float(ts), tz=timezone.utc)


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def _memory_id(kind: str, session: str, text: str) -> str:
    return f"{_slug(kind, 16)}-{_hash(kind, session, text)}"


def _self_id(letters: str, language: str, category: str, text: str) -> str:
    return f"self-{_hash('corpus', letters, language, category, text)}"


def _age(hours: float, language: str) -> str:
    h = max(0.0, hours)
    if language == "zh":
        if h < 1:
            return "刚才"
        if h < 24:
            return f"{int(h)}小时前"
        if h < 24 * 60:
            return f"{int(h // 24)}天前"
        return f"{int(h // (24 * 30))}个月前"
    if h < 1:
        return "just now"
    if h < 24:
        n = int(h)
        return f"{n} hour{'s' if n != 1 else ''} ago"
    if h < 24 * 60:
        n = int(h // 24)
        return f"{n} day{'s' if n != 1 else ''} ago"
    n = int(h // (24 * 30))
    return f"{n} months ago"


def _is_busy(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return "database is locked" in msg or "database table is locked" in msg or "busy" in msg


_CORRUPT_HINTS = (
    "malformed", "not a database", "file is encrypted", "disk i/o error", "no such table",
    "error getting embedding", "corrupt", "unable to open database",
)


def _chromadb():
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    try:
        import chromadb
        from chromadb.config import Settings
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the persona memory needs chromadb: pip install 'mbti-persona[memory]'"
        ) from e
    return chromadb, Settings


# -- the shared store handle --------------------------------------------------------------

class _Store:
    """One Chroma client for one store folder (or one private in-memory store) per process.

    Every operation runs in :meth:`session`: a thread lock, then (on disk) the file lock in
    the store folder; if another process wrote since this one last looked (the generation
    file changed), the client is closed and reopened so it sees those writes and never writes
    over them with a stale view of the vector index.
    """

    def __init__(self, path: Path | None, lock_timeout: float) -> None:
        self.path = path
        self.refs = 0
        self.lock_timeout = lock_timeout
        self._rlock = threading.RLock()
        self._flock = None
        if path is not None:
            from filelock import FileLock

            self._flock = FileLock(str(path / _LOCK_FILE), timeout=lock_timeout,
                                   thread_local=False)
        self._client: Any = None
        self._generation: str | None = None
        self.collections: dict[str, Any] = {}

    # -- locking ----------------------------------------------------------------------
    @contextmanager
    def session(self, action: str) -> Iterator["_Session"]:
        with self._rlock:
            if self._flock is not None:
                from filelock import Timeout

                try:
                    self._flock.acquire()
                except Timeout:
                    raise MemoryStoreError(
                        f"the memory store at {self.path} is locked by another process "
                        f"(waited {self.lock_timeout:g} s for {self.path / _LOCK_FILE}) while "
                        f"{action}; wait for it to finish, or raise lock_timeout"
                    ) from None
            try:
                self._refresh(action)
                s = _Session(self, action)
                try:
                    yield s
                finally:
                    if s.dirty:
                        self._bump()
            finally:
                if self._flock is not None:
                    self._flock.release()

    def _read_generation(self) -> str:
        if self.path is None:
            return ""
        try:
            return (self.path / _GENERATION_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
        except OSError as e:
            raise MemoryStoreError(
                f"cannot read {self.path / _GENERATION_FILE} in the memory store at "
                f"{self.path}: {e}; check its permissions, or {_FIX}"
            ) from None

    def _bump(self) -> None:
        if self.path is None:
            return
        token = uuid.uuid4().hex
        tmp = self.path / f"{_GENERATION_FILE}.{os.getpid()}.tmp"
        try:
            tmp.write_text(token, encoding="utf-8")
            os.replace(tmp, self.path / _GENERATION_FILE)
        except OSError as e:
            raise MemoryStoreError(
                f"cannot write {self.path / _GENERATION_FILE} in the memory store at "
                f"{self.path}: {e}; check the folder's permissions and free space"
            ) from None
        self._generation = token

    def _refresh(self, action: str) -> None:
        gen = self._read_generation()
        if self._client is not None and gen == self._generation:
            return
        self._close_client()
        self._client = self._open_client(action)
        self._generation = gen

    def _open_client(self, action: str) -> Any:
        chromadb, Settings = _chromadb()
        settings = Settings(anonymized_telemetry=False, allow_reset=False)
        if self.path is None:
            return chromadb.EphemeralClient(settings=settings)
        try:
            return retry(lambda: chromadb.PersistentClient(path=str(self.path),
                                                           settings=settings))
        except Exception as e:
            raise store_error(self.path, e, action) from None

    def _close_client(self) -> None:
        self.collections.clear()
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # pragma: no cover - best effort
                pass

    def close(self) -> None:
        with self._rlock:
            self._close_client()

    @property
    def client(self) -> Any:
        return self._client


class _Session:
    def __init__(self, store: _Store, action: str) -> None:
        self.store = store
        self.action = action
        self.dirty = False

    @property
    def client(self) -> Any:
        return self.store.client


def retry(fn: Callable[[], Any], attempts: int = 8) -> Any:
    """Run ``fn``, retrying with back-off while SQLite reports the database is locked."""
    delay = 0.05
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as e:
            if attempt + 1 < attempts and _is_busy(e):
                time.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def store_error(path: Path | None, exc: BaseException, action: str) -> MemoryStoreError:
    where = f"the memory store at {path}" if path is not None else "the in-memory store"
    msg = str(exc).strip() or type(exc).__name__
    if path is not None and any(h in msg.lower() for h in _CORRUPT_HINTS):
        return MemoryStoreError(
            f"{where} is unreadable or corrupt ({msg}) while {action}; nothing was deleted: "
            f"{_FIX}"
        )
    if path is not None and "file exists" in msg.lower():
        return MemoryStoreError(
            f"{where} is not a usable store folder ({msg}) while {action}: {_FIX}"
        )
    return MemoryStoreError(f"{where} failed while {action}: {msg}")


_REGISTRY: dict[Path, _Store] = {}
_REGISTRY_LOCK = threading.Lock()


def _acquire_store(path: Path, lock_timeout: float) -> _Store:
    with _REGISTRY_LOCK:
        st = _REGISTRY.get(path)
        if st is None:
            st = _REGISTRY[path] = _Store(path, lock_timeout)
        st.refs += 1
        return st


def _release_store(st: _Store) -> None:
    with _REGISTRY_LOCK:
        st.refs -= 1
        if st.refs > 0:
            return
        if st.path is not None and _REGISTRY.get(st.path) is st:
            del _REGISTRY[st.path]
    st.close()


def _check_store_path(path: Path, create: bool) -> None:
    """Refuse paths that are not store folders before Chroma touches them."""
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise MemoryStoreError(
                f"the memory store path {path} is a file, not a folder: {_FIX}"
            )
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise MemoryStoreError(
                f"the memory store folder {path} is not readable and writable by this user: "
                "fix its permissions, or choose another path"
            )
        db = path / _SQLITE_FILE
        if db.exists() or db.is_symlink():
            if not db.is_file():
                raise MemoryStoreError(
                    f"the memory store at {path} is unreadable: {db} is not a file; {_FIX}"
                )
            try:
                with open(db, "rb") as f:
                    head = f.read(16)
            except OSError as e:
                raise MemoryStoreError(
                    f"the memory store at {path} is unreadable ({e}); {_FIX}"
                ) from None
            if head and head != _SQLITE_MAGIC:
                raise MemoryStoreError(
                    f"the memory store at {path} is corrupt: {db} is not an SQLite database; "
                    f"nothing was deleted: {_FIX}"
                )
        elif not create:
            raise MemoryStoreError(
                f"no memory store at {path} (the folder has no {_SQLITE_FILE}) and "
                "create=False: pass create=True to make one there, or check the path"
            )
        return
    if not create:
        raise MemoryStoreError(
            f"no memory store at {path} (the folder does not exist) and create=False: "
            "pass create=True to make one there, or check the path"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MemoryStoreError(
            f"cannot create the memory store folder {path}: {e}; choose another path"
        ) from None


# -- the memory ---------------------------------------------------------------------------

class PersonaMemory:
    """Self-knowledge and episodic memory of one persona with one user.

    Args:
        mbti: the persona's type ("INFP", an :class:`MBTIType`, ...); its self-knowledge seeds
            the memory.
        user: whose conversations these are; each (persona, user) pair has its own
            collection, and never sees another pair's memories.
        persona_id: the persona's name when several personas share a type (e.g.
            "infp-bob"); defaults to the type letters. Compared case-insensitively.
        path: the store folder (default: :func:`default_memory_dir`). Ignored with
            ``in_memory=True``.
        in_memory: keep everything in this process only (a private collection, dropped on
            :meth:`close`).
        create: create the store folder and database if missing (default). With
            ``create=False`` a missing store is an error; a collection for a new
            (persona, user) may still be created inside an existing store.
        languages: self-knowledge language(s) to seed ("en", "zh" or both).
        seed: seed the self-knowledge (idempotent: ids come from a content hash, and
            statements no longer in the corpus are removed).
        self_knowledge_path: a corpus folder of your own, laid out like the shipped one.
        embeddings: a LangChain ``Embeddings`` (default: the embedded all-MiniLM-L6-v2);
            ``embedding_model`` names it (default: its ``model_name`` attribute). The name
            and dimension are recorded in the collection; opening it with another model is a
            :class:`MemoryStoreError`.
        device: device for the embedded model.
        alpha_relevance, alpha_recency, alpha_importance, half_life_hours, self_recency,
        normalize, pool_factor, lexical_weight: the retrieval score (see
            :mod:`mbti_persona.memory_scoring`).
        importance_fn: ``text -> float in [0, 1]`` used when ``add`` gets no importance
            (default: :func:`~mbti_persona.memory_scoring.heuristic_importance`); plug an LLM
            rating here to follow Generative Agents exactly.
        touch_on_retrieve: refresh the last-access time of returned episodic memories.
        touch_flush_seconds: last-access times are kept in this object and written with the
            next write, on :meth:`get_all` and :meth:`close`, or by a retrieval once the
            oldest is this many seconds old (0: write at every retrieval).
        lock_timeout: seconds to wait for another process holding the store.
    """

    def __init__(
        self,
        mbti: "str | MBTIType",
        user: str = "default",
        *,
        persona_id: str | None = None,
        path: "str | os.PathLike[str] | None" = None,
        in_memory: bool = False,
        create: bool = True,
        languages: "str | Sequence[str]" = "en",
        seed: bool = True,
        self_knowledge_path: "str | os.PathLike[str] | None" = None,
        embeddings: "Embeddings | None" = None,
        embedding_model: str | None = None,
        device: str = "cpu",
        alpha_relevance: float = 1.0,
        alpha_recency: float = 0.25,
        alpha_importance: float = 0.25,
        half_life_hours: float = 72.0,
        self_recency: float = 0.5,
        normalize: str = "fixed",
        pool_factor: int = 4,
        lexical_weight: float = 0.5,
        importance_fn: Callable[[str], float] | None = None,
        touch_on_retrieve: bool = True,
        touch_flush_seconds: float = 30.0,
        lock_timeout: float = 60.0,
    ) -> None:
        self._closed = True
        self._store: _Store | None = None
        if in_memory and path is not None:
            raise ValueError("give either path= or in_memory=True, not both")
        self.mbti = MBTIType.parse(mbti)
        if not isinstance(user, str) or not user.strip():
            raise ValueError(f"user must be a non-empty string, got {user!r}")
        self.user = user.strip()
        pid = self.mbti.letters if persona_id is None else persona_id
        if not isinstance(pid, str) or not pid.strip():
            raise ValueError(f"persona_id must be a non-empty string, got {persona_id!r}")
        self.persona_id = pid.strip().casefold()
        if isinstance(languages, str):
            languages = [languages]
        self.languages: tuple[str, ...] = tuple(
            dict.fromkeys(_norm_language(lang) for lang in languages)
        )
        if not self.languages:
            raise ValueError("languages must name at least one language, e.g. 'en'")
        self.scoring = ScoringConfig(
            alpha_relevance=alpha_relevance,
            alpha_recency=alpha_recency,
            alpha_importance=alpha_importance,
            half_life_hours=half_life_hours,
            self_recency=self_recency,
            normalize=normalize,
            pool_factor=pool_factor,
            lexical_weight=lexical_weight,
        )
        if importance_fn is not None and not callable(importance_fn):
            raise TypeError("importance_fn must be a callable text -> float in [0, 1]")
        self._importance_fn = importance_fn or heuristic_importance
        self.touch_on_retrieve = bool(touch_on_retrieve)
        if not (isinstance(touch_flush_seconds, (int, float)) and touch_flush_seconds >= 0):
            raise ValueError(f"touch_flush_seconds must be >= 0, got {touch_flush_seconds!r}")
        self.touch_flush_seconds = float(touch_flush_seconds)
        self._pending_touch: dict[str, float] = {}
        self._pending_since: float | None = None
        self._touch_lock = threading.Lock()
        self._self_knowledge_path = self_knowledge_path
        self.in_memory = bool(in_memory)

        # embeddings
        if embeddings is None:
            from .embeddings import EMBEDDED_EMBEDDING_MODEL, embedded_embeddings

            embeddings = embedded_embeddings(device)
            embedding_model = embedding_model or EMBEDDED_EMBEDDING_MODEL
        self._embeddings = embeddings
        self.embedding_model = str(
            embedding_model
            or getattr(embeddings, "model_name", None)
            or getattr(embeddings, "model", None)
            or type(embeddings).__qualname__
        )
        probe = embeddings.embed_query("dimension probe")
        self.embedding_dim = len(probe)
        if self.embedding_dim == 0:
            raise ValueError(f"the embeddings {self.embedding_model!r} returned an empty vector")

        # store
        if self.in_memory:
            self.path: Path | None = None
            self.collection_name = (
                f"{collection_name_for(self.persona_id, self.user)}--{uuid.uuid4().hex[:8]}"
            )
            store = _Store(None, lock_timeout)
            store.refs = 1
        else:
            self.path = Path(path if path is not None else default_memory_dir()).expanduser()
            self.path = self.path.resolve()
            _check_store_path(self.path, create)
            self.collection_name = collection_name_for(self.persona_id, self.user)
            store = _acquire_store(self.path, float(lock_timeout))
        self._store = store
        self._closed = False
        try:
            with self._session("opening the collection") as s:
                self._collection(s)
            if seed:
                self.seed_self_knowledge()
        except BaseException:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------------------
    def __repr__(self) -> str:
        where = "in memory" if self.path is None else str(self.path)
        return (f"PersonaMemory(mbti={self.mbti.letters!r}, persona_id={self.persona_id!r}, "
                f"user={self.user!r}, store={where!r})")

    @contextmanager
    def _session(self, action: str) -> Iterator[_Session]:
        if self._closed or self._store is None:
            raise MemoryStoreError(f"this PersonaMemory is closed (while {action})")
        with self._store.session(action) as s:
            try:
                yield s
            except MemoryStoreError:
                raise
            except Exception as e:
                from chromadb.errors import ChromaError

                if isinstance(e, (ChromaError, OSError)) or _is_busy(e):
                    raise store_error(self.path, e, action) from e
                raise

    def _collection(self, s: _Session) -> Any:
        col = s.store.collections.get(self.collection_name)
        if col is not None:
            return col
        from chromadb.errors import NotFoundError

        client = s.client
        try:
            col = retry(lambda: client.get_collection(self.collection_name,
                                                      embedding_function=None))
        except NotFoundError:
            col = None
        except ValueError as e:  # older clients: "Collection x does not exist"
            if "does not exist" not in str(e):
                raise
            col = None
        if col is None:
            meta = {
                "mbti_persona_schema": SCHEMA_VERSION,
                "embedding_model": self.embedding_model,
                "embedding_dim": self.embedding_dim,
                "persona_id": self.persona_id,
                "user": self.user,
                "mbti": self.mbti.letters,
                "created_at": time.time(),
            }
            col = retry(lambda: client.create_collection(
                self.collection_name,
                configuration={"hnsw": {"space": "cosine"}},
                metadata=meta,
                embedding_function=None,
                get_or_create=True,
            ))
            s.dirty = True
        self._check_collection(col)
        s.store.collections[self.collection_name] = col
        return col

    def _check_collection(self, col: Any) -> None:
        meta = dict(col.metadata or {})
        where = f"the memory store at {self.path}" if self.path else "the in-memory store"
        model, dim = meta.get("embedding_model"), meta.get("embedding_dim")
        if model is None or dim is None:
            raise MemoryStoreError(
                f"collection {self.collection_name!r} in {where} was not made by mbti-persona "
                "(no embedding model recorded); nothing was changed: use another path or user"
            )
        if str(model) != self.embedding_model or int(dim) != self.embedding_dim:
            raise MemoryStoreError(
                f"the memories of persona {self.persona_id!r} / user {self.user!r} in {where} "
                f"were embedded with {model!r} ({dim} dimensions), but this PersonaMemory uses "
                f"{self.embedding_model!r} ({self.embedding_dim} dimensions). Open it with the "
                f"same model (embeddings=..., embedding_model={model!r}), or use another path "
                "or user for the new model; nothing was deleted"
            )
        space = None
        try:
            space = (col.configuration or {}).get("hnsw", {}).get("space")
        except Exception:  # pragma: no cover - configuration API differences
            space = None
        if space not in (None, "cosine"):
            raise MemoryStoreError(
                f"collection {self.collection_name!r} in {where} uses the {space!r} distance, "
                "not cosine; use another path or user"
            )

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vecs = self._embeddings.embed_documents(list(texts))
        out = [[float(x) for x in v] for v in vecs]
        if len(out) != len(texts) or any(len(v) != self.embedding_dim for v in out):
            raise ValueError(
                f"the embeddings {self.embedding_model!r} returned vectors of the wrong size "
                f"(expected {len(texts)} of {self.embedding_dim})"
            )
        return out

    def _embed_query(self, text: str) -> list[float]:
        v = [float(x) for x in self._embeddings.embed_query(text)]
        if len(v) != self.embedding_dim:
            raise ValueError(
                f"the embeddings {self.embedding_model!r} returned a {len(v)}-dimensional "
                f"query vector, expected {self.embedding_dim}"
            )
        return v

    # -- lifecycle --------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Release the store (idempotent). An in-memory store's collection is dropped."""
        if self._closed or self._store is None:
            self._closed = True
            return
        if not self.in_memory:
            try:
                self._flush_touches()
            except MemoryStoreError as e:  # never keep the store from being released
                import warnings

                warnings.warn(f"last-access times not saved: {e}", RuntimeWarning, stacklevel=2)
        store, self._closed = self._store, True
        if self.in_memory:
            try:
                client = store.client
                if client is not None:
                    client.delete_collection(self.collection_name)
            except Exception:
                pass
            store.close()
        else:
            _release_store(store)

    def __enter__(self) -> "PersonaMemory":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- seeding ----------------------------------------------------------------------
    def seed_self_knowledge(self) -> int:
        """Bring the self-knowledge of ``self.languages`` in line with the corpus.

        Adds missing statements (ids are a hash of type, language, category and text, so
        re-seeding never duplicates) and removes statements of those languages that are no
        longer in the corpus (or belong to another type). Returns how many were added.
        """
        from .self_knowledge import load_self_knowledge

        want: dict[str, Any] = {}
        for lang in self.languages:
            for item in load_self_knowledge(self.mbti, lang, path=self._self_knowledge_path):
                want[_self_id(item.type, item.language, item.category, item.text)] = item
        with self._session("reading the self-knowledge") as s:
            col = self._collection(s)
            got = retry(lambda: col.get(where={"source": "corpus"}, include=["metadatas"]))
        have = dict(zip(got["ids"], got["metadatas"] or []))
        missing = [i for i in want if i not in have]
        stale = [
            i for i, m in have.items()
            if i not in want and (m or {}).get("language") in self.languages
        ]
        if not missing and not stale:
            return 0
        vectors = self._embed([want[i].text for i in missing])
        now = time.time()
        metas = []
        for i in missing:
            it = want[i]
            metas.append({
                "kind": "self",
                "category": it.category,
                "language": it.language,
                "session": "",
                "created_at": now,
                "last_accessed_at": now,
                "importance": (_SELF_IMPORTANCE_CORE if it.category in _CORE_CATEGORIES
                               else _SELF_IMPORTANCE_OTHER),
                "source": "corpus",
                "type": it.type,
                "mentions": 1,
            })
        with self._session("seeding the self-knowledge") as s:
            col = self._collection(s)
            # Another process may have seeded meanwhile. Writing an embedding again for an
            # id the index already holds (an upsert) can leave other vectors unreachable in
            # Chroma's HNSW graph, so only ids still absent are written.
            now_there = set(self._get_metas(col, missing))
            rows = [(i, v, m) for i, v, m in zip(missing, vectors, metas) if i not in now_there]
            if rows or stale:
                s.dirty = True
            for a in range(0, len(rows), _BATCH):
                chunk = rows[a:a + _BATCH]
                retry(lambda: col.add(
                    ids=[r[0] for r in chunk], embeddings=[r[1] for r in chunk],
                    documents=[want[r[0]].text for r in chunk], metadatas=[r[2] for r in chunk],
                ))
            if stale:
                retry(lambda: col.delete(ids=stale))
        return len(rows)

    # -- writing ----------------------------------------------------------------------
    def _importance(self, text: str, given: object) -> float:
        if given is not None:
            return check_importance(given)
        return check_importance(self._importance_fn(text), "importance_fn's result")

    def add(
        self,
        text: str,
        *,
        importance: float | None = None,
        session: str | None = None,
        kind: str = "episodic",
        category: str | None = None,
        language: str | None = None,
        created_at: "datetime | float | None" = None,
    ) -> str:
        """Store one memory and return its id.

        ``importance`` in [0, 1] (default: ``importance_fn(text)``); ``language`` defaults to
        the detected one ("zh" for mostly-CJK text, else "en"); ``created_at`` defaults to
        now. The id is a hash of (kind, session, text): writing the same text in the same
        session again does not add a copy, it merges into the stored one (earliest creation
        time, latest access time, highest importance, ``mentions`` + 1).
        """
        return self.add_many(
            [text], importance=importance, session=session, kind=kind, category=category,
            language=language, created_at=created_at,
        )[0]

    def add_many(
        self,
        items: Iterable["str | Mapping[str, Any]"],
        *,
        importance: float | None = None,
        session: str | None = None,
        kind: str = "episodic",
        category: str | None = None,
        language: str | None = None,
        created_at: "datetime | float | None" = None,
    ) -> list[str]:
        """Store many memories in batches (one embedding pass); returns their ids in order.

        Each item is a text, or a mapping with ``text`` and any of the keyword arguments of
        :meth:`add`, which override the defaults given here.
        """
        now = time.time()
        records: dict[str, dict[str, Any]] = {}
        texts: dict[str, str] = {}
        order: list[str] = []
        for item in items:
            opts: dict[str, Any] = {
                "importance": importance, "session": session, "kind": kind,
                "category": category, "language": language, "created_at": created_at,
            }
            if isinstance(item, Mapping):
                unknown = set(item) - set(opts) - {"text"}
                if unknown:
                    raise TypeError(f"unknown memory field(s): {', '.join(sorted(unknown))}")
                opts.update({k: v for k, v in item.items() if k != "text"})
                raw = item.get("text")
            else:
                raw = item
            text = _norm_text(raw)
            k = opts["kind"]
            if not isinstance(k, str) or not k.strip():
                raise ValueError(f"kind must be a non-empty string, got {k!r}")
            k = k.strip().lower()
            sess = "" if opts["session"] is None else str(opts["session"]).strip()
            cat = "" if opts["category"] is None else str(opts["category"]).strip().lower()
            lang = (_norm_language(opts["language"]) if opts["language"] is not None
                    else detect_language(text))
            ts = _to_ts(opts["created_at"], "created_at")
            ts = now if ts is None else ts
            imp = self._importance(text, opts["importance"])
            mid = _memory_id(k, sess, text)
            order.append(mid)
            meta = {
                "kind": k, "category": cat, "language": lang, "session": sess,
                "created_at": ts, "last_accessed_at": ts, "importance": imp,
                "source": "user", "type": self.mbti.letters, "mentions": 1,
            }
            if mid in records:
                records[mid] = _merge(records[mid], meta)
            else:
                records[mid] = meta
                texts[mid] = text
        if not order:
            return []
        ids = list(records)
        with self._session("reading memories") as s:
            existing = self._get_metas(self._collection(s), ids)
        new = [i for i in ids if i not in existing]
        vectors = dict(zip(new, self._embed([texts[i] for i in new])))
        with self._session("writing memories") as s:
            col = self._collection(s)
            existing = self._get_metas(col, ids)  # another process may have written meanwhile
            late = [i for i in ids if i not in existing and i not in vectors]
            vectors.update(zip(late, self._embed([texts[i] for i in late])))
            add_ids = [i for i in ids if i not in existing]
            upd_ids = [i for i in ids if i in existing]
            s.dirty = True
            self._apply_touches(col)
            for a in range(0, len(add_ids), _BATCH):
                chunk = add_ids[a:a + _BATCH]
                retry(lambda: col.add(
                    ids=chunk, embeddings=[vectors[i] for i in chunk],
                    documents=[texts[i] for i in chunk], metadatas=[records[i] for i in chunk],
                ))
            for a in range(0, len(upd_ids), _BATCH):
                chunk = upd_ids[a:a + _BATCH]
                metas = [_merge(existing[i], records[i]) for i in chunk]
                retry(lambda: col.update(ids=chunk, metadatas=metas))
        return order

    def add_turn(
        self,
        user_text: str,
        ai_text: str,
        *,
        session: str | None = None,
        importance: float | None = None,
        language: str | None = None,
        created_at: "datetime | float | None" = None,
    ) -> str:
        """Write back one conversation turn as one episodic memory (category "conversation").

        The memory reads "The user said: ...\\nI replied: ..." (in Chinese for Chinese turns);
        the reply is shortened to 300 characters. Importance defaults to
        ``importance_fn(user_text)``: what the user discloses is what matters.
        """
        u = "" if user_text is None else str(user_text).strip()
        a = "" if ai_text is None else str(ai_text).strip()
        if not u and not a:
            raise ValueError("add_turn needs a user message or a reply")
        lang = _norm_language(language) if language is not None else detect_language(u or a)
        if len(a) > _MAX_REPLY_CHARS:
            a = a[: _MAX_REPLY_CHARS - 1].rstrip() + "…"
        if lang == "zh":
            parts = ([f"用户说：{u}"] if u else []) + ([f"我回答：{a}"] if a else [])
        else:
            parts = ([f"The user said: {u}"] if u else []) + ([f"I replied: {a}"] if a else [])
        imp = importance if importance is not None else self._importance(u or a, None)
        return self.add(
            "\n".join(parts), importance=imp, session=session, kind="episodic",
            category="conversation", language=lang, created_at=created_at,
        )

    def forget(self, ids: "str | Iterable[str]") -> int:
        """Delete memories by id; returns how many existed."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        if not ids:
            return 0
        with self._session("deleting memories") as s:
            col = self._collection(s)
            found = list(self._get_metas(col, ids))
            if found:
                s.dirty = True
                retry(lambda: col.delete(ids=found))
        return len(found)

    @staticmethod
    def _get_metas(col: Any, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for a in range(0, len(ids), _BATCH):
            chunk = list(ids[a:a + _BATCH])
            got = retry(lambda: col.get(ids=chunk, include=["metadatas"]))
            out.update(zip(got["ids"], [dict(m or {}) for m in got["metadatas"] or []]))
        return out

    # -- reading ----------------------------------------------------------------------
    def count(self, kind: str | None = None) -> int:
        """How many memories are stored (of one ``kind``, e.g. "self" or "episodic")."""
        with self._session("counting memories") as s:
            col = self._collection(s)
            if kind is None:
                return int(retry(col.count))
            got = retry(lambda: col.get(where={"kind": kind.strip().lower()}, include=[]))
            return len(got["ids"])

    def get_all(self, kind: str | None = None, *, session: str | None = None) -> list[MemoryItem]:
        """Every memory (of one ``kind`` and/or ``session``), oldest first."""
        conds = []
        if kind is not None:
            conds.append({"kind": kind.strip().lower()})
        if session is not None:
            conds.append({"session": str(session).strip()})
        where = None if not conds else conds[0] if len(conds) == 1 else {"$and": conds}
        self._flush_touches()
        with self._session("reading memories") as s:
            col = self._collection(s)
            got = retry(lambda: col.get(where=where, include=["metadatas", "documents"]))
        items = [
            _item(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])
        ]
        items.sort(key=lambda x: (x.created_at, x.id))
        return items

    def retrieve(
        self,
        query: str,
        k: int = 5,
        *,
        language: str | None = None,
        kinds: "str | Iterable[str] | None" = None,
        now: "datetime | float | None" = None,
        touch: bool | None = None,
    ) -> list[RetrievedMemory]:
        """The ``k`` best memories for ``query``, best first.

        Fetches ``pool_factor * k`` candidates by relevance from Chroma, then re-ranks them by
        the combined score (an unfiltered pool is filtered in Python when it holds enough
        matches, else Chroma is asked with a metadata filter). ``language`` ("en", "zh", ...;
        default: detected from the query;
        "any" for no preference) prefers memories in that language: when fewer than ``k``
        match, the rest is filled from other languages, ranked after them. ``kinds`` keeps
        only those kinds ("self", "episodic"). ``now`` is the time recency is measured at
        (default: the clock). With ``touch`` (default ``touch_on_retrieve``) the returned
        episodic memories get their last-access time set to ``now`` (kept here and written
        later, see ``touch_flush_seconds``; this object's own retrievals see it at once).
        """
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        q = _norm_text(query, "query")
        now_ts = _to_ts(now, "now")
        now_ts = time.time() if now_ts is None else now_ts
        lang = self._query_language(q, language)
        kind_list = None
        if kinds is not None:
            kind_list = [kinds] if isinstance(kinds, str) else list(kinds)
            kind_list = [str(x).strip().lower() for x in kind_list]
            if not kind_list:
                return []
        do_touch = self.touch_on_retrieve if touch is None else bool(touch)
        qv = self._embed_query(q)
        pool = max(k, k * self.scoring.pool_factor)
        if self.scoring.lexical_weight and detect_language(q) == "zh":
            pool *= 2  # the lexical re-ranking needs a wider pool than cosine alone
        kind_where = None if kind_list is None else {"kind": {"$in": kind_list}}
        lang_where = None if lang is None else {"language": lang}
        wheres = [w for w in (lang_where, kind_where) if w is not None]
        where = None if not wheres else wheres[0] if len(wheres) == 1 else {"$and": wheres}

        def wanted_kind(m: RetrievedMemory) -> bool:
            return kind_list is None or m.kind in kind_list

        with self._session("retrieving memories") as s:
            col = self._collection(s)
            # An unfiltered search is cheap; a filtered one makes Chroma scan the metadata
            # (about 35 ms at 10k memories). Filter in Python when the pool has enough.
            pool_all = self._query(col, q, qv, pool, None, now_ts)
            exhausted = len(pool_all) < pool  # the pool holds the whole collection
            preferred = [m for m in pool_all
                         if wanted_kind(m) and (lang is None or m.language == lang)]
            if where is not None and not exhausted and len(preferred) < max(k, pool // 2):
                preferred = self._query(col, q, qv, pool, where, now_ts)
            groups = [preferred]
            if lang is not None and len(preferred) < k:
                seen = {m.id for m in preferred}
                rest = [m for m in pool_all if wanted_kind(m) and m.id not in seen]
                if len(rest) < k - len(preferred) and not exhausted:
                    more = self._query(col, q, qv, pool + len(seen), kind_where, now_ts)
                    rest = [m for m in more if m.id not in seen]
                groups.append(rest)
        result: list[RetrievedMemory] = []
        for g in groups:
            g.sort(key=lambda m: (-m.score, m.id))
            result.extend(g[: k - len(result)])
            if len(result) >= k:
                break
        if do_touch:
            self._touch([m.id for m in result if m.kind != "self"], now_ts)
        return result

    # -- last access ------------------------------------------------------------------
    def _touch(self, ids: list[str], ts: float) -> None:
        if not ids:
            return
        with self._touch_lock:
            for i in ids:
                self._pending_touch[i] = max(ts, self._pending_touch.get(i, ts))
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            due = time.monotonic() - self._pending_since >= self.touch_flush_seconds
        if due:
            self._flush_touches()

    def _take_touches(self) -> dict[str, float]:
        with self._touch_lock:
            pending, self._pending_touch = self._pending_touch, {}
            self._pending_since = None
        return pending

    def _apply_touches(self, col: Any) -> None:
        """Write pending last-access times (inside a write session)."""
        pending = self._take_touches()
        if not pending:
            return
        metas = self._get_metas(col, list(pending))
        upd = [i for i in pending if i in metas]
        if upd:
            retry(lambda: col.update(ids=upd, metadatas=[
                {"last_accessed_at": max(pending[i],
                                         float(metas[i].get("last_accessed_at", 0.0)))}
                for i in upd
            ]))

    def _flush_touches(self) -> None:
        if not self._pending_touch or self._closed:
            return
        with self._session("saving last-access times") as s:
            s.dirty = True
            self._apply_touches(self._collection(s))

    def _query_language(self, query: str, language: str | None) -> str | None:
        if language is None:
            return detect_language(query)
        if str(language).strip().lower() in ("any", "*", "all"):
            return None
        return _norm_language(language)

    def _query(self, col: Any, query: str, qv: list[float], n: int, where: Any,
               now_ts: float) -> list[RetrievedMemory]:
        res = retry(lambda: col.query(
            query_embeddings=[qv], n_results=n, where=where,
            include=["metadatas", "documents", "distances"],
        ))
        ids = res["ids"][0] if res["ids"] else []
        if not ids:
            return []
        docs, metas, dists = res["documents"][0], res["metadatas"][0], res["distances"][0]
        rel, rec, imp = [], [], []
        w = self.scoring.lexical_weight if detect_language(query) == "zh" else 0.0
        for mid, m, d, doc in zip(ids, metas, dists, docs):
            m = m or {}
            cos = 1.0 - float(d)
            rel.append(cos if not w else
                       (1 - w) * max(0.0, cos) + w * cjk_overlap(query, doc or ""))
            if m.get("kind") == "self":
                rec.append(float(self.scoring.self_recency))
            else:
                last = float(m.get("last_accessed_at", m.get("created_at", now_ts)))
                last = max(last, self._pending_touch.get(mid, last))
                rec.append(recency((now_ts - last) / 3600.0, self.scoring.half_life_hours))
            imp.append(float(m.get("importance", 0.5)))
        scores = combine_scores([max(0.0, min(1.0, r)) for r in rel], rec, imp, self.scoring)
        out = []
        for i, doc, m, r, c, p, sc in zip(ids, docs, metas, rel, rec, imp, scores):
            m = m or {}
            out.append(RetrievedMemory(
                id=i, text=doc or "", kind=str(m.get("kind", "")),
                category=m.get("category") or None, language=str(m.get("language", "")),
                session=m.get("session") or None,
                created_at=_dt(float(m.get("created_at", 0.0))),
                importance=p, relevance=round(r, 6), recency=round(c, 6), score=round(sc, 6),
            ))
        return out

    def context(
        self,
        query: str,
        *,
        k: int = 5,
        token_budget: int = 200,
        count_tokens: Callable[[str], int] | None = None,
        language: str | None = None,
        kinds: "str | Iterable[str] | None" = None,
        now: "datetime | float | None" = None,
        header: str | None = None,
    ) -> tuple[str, list[RetrievedMemory]]:
        """A block for a system prompt with the best memories that fit ``token_budget``.

        The block is a header ("Things you know about yourself and remember:", or its Chinese
        version for Chinese) and one "- ..." line per memory, best first; episodic lines start
        with their age, e.g. "(2 days ago)". Memories that would overflow the budget are
        skipped (a shorter one further down may still fit). ``count_tokens`` counts tokens
        (default: ~1.3 per word, 1 per CJK character). Returns the block ("" when nothing
        fits) and the memories it holds.
        """
        if not isinstance(token_budget, int) or token_budget < 0:
            raise ValueError(f"token_budget must be a non-negative integer, got {token_budget!r}")
        count = count_tokens or default_count_tokens
        now_ts = _to_ts(now, "now")
        now_ts = time.time() if now_ts is None else now_ts
        items = self.retrieve(query, k, language=language, kinds=kinds, now=now_ts)
        lang = self._query_language(_norm_text(query, "query"), language) or "en"
        head = header if header is not None else _HEADERS.get(lang, _HEADERS["en"])
        used = int(count(head))
        if not items or used > token_budget:
            return "", []
        lines, kept = [], []
        for m in items:
            text = " / ".join(part.strip() for part in m.text.splitlines() if part.strip())
            if m.kind != "self":
                hours = (now_ts - m.created_at.timestamp()) / 3600.0
                text = f"({_age(hours, lang)}) {text}"
            line = f"- {text}"
            cost = int(count(line))
            if used + cost > token_budget:
                continue
            used += cost
            lines.append(line)
            kept.append(m)
        if not kept:
            return "", []
        return head + "\n" + "\n".join(lines), kept

    def as_retriever(self, k: int = 5, **kwargs: Any) -> Any:
        """A LangChain retriever returning memories as Documents (metadata holds the scores).

        ``kwargs`` go to :meth:`retrieve` (``language``, ``kinds``, ``touch``).
        """
        from langchain_core.callbacks import CallbackManagerForRetrieverRun
        from langchain_core.documents import Document
        from langchain_core.retrievers import BaseRetriever

        memory = self

        class PersonaMemoryRetriever(BaseRetriever):
            def _get_relevant_documents(
                self, query: str, *, run_manager: CallbackManagerForRetrieverRun
            ) -> list[Document]:
                return [
                    Document(page_content=m.text, id=m.id, metadata={
                        "kind": m.kind, "category": m.category, "language": m.language,
                        "session": m.session, "created_at": m.created_at.isoformat(),
                        "importance": m.importance, "relevance": m.relevance,
                        "recency": m.recency, "score": m.score,
                    })
                    for m in memory.retrieve(query, k, **kwargs)
                ]

        return PersonaMemoryRetriever()


def _merge(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a duplicate write into a stored memory's metadata."""
    out = dict(old)
    out["created_at"] = min(float(old.get("created_at", new["created_at"])), new["created_at"])
    out["last_accessed_at"] = max(float(old.get("last_accessed_at", 0.0)),
                                  float(new["last_accessed_at"]))
    out["importance"] = max(float(old.get("importance", 0.0)), float(new["importance"]))
    out["mentions"] = int(old.get("mentions", 1)) + int(new.get("mentions", 1))
    if new.get("category") and not old.get("category"):
        out["category"] = new["category"]
    return out


def _item(mid: str, doc: str | None, m: Mapping[str, Any] | None) -> MemoryItem:
    m = dict(m or {})
    created = float(m.get("created_at", 0.0))
    return MemoryItem(
        id=mid, text=doc or "", kind=str(m.get("kind", "")), category=m.get("category") or None,
        language=str(m.get("language", "")), session=m.get("session") or None,
        created_at=_dt(created), importance=float(m.get("importance", 0.0)),
        last_accessed_at=_dt(float(m.get("last_accessed_at", created))), metadata=m,
    )
