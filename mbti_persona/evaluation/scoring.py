"""Log-probability scoring of answer options, batched, with the chat prefix's KV cache reused.

:meth:`PersonaEngine.score_continuations` runs one full forward pass per option. Evaluations
score thousands of short questions under the same system prompt, so :class:`LogProbScorer`
computes the same numbers with far fewer tokens and forward passes:

* the system part of a chat (the tokens it shares with the same chat ending in an empty user
  turn) runs once per (adapter, prefix) and is kept in a small LRU cache of KV states;
* the rest of the prompts of up to ``batch_size`` questions that share that prefix run as one
  left-padded batch (only the last position's logits are computed);
* the option tokens then run as one batch on top of those states; single-token options (answer
  letters) cost nothing extra.

Engines without the internals it needs (``model``, ``tokenizer``, ``encode_chat``) get the
plain ``engine.score_continuations`` path (``fast=False`` forces it). Both return summed
log-probabilities; ``tests/test_evaluation.py`` checks that they agree.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["LogProbScorer", "OptionScore", "ScoreRequest", "two_way_probability", "softmax"]

BASE = "__base__"  # the engine's name for "no adapter" in mixed-adapter batches


@dataclass(frozen=True)
class OptionScore:
    """Summed log-probability of one option and its length in tokens."""

    logprob: float
    tokens: int

    @property
    def mean(self) -> float:
        """Length-normalised log-probability (per token)."""
        return self.logprob / max(1, self.tokens)


@dataclass(frozen=True)
class ScoreRequest:
    """Options to score as the assistant's answer to ``messages``."""

    messages: list[dict[str, str]]
    options: tuple[str, ...]


def softmax(values: Sequence[float]) -> list[float]:
    m = max(values)
    ex = [math.exp(v - m) for v in values]
    s = sum(ex)
    return [e / s for e in ex]


def two_way_probability(a: float, b: float) -> float:
    """P(a) under a softmax over the two scores a and b."""
    return softmax([a, b])[0]


