"""Benchmark of PersonaMemory: write throughput and retrieval latency on this machine.

For each store size (1k and 10k episodic memories by default) a fresh on-disk store is
filled with synthetic, varied sentences through one batched ``add_many`` call (embedding
included), then 100 different queries are timed with ``retrieve(k=5)`` (query embedding,
Chroma search and re-ranking included, default settings).

    HF_HUB_OFFLINE=1 python bench/bench_memory.py            # prints and updates docs/memory.md
    HF_HUB_OFFLINE=1 python bench/bench_memory.py --sizes 1000 --no-docs

The Markdown table is printed and written into docs/memory.md between the
``<!-- bench:start -->`` and ``<!-- bench:end -->`` markers of its "Benchmark" section.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOC = ROOT / "docs" / "memory.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

NAMES = ["Mia", "Tom", "Aisha", "Kenji", "Lucia", "Omar", "Greta", "Ravi", "Chloe", "Diego",
         "Hana", "Ivan", "Zoe", "Malik", "Sofia", "Leo", "Nadia", "Felix", "Yara", "Jonas"]
RELATIONS = ["sister", "brother", "best friend", "neighbour", "boss", "cousin", "mother",
             "father", "colleague", "flatmate", "grandmother", "teacher"]
PLACES = ["Lisbon", "Kyoto", "the lake", "the old bakery", "the climbing gym", "Berlin",
          "the farmers' market", "the library", "Marseille", "the night train", "the hospital",
          "the beach cabin", "Nairobi", "the concert hall", "the garden allotment"]
ACTIVITIES = ["hiking", "baking sourdough", "learning the cello", "painting watercolours",
              "running a half marathon", "fixing an old bike", "planting tomatoes",
              "reading Russian novels", "playing chess online", "knitting a scarf",
              "studying for an exam", "writing a short story", "moving flats",
              "training a puppy", "making pottery", "learning Japanese"]
FEELINGS = ["happy", "anxious", "proud", "exhausted", "excited", "lonely", "relieved",
            "frustrated", "grateful", "nervous", "calm", "overwhelmed"]
TIMES = ["on Monday", "last weekend", "this morning", "in March", "on my birthday",
         "yesterday evening", "over the holidays", "after work", "two years ago", "at dawn"]
FOODS = ["dumplings", "lentil soup", "ramen", "fresh figs", "apple pie", "tacos", "olives",
         "dark chocolate", "sushi", "mango sticky rice"]
TEMPLATES = [
    "The user said their {rel} {name} went {act} in {place} {time}.",
    "The user feels {feel} about {act} and wants to keep going.",
    "I told the user I would remind them about {act} {time}.",
    "The user's {rel} {name} loves {food} and lives near {place}.",
    "The user was {feel} {time} because of {act}.",
    "We talked about {place}; the user wants to visit it with {name}.",
    "The user said: I can't stand {food}, but my {rel} adores it.",
    "The user started {act} {time} and felt {feel} afterwards.",
    "{name}, the user's {rel}, is {feel} about moving to {place}.",
    "The user asked me for advice on {act} before going to {place}.",
]
QUERIES = [
    "Who did I go hiking with?", "What food does my sister like?", "Where does my cousin live?",
    "How did I feel after the race?", "What am I learning at the moment?",
    "What did we talk about last weekend?", "Which city do I want to visit?",
    "What did I do on my birthday?", "What should you remind me about?",
    "Who is anxious about moving?", "What do I hate eating?", "Tell me about my puppy.",
]


def synthetic_memories(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        t = rng.choice(TEMPLATES)
        s = t.format(rel=rng.choice(RELATIONS), name=rng.choice(NAMES), act=rng.choice(ACTIVITIES),
                     place=rng.choice(PLACES), time=rng.choice(TIMES), feel=rng.choice(FEELINGS),
                     food=rng.choice(FOODS))
        out.add(s)
    items = sorted(out)
    rng.shuffle(items)
    return items


def queries(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out = list(QUERIES)
    while len(out) < n:
        out.append(rng.choice([
            f"What do I know about {rng.choice(NAMES)}?",
            f"When did I go to {rng.choice(PLACES)}?",
            f"How do I feel about {rng.choice(ACTIVITIES)}?",
            f"Who likes {rng.choice(FOODS)}?",
            f"What happened {rng.choice(TIMES)}?",
        ]))
    return out[:n]


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    i = min(len(v) - 1, max(0, int(round(q / 100.0 * (len(v) - 1)))))
    return v[i]


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    import chromadb
    import torch

    return {
        "cpu": cpu, "nproc": nproc or str(os.cpu_count()),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(), "torch": torch.__version__,
        "chromadb": chromadb.__version__, "os": platform.platform(terse=True),
        "torch_threads": str(torch.get_num_threads()),
    }


def bench_size(n: int, n_queries: int, root: Path) -> dict[str, float]:
    from mbti_persona.memory import PersonaMemory

    texts = synthetic_memories(n)
    qs = queries(n_queries)
    with PersonaMemory("INFP", "bench", path=root / f"store-{n}", seed=True) as mem:
        t = time.perf_counter()
        mem.add_many(texts, session="bench")
        write_s = time.perf_counter() - t
        assert mem.count("episodic") == n
        emb = mem._embeddings
        t = time.perf_counter()
        emb.embed_documents(texts[:500])
        embed_rate = 500 / (time.perf_counter() - t)
        mem.retrieve("warm up", k=5)
        lat: list[float] = []
        for q in qs:
            t = time.perf_counter()
            got = mem.retrieve(q, k=5)
            lat.append((time.perf_counter() - t) * 1000)
            assert len(got) == 5
        t = time.perf_counter()
        mem.close()  # writes the deferred last-access times of the queries above
        close_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        for q in qs[:20]:
            emb.embed_query(q)
        q_embed_ms = (time.perf_counter() - t) * 1000 / 20
    return {
        "n": n, "write_s": write_s, "write_rate": n / write_s, "embed_rate": embed_rate,
        "p50": statistics.median(lat), "p95": pct(lat, 95), "max": max(lat),
        "q_embed_ms": q_embed_ms, "close_ms": close_ms,
    }


def table(rows: list[dict[str, float]], info: dict[str, str], n_queries: int) -> str:
    out = [
        f"Machine: {info['cpu']}, `nproc` = {info['nproc']} "
        f"(torch threads {info['torch_threads']}),"
        f" {info['os']}; Python {info['python']}, torch {info['torch']}, chromadb "
        f"{info['chromadb']}; run {info['date']}.",
        "",
        f"Episodic memories (plus the 47 seeded INFP statements) added in one batched "
        f"`add_many` call, embedding included; then {n_queries} different queries, "
        f"`retrieve(k=5)` with default settings: query embedding, Chroma search of a "
        f"20-candidate pool, re-ranking, last-access touch (deferred; written by `close()`).",
        "",
        "| store size | write throughput (memories/s) | write time (s) "
        "| retrieve p50 (ms) | retrieve p95 (ms) | retrieve max (ms) "
        "| query embedding (ms) | close: touches of 100 retrievals (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {int(r['n']):,} | {r['write_rate']:.0f} | {r['write_s']:.1f} | {r['p50']:.1f} | "
            f"{r['p95']:.1f} | {r['max']:.1f} | {r['q_embed_ms']:.1f} | {r['close_ms']:.0f} |"
        )
    rate = statistics.median(r["embed_rate"] for r in rows)
    out += ["", f"Embedding alone runs at about {rate:.0f} sentences/s here, so writes are "
                "bound by the embedding model, not by Chroma."]
    return "\n".join(out)


def write_docs(md: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Memory\n"
    block = f"{START}\n{md}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text,
                      flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Benchmark\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/memory.md")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's choice); 1 is much faster "
                         "on a machine whose cores are busy with other work")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from mbti_persona.embeddings import embedded_embeddings

    embedded_embeddings()  # load the model outside the timings
    rows = []
    with tempfile.TemporaryDirectory(prefix="mbti-memory-bench-") as tmp:
        for n in args.sizes:
            r = bench_size(n, args.queries, Path(tmp))
            print(f"size {n}: {r['write_rate']:.0f} memories/s, p50 {r['p50']:.1f} ms, "
                  f"p95 {r['p95']:.1f} ms", file=sys.stderr, flush=True)
            rows.append(r)
    md = table(rows, machine(), args.queries)
    print(md)
    if not args.no_docs:
        write_docs(md)
        print(f"\nwritten to {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
