"""Four personalities plan a weekend trip together, on one local model.

    python examples/simulation.py                       # 4 personas, 3 rounds
    python examples/simulation.py --rounds 5 --max-tokens 64 --transcript trip.jsonl
    python examples/simulation.py --resume trip.jsonl --rounds 8    # continue a transcript
    python examples/simulation.py --personas "Ann:ENFP,Bo:ISTJ,Cy:INTP,Di:ESFJ"
    python examples/simulation.py --smoke               # fast CI mode

Every round, all four personas reply to the conversation so far in ONE batched generation
call (each row runs its own personality adapter); --unbatched generates them one by one for
comparison. Ctrl-C stops after the current round with a consistent transcript. At the end a
short summary shows how each personality behaved: words per turn, questions asked, planning
words vs option words, feeling words vs logic words.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

DEFAULT_PERSONAS = "Ivy:INFP,Sam:ESTJ,Pat:ENTP,Joy:ISFJ"
TOPIC = ("Plan a weekend trip together for the four of us: where to go, what to do, "
         "and how to organise it")


def parse_personas(text: str) -> list[tuple[str, str]]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, mbti = part.partition(":") if ":" in part else (part, "", part)
        out.append((name.strip(), mbti.strip()))
    return out


def print_summary(stats: dict[str, dict]) -> None:
    print("\nHow each personality behaved (per 100 words: plan/option words, feeling/logic "
          "words):")
    head = f"{'name':<8}{'type':<6}{'turns':>6}{'words/turn':>11}{'questions':>10}" \
           f"{'plan':>6}{'option':>8}{'feeling':>9}{'logic':>7}"
    print(head)
    print("-" * len(head))
    for name, s in stats.items():
        print(f"{name:<8}{s['persona']:<6}{s['turns']:>6}{s['words_per_turn']:>11}"
              f"{s['questions']:>10}{s['plan_per_100w']:>6}{s['options_per_100w']:>8}"
              f"{s['feeling_per_100w']:>9}{s['logic_per_100w']:>7}")
    for name, s in stats.items():
        leaning = []
        if s["plan_per_100w"] or s["options_per_100w"]:
            leaning.append("plans" if s["plan_per_100w"] >= s["options_per_100w"]
                           else "keeps options open")
        if s["feeling_per_100w"] or s["logic_per_100w"]:
            leaning.append("argues from feelings" if s["feeling_per_100w"] > s["logic_per_100w"]
                           else "argues from logic")
        if s["questions"]:
            leaning.append(f"asked {s['questions']} question(s)")
        print(f"  {name} ({s['persona']}): {', '.join(leaning) or 'said little'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--personas", default=DEFAULT_PERSONAS,
                    help='"Name:TYPE,..." (default: %(default)s)')
    ap.add_argument("--topic", default=TOPIC)
    ap.add_argument("--mode", default="conversation",
                    choices=["conversation", "debate", "question"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=48, help="tokens per turn")
    ap.add_argument("--context-turns", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--transcript", type=Path, default=None, help="write a JSONL transcript")
    ap.add_argument("--resume", type=Path, default=None, help="continue this transcript")
    ap.add_argument("--unbatched", action="store_true", help="one generation call per turn")
    ap.add_argument("--smoke", action="store_true", help="fast CI mode: 2 rounds, 8 tokens")
    args = ap.parse_args(argv)
    if args.smoke:
        args.rounds, args.max_tokens = min(args.rounds, 2), min(args.max_tokens, 8)

    import torch

    if args.smoke:  # CI: one thread; on a shared machine extra threads only spin
        torch.set_num_threads(1)
    from mbti_persona.simulation import Simulation, SimulationError
    from mbti_persona.types import MBTITypeError

    def show(turns):
        print(f"-- round {turns[0].round} ({turns[0].time:.1f} s"
              f"{', one batch' if turns[0].batch_size > 1 else ''}) --")
        for t in turns:
            print(f"{t.name} ({t.persona}): {t.text}")
        sys.stdout.flush()

    try:
        if args.resume:
            sim = Simulation.resume(args.resume, rounds=args.rounds, on_round=show,
                                    batched=not args.unbatched)
            print(f"Resuming {args.resume} after round {sim.rounds_done} of {sim.rounds}.")
            if sim.turns:
                print(sim.format_transcript())
        else:
            sim = Simulation(parse_personas(args.personas), args.topic, mode=args.mode,
                             rounds=args.rounds, max_tokens=args.max_tokens,
                             context_turns=args.context_turns, temperature=args.temperature,
                             seed=args.seed, batched=not args.unbatched,
                             transcript=args.transcript, overwrite=True, on_round=show)
    except (SimulationError, MBTITypeError) as e:
        print(f"simulation: {e}", file=sys.stderr)
        return 2
    print(f"{len(sim.personas)} personas ({', '.join(f'{p.persona_name} {p.mbti}' for p in sim.personas)})"
          f", {sim.mode}: {sim.topic}\n")
    t0 = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - t0
    if sim.interrupted:
        print(f"\nStopped after round {sim.rounds_done}; the transcript is consistent"
              f"{f' (resume: --resume {sim.path})' if sim.path else ''}.")
    print_summary(sim.stats())
    print(f"\n{sim.rounds_done} round(s) in {seconds:.1f} s"
          f"{f'; transcript: {sim.path}' if sim.path else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
