"""Engine speed on this machine: load time, one persona, mixed batches versus sequential calls,
persona switch time and memory per persona, for the PEFT path and the fast path.

    python bench/bench_engine.py [--tokens 64] [--batches 1 8 16 64] [--paths peft fast]
                                 [--device auto] [--model M --model-name NAME] [--out FILE]
    python bench/bench_engine.py --smoke --device cuda     # fast path vs PEFT on a random Llama

Adapters: the shipped pole adapters when present (the 16 types composed from them), else random
LoRA adapters of the same shape (speed does not depend on the weights). Rows run to a fixed length
(ignore_eos) so every configuration generates the same number of tokens. "PEFT path" is
``generation.decode_batch`` on the PeftModel (mixed-adapter batches through ``adapter_names``);
"fast path" is ``fast_decode.FastDecoder`` (stacked LoRA, static KV cache, CUDA graphs on CUDA).
Sequential calls: the first ``--seq-limit`` single calls are timed one by one; a case with more
calls than that is extrapolated from their mean and marked so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def random_pole_adapters(base, root: Path, rank: int = 4) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    from mbti_persona.adapters import AdapterMeta, save_adapter

    for i, pole in enumerate("EISNTFJP"):
        torch.manual_seed(i)
        m = get_peft_model(base.model, LoraConfig(
            r=rank, lora_alpha=rank, init_lora_weights=False, task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                            "down_proj"]), adapter_name="bench")
        for p in m.parameters():
            if p.requires_grad:
                p.data.mul_(0.01)
        save_adapter(m, "bench", root / pole, AdapterMeta(
            kind="pole", pole=pole, base_model=base.info.name,
            base_fingerprint=base.info.fingerprint, recipe="bench-random"))
        m.unload()
    return root


def machine_info() -> dict:
    import peft
    import torch
    import transformers

    info = {"platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "torch_threads": torch.get_num_threads(),
            "gpu": None}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(), gpu_memory_gib=round(p.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, gpu_count=torch.cuda.device_count())
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    return info


def adapter_param_bytes(model, name: str) -> int:
    return sum(p.numel() * p.element_size() for n, p in model.named_parameters()
               if f".lora_A.{name}." in n or f".lora_B.{name}." in n)


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_path(engine, path: str, args, personas: list[str]) -> dict:
    """Every timing case for one decoding path."""
    from mbti_persona.generation import GenerationRequest

    engine.fast_decode = path == "fast"
    tokens = args.tokens

    def req(adapter, i, n=tokens):
        return GenerationRequest([{"role": "user", "content": f"Tell me about your plans for day {i}."}],
                                 adapter=adapter, max_new_tokens=n, ignore_eos=True, seed=i)

    def gen(reqs):
        return sum(r.output_tokens for r in engine.generate(reqs))

    def timed(fn, repeat):
        best = None
        for _ in range(repeat):
            sync()
            t = time.perf_counter()
            n = fn()
            sync()
            s = time.perf_counter() - t
            best = (s, n) if best is None or s < best[0] else best
        return best

    out: dict = {"path": path, "rows": []}
    repeat = args.repeat if path == "fast" else args.peft_repeat
    rows = out["rows"]

    def add(case, s, n, **kw):
        rows.append({"case": case, "tokens": n, "seconds": s, "tok_s": n / s, **kw})
        print(f"  [{path}] {case}: {n} tokens in {s:.3f} s = {n / s:.1f} tok/s"
              + (f" {kw}" if kw else ""), flush=True)

    # Warm-up: every batch size once (on the fast path this captures the CUDA graphs).
    warm = {}
    for b in sorted(set([1] + list(args.batches))):
        sync()
        t = time.perf_counter()
        gen([req(personas[i % len(personas)], i, 4) for i in range(b)])
        sync()
        warm[b] = time.perf_counter() - t
    out["first_call_seconds_by_batch"] = warm  # 4 tokens; fast path: includes graph capture
    s, n = timed(lambda: gen([req(None, 0)]), repeat)
    add("base model, batch 1", s, n)
    s, n = timed(lambda: gen([req(personas[0], 0)]), repeat)
    add("one persona (composed type), batch 1", s, n)
    # Sequential single calls, each a different persona (the rows of the mixed batches).
    most = max(args.batches)
    k = min(most, args.seq_limit if path == "fast" else args.peft_seq_limit)
    seq = []
    for i in range(k):
        s, n = timed(lambda i=i: gen([req(personas[i % len(personas)], i)]), 1)
        seq.append((s, n))
    for b in args.batches:
        if b == 1:
            continue
        mixed = [req(personas[i % len(personas)], i) for i in range(b)]
        s, n = timed(lambda mixed=mixed: gen(mixed), repeat)
        distinct = len({r.adapter for r in mixed})
        add(f"mixed batch of {b} rows ({distinct} personas)", s, n)
        same = [req(personas[0], i) for i in range(b)]
        s2, n2 = timed(lambda same=same: gen(same), repeat)
        add(f"batch of {b}, one persona", s2, n2)
        if b <= k:
            s3, n3 = sum(x[0] for x in seq[:b]), sum(x[1] for x in seq[:b])
            extra = {}
        else:
            s3 = sum(x[0] for x in seq) / k * b
            n3 = sum(x[1] for x in seq) // k * b
            extra = {"extrapolated_from_calls": k}
        add(f"{b} personas, {b} sequential calls", s3, n3,
            mixed_batch_speedup=round(s3 / s, 2), **extra)
    if path == "fast":
        fast = engine._fast
        out["fast_decoder"] = {"stats": dict(fast.stats), "cuda_graphs": fast.cuda_graphs,
                               **fast.adapter_stack_bytes()}
        ws = fast._ws
        if ws is not None:
            out["fast_decoder"]["kv_cache_bytes"] = 2 * ws.k.numel() * ws.k.element_size()
            out["fast_decoder"]["kv_cache_shape"] = list(ws.k.shape)
        # Loading a persona into a slot (first fast call with a new adapter), warm.
        name = personas[-1]
        times = []
        for _ in range(3):
            fast.forget(name)
            sync()
            t = time.perf_counter()
            fast._sync({name})
            sync()
            times.append(time.perf_counter() - t)
        out["fast_decoder"]["slot_load_ms"] = min(times) * 1000
    return out


def check_paths(engine, personas, n_rows=8, tokens=32) -> dict:
    """Greedy tokens of both paths for a mixed batch: how many rows agree, and for how long."""
    from mbti_persona.generation import GenerationRequest

    reqs = [GenerationRequest([{"role": "user", "content": f"Describe your day number {i}."}],
                              adapter=(personas[i % len(personas)] if i % 4 else None),
                              max_new_tokens=tokens, temperature=0, ignore_eos=True)
            for i in range(n_rows)]
    engine.fast_decode = False
    ref = engine.generate(reqs)
    engine.fast_decode = True
    got = engine.generate(reqs)
    agree = []
    for a, b in zip(ref, got):
        same = 0
        for x, y in zip(a.token_ids, b.token_ids):
            if x != y:
                break
            same += 1
        agree.append(same)
    return {"rows": n_rows, "tokens": tokens, "identical_rows": sum(a == tokens for a in agree),
            "common_prefix_tokens": agree}


def smoke(args) -> dict:
    """The fast path against PEFT on a randomly initialised SmolLM2-shaped Llama (no weights)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from mbti_persona.fast_decode import FastDecoder
    from mbti_persona.generation import GenerationRequest, decode_batch

    class Tok:
        pad_token_id = 0

        def decode(self, ids, skip_special_tokens=True):
            return " ".join(map(str, ids))

    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=args.smoke_layers,
                      num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                      rope_theta=100000.0, tie_word_embeddings=True, max_position_embeddings=8192,
                      rms_norm_eps=1e-5)
    torch.manual_seed(0)
    res = {}
    for dtype in (torch.float32, torch.bfloat16):
        lm = LlamaForCausalLM(cfg).to(dev, dtype).eval()
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        m = get_peft_model(lm, LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                                          target_modules=targets), adapter_name="a")
        m.add_adapter("b", LoraConfig(r=8, lora_alpha=8, init_lora_weights=False,
                                      target_modules=targets))
        m.add_weighted_adapter(["a", "b"], [0.7, 1.0], adapter_name="c", combination_type="cat")
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
        tok = Tok()
        g = torch.Generator().manual_seed(1)
        prompts = [torch.randint(1, 49152, (n,), generator=g).tolist() for n in (7, 31, 19, 12)]
        adapters = [None, "a", "c", "b"]
        reqs = [GenerationRequest([{"role": "user", "content": "x"}], adapter=a, max_new_tokens=16,
                                  temperature=0, ignore_eos=True) for a in adapters]
        ref = decode_batch(m, tok, reqs, adapter_names=[a or "__base__" for a in adapters],
                           device=dev, eos_ids={0}, prompts=prompts)
        fast = FastDecoder(m, tok)
        fast.trace = []
        got = fast.decode(reqs, prompts=prompts, eos_ids={0})
        trace, fast.trace = fast.trace, None
        # Full-sequence PEFT forward for the logits of every decode step.
        seqs = [p + r.token_ids for p, r in zip(prompts, got)]
        width = max(len(s) for s in seqs)
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, width - len(s):] = torch.tensor(s)
            attn[i, width - len(s):] = 1
        with torch.inference_mode():
            full = m(input_ids=ids.to(dev), attention_mask=attn.to(dev),
                     position_ids=(attn.cumsum(-1) - 1).clamp(min=0).to(dev),
                     adapter_names=[a or "__base__" for a in adapters]).logits.float().cpu()
        diffs = []
        for step, lg in enumerate(trace[1:], start=1):
            for i, p in enumerate(prompts):
                col = width - len(seqs[i]) + len(p) + step - 1
                if step < len(got[i].token_ids):
                    diffs.append(float((lg[i] - full[i, col]).abs().max()))
        scale = float(full.abs().max())
        key = str(dtype).replace("torch.", "")
        res[key] = {
            "cuda_graphs": fast.cuda_graphs,
            "greedy_rows_identical": sum(a.token_ids == b.token_ids for a, b in zip(ref, got)),
            "rows": len(reqs), "max_abs_logit_diff": max(diffs), "logit_scale": scale,
            "stats": dict(fast.stats),
        }
        # Speed of the fast path on this random model (decode only, ignore_eos).
        for b in ((1, 16, 64) if dev.type == "cuda" else ()):
            rq = [GenerationRequest([{"role": "user", "content": "x"}],
                                    adapter=["a", "b", "c", None][i % 4], max_new_tokens=64,
                                    ignore_eos=True, seed=i) for i in range(b)]
            pr = [prompts[i % 4] for i in range(b)]
            fast.decode(rq, prompts=pr, eos_ids={0})
            sync()
            t = time.perf_counter()
            n = sum(r.output_tokens for r in fast.decode(rq, prompts=pr, eos_ids={0}))
            sync()
            res[key][f"fast_tok_s_batch{b}"] = n / (time.perf_counter() - t)
        print(key, json.dumps(res[key]), flush=True)
        del m, lm, fast
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16, 64])
    ap.add_argument("--paths", nargs="+", default=["peft", "fast"], choices=["peft", "fast"])
    ap.add_argument("--device", default=None)
    ap.add_argument("--model", default=None, help="base model (default: the embedded GGUF)")
    ap.add_argument("--model-name", default=None,
                    help="canonical name of --model (e.g. for a bare .gguf file)")
    ap.add_argument("--repeat", type=int, default=2, help="best of N (fast path)")
    ap.add_argument("--peft-repeat", type=int, default=1, help="best of N (PEFT path)")
    ap.add_argument("--seq-limit", type=int, default=64,
                    help="time at most this many sequential calls; extrapolate beyond")
    ap.add_argument("--peft-seq-limit", type=int, default=64,
                    help="the same for the PEFT path")
    ap.add_argument("--no-check", action="store_true", help="skip the greedy agreement check")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--smoke-layers", type=int, default=30)
    ap.add_argument("--out", default=None, help="write JSON results here")
    args = ap.parse_args()

    import torch

    if args.smoke:
        result = {"machine": machine_info(), "smoke": smoke(args)}
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2))
        return

    from mbti_persona.base_model import load_base_model
    from mbti_persona.engine import PersonaEngine
    from mbti_persona.types import ALL_TYPES

    t0 = time.perf_counter()
    base = load_base_model(args.model, device=args.device, name=args.model_name)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = PersonaEngine(base, max_batch_size=max(args.batches), fast_decode=False)
    adapters_s = time.perf_counter() - t0
    source = "shipped"
    if len(engine.poles_available()) < 8:
        tmp = Path(tempfile.mkdtemp())
        random_pole_adapters(load_base_model(args.model, device=args.device,
                                             name=args.model_name), tmp)
        engine.load_adapters(tmp)
        source = "random rank-4 all-linear"
    cuda = base.info.device.startswith("cuda")
    sync()
    mem0 = torch.cuda.memory_allocated() if cuda else None
    # Persona switch: the first use of a type composes it (PEFT add_weighted_adapter, "cat").
    compose = []
    personas = []
    for t in ALL_TYPES:
        sync()
        t1 = time.perf_counter()
        personas.append(engine.persona(t).adapter)
        sync()
        compose.append(time.perf_counter() - t1)
    mem1 = torch.cuda.memory_allocated() if cuda else None
    t1 = time.perf_counter()
    for _ in range(100):
        for t in ALL_TYPES:
            engine.persona(t)
    cached_us = (time.perf_counter() - t1) / (100 * len(ALL_TYPES)) * 1e6
    pole_bytes = adapter_param_bytes(engine.model, "pole:E")
    type_bytes = adapter_param_bytes(engine.model, personas[0])
    result = {
        "machine": machine_info(), "device": base.info.device, "dtype": base.info.dtype,
        "model": base.info.name, "adapters": source, "tokens_per_row": args.tokens,
        "load": {"base_model_seconds": load_s, "adapters_seconds": adapters_s,
                 "adapters_loaded": len(engine.adapters)},
        "switch": {"first_composition_ms": compose[0] * 1000,
                   "composition_ms_mean_16_types": sum(compose) / len(compose) * 1000,
                   "cached_lookup_us": cached_us},
        "memory": {"pole_adapter_param_bytes": pole_bytes,
                   "composed_type_param_bytes": type_bytes,
                   "cuda_allocated_delta_16_types_bytes": (mem1 - mem0) if cuda else None,
                   "cuda_allocated_after_load_bytes": mem0},
        "paths": {},
    }
    print(f"load {load_s:.1f}s (+{adapters_s:.1f}s adapters), first composition "
          f"{compose[0] * 1000:.1f} ms, cached lookup {cached_us:.1f} us, device "
          f"{base.info.device} {base.info.dtype}, adapters: {source}", flush=True)
    if "fast" in args.paths and not args.no_check:
        result["check_greedy_agreement"] = check_paths(engine, personas)
        print("check:", result["check_greedy_agreement"], flush=True)
    for path in args.paths:
        result["paths"][path] = run_path(engine, path, args, personas)
        if cuda:
            result["paths"][path]["cuda_max_allocated_bytes"] = torch.cuda.max_memory_allocated()
        if args.out:  # partial results survive a later failure
            Path(args.out).write_text(json.dumps(result, indent=2))
    if cuda:
        result["memory"]["cuda_allocated_end_bytes"] = torch.cuda.memory_allocated()
    for path, res in result["paths"].items():
        print(f"\n{path} path\n| case | tokens | seconds | tokens/s |\n|---|---|---|---|")
        for r in res["rows"]:
            extra = ""
            if "mixed_batch_speedup" in r:
                extra = f" (mixed batch x{r['mixed_batch_speedup']:.2f} faster)"
            if "extrapolated_from_calls" in r:
                extra += f" [extrapolated from {r['extrapolated_from_calls']} calls]"
            print(f"| {r['case']}{extra} | {r['tokens']} | {r['seconds']:.2f} | {r['tok_s']:.1f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    engine.close()


if __name__ == "__main__":
    sys.exit(main())
