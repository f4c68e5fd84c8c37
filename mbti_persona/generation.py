"""Requests, results and the batched decoding loop (per-row adapters, sampling and stops)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

__all__ = ["GenerationRequest", "GenerationResult", "decode_batch", "DEFAULTS"]

#: Generation defaults that keep the 135M model from looping.
DEFAULTS = {
    "max_new_tokens": 256,
    "temperature": 0.7,
    "top_p": 0.9,
    "top_k": 50,
    "repetition_penalty": 1.15,
}


@dataclass
class GenerationRequest:
    """One row of a batch: a chat (list of {"role", "content"} dicts) and how to continue it."""

    messages: list[dict[str, str]]
    adapter: str | None = None  # engine adapter name; None = the bare base model
    max_new_tokens: int = DEFAULTS["max_new_tokens"]
    temperature: float = DEFAULTS["temperature"]
    top_p: float = DEFAULTS["top_p"]
    top_k: int | None = DEFAULTS["top_k"]
    repetition_penalty: float = DEFAULTS["repetition_penalty"]
    stop: Sequence[str] = ()
    seed: int | None = None
    ignore_eos: bool = False  # keep going past end-of-turn (benchmarks: fixed lengths)
    on_text: Callable[[str], None] | None = None  # called with each new piece of text
    tag: Any = None  # caller's own label, echoed in the result

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if not self.messages:
            raise ValueError("a request needs at least one message")


@dataclass
class GenerationResult:
    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str  # "stop" (end of turn or stop sequence) or "length"
    adapter: str | None
    tag: Any = None
    token_ids: list[int] = field(default_factory=list)


class _Row:
    """Decoding state of one row: its tokens, stop handling and streamed text."""

    def __init__(self, req: GenerationRequest, tokenizer: Any, prompt_len: int, generator: Any):
        self.req = req
        self.tok = tokenizer
        self.prompt_len = prompt_len
        self.generator = generator
        self.ids: list[int] = []
        self.text = ""
        self.emitted = 0
        self.done = False
        self.finish_reason = "length"

    def push(self, token_id: int, eos_ids: set[int]) -> None:
        if token_id in eos_ids and not self.req.ignore_eos:
            self.done, self.finish_reason = True, "stop"
            self._emit(len(self.text))
            return
        self.ids.append(token_id)
        self.text = self.tok.decode(self.ids, skip_special_tokens=True)
        cut = _first_stop(self.text, self.req.stop)
        if cut is not None:
            self.text = self.text[:cut]
            self.done, self.finish_reason = True, "stop"
            self._emit(len(self.text))
            return
        if len(self.ids) >= self.req.max_new_tokens:
            self.done, self.finish_reason = True, "length"
            self._emit(len(self.text))
            return
        # Hold back a possible stop-sequence prefix and an unfinished UTF-8 character.
        safe = len(self.text) - _partial_stop(self.text, self.req.stop)
        while safe > self.emitted and self.text[safe - 1] == "\ufffd":
            safe -= 1
        self._emit(safe)

    def _emit(self, upto: int) -> None:
        if upto > self.emitted:
            piece = self.text[self.emitted:upto]
            self.emitted = upto
            if self.req.on_text is not None:
                self.req.on_text(piece)

    def result(self) -> GenerationResult:
        return GenerationResult(self.text, self.prompt_len, len(self.ids), self.finish_reason,
                                self.req.adapter, self.req.tag, list(self.ids))


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(hits) if hits else None


def _partial_stop(text: str, stops: Sequence[str]) -> int:
    """Length of the longest suffix of text that is a proper prefix of a stop sequence."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


