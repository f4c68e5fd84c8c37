"""The style evaluation with its generation offloaded to another machine (e.g. a GPU box that has
the engine's dependencies but not chromadb or the MiniLM judge).

    # 1. here: build every request of `eval style` (memories retrieved here) -> requests.json
    python bench/style_offload.py requests --mbti all --out runs/style/requests.json
    # 2. on the GPU: greedy answers for those requests -> answers.json
    python bench/style_offload.py generate --requests requests.json --out answers.json \
        [--model /root/mm/model.gguf --model-name HuggingFaceTB/SmolLM2-135M-Instruct]
    # 3. here: judge and write the report exactly as `mbti-persona eval style` does
    python bench/style_offload.py score --requests runs/style/requests.json \
        --answers answers.json --out runs/evaluation-16

Steps 1 and 3 run `evaluation.style.run_style` itself with an engine whose `generate` records
(step 1) or replays (step 3) the answers, so prompts, memories, batching and scoring are the
real ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
CONFIGS = "base,prompt,adapter,adapter+memory"


class _OffloadEngine:
    """Delegates to a real engine, except generate(): record requests or replay answers."""

    def __init__(self, engine, answers=None):
        self._engine, self._answers, self.recorded = engine, answers, []

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def generate(self, requests):
        from mbti_persona.generation import GenerationResult

        out = []
        for r in requests:
            key = json.dumps(list(r.tag))
            if self._answers is None:
                self.recorded.append({"tag": list(r.tag), "messages": r.messages,
                                      "adapter": r.adapter, "max_new_tokens": r.max_new_tokens})
                text = ""
            else:
                text = self._answers[key]
            out.append(GenerationResult(text, 0, 0, "stop", r.adapter, r.tag))
        return out


class _NullJudge:
    def __init__(self, judge):
        self._judge = judge

    def __getattr__(self, name):
        return getattr(self._judge, name)

    def score(self, texts):
        return [{d: 0.5 for d in self._judge.dimensions} for _ in texts]


def _run(args, answers=None):
    from mbti_persona.engine import get_engine
    from mbti_persona.evaluation.style import StyleJudge, run_style

    eng = _OffloadEngine(get_engine(), answers)
    judge = StyleJudge.default(args.language)
    report = run_style(eng, args.mbti, args.configs, judge=judge if answers else _NullJudge(judge),
                       language=args.language, max_new_tokens=args.max_new_tokens,
                       max_prompts=args.max_prompts, show_progress=False)
    return eng, report


def cmd_requests(args):
    eng, _ = _run(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args) | {"func": None},
                                          "requests": eng.recorded}))
    adapters = sorted({r["adapter"] for r in eng.recorded if r["adapter"]})
    print(f"{len(eng.recorded)} requests, {len(adapters)} adapters: {adapters}")


def cmd_generate(args):
    from mbti_persona.base_model import load_base_model
    from mbti_persona.engine import PersonaEngine
    from mbti_persona.generation import GenerationRequest

    data = json.loads(Path(args.requests).read_text())
    base = load_base_model(args.model, device=args.device, name=args.model_name)
    engine = PersonaEngine(base)
    for name in {r["adapter"] for r in data["requests"] if r["adapter"]}:
        if name.startswith("mix:"):  # mix:INFP, mix:INFP@I0_80 ... (composed pole adapters)
            got = engine.persona(name[4:].replace("_", "."), "dimensions").adapter
            assert got == name, (got, name)
        elif name not in engine.adapters:
            raise SystemExit(f"adapter {name!r} is not available here")
    reqs = [GenerationRequest(r["messages"], adapter=r["adapter"],
                              max_new_tokens=r["max_new_tokens"], temperature=0.0, seed=0,
                              tag=json.dumps(r["tag"])) for r in data["requests"]]
    reqs.sort(key=lambda r: len(engine.encode_chat(r.messages)))
    t0, answers = time.perf_counter(), {}
    for k in range(0, len(reqs), args.batch_size):
        for res in engine.generate(reqs[k:k + args.batch_size]):
            answers[res.tag] = res.text.strip()
    print(f"{len(answers)} answers in {time.perf_counter() - t0:.1f}s on {base.info.device}")
    Path(args.out).write_text(json.dumps(answers))


def cmd_score(args):
    from mbti_persona.evaluation.report import write_report

    data = json.loads(Path(args.requests).read_text())
    for k in ("mbti", "configs", "language", "max_new_tokens", "max_prompts"):
        setattr(args, k, data["settings"][k])
    _, report = _run(args, json.loads(Path(args.answers).read_text()))
    report.meta["generated_on"] = args.generated_on
    print(write_report(report, args.out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("requests")
    r.add_argument("--mbti", default="all")
    r.add_argument("--configs", default=CONFIGS)
    r.add_argument("--language", default="en")
    r.add_argument("--max-new-tokens", type=int, default=64)
    r.add_argument("--max-prompts", type=int, default=12)
    r.add_argument("--out", required=True)
    r.set_defaults(func=cmd_requests)
    g = sub.add_parser("generate")
    g.add_argument("--requests", required=True)
    g.add_argument("--model", default=None)
    g.add_argument("--model-name", default=None)
    g.add_argument("--device", default=None)
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--out", required=True)
    g.set_defaults(func=cmd_generate)
    s = sub.add_parser("score")
    s.add_argument("--requests", required=True)
    s.add_argument("--answers", required=True)
    s.add_argument("--generated-on", default="")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_score)
    args = ap.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
