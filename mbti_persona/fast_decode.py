"""A fast decoder for batched mixed-persona generation on Llama-architecture models.

The engine's default path (``generation.decode_batch`` on a PEFT ``PeftModel`` with
``adapter_names=``) is correct but slow on a GPU: the Hugging Face forward launches thousands of
small kernels per token from Python, and PEFT serves a mixed-adapter batch with a Python loop over
the adapters in every LoRA layer. :class:`FastDecoder` runs the same model differently:

* its own forward (embedding, RMSNorm, rotary embedding from the model's own rotary module, GQA
  attention with ``F.scaled_dot_product_attention``, SiLU MLP, tied ``lm_head``) reading the
  base weights in place from the engine's model (nothing is copied);
* a static KV cache preallocated for [batch capacity, length capacity]; left padding is handled
  by per-row start positions turned into attention masks;
* LoRA for a mixed batch without any Python loop over adapters (the punica / S-LoRA idea): every
  adapter's A and B matrices are stacked per target module (ranks padded with zeros to the largest
  rank, slot 0 = no adapter, LoRA scaling folded into B). At the start of a batch the rows'
  adapters are gathered by an index tensor into per-row buffers, and each step applies them with
  ``torch.bmm``; q/k/v share one A product, and so do gate/up;
* on CUDA the one-token decode step is captured in a CUDA graph per (batch bucket, length bucket)
  and replayed; prefill runs eagerly; on the CPU everything runs eagerly;
* sampling is vectorised over the batch (same repetition penalty, temperature, top-k and top-p as
  ``generation._sample``, each row seeded by its own generator) and runs on the device, and the
  host handles stops and streaming (``generation._Row``) while the GPU computes the next step.

Greedy rows give the same tokens as the PEFT path (up to floating-point rounding); sampled rows
draw from the same distribution, but a given seed does not draw the same tokens on both paths.

Adapters are read from the PEFT modules (``lora_A``/``lora_B``/``scaling``), so pole adapters,
whole-type adapters and types composed with ``add_weighted_adapter(..., combination_type="cat")``
all work. Slots are filled lazily, the first time a batch uses an adapter; an adapter that was
deleted or re-created under the same name is noticed (weak references to its PEFT modules) and
reloaded, so a row can never run another row's adapter.
"""

from __future__ import annotations

import logging
import random
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .generation import GenerationRequest, GenerationResult, _Row

logger = logging.getLogger(__name__)

__all__ = ["BATCH_BUCKETS", "FastDecodeUnsupported", "FastDecoder", "unsupported_reason"]

BASE = "__base__"
#: Batch sizes the decode step is captured for; a batch runs in the smallest bucket that fits.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# LoRA groups sharing one input (one A product per group).
_GROUPS = (("qkv", ("q_proj", "k_proj", "v_proj")), ("o", ("o_proj",)),
           ("gu", ("gate_proj", "up_proj")), ("down", ("down_proj",)))
_SUPPORTED_TYPES = ("llama", "mistral", "qwen2")


class FastDecodeUnsupported(ValueError):
    """The model or an adapter is outside what the fast decoder implements."""


def _causal_lm(model: Any) -> Any:
    get = getattr(model, "get_base_model", None)
    return get() if get is not None else model


def _base_linear(mod: Any) -> tuple[Any, Any]:
    base = getattr(mod, "base_layer", mod)
    return base.weight, getattr(base, "bias", None)