def _sample(logits: Any, rows: list[_Row], seen: Any) -> list[int]:
    """Pick one token per row with that row's own penalty, temperature, top-k and top-p."""
    import torch

    logits = logits.float()
    # Repetition penalty (CTRL / HF style) over prompt + generated tokens, per row.
    penalties = torch.tensor([r.req.repetition_penalty for r in rows], device=logits.device)
    if bool((penalties != 1.0).any()):
        scores = torch.gather(logits, 1, seen)
        p = penalties[:, None]
        scores = torch.where(scores < 0, scores * p, scores / p)
        logits = logits.scatter(1, seen, scores)
    out: list[int] = []
    for i, r in enumerate(rows):
        if r.done:
            out.append(0)
            continue
        row = logits[i]
        if r.req.temperature == 0:
            out.append(int(torch.argmax(row)))
            continue
        row = row / r.req.temperature
        if r.req.top_k:
            kth = torch.topk(row, min(r.req.top_k, row.numel())).values[-1]
            row = row.masked_fill(row < kth, float("-inf"))
        if r.req.top_p < 1.0:
            sorted_logits, idx = torch.sort(row, descending=True)
            cum = torch.softmax(sorted_logits, -1).cumsum(-1)
            remove = cum - torch.softmax(sorted_logits, -1) > r.req.top_p
            row = row.scatter(0, idx, sorted_logits.masked_fill(remove, float("-inf")))
        probs = torch.softmax(row, -1)
        out.append(int(torch.multinomial(probs, 1, generator=r.generator)))
    return out


def _base_forward(model: Any) -> Any:
    get = getattr(model, "get_base_model", None)
    return (get() if get else model).forward


def _accepts(model: Any, name: str) -> bool:
    import inspect

    return name in inspect.signature(_base_forward(model)).parameters


def _cache_kwarg(model: Any) -> str:
    """transformers >= 5.2x names the KV cache argument ``cache``; earlier ``past_key_values``."""
    return "cache" if _accepts(model, "cache") else "past_key_values"


def decode_batch(
    model: Any,
    tokenizer: Any,
    requests: Sequence[GenerationRequest],
    *,
    adapter_names: list[str] | None,
    device: Any,
    eos_ids: set[int],
    prompts: Sequence[list[int]],
) -> list[GenerationResult]:
    """Generate for all rows at once: one forward pass per step for the whole batch.

    ``adapter_names`` (one per row, "__base__" for none) is passed to PEFT for mixed-adapter
    batches; None when the model carries no adapters.
    """
    import torch
    from transformers import DynamicCache

    n = len(requests)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
    width = max(len(p) for p in prompts)
    input_ids = torch.full((n, width), pad, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    for i, p in enumerate(prompts):
        input_ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        attn[i, width - len(p):] = 1
    input_ids, attn = input_ids.to(device), attn.to(device)
    rows = []
    for req, p in zip(requests, prompts):
        g = torch.Generator(device="cpu" if device.type == "mps" else device)
        g.manual_seed(req.seed if req.seed is not None else random.getrandbits(63))
        rows.append(_Row(req, tokenizer, len(p), g))
    seen = input_ids.clone()  # pad tokens also get penalised; harmless (pad = end of turn)
    extra = {"adapter_names": adapter_names} if adapter_names is not None else {}
    cache = DynamicCache()
    extra[_cache_kwarg(model)] = cache
    if _accepts(model, "logits_to_keep"):
        extra["logits_to_keep"] = 1
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = model(input_ids=input_ids, attention_mask=attn, position_ids=position_ids,
                    use_cache=True, **extra)
        max_steps = max(r.req.max_new_tokens for r in rows)
        for _ in range(max_steps + 1):
            next_ids = _sample(out.logits[:, -1, :], rows, seen)
            for r, t in zip(rows, next_ids):
                if not r.done:
                    r.push(t, eos_ids)
            if all(r.done for r in rows):
                break
            step = torch.tensor(next_ids, dtype=torch.long, device=device)[:, None]
            seen = torch.cat([seen, step], 1)
            attn = torch.cat([attn, torch.ones((n, 1), dtype=attn.dtype, device=device)], 1)
            position_ids = position_ids[:, -1:] + 1
            out = model(input_ids=step, attention_mask=attn, position_ids=position_ids,
                        use_cache=True, **extra)
    return [r.result() for r in rows]
