"""One base model in memory serving many personas: adapters, composition and batched generation.

All forward passes run in one worker thread that gathers concurrent requests into a batch in
which every row carries its own adapter (PEFT mixed-adapter batches), so requests from many
threads or asyncio tasks share forward passes and can never run under another request's adapter.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator, Literal, Sequence

from .adapters import (AdapterError, AdapterMeta, check_base_model, discover_adapters,
                       read_adapter, shipped_adapters_dir)
from .base_model import LoadedBaseModel, load_base_model
from .generation import GenerationRequest, GenerationResult, decode_batch
from .types import MBTIType

logger = logging.getLogger(__name__)

__all__ = ["PersonaEngine", "PersonaAdapter", "BatchRecord", "AdapterMode", "get_engine"]

AdapterMode = Literal["auto", "dimensions", "type", "none"]
BASE = "__base__"


@dataclass(frozen=True)
class PersonaAdapter:
    """What the engine will run for a persona: an adapter name (None = base) and how it was made."""

    adapter: str | None
    source: str  # "type-adapter", "dimensions", "custom" or "none"
    weights: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class BatchRecord:
    """One forward batch, as logged in :attr:`PersonaEngine.call_log`."""

    started: float
    seconds: float
    adapters: tuple[str | None, ...]
    output_tokens: int


class PersonaEngine:
    """A base model plus personality adapters, serving batched mixed-persona generation.

    Example::

        engine = PersonaEngine()                       # embedded SmolLM2 + shipped adapters
        a = engine.persona("INFP")                     # composes I+N+F+P
        print(engine.generate([GenerationRequest([{"role": "user", "content": "hi"}],
                                                 adapter=a.adapter)])[0].text)

    ``fast_decode``: True, False or "auto" (on when the model is Llama-like, on CPU and CUDA):
    decode with :class:`~mbti_persona.fast_decode.FastDecoder` (stacked LoRA for mixed batches,
    a static KV cache, CUDA graphs) instead of PEFT mixed-adapter batches. The attribute of the
    same name can be switched at any time.
    """

    def __init__(
        self,
        model: str | LoadedBaseModel | None = None,
        *,
        adapter_dirs: Sequence[str | Path] = (),
        load_shipped_adapters: bool = True,
        device: str | None = None,
        dtype: Any = None,
        max_batch_size: int = 32,
        batch_window_ms: float = 5.0,
        max_composed: int = 64,
        fast_decode: bool | Literal["auto"] = "auto",
    ) -> None:
        self.base = model if isinstance(model, LoadedBaseModel) else load_base_model(
            model, device=device, dtype=dtype)
        self.tokenizer = self.base.tokenizer
        self.model: Any = self.base.model  # becomes a PeftModel once an adapter is loaded
        self.max_batch_size = max_batch_size
        self.batch_window = batch_window_ms / 1000.0
        self.max_composed = max_composed
        self._lock = threading.RLock()  # guards the model: forward passes and adapter changes
        self._adapters: dict[str, AdapterMeta] = {}
        self._composed: dict[str, float] = {}  # composed adapter name -> last use
        self._queue: "queue.Queue[tuple[GenerationRequest, Future] | None]" = queue.Queue()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.call_log: list[BatchRecord] = []
        self._warned: set[str] = set()
        self._eos_ids = self._end_ids()
        self._fast: Any = None  # fast_decode.FastDecoder, made on first use
        self.fast_decode = self._want_fast_decode(fast_decode)
        if load_shipped_adapters:
            shipped = shipped_adapters_dir(self.info.name)
            if shipped.is_dir():
                self.load_adapters(shipped)
        for d in adapter_dirs:
            self.load_adapters(d)

    # -- info ----------------------------------------------------------------------------
    @property
    def info(self):
        return self.base.info

    @property
    def adapters(self) -> dict[str, AdapterMeta]:
        """Loaded adapters by name ('pole:I', 'type:INFP', 'custom:<folder>')."""
        return dict(self._adapters)

    def poles_available(self) -> set[str]:
        return {m.pole for m in self._adapters.values() if m.kind == "pole" and m.pole}

    def _want_fast_decode(self, mode: bool | str) -> bool:
        """fast_decode: True, False or "auto" (on whenever the model fits: on this project's
        2-core CPU it is 2-4x faster than PEFT's mixed-adapter batches, on an H100 20-130x;
        docs/benchmarks.md)."""
        from .fast_decode import unsupported_reason

        if mode not in (True, False, "auto"):
            raise ValueError(f"fast_decode must be True, False or 'auto', got {mode!r}")
        if mode is False:
            return False
        reason = unsupported_reason(self.model)
        if mode is True and reason:
            raise ValueError(f"fast_decode=True, but the fast decoder cannot run "
                             f"{self.info.name!r}: {reason}")
        return reason is None

    def _fast_decoder(self) -> Any:
        if not self.fast_decode:
            return None
        from .fast_decode import FastDecoder

        if self._fast is None:
            self._fast = FastDecoder(self.model, self.tokenizer)
        self._fast.bind(self.model)
        return self._fast

    def _end_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        for t in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"):
            tid = self.tokenizer.convert_tokens_to_ids(t)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and tid >= 0:
                ids.add(tid)
        return {i for i in ids if i is not None}

    # -- adapters ------------------------------------------------------------------------
    def load_adapters(self, directory: str | Path) -> list[str]:
        """Load every adapter folder in ``directory`` (or the folder itself)."""
        return [self.load_adapter(m.path) for m in discover_adapters([directory])]  # type: ignore[arg-type]

    def load_adapter(self, path: str | Path, name: str | None = None) -> str:
        """Load one PEFT LoRA folder (safetensors only) after checking it fits the base model."""
        meta = read_adapter(path)
        check_base_model(meta, self.info.name, self.info.fingerprint)
        name = name or meta.name
        with self._lock:
            if name in self._adapters:
                raise AdapterError(f"an adapter named {name!r} is already loaded "
                                   f"(from {self._adapters[name].path}); pass name=... to add it too")
            try:
                self._peft_load(str(meta.path), name)
            except AdapterError:
                raise
            except (RuntimeError, ValueError, KeyError) as e:
                raise AdapterError(
                    f"adapter {meta.path} does not fit base model {self.info.name!r} "
                    f"({self.info.fingerprint}): {str(e).splitlines()[0][:300]}. It was probably "
                    "trained for another base model."
                ) from e
            self._adapters[name] = meta
        logger.info("loaded adapter %s from %s", name, meta.path)
        return name

    def _peft_load(self, path: str, name: str) -> None:
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            self.model.load_adapter(path, adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name)
        self.model.eval()

    def unload_adapter(self, name: str) -> None:
        with self._lock:
            if name not in self._adapters and name not in self._composed:
                raise AdapterError(f"no adapter named {name!r} is loaded")
            self.model.delete_adapter(name)
            self._adapters.pop(name, None)
            self._composed.pop(name, None)
            if self._fast is not None:
                self._fast.forget(name)

    def persona(self, mbti: str | MBTIType | None, mode: AdapterMode = "auto",
                adapter: str | None = None) -> PersonaAdapter:
        """Resolve which adapter serves a persona; composes pole adapters when needed.

        ``mode``: "type" uses a whole-type adapter, "dimensions" composes the four pole
        adapters (weighted by intensity), "auto" prefers a type adapter and falls back to
        dimensions, then to no adapter; "none" runs the bare base model. ``adapter`` names a
        loaded adapter explicitly and wins over everything.
        """
        if adapter is not None:
            if adapter not in self._adapters and adapter not in self._composed:
                raise AdapterError(f"no adapter named {adapter!r} is loaded; loaded: "
                                   f"{sorted(self._adapters) or 'none'}")
            return PersonaAdapter(adapter, "custom")
        if mbti is None or mode == "none":
            return PersonaAdapter(None, "none")
        t = MBTIType.parse(mbti)
        type_name = f"type:{t.letters}"
        if mode in ("auto", "type") and type_name in self._adapters and t.is_full:
            return PersonaAdapter(type_name, "type-adapter")
        if mode == "type":
            raise AdapterError(
                f"no whole-type adapter for {t.letters} is loaded (and intensities need pole "
                "adapters): train one with `mbti-persona train --recipe type`, load it with "
                "adapter_dirs=..., or use mode='dimensions'"
            )
        weights = t.pole_weights()
        missing = sorted(p for p in weights if f"pole:{p}" not in self._adapters)
        if missing:
            if mode == "dimensions":
                raise AdapterError(
                    f"{t} needs the pole adapters {', '.join(missing)}, which are not loaded: "
                    "train them with `mbti-persona train --recipe dimension` and pass "
                    "adapter_dirs=..."
                )
            if t.letters not in self._warned:
                self._warned.add(t.letters)
                logger.warning("no adapters for poles %s: %s runs as a prompt-only persona "
                               "(train them: mbti-persona train --recipe dimension)",
                               ", ".join(missing), t)
            return PersonaAdapter(None, "none")
        return PersonaAdapter(self._compose(t), "dimensions", tuple(sorted(weights.items())))

    def _compose(self, t: MBTIType) -> str:
        name = f"mix:{t.key()}".replace(".", "_")  # torch module names cannot hold dots
        with self._lock:
            if name not in self._composed:
                weights = t.pole_weights()
                names = [f"pole:{p}" for p in weights]
                self.model.add_weighted_adapter(
                    adapters=names, weights=[weights[p] for p in weights],
                    adapter_name=name, combination_type="cat")
                self.model.eval()
                self._evict_composed()
            self._composed[name] = time.monotonic()
        return name

    def _evict_composed(self) -> None:
        while len(self._composed) >= self.max_composed:
            oldest = min(self._composed, key=self._composed.__getitem__)
            self.model.delete_adapter(oldest)
            del self._composed[oldest]
            if self._fast is not None:
                self._fast.forget(oldest)

    # -- prompts -------------------------------------------------------------------------
    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                 tokenize=True, return_dict=True)
        return list(enc["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    # -- generation ----------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Run requests to completion in the calling thread, in batches of max_batch_size."""
        results: list[GenerationResult] = []
        for i in range(0, len(requests), self.max_batch_size):
            results.extend(self._run_batch(list(requests[i:i + self.max_batch_size])))
        return results

    def _run_batch(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        from peft import PeftModel

        prompts = [self.encode_chat(r.messages) for r in requests]
        with self._lock:
            for r in requests:
                if r.adapter is not None and r.adapter not in self._adapters \
                        and r.adapter not in self._composed:
                    raise AdapterError(f"no adapter named {r.adapter!r} is loaded")
                if r.adapter in self._composed:
                    self._composed[r.adapter] = time.monotonic()
            peft = isinstance(self.model, PeftModel)
            names = [r.adapter or BASE for r in requests] if peft else None
            fast = self._fast_decoder()
            if fast is not None and not fast.supports([r.adapter for r in requests]):
                fast = None  # e.g. a DoRA adapter: the PEFT path serves it
            t0 = time.perf_counter()
            if fast is not None:
                results = fast.decode(requests, prompts=prompts, eos_ids=self._eos_ids)
            else:
                results = decode_batch(self.model, self.tokenizer, requests, adapter_names=names,
                                       device=self.model.device, eos_ids=self._eos_ids,
                                       prompts=prompts)
            self.call_log.append(BatchRecord(time.time(), time.perf_counter() - t0,
                                             tuple(r.adapter for r in requests),
                                             sum(x.output_tokens for x in results)))
        return results

    # -- the shared worker: concurrent callers are batched together --------------------------
    def submit(self, request: GenerationRequest) -> "Future[GenerationResult]":
        """Queue a request for the worker thread; concurrent submissions share a batch."""
        if self._closed:
            raise RuntimeError("the engine is closed")
        fut: Future[GenerationResult] = Future()
        self._ensure_worker()
        self._queue.put((request, fut))
        return fut

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._serve, name="mbti-engine",
                                                daemon=True)
                self._worker.start()

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            deadline = time.monotonic() + self.batch_window
            while len(batch) < self.max_batch_size:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            live = [(r, f) for r, f in batch if f.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                results = self._run_batch([r for r, _ in live])
            except BaseException as e:  # hand the error to every waiting caller
                for _, f in live:
                    f.set_exception(e)
                continue
            for (_, f), res in zip(live, results):
                f.set_result(res)

    def complete(self, request: GenerationRequest) -> GenerationResult:
        """Generate one answer through the shared worker (blocking)."""
        return self.submit(request).result()

    async def acomplete(self, request: GenerationRequest) -> GenerationResult:
        return await asyncio.wrap_future(self.submit(request))

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield text pieces as they are generated; the last item is the GenerationResult."""
        q: "queue.Queue[Any]" = queue.Queue()
        user_cb = request.on_text

        def on_text(piece: str) -> None:
            if user_cb:
                user_cb(piece)
            q.put(piece)

        request.on_text = on_text
        fut = self.submit(request)
        fut.add_done_callback(lambda f: q.put(_DONE))
        while True:
            item = q.get()
            if item is _DONE:
                break
            yield item
        yield fut.result()

    async def astream(self, request: GenerationRequest) -> AsyncIterator[Any]:
        """Async version of :meth:`stream`."""
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[Any] = asyncio.Queue()
        user_cb = request.on_text

        def on_text(piece: str) -> None:
            if user_cb:
                user_cb(piece)
            loop.call_soon_threadsafe(q.put_nowait, piece)

        request.on_text = on_text
        fut = self.submit(request)
        fut.add_done_callback(lambda f: loop.call_soon_threadsafe(q.put_nowait, _DONE))
        while True:
            item = await q.get()
            if item is _DONE:
                break
            yield item
        yield fut.result()

    # -- scoring (for questionnaires and ability tests) --------------------------------------
    def score_continuations(self, messages: list[dict[str, str]], options: Sequence[str],
                            adapter: str | None = None) -> list[float]:
        """Sum of log-probabilities of each option as the assistant's answer to ``messages``."""
        import torch
        from peft import PeftModel

        prompt = self.encode_chat(messages)
        seqs = [prompt + self.tokenizer.encode(o, add_special_tokens=False) for o in options]
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            attn[i, :len(s)] = 1
        with self._lock, torch.inference_mode():
            extra = ({"adapter_names": [adapter or BASE] * len(seqs)}
                     if isinstance(self.model, PeftModel) else {})
            logits = self.model(input_ids=ids.to(self.model.device),
                                attention_mask=attn.to(self.model.device), **extra).logits
            logp = torch.log_softmax(logits.float(), -1).cpu()
        out = []
        for i, s in enumerate(seqs):
            tgt = torch.tensor(s[len(prompt):])
            pos = torch.arange(len(prompt) - 1, len(s) - 1)
            out.append(float(logp[i, pos, tgt].sum()))
        return out

    def close(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=5)

    def __repr__(self) -> str:
        return (f"PersonaEngine(model={self.info.name!r}, device={self.info.device!r}, "
                f"adapters={sorted(self._adapters)})")


_DONE = object()
_engines: dict[tuple, PersonaEngine] = {}
_engines_lock = threading.Lock()


def get_engine(model: str | None = None, *, device: str | None = None, dtype: Any = None,
               adapter_dirs: Sequence[str | Path] = (),
               fast_decode: bool | Literal["auto"] = "auto") -> PersonaEngine:
    """The process-wide shared engine for a base model (created on first use)."""
    key = (model or "embedded", device or "auto", str(dtype), tuple(str(d) for d in adapter_dirs),
           fast_decode)
    with _engines_lock:
        eng = _engines.get(key)
        if eng is None:
            eng = _engines[key] = PersonaEngine(model, device=device, dtype=dtype,
                                                adapter_dirs=adapter_dirs,
                                                fast_decode=fast_decode)
        return eng