def unsupported_reason(model: Any) -> str | None:
    """None when :class:`FastDecoder` can run ``model`` (a causal LM or a PeftModel on one)."""
    try:
        lm = _causal_lm(model)
        cfg = lm.config
    except AttributeError:
        return "not a transformers causal LM"
    mt = getattr(cfg, "model_type", None)
    if mt not in _SUPPORTED_TYPES:
        return f"model type {mt!r} (the fast decoder implements {', '.join(_SUPPORTED_TYPES)})"
    if getattr(cfg, "hidden_act", "silu") not in ("silu", "swish"):
        return f"activation {cfg.hidden_act!r} (only SiLU)"
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    if isinstance(rope, dict) and rope.get("rope_type", rope.get("type")) in ("dynamic", "longrope"):
        return "length-dependent rotary scaling"
    if getattr(cfg, "use_sliding_window", False) or (mt == "mistral"
                                                      and getattr(cfg, "sliding_window", None)):
        return "sliding-window attention"
    inner = getattr(lm, "model", None)
    for attr in ("embed_tokens", "layers", "norm", "rotary_emb"):
        if not hasattr(inner, attr):
            return f"no model.{attr}"
    if not hasattr(lm, "lm_head"):
        return "no lm_head"
    layer = inner.layers[0]
    attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
    if attn is None or mlp is None or any(
            not hasattr(attn if t.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else mlp, t)
            for t in _TARGETS):
        return "unexpected layer layout"
    if hasattr(attn, "q_norm") or hasattr(attn, "k_norm"):
        return "q/k norms"
    return None


def _next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


@dataclass
class _Workspace:
    """Static buffers for up to ``bcap`` rows and ``lcap`` positions (shared by all buckets)."""

    bcap: int
    lcap: int
    k: Any  # [layers, bcap, kv_heads, lcap, head_dim]
    v: Any
    rows_a: dict  # group -> [layers, bcap, in, parts * rank]
    rows_b: dict  # target -> [layers, bcap, rank, out]
    tok: Any  # [bcap] long: the step's input token per row
    pos: Any  # [bcap] long: its position id
    start: Any  # [bcap] long: first valid cache position (left padding)
    cur: Any  # [1] long: the cache position written by the step
    idx: Any  # [bcap] long: adapter slot per row
    present: Any  # [bcap, vocab] bool: tokens seen (repetition penalty)
    cos: Any  # [lcap, head_dim]
    sin: Any
    graphs: dict = field(default_factory=dict)  # (bucket, length) -> (CUDAGraph, logits)
    gathered: tuple | None = None  # (slots, version) of the per-row adapter buffers