class LogProbScorer:
    """Scores options as the assistant's answer to a chat, under one adapter at a time.

    >>> scorer = LogProbScorer(engine)                                     # doctest: +SKIP
    >>> scorer.score([{"role": "user", "content": "2+2?"}], ["4", "5"])     # doctest: +SKIP
    [OptionScore(logprob=-0.9, tokens=1), OptionScore(logprob=-4.2, tokens=1)]
    """

    def __init__(self, engine: Any, *, fast: bool = True, batch_size: int = 16,
                 max_cached: int = 8) -> None:
        self.engine = engine
        self.batch_size = max(1, int(batch_size))
        self.max_cached = max_cached
        self._cache: "OrderedDict[tuple, Any]" = OrderedDict()
        self.fast = fast and all(hasattr(engine, a) for a in ("model", "tokenizer", "encode_chat"))
        self.tokens_run = 0  # tokens put through the model by the fast path
        self.forward_passes = 0

    # -- public ------------------------------------------------------------------------------
    def option_ids(self, option: str) -> list[int]:
        ids = list(self.engine.tokenizer.encode(option, add_special_tokens=False))
        if not ids:
            raise ValueError(f"option {option!r} has no tokens: options must be non-empty text")
        return ids

    def score(self, messages: list[dict[str, str]], options: Sequence[str],
              adapter: str | None = None) -> list[OptionScore]:
        """Summed log-probability (and token count) of each option after ``messages``."""
        return self.score_batch([ScoreRequest(list(messages), tuple(options))], adapter)[0]

    def score_batch(self, requests: Sequence[ScoreRequest], adapter: str | None = None
                    ) -> list[list[OptionScore]]:
        """:meth:`score` for many requests under one adapter (batched where prefixes match)."""
        ids = [[self.option_ids(o) for o in r.options] for r in requests]
        if not self.fast:
            out = []
            for r, oids in zip(requests, ids):
                lps = self.engine.score_continuations(r.messages, list(r.options),
                                                      adapter=adapter)
                out.append([OptionScore(float(lp), len(t)) for lp, t in zip(lps, oids)])
            return out
        results: list[list[OptionScore] | None] = [None] * len(requests)
        groups: "OrderedDict[tuple, list[tuple[int, list[int]]]]" = OrderedDict()
        for i, r in enumerate(requests):
            if not r.options:
                results[i] = []
                continue
            prompt = self.engine.encode_chat(r.messages)
            n = self._prefix_len(r.messages, prompt)
            groups.setdefault(tuple(prompt[:n]), []).append((i, prompt[n:]))
        for prefix, members in groups.items():
            members.sort(key=lambda m: len(m[1]))  # similar lengths share a batch
            for k in range(0, len(members), self.batch_size):
                chunk = members[k:k + self.batch_size]
                scores = self._run(list(prefix), [rest for _, rest in chunk],
                                   [ids[i] for i, _ in chunk], adapter)
                for (i, _), s in zip(chunk, scores):
                    results[i] = s
        return results  # type: ignore[return-value]

    def clear(self) -> None:
        self._cache.clear()

    # -- fast path ---------------------------------------------------------------------------
    def _lock(self):
        return getattr(self.engine, "_lock", None) or nullcontext()

    def _extra(self, rows: int, adapter: str | None) -> dict[str, Any]:
        from peft import PeftModel

        if isinstance(self.engine.model, PeftModel):
            return {"adapter_names": [adapter or BASE] * rows}
        if adapter is not None:
            raise ValueError(f"adapter {adapter!r} requested but the model carries no adapters")
        return {}

    def _model_kwargs(self) -> tuple[str, bool]:
        import inspect

        model = self.engine.model
        get = getattr(model, "get_base_model", None)
        params = inspect.signature((get() if get else model).forward).parameters
        return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params

    def _forward(self, cache: Any, adapter: str | None, **kw: Any) -> Any:
        name, _ = self._model_kwargs()
        dev = self.engine.model.device
        kw = {k: (v.to(dev) if hasattr(v, "to") else v) for k, v in kw.items()}
        out = self.engine.model(**kw, **{name: cache, "use_cache": True},
                                **self._extra(kw["input_ids"].shape[0], adapter))
        self.tokens_run += int(kw["input_ids"].numel())
        self.forward_passes += 1
        return out

    def _prefix_len(self, messages: list[dict[str, str]], prompt: list[int]) -> int:
        """Length of the part of ``prompt`` before the last user message's text."""
        if not messages or messages[-1].get("role") != "user":
            return 0
        alt = self.engine.encode_chat(list(messages[:-1]) + [{"role": "user", "content": ""}])
        n = 0
        for a, b in zip(prompt, alt):
            if a != b:
                break
            n += 1
        return min(n, len(prompt) - 1)

    def _prefix_cache(self, prefix: list[int], adapter: str | None) -> Any:
        import torch
        from transformers import DynamicCache

        key = (adapter or BASE, tuple(prefix))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        cache = DynamicCache()
        if prefix:
            kw = {"logits_to_keep": 1} if self._model_kwargs()[1] else {}
            self._forward(cache, adapter, input_ids=torch.tensor([prefix], dtype=torch.long), **kw)
        self._cache[key] = cache
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return cache

    def _run(self, prefix: list[int], rests: list[list[int]], option_ids: list[list[list[int]]],
             adapter: str | None) -> list[list[OptionScore]]:
        import torch

        b, p = len(rests), len(prefix)
        width = max(len(r) for r in rests)
        pad = self.engine.tokenizer.pad_token_id or 0
        ids = torch.full((b, width), pad, dtype=torch.long)
        mask = torch.zeros((b, width), dtype=torch.long)
        for i, r in enumerate(rests):  # left padding: every prompt ends at the same column
            ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = 1
        full_mask = torch.cat([torch.ones((b, p), dtype=torch.long), mask], 1)
        pos = (p + mask.cumsum(-1) - 1).clamp(min=max(p - 1, 0))
        keep = {"logits_to_keep": 1} if self._model_kwargs()[1] else {}
        with self._lock(), torch.inference_mode():
            cache = copy.deepcopy(self._prefix_cache(prefix, adapter))
            if b > 1:
                cache.batch_repeat_interleave(b)
            out = self._forward(cache, adapter, input_ids=ids, attention_mask=full_mask,
                                position_ids=pos, **keep)
            first = torch.log_softmax(out.logits[:, -1].float(), -1).cpu()
            totals = [[float(first[i, t[0]]) for t in opts] for i, opts in enumerate(option_ids)]
            # option tokens after the first: one row per (prompt, multi-token option)
            rows = [(i, j) for i, opts in enumerate(option_ids)
                    for j, t in enumerate(opts) if len(t) > 1]
            if rows:
                owidth = max(len(option_ids[i][j]) - 1 for i, j in rows)
                oids = torch.full((len(rows), owidth), pad, dtype=torch.long)
                for r, (i, j) in enumerate(rows):
                    t = option_ids[i][j][:-1]
                    oids[r, :len(t)] = torch.tensor(t, dtype=torch.long)
                sel = torch.tensor([i for i, _ in rows], dtype=torch.long)
                cache.batch_select_indices(sel)  # repeats rows as needed
                omask = torch.cat([full_mask[sel], torch.ones((len(rows), owidth),
                                                              dtype=torch.long)], 1)
                opos = pos[sel, -1:] + 1 + torch.arange(owidth)[None, :]
                out = self._forward(cache, adapter, input_ids=oids, attention_mask=omask,
                                    position_ids=opos)
                logp = torch.log_softmax(out.logits.float(), -1).cpu()
                for r, (i, j) in enumerate(rows):
                    tgt = torch.tensor(option_ids[i][j][1:], dtype=torch.long)
                    totals[i][j] += float(logp[r, torch.arange(len(tgt)), tgt].sum())
        return [[OptionScore(lp, len(t)) for lp, t in zip(tot, opts)]
                for tot, opts in zip(totals, option_ids)]
