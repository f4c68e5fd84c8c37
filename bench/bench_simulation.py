"""Time per simulation round: 4 and 16 personas, one batched call per round vs one call per turn.

    python bench/bench_simulation.py [--tokens 32] [--rounds 2] [--personas 4 16]
                                     [--threads 1] [--out FILE]

Every turn generates exactly ``--tokens`` tokens (fixed length), so batched and one-by-one
rounds do the same work. Personas are distinct types (composed from the shipped pole adapters,
or random pole adapters of the same shape when none are shipped: speed does not depend on the
weights). Prints a Markdown table; ``--out`` also writes JSON.
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
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_engine import random_pole_adapters  # noqa: E402  (bench/ is on sys.path)

NAMES = ["Ivy", "Sam", "Pat", "Joy", "Ann", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ida",
         "Jo", "Kim", "Lu"]
TYPES = ["INFP", "ESTJ", "ENTP", "ISFJ", "ENFP", "ISTJ", "INTP", "ESFJ", "ENFJ", "ISTP",
         "INTJ", "ESFP", "INFJ", "ESTP", "ENTJ", "ISFP"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=32, help="tokens per turn")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per configuration")
    ap.add_argument("--personas", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from mbti_persona.base_model import load_base_model
    from mbti_persona.engine import PersonaEngine
    from mbti_persona.generation import GenerationRequest
    from mbti_persona.simulation import Simulation

    engine = PersonaEngine()
    source = "shipped pole adapters, composed per type"
    if len(engine.poles_available()) < 8:
        random_pole_adapters(load_base_model(), Path(tempfile.mkdtemp()))
        source = "random rank-4 pole adapters, composed per type"
    engine.generate([GenerationRequest([{"role": "user", "content": "hi"}], max_new_tokens=4)])

    rows = []
    for n in args.personas:
        personas = list(zip(NAMES[:n], TYPES[:n]))
        for batched in (True, False):
            sim = Simulation(personas, "Plan a weekend trip together", engine=engine,
                             rounds=args.rounds, max_tokens=args.tokens, batched=batched,
                             fixed_length=True, seed=1, context_turns=4)
            sim.adapters()  # compose outside the timing
            times, calls = [], len(engine.call_log)
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                sim.run(max_rounds=1)
                times.append(time.perf_counter() - t0)
            tokens = sum(t.tokens for t in sim.turns) / args.rounds
            row = {"personas": n, "batched": batched, "round_seconds": times,
                   "mean_round_seconds": statistics.mean(times),
                   "tokens_per_round": tokens,
                   "tokens_per_second": tokens / statistics.mean(times),
                   "generate_calls_per_round": (len(engine.call_log) - calls) / args.rounds}
            rows.append(row)
            print(f"{n:>2} personas, {'batched   ' if batched else 'one-by-one'}: "
                  f"{row['mean_round_seconds']:.2f} s/round "
                  f"({', '.join(f'{t:.2f}' for t in times)}), "
                  f"{row['tokens_per_second']:.1f} tok/s", flush=True)

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "loadavg_at_end": load},
        "device": engine.info.device, "model": engine.info.name, "adapters": source,
        "tokens_per_turn": args.tokens, "rounds": args.rounds, "rows": rows,
    }
    print(f"\ndevice {engine.info.device}, {torch.get_num_threads()} torch thread(s), "
          f"{args.tokens} tokens per turn, mean of {args.rounds} rounds, adapters: {source}\n")
    print("| personas | one batched call per round | one call per turn | speed-up |")
    print("|---|---|---|---|")
    for n in args.personas:
        b = next(r for r in rows if r["personas"] == n and r["batched"])
        s = next(r for r in rows if r["personas"] == n and not r["batched"])
        print(f"| {n} | {b['mean_round_seconds']:.1f} s ({b['tokens_per_second']:.0f} tok/s) "
              f"| {s['mean_round_seconds']:.1f} s ({s['tokens_per_second']:.0f} tok/s) "
              f"| x{s['mean_round_seconds'] / b['mean_round_seconds']:.1f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
