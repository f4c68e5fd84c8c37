"""Engine speed on this machine: load time, one persona, mixed batches versus sequential calls.

    python bench/bench_engine.py [--tokens 64] [--batches 1 8 16] [--device auto] [--out FILE]

Adapters: the shipped pole adapters when present (types composed from them), else random LoRA
adapters of the same shape (speed does not depend on the weights). Rows run to a fixed length
(ignore_eos) so every configuration generates the same number of tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def random_pole_adapters(base, root: Path, rank: int = 4) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    from mbti_persona.adapters import AdapterMeta, write_adapter_meta

    for i, pole in enumerate("EISNTFJP"):
        torch.manual_seed(i)
        m = get_peft_model(base.model, LoraConfig(
            r=rank, lora_alpha=rank, init_lora_weights=False, task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                            "down_proj"]), adapter_name="bench")
        for p in m.parameters():
            if p.requires_grad:
                p.data.mul_(0.01)
        out = root / pole
        m.save_pretrained(str(out), selected_adapters=["bench"])
        sub = out / "bench"
        for f in sub.iterdir():
            f.replace(out / f.name)
        sub.rmdir()
        write_adapter_meta(out, AdapterMeta(kind="pole", pole=pole, base_model=base.info.name,
                                            base_fingerprint=base.info.fingerprint,
                                            recipe="bench-random"))
        m.unload()
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--device", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=None, help="write JSON results here")
    args = ap.parse_args()

    import torch

    from mbti_persona.base_model import load_base_model
    from mbti_persona.engine import PersonaEngine
    from mbti_persona.generation import GenerationRequest
    from mbti_persona.types import ALL_TYPES

    t0 = time.perf_counter()
    base = load_base_model(args.model, device=args.device)
    load_s = time.perf_counter() - t0
    engine = PersonaEngine(base)
    source = "shipped"
    if len(engine.poles_available()) < 8:
        tmp = Path(tempfile.mkdtemp())
        random_pole_adapters(load_base_model(args.model, device=args.device), tmp)
        engine.load_adapters(tmp)
        source = "random rank-4 all-linear"
    t0 = time.perf_counter()
    personas = [engine.persona(t).adapter for t in ALL_TYPES]
    compose_ms = (time.perf_counter() - t0) * 1000 / len(ALL_TYPES)

    def req(adapter, i):
        return GenerationRequest([{"role": "user", "content": f"Tell me about your plans for day {i}."}],
                                 adapter=adapter, max_new_tokens=args.tokens, ignore_eos=True,
                                 seed=i)

    def timed(fn):
        best = []
        for _ in range(args.repeat):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t = time.perf_counter()
            n = fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best.append((time.perf_counter() - t, n))
        s, n = min(best)
        return s, n

    engine.generate([req(personas[0], 0)])  # warm-up
    rows = []
    s, n = timed(lambda: sum(r.output_tokens for r in engine.generate([req(None, 0)])))
    rows.append({"case": "base model, batch 1", "seconds": s, "tokens": n, "tok_s": n / s})
    s, n = timed(lambda: sum(r.output_tokens for r in engine.generate([req(personas[0], 0)])))
    rows.append({"case": "one persona (composed adapters), batch 1", "seconds": s, "tokens": n,
                 "tok_s": n / s})
    for b in args.batches:
        if b == 1:
            continue
        mixed = [req(personas[i % len(personas)], i) for i in range(b)]
        s, n = timed(lambda: sum(r.output_tokens for r in engine.generate(mixed)))
        rows.append({"case": f"mixed batch of {b} personas", "seconds": s, "tokens": n,
                     "tok_s": n / s})
        same = [req(personas[0], i) for i in range(b)]
        s2, n2 = timed(lambda: sum(r.output_tokens for r in engine.generate(same)))
        rows.append({"case": f"batch of {b}, one persona", "seconds": s2, "tokens": n2,
                     "tok_s": n2 / s2})
        s3, n3 = timed(lambda: sum(engine.generate([r])[0].output_tokens for r in mixed))
        rows.append({"case": f"{b} personas, sequential calls", "seconds": s3, "tokens": n3,
                     "tok_s": n3 / s3, "speedup_of_mixed_batch": s3 / s})
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "device": base.info.device, "dtype": base.info.dtype, "model": base.info.name,
        "adapters": source, "load_seconds": load_s, "compose_ms_per_type": compose_ms,
        "tokens_per_row": args.tokens, "rows": rows,
    }
    print(f"load {load_s:.1f}s, compose {compose_ms:.1f} ms/type, device {base.info.device}, "
          f"adapters: {source}")
    print("| case | tokens | seconds | tokens/s |\n|---|---|---|---|")
    for r in rows:
        extra = f" (x{r['speedup_of_mixed_batch']:.2f} slower than the mixed batch)" \
            if "speedup_of_mixed_batch" in r else ""
        print(f"| {r['case']}{extra} | {r['tokens']} | {r['seconds']:.2f} | {r['tok_s']:.1f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    engine.close()


if __name__ == "__main__":
    sys.exit(main())