class FastDecoder:
    """Batched mixed-adapter decoding with stacked LoRA, a static KV cache and CUDA graphs.

    ``model``: the engine's model (a PeftModel or a bare causal LM; Llama, Mistral without sliding
    window, Qwen2). ``cuda_graphs``: None = on for CUDA devices. ``min_length``: the smallest
    length bucket of the KV cache (lengths are rounded up to powers of two).
    """

    def __init__(self, model: Any, tokenizer: Any, *, cuda_graphs: bool | None = None,
                 batch_buckets: Sequence[int] = BATCH_BUCKETS, min_length: int = 256) -> None:
        self.tokenizer = tokenizer
        self.batch_buckets = tuple(sorted(batch_buckets))
        self.min_length = min_length
        self._want_graphs = cuda_graphs
        self._model: Any = None
        self.trace: list | None = None  # tests: set to a list to collect each step's logits
        self.stats = {"graph_captures": 0, "slot_loads": 0, "stack_reallocs": 0,
                      "workspace_reallocs": 0}
        self.bind(model)

    # -- model -----------------------------------------------------------------------------
    def bind(self, model: Any) -> None:
        """Use ``model`` (the engine calls this before every batch; cheap when unchanged)."""
        if model is self._model:
            return
        reason = unsupported_reason(model)
        if reason:
            raise FastDecodeUnsupported(f"the fast decoder cannot run this model: {reason}")
        lm = _causal_lm(model)
        cfg = lm.config
        inner = lm.model
        self._model = model
        self.config = cfg
        self.embed = inner.embed_tokens.weight
        self.device = self.embed.device
        self.dtype = self.embed.dtype
        self.lm_head = lm.lm_head.weight
        self.norm_w = inner.norm.weight
        self.eps = float(getattr(cfg, "rms_norm_eps", 1e-6))
        self.n_layers = len(inner.layers)
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(getattr(cfg, "num_key_value_heads", None) or self.n_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads)
        self.group = self.n_heads // self.n_kv
        self.hidden = int(cfg.hidden_size)
        self.vocab = int(self.lm_head.shape[0])
        self.rotary = inner.rotary_emb
        self.layers = []
        self.modules: list[dict[str, Any]] = []  # per layer: target -> (PEFT-wrapped) module
        for layer in inner.layers:
            mods = {t: getattr(layer.self_attn, t) for t in ("q_proj", "k_proj", "v_proj", "o_proj")}
            mods.update({t: getattr(layer.mlp, t) for t in ("gate_proj", "up_proj", "down_proj")})
            self.modules.append(mods)
            self.layers.append({
                "ln1": layer.input_layernorm.weight,
                "ln2": layer.post_attention_layernorm.weight,
                **{t: _base_linear(m) for t, m in mods.items()},
            })
        self.scaling = float(getattr(inner.layers[0].self_attn, "scaling", self.head_dim ** -0.5))
        self.in_dim = {g: self.layers[0][ts[0]][0].shape[1] for g, ts in _GROUPS}
        self.out_dim = {t: self.layers[0][t][0].shape[0] for t in _TARGETS}
        self._target_ids = {id(m) for mods in self.modules for m in mods.values()}
        self.cuda_graphs = (self.device.type == "cuda") if self._want_graphs is None \
            else bool(self._want_graphs) and self.device.type == "cuda"
        # adapter slots
        self._slots: dict[str, int] = {}
        self._slot_refs: dict[str, weakref.ref] = {}
        self._checked: dict[str, tuple[Any, str | None]] = {}  # adapter -> (module ref, why)
        self._rank = 0
        self._cap = 0
        self._stack_a: dict[str, Any] = {}
        self._stack_b: dict[str, Any] = {}
        self._version = 0
        self._ws: _Workspace | None = None

    # -- adapters ----------------------------------------------------------------------------
    def _peft_names(self) -> set[str]:
        cfg = getattr(self._model, "peft_config", None)
        return set(cfg) if isinstance(cfg, dict) else set()

    def _first_lora(self, name: str) -> Any:
        for mods in self.modules:
            for m in mods.values():
                la = getattr(m, "lora_A", None)
                if la is not None and name in la:
                    return la[name]
        return None

    def forget(self, name: str) -> None:
        """Drop an adapter's slot (the engine calls this when it deletes or replaces one)."""
        slot = self._slots.pop(name, None)
        self._slot_refs.pop(name, None)
        self._checked.pop(name, None)
        if slot is not None and self._stack_a:
            import torch

            with torch.inference_mode():  # the stacks are inference tensors
                for t in self._stack_a.values():
                    t[:, slot].zero_()
                for t in self._stack_b.values():
                    t[:, slot].zero_()
            self._version += 1

    def check_adapter(self, name: str | None) -> str | None:
        """None when the fast decoder can run this adapter, else why not."""
        if name in (None, BASE):
            return None
        cfg = getattr(self._model, "peft_config", {}).get(name)
        if cfg is None:
            return f"no adapter named {name!r}"
        first = self._first_lora(name)
        cached = self._checked.get(name)
        if cached is not None and cached[0]() is first:
            return cached[1]
        why = None
        if str(getattr(cfg, "peft_type", "LORA")).split(".")[-1].upper() != "LORA":
            why = "not a LoRA adapter"
        elif getattr(cfg, "modules_to_save", None):
            why = "modules_to_save"
        elif getattr(cfg, "use_dora", False):
            why = "DoRA"
        elif getattr(cfg, "lora_bias", False):
            why = "LoRA bias"
        else:
            for mod_name, m in _causal_lm(self._model).named_modules():
                if id(m) in self._target_ids:
                    continue
                for attr in ("lora_A", "lora_embedding_A"):
                    d = getattr(m, attr, None)
                    if d is not None and name in d:
                        why = f"LoRA on {mod_name}"
                        break
                if why:
                    break
        self._checked[name] = (weakref.ref(first) if first is not None else (lambda: None), why)
        return why

    def supports(self, adapters: Sequence[str | None]) -> bool:
        return all(self.check_adapter(a) is None for a in adapters)

    def _sync(self, names: set[str]) -> None:
        """Make sure every adapter in ``names`` has an up-to-date slot; free deleted ones."""
        live = self._peft_names()
        for n in [n for n in self._slots if n not in live]:
            self.forget(n)
        for n in [n for n in self._checked if n not in live]:
            del self._checked[n]
        for n in names:
            ref = self._slot_refs.get(n)
            if n in self._slots and ref is not None and ref() is self._first_lora(n) is not None:
                continue
            if n in self._slots:
                self.forget(n)
            self._load_slot(n)

    def _adapter_rank(self, name: str) -> int:
        r = 0
        for mods in self.modules:
            for m in mods.values():
                la = getattr(m, "lora_A", None)
                if la is not None and name in la:
                    r = max(r, la[name].weight.shape[0])
        return r

    def _load_slot(self, name: str) -> None:
        import torch

        why = self.check_adapter(name)
        if why:
            raise FastDecodeUnsupported(f"adapter {name!r}: {why}")
        rank = self._adapter_rank(name)
        used = set(self._slots.values())
        free = next((s for s in range(1, self._cap) if s not in used), None)
        if rank > self._rank or free is None:
            self._grow(max(self._rank, rank), self._cap if free is not None else
                       max(16, 2 * self._cap, len(self._peft_names()) + 1))
            used = set(self._slots.values())
            free = next(s for s in range(1, self._cap) if s not in used)
        R = self._rank
        with torch.inference_mode():
            for t in self._stack_a.values():
                t[:, free].zero_()
            for t in self._stack_b.values():
                t[:, free].zero_()
            for li, mods in enumerate(self.modules):
                for g, targets in _GROUPS:
                    for j, t in enumerate(targets):
                        m = mods[t]
                        la = getattr(m, "lora_A", None)
                        if la is None or name not in la:
                            continue
                        a = la[name].weight  # [r, in]
                        b = m.lora_B[name].weight  # [out, r]
                        s = float(m.scaling[name])
                        r = a.shape[0]
                        self._stack_a[g][li, free, :, j * R:j * R + r] = a.t().to(self.dtype)
                        self._stack_b[t][li, free, :r, :] = (b.float() * s).t().to(self.dtype)
        self._slots[name] = free
        first = self._first_lora(name)
        self._slot_refs[name] = weakref.ref(first) if first is not None else (lambda: None)
        self._version += 1
        self.stats["slot_loads"] += 1

    def _grow(self, rank: int, cap: int) -> None:
        """(Re)allocate the stacks for ``cap`` slots of rank ``rank``, keeping loaded slots."""
        import torch

        with torch.inference_mode():
            self._grow_stacks(rank, cap)

    def _grow_stacks(self, rank: int, cap: int) -> None:
        import torch

        rank = max(8, -(-rank // 8) * 8)
        old_a, old_b, old_rank = self._stack_a, self._stack_b, self._rank
        L, dev, dt = self.n_layers, self.device, self.dtype
        self._stack_a = {g: torch.zeros(L, cap, self.in_dim[g], len(ts) * rank, device=dev,
                                        dtype=dt) for g, ts in _GROUPS}
        self._stack_b = {t: torch.zeros(L, cap, rank, self.out_dim[t], device=dev, dtype=dt)
                         for t in _TARGETS}
        if old_a:
            n = min(cap, next(iter(old_a.values())).shape[1])
            for g, ts in _GROUPS:
                for j in range(len(ts)):
                    self._stack_a[g][:, :n, :, j * rank:j * rank + old_rank] = \
                        old_a[g][:, :n, :, j * old_rank:(j + 1) * old_rank]
            for t in _TARGETS:
                self._stack_b[t][:, :n, :old_rank] = old_b[t][:, :n]
        self._rank, self._cap = rank, cap
        self._version += 1
        self.stats["stack_reallocs"] += 1
        if self._ws is not None and rank != old_rank:  # per-row buffers (and graphs) hold ranks
            self._ws = None

    def adapter_stack_bytes(self) -> dict[str, int]:
        """Bytes of the stacked LoRA weights: per slot and in all (and the per-row buffers)."""
        total = sum(t.numel() * t.element_size() for t in
                    list(self._stack_a.values()) + list(self._stack_b.values()))
        per_slot = total // self._cap if self._cap else 0
        rows = 0
        if self._ws is not None:
            rows = sum(t.numel() * t.element_size() for t in
                       list(self._ws.rows_a.values()) + list(self._ws.rows_b.values()))
        return {"slots": self._cap, "rank": self._rank, "bytes_per_slot": per_slot,
                "stack_bytes": total, "row_buffer_bytes": rows}

    # -- workspace -----------------------------------------------------------------------------
    def _workspace(self, bb: int, lb: int) -> _Workspace:
        import torch

        ws = self._ws
        if ws is not None and ws.bcap >= bb and ws.lcap >= lb:
            return ws
        if self._rank == 0:
            self._grow(8, max(16, len(self._peft_names()) + 1))
        bcap = max(bb, ws.bcap if ws else 0)
        lcap = max(lb, ws.lcap if ws else 0)
        self._ws = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        L, dev, dt, R = self.n_layers, self.device, self.dtype, self._rank
        pos = torch.arange(lcap, device=dev)[None]
        probe = torch.zeros(1, device=dev, dtype=torch.float32)
        cos, sin = self.rotary(probe, pos)
        self._ws = ws = _Workspace(
            bcap=bcap, lcap=lcap,
            k=torch.zeros(L, bcap, self.n_kv, lcap, self.head_dim, device=dev, dtype=dt),
            v=torch.zeros(L, bcap, self.n_kv, lcap, self.head_dim, device=dev, dtype=dt),
            rows_a={g: torch.zeros(L, bcap, self.in_dim[g], len(ts) * R, device=dev, dtype=dt)
                    for g, ts in _GROUPS},
            rows_b={t: torch.zeros(L, bcap, R, self.out_dim[t], device=dev, dtype=dt)
                    for t in _TARGETS},
            tok=torch.zeros(bcap, dtype=torch.long, device=dev),
            pos=torch.zeros(bcap, dtype=torch.long, device=dev),
            start=torch.zeros(bcap, dtype=torch.long, device=dev),
            cur=torch.zeros(1, dtype=torch.long, device=dev),
            idx=torch.zeros(bcap, dtype=torch.long, device=dev),
            present=torch.zeros(bcap, self.vocab, dtype=torch.bool, device=dev),
            cos=cos[0].to(dt), sin=sin[0].to(dt),
        )
        self.stats["workspace_reallocs"] += 1
        return ws

    def _bucket(self, n: int) -> int:
        for b in self.batch_buckets:
            if b >= n:
                return b
        return _next_pow2(n)

    # -- the forward -------------------------------------------------------------------------
    def _rms(self, x: Any, w: Any) -> Any:
        import torch

        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return w * xf.to(x.dtype)

    @staticmethod
    def _rope(x: Any, cos: Any, sin: Any) -> Any:
        import torch

        half = x.shape[-1] // 2
        rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rot * sin

    def _group(self, x: Any, li: int, g: str, targets: tuple[str, ...], rows: slice) -> list[Any]:
        """Base projections of a LoRA group plus each row's own adapter (bmm on per-row A, B)."""
        import torch
        import torch.nn.functional as F

        ws, R, lay = self._ws, self._rank, self.layers[li]
        xa = torch.bmm(x, ws.rows_a[g][li, rows])  # [B, s, parts * R]
        outs = []
        for j, t in enumerate(targets):
            w, b = lay[t]
            base = F.linear(x, w, b)
            part = xa if len(targets) == 1 else xa[..., j * R:(j + 1) * R]
            outs.append(torch.baddbmm(base, part, ws.rows_b[t][li, rows]))
        return outs

    def _mlp(self, h: Any, li: int, rows: slice) -> Any:
        import torch.nn.functional as F

        x = self._rms(h, self.layers[li]["ln2"])
        gate, up = self._group(x, li, "gu", ("gate_proj", "up_proj"), rows)
        (down,) = self._group(F.silu(gate) * up, li, "down", ("down_proj",), rows)
        return h + down

    def _decode_body(self, bb: int, lb: int) -> Any:
        """One token for rows [:bb]: reads tok/pos/cur/start, writes the cache, returns logits."""
        import torch
        import torch.nn.functional as F

        ws = self._ws
        rows = slice(0, bb)
        nh, nkv, hd = self.n_heads, self.n_kv, self.head_dim
        pos = ws.pos[:bb]
        h = F.embedding(ws.tok[:bb], self.embed)[:, None, :]  # [B, 1, H]
        cos, sin = ws.cos[pos][:, None, :], ws.sin[pos][:, None, :]  # [B, 1, hd]
        ar = torch.arange(lb, device=self.device)[None, :]
        mask = ((ar >= ws.start[:bb, None]) & (ar <= ws.cur)) | (ar == ws.cur)
        mask = mask[:, None, None, :]  # [B, 1, 1, L]
        for li in range(self.n_layers):
            lay = self.layers[li]
            x = self._rms(h, lay["ln1"])
            q, k, v = self._group(x, li, "qkv", ("q_proj", "k_proj", "v_proj"), rows)
            q = self._rope(q.view(bb, nh, hd), cos, sin)
            k = self._rope(k.view(bb, nkv, hd), cos, sin)
            kc, vc = ws.k[li, rows], ws.v[li, rows]  # [B, kv, Lcap, hd]
            kc.index_copy_(2, ws.cur, k[:, :, None, :])
            vc.index_copy_(2, ws.cur, v.view(bb, nkv, 1, hd))
            # GQA without repeating K/V: a KV head's query heads become its query rows.
            o = F.scaled_dot_product_attention(
                q.view(bb, nkv, self.group, hd), kc[:, :, :lb], vc[:, :, :lb], attn_mask=mask,
                scale=self.scaling)
            (o,) = self._group(o.reshape(bb, 1, nh * hd), li, "o", ("o_proj",), rows)
            h = self._mlp(h + o, li, rows)
        logits = F.linear(self._rms(h[:, 0], self.norm_w), self.lm_head)
        ws.pos[:bb] += 1
        ws.cur += 1
        return logits

    def _prefill(self, ids: Any, lengths: list[int]) -> Any:
        """Run the left-padded prompts ``ids`` [n, W] eagerly, fill the cache, return logits."""
        import torch
        import torch.nn.functional as F

        ws = self._ws
        n, W = ids.shape
        rows = slice(0, n)
        nh, nkv, hd = self.n_heads, self.n_kv, self.head_dim
        dev = self.device
        starts = torch.tensor([W - x for x in lengths], device=dev)
        ar = torch.arange(W, device=dev)
        valid = ar[None, :] >= starts[:, None]  # [n, W]
        pos = (valid.long().cumsum(-1) - 1).clamp(min=0)
        cos, sin = ws.cos[pos][:, None], ws.sin[pos][:, None]  # [n, 1, W, hd]
        causal = ar[None, :] <= ar[:, None]
        # Pad queries see only themselves, so no row is fully masked (NaN-free).
        mask = (causal[None] & valid[:, None, :]) | torch.eye(W, dtype=torch.bool, device=dev)
        mask = mask[:, None]  # [n, 1, W, W]
        h = F.embedding(ids, self.embed)
        for li in range(self.n_layers):
            lay = self.layers[li]
            x = self._rms(h, lay["ln1"])
            q, k, v = self._group(x, li, "qkv", ("q_proj", "k_proj", "v_proj"), rows)
            q = self._rope(q.view(n, W, nh, hd).transpose(1, 2), cos, sin)
            k = self._rope(k.view(n, W, nkv, hd).transpose(1, 2), cos, sin)
            v = v.view(n, W, nkv, hd).transpose(1, 2)
            ws.k[li, rows, :, :W] = k
            ws.v[li, rows, :, :W] = v
            if self.group > 1:
                k = k.repeat_interleave(self.group, dim=1)
                v = v.repeat_interleave(self.group, dim=1)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling)
            (o,) = self._group(o.transpose(1, 2).reshape(n, W, nh * hd), li, "o", ("o_proj",),
                               rows)
            h = self._mlp(h + o, li, rows)
        return F.linear(self._rms(h[:, -1], self.norm_w), self.lm_head)

    def _graph(self, bb: int, lb: int) -> tuple[Any, Any]:
        import torch

        ws = self._ws
        key = (bb, lb)
        if key not in ws.graphs:
            saved = ws.pos.clone(), ws.cur.clone()
            stream = torch.cuda.Stream(device=self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up (kernel selection, workspace allocation)
                    self._decode_body(bb, lb)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                out = self._decode_body(bb, lb)
            ws.pos.copy_(saved[0])
            ws.cur.copy_(saved[1])
            ws.graphs[key] = (graph, out)
            self.stats["graph_captures"] += 1
        return ws.graphs[key]

    def _step(self, bb: int, lb: int) -> Any:
        if self.cuda_graphs:
            graph, out = self._graph(bb, lb)
            graph.replay()
            return out
        return self._decode_body(bb, lb)

    # -- logits for tests and checks -------------------------------------------------------------
    def prefill_logits(self, prompts: Sequence[list[int]], adapters: Sequence[str | None],
                       pad_id: int = 0) -> Any:
        """Last-position logits of left-padded prompts, each row under its own adapter."""
        import torch

        with torch.inference_mode():
            ids, lengths, _, _ = self._setup(prompts, adapters, pad_id, 1)
            return self._prefill(ids, lengths)

    def _setup(self, prompts: Sequence[list[int]], adapters: Sequence[str | None], pad_id: int,
               max_steps: int) -> tuple[Any, list[int], int, int]:
        import torch

        n = len(prompts)
        names = {a for a in adapters if a not in (None, BASE)}
        self._sync(names)
        width = max(len(p) for p in prompts)
        bb = self._bucket(n)
        lb = max(self.min_length, _next_pow2(width + max_steps + 1))
        ws = self._workspace(bb, lb)
        slots = tuple(0 if a in (None, BASE) else self._slots[a] for a in adapters) \
            + (0,) * (bb - n)
        key = (slots, self._version)
        if ws.gathered != key:  # gather each row's adapter once per batch, not per step
            idx = torch.tensor(slots, dtype=torch.long, device=self.device)
            ws.idx[:bb] = idx
            for g in ws.rows_a:
                ws.rows_a[g][:, :bb] = self._stack_a[g].index_select(1, idx)
            for t in ws.rows_b:
                ws.rows_b[t][:, :bb] = self._stack_b[t].index_select(1, idx)
            ws.gathered = key
        ids = torch.full((n, width), pad_id, dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        return ids.to(self.device), [len(p) for p in prompts], bb, lb

    # -- decoding ------------------------------------------------------------------------------
    def decode(self, requests: Sequence[GenerationRequest], *, prompts: Sequence[list[int]],
               eos_ids: set[int]) -> list[GenerationResult]:
        """Same contract as :func:`generation.decode_batch` (rows, stops, streaming, results)."""
        import torch

        tok = self.tokenizer
        n = len(requests)
        pad = tok.pad_token_id if tok.pad_token_id is not None else min(eos_ids)
        rows = []
        for req, p in zip(requests, prompts):
            g = torch.Generator(device="cpu")
            g.manual_seed(req.seed if req.seed is not None else random.getrandbits(63))
            rows.append(_Row(req, tok, len(p), g))
        max_steps = max(r.req.max_new_tokens for r in rows)
        with torch.inference_mode():
            ids, lengths, bb, lb = self._setup(prompts, [r.adapter for r in requests], pad,
                                               max_steps)
            ws = self._ws
            if self.cuda_graphs:
                self._graph(bb, lb)  # capture before the cache holds this batch
            width = ids.shape[1]
            dev = self.device
            ws.start[:n] = torch.tensor([width - x for x in lengths], device=dev)
            ws.start[n:bb] = ws.lcap  # padding rows attend to their own position only
            ws.pos[:n] = torch.tensor(lengths, device=dev)
            ws.pos[n:bb] = 0
            ws.tok[:bb] = 0
            ws.cur.fill_(width)
            ws.present[:bb] = False
            ws.present[:n].scatter_(1, ids, True)  # prompt tokens, padding included (as PEFT)
            sampler = _Sampler(rows, n, self.vocab, max_steps, dev)
            logits = self._prefill(ids, lengths)
            if self.trace is not None:
                self.trace.append(logits[:n].float().cpu())
            cuda = dev.type == "cuda"
            host = torch.empty(n, dtype=torch.long, pin_memory=cuda)
            event = torch.cuda.Event() if cuda else None
            for step in range(max_steps + 1):
                nxt = sampler(logits, ws.present[:n], step)
                ws.present[:n].scatter_(1, nxt[:, None], True)
                ws.tok[:n] = nxt
                if cuda:
                    host.copy_(nxt, non_blocking=True)
                    event.record()
                else:
                    host.copy_(nxt)
                if step < max_steps and not all(r.done for r in rows):
                    logits = self._step(bb, lb)  # the GPU runs it while the host handles rows
                    if self.trace is not None:
                        self.trace.append(logits[:n].float().cpu())
                if cuda:
                    event.synchronize()
                for r, t in zip(rows, host.tolist()):
                    if not r.done:
                        r.push(t, eos_ids)
                if all(r.done for r in rows):
                    break
            if cuda:
                torch.cuda.current_stream(dev).synchronize()
        return [r.result() for r in rows]


class _Sampler:
    """``generation._sample`` vectorised over the rows, on the device, without host syncs.

    Per row: repetition penalty (over prompt and generated tokens), then greedy when temperature
    is 0, else temperature, top-k, top-p and a draw from the remaining distribution with a
    uniform number from the row's own seeded generator (drawn up front for every step).
    """

    def __init__(self, rows: list[_Row], n: int, vocab: int, max_steps: int, device: Any):
        import torch

        reqs = [r.req for r in rows]
        f32 = {"dtype": torch.float32, "device": device}
        self.n = n
        pen = [float(q.repetition_penalty) for q in reqs]
        self.penalty = torch.tensor(pen, **f32)[:, None] if any(p != 1.0 for p in pen) else None
        temps = [float(q.temperature) for q in reqs]
        self.greedy = torch.tensor([t == 0 for t in temps], device=device)[:, None]
        self.all_greedy = all(t == 0 for t in temps)
        self.any_greedy = any(t == 0 for t in temps)
        self.inv_t = torch.tensor([1.0 / t if t > 0 else 1.0 for t in temps], **f32)[:, None]
        ks = [min(int(q.top_k), vocab) if q.top_k else vocab for q in reqs]
        self.K = max(ks)
        self.k = torch.tensor(ks, device=device)[:, None] if min(ks) < self.K else None
        tps = [float(q.top_p) for q in reqs]
        self.top_p = torch.tensor(tps, **f32)[:, None] if any(p < 1.0 for p in tps) else None
        self.tp_on = torch.tensor([p < 1.0 for p in tps], device=device)[:, None]
        self.u = None
        if not self.all_greedy:
            self.u = torch.stack([torch.rand(max_steps + 1, generator=r.generator,
                                             dtype=torch.float64) for r in rows]).to(device)
        self.ar = torch.arange(self.K, device=device)[None, :]

    def __call__(self, logits: Any, present: Any, step: int) -> Any:
        import torch

        lg = logits[:self.n].float()
        if self.penalty is not None:
            p = self.penalty
            lg = torch.where(present, torch.where(lg < 0, lg * p, lg / p), lg)
        if self.all_greedy:
            return lg.argmax(-1)
        vals, ids = torch.topk(lg * self.inv_t, self.K, dim=-1)  # sorted, largest first
        if self.k is not None:
            vals = vals.masked_fill(self.ar >= self.k, float("-inf"))
        if self.top_p is not None:
            probs = torch.softmax(vals, -1)
            remove = ((probs.cumsum(-1) - probs) > self.top_p) & self.tp_on
            vals = vals.masked_fill(remove, float("-inf"))
        probs = torch.softmax(vals, -1)
        cdf = probs.double().cumsum(-1)
        u = self.u[:, step:step + 1] * cdf[:, -1:]
        j = torch.searchsorted(cdf, u, right=True)
        kept = (probs > 0).sum(-1, keepdim=True)
        j = torch.minimum(j, kept - 1).clamp_(min=0)
        tok = ids.gather(1, j)[:, 0]
        if self.any_greedy:
            tok = torch.where(self.greedy[:, 0], lg.argmax(-1), tok)
        return tok
