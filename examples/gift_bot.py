"""Gift ideas for someone, chosen with their personality type's own memory of gifts.

    python examples/gift_bot.py --mbti ENFP --interests "music, travel" --budget 50
    python examples/gift_bot.py --mbti ISTJ --budget 40 --top 3 --json
    python examples/gift_bot.py --smoke            # fast CI mode

How it works, offline on the embedded model:

1. The recipient's type opens a PersonaMemory (in memory), seeded with that type's
   self-knowledge: what it says about gifts it loves and dislikes, and what it likes.
2. Every catalogue gift within the budget is scored by embedding similarity (the embedded
   all-MiniLM-L6-v2) with those gift memories and with the recipient's interests:
   loved gifts and likes count for it, disliked gifts and dislikes against it.
3. The persona itself (ChatMBTI with the type's adapter, its memories in the system context)
   writes a one-line reason for each of the best gifts; the reasons are generated together.

Exit codes: 0 ideas found, 2 bad input (unknown type, empty or unreadable catalogue),
1 nothing fits the budget.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

CATALOGUE = HERE / "gift_catalogue.json"
GIFT_CATEGORIES = ("gifts_loved", "gifts_disliked", "likes", "dislikes")
# How much each kind of evidence counts in a gift's score.
WEIGHTS = {"loved": 0.45, "interests": 0.35, "likes": 0.15, "disliked": -0.30,
           "dislikes": -0.10, "tag_match": 0.10}


class GiftBotError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def load_catalogue(path: Path) -> tuple[list[dict], str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GiftBotError(f"gift catalogue not found: {path}") from None
    except (OSError, ValueError) as e:
        raise GiftBotError(f"cannot read the gift catalogue {path}: {e}") from None
    gifts = data.get("gifts", data) if isinstance(data, dict) else data
    currency = data.get("currency", "USD") if isinstance(data, dict) else "USD"
    if not isinstance(gifts, list) or not gifts:
        raise GiftBotError(f"the gift catalogue {path} is empty: add gifts as "
                           '{"gifts": [{"name": ..., "price": ..., "tags": [...]}]}')
    out = []
    for i, g in enumerate(gifts):
        if not isinstance(g, dict) or not g.get("name") or "price" not in g:
            raise GiftBotError(f"gift #{i + 1} in {path} needs at least a name and a price")
        try:
            price = float(g["price"])
        except (TypeError, ValueError):
            raise GiftBotError(f"gift {g['name']!r} in {path} has a bad price {g['price']!r}") \
                from None
        out.append({"id": g.get("id", f"gift-{i + 1}"), "name": g["name"], "price": price,
                    "tags": [str(t).lower() for t in g.get("tags", [])],
                    "description": g.get("description", "")})
    return out, currency


def parse_interests(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,;/]| and ", text or "") if p.strip()]


def _cos_matrix(a, b):
    import numpy as np

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def score_gifts(gifts: list[dict], prefs: dict[str, list[str]], interests: list[str],
                embeddings) -> list[dict]:
    """Each gift with its score and the evidence: the closest memory of each kind."""
    import numpy as np

    docs = [f"{g['name']}: {g['description']} ({', '.join(g['tags'])})" for g in gifts]
    gv = embeddings.embed_documents(docs)
    kinds = {"loved": prefs.get("gifts_loved", []), "disliked": prefs.get("gifts_disliked", []),
             "likes": prefs.get("likes", []), "dislikes": prefs.get("dislikes", []),
             "interests": interests}
    sims = {k: _cos_matrix(gv, embeddings.embed_documents(v) if v else []) for k, v in
            kinds.items()}
    ranked = []
    for i, g in enumerate(gifts):
        parts, evidence = {}, {}
        for k, m in sims.items():
            if m.shape[1] == 0:
                parts[k] = 0.0
                continue
            row = m[i]
            j = int(np.argmax(row))
            # mean of the two best matches: one strong memory matters, two matter more
            parts[k] = float(np.mean(np.sort(row)[-2:]))
            evidence[k] = (kinds[k][j], round(float(row[j]), 3))
        words = {w for t in g["tags"] for w in t.split()} | set(g["tags"])
        hits = [x for x in interests if x.lower() in words
                or any(x.lower() in t or t in x.lower() for t in g["tags"])]
        parts["tag_match"] = float(len(hits) > 0)
        score = sum(WEIGHTS[k] * v for k, v in parts.items())
        ranked.append({**g, "score": round(score, 4),
                       "parts": {k: round(v, 3) for k, v in parts.items()},
                       "evidence": evidence, "matched_interests": hits})
    ranked.sort(key=lambda g: g["score"], reverse=True)
    return ranked


def first_sentence(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    m = re.search(r"(.+?[.!?])(\s|$)", text)
    text = m.group(1) if m else text
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def write_reasons(mbti: str, memory, picks: list[dict], interests: list[str], currency: str,
                  max_tokens: int, language: str) -> list[str]:
    """The persona says, in one line each, why it would like each gift (generated together)."""
    from mbti_persona import ChatMBTI
    from mbti_persona.persona import MBTIPersona

    persona = MBTIPersona(mbti=mbti, memory=memory, memory_k=3, memory_token_budget=90,
                          language=language)
    runnable = persona.wrap(ChatMBTI(max_tokens=max_tokens, temperature=0.3, seed=7))
    about = f" (you are into {', '.join(interests)})" if interests else ""
    questions = [
        f"Would you like {g['name'].lower()} as a gift{about}? {g['description']} "
        "Say why in one short sentence."
        for g in picks
    ]
    # batch() calls the model from several threads; the engine runs them as one batch.
    answers = runnable.batch(questions)
    return [first_sentence(a.text) or "(no words came)" for a in answers]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mbti", default="ENFP", help="the recipient's type, e.g. ENFP")
    ap.add_argument("--interests", default="", help='comma-separated, e.g. "music, travel"')
    ap.add_argument("--budget", type=float, default=50.0, help="the most to spend")
    ap.add_argument("--top", type=int, default=5, help="how many ideas")
    ap.add_argument("--catalogue", type=Path, default=CATALOGUE)
    ap.add_argument("--language", default="en", choices=["en", "zh"])
    ap.add_argument("--max-tokens", type=int, default=40, help="tokens per reason")
    ap.add_argument("--no-reasons", action="store_true", help="skip the persona's reasons")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--smoke", action="store_true", help="fast CI mode: 3 ideas, tiny reasons")
    args = ap.parse_args(argv)
    if args.smoke:
        args.top, args.max_tokens = min(args.top, 3), min(args.max_tokens, 8)

    try:
        return run(args)
    except GiftBotError as e:
        print(f"gift_bot: {e}", file=sys.stderr)
        return e.code


def run(args: argparse.Namespace) -> int:
    from mbti_persona.types import MBTIType, MBTITypeError

    try:
        mbti = MBTIType.parse(args.mbti)
    except MBTITypeError as e:
        raise GiftBotError(str(e)) from None
    if args.top < 1:
        raise GiftBotError("--top must be at least 1")
    gifts, currency = load_catalogue(args.catalogue)
    affordable = [g for g in gifts if g["price"] <= args.budget]
    if not affordable:
        cheapest = min(gifts, key=lambda g: g["price"])
        raise GiftBotError(f"no gift in the catalogue fits a budget of {currency} "
                           f"{args.budget:g}; the cheapest is {cheapest['name']} at "
                           f"{currency} {cheapest['price']:g}", code=1)
    interests = parse_interests(args.interests)

    import torch

    if args.smoke:  # CI: one thread; on a shared machine extra threads only spin
        torch.set_num_threads(1)
    from mbti_persona.embeddings import embedded_embeddings
    from mbti_persona.memory import PersonaMemory

    t0 = time.perf_counter()
    memory = PersonaMemory(mbti, in_memory=True, languages=args.language)
    prefs: dict[str, list[str]] = {c: [] for c in GIFT_CATEGORIES}
    for item in memory.get_all("self"):
        if item.category in prefs:
            prefs[item.category].append(item.text)
    if not prefs["gifts_loved"]:
        raise GiftBotError(f"the {mbti.letters} persona memory holds no gift preferences "
                           f"(categories {', '.join(GIFT_CATEGORIES)})")
    # What the persona recalls when asked about gifts for these interests (shown to the user).
    query = f"gifts I would love{' about ' + ', '.join(interests) if interests else ''}"
    recalled = memory.retrieve(query, k=3, kinds="self")
    ranked = score_gifts(affordable, prefs, interests, embedded_embeddings())
    picks = ranked[: args.top]
    reasons = [""] * len(picks)
    if not args.no_reasons:
        reasons = write_reasons(mbti.letters, memory, picks, interests, currency,
                                args.max_tokens, args.language)
    seconds = time.perf_counter() - t0
    memory.close()

    result = {
        "mbti": mbti.letters, "interests": interests, "budget": args.budget,
        "currency": currency, "considered": len(affordable), "seconds": round(seconds, 2),
        "recalled": [{"category": m.category, "text": m.text} for m in recalled],
        "ideas": [{"rank": i + 1, "id": g["id"], "name": g["name"], "price": g["price"],
                   "score": g["score"], "parts": g["parts"], "reason": reasons[i],
                   "matched_interests": g["matched_interests"],
                   "because": g["evidence"].get("loved", ("", 0))[0]}
                  for i, g in enumerate(picks)],
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0
    who = f"an {mbti.letters}"  # every type starts with E or I
    print(f"Gift ideas for {who} ({mbti.nickname})"
          f"{' into ' + ', '.join(interests) if interests else ''}, up to {currency} "
          f"{args.budget:g} ({len(affordable)} of {len(gifts)} gifts fit the budget):\n")
    print(f"What {mbti.letters} remembers about gifts:")
    for m in recalled:
        print(f"  - [{m.category}] {m.text}")
    print()
    for idea in result["ideas"]:
        print(f"{idea['rank']}. {idea['name']} - {currency} {idea['price']:g} "
              f"(score {idea['score']:.2f})")
        if idea["reason"]:
            print(f"   {mbti.letters} says: \"{idea['reason']}\"")
        if idea["because"]:
            print(f"   closest gift memory: {idea['because']}")
        if idea["matched_interests"]:
            print(f"   matches interests: {', '.join(idea['matched_interests'])}")
    print(f"\n({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
