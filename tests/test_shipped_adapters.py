"""The pole adapters shipped in the package: what ships, and that they carry the personality.

`ChatMBTI(mbti="ENFP")` and `ChatMBTI(mbti="ISTJ")` (defaults, so the shipped adapters are what
they use) answer the same prompts differently, and the shipped style judge reads each answer
set on its own type's side of the S/N, T/F and J/P dimensions. E/I is not asserted: the
shipped E adapter is the weak one (see docs/evaluation.md).
"""

from __future__ import annotations

import json
from statistics import mean

import pytest

from mbti_persona import ChatMBTI
from mbti_persona.adapters import read_adapter, shipped_adapters_dir
from mbti_persona.base_model import EMBEDDED_MODEL_NAME

SHIPPED = shipped_adapters_dir(EMBEDDED_MODEL_NAME)
POLES = "EISNTFJP"
PROMPTS = ["Describe your ideal weekend.",
           "Tell me how you prepare for a long journey.",
           "How do you handle a week with many deadlines?",
           "How would you choose a present for someone you barely know?"]


def test_the_eight_pole_adapters_ship_complete_and_small():
    from safetensors import safe_open

    total = 0
    for pole in POLES:
        folder = SHIPPED / pole
        meta = read_adapter(folder)
        assert meta.kind == "pole" and meta.pole == pole
        assert meta.base_model == EMBEDDED_MODEL_NAME
        assert meta.base_fingerprint == "llama-h576-l30-v49152-i1536"
        weights = folder / "adapter_model.safetensors"
        with safe_open(str(weights), "pt") as f:
            assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"BF16"}
        report = json.loads((folder / "training_report.json").read_text())
        assert report["stages"] == ["dimension", "self-awareness"]
        assert (folder / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
        total += sum(p.stat().st_size for p in folder.iterdir())
    assert total < 25 * 2**20, f"shipped adapters take {total / 2**20:.1f} MB (limit 25 MB)"


def test_chatmbti_uses_the_shipped_adapters_by_default(engine):
    from langchain_core.messages import HumanMessage

    for t in ("ENFP", "ISTJ"):
        req, meta = ChatMBTI(mbti=t)._prepare([HumanMessage("hi")], None, {})
        assert meta["adapter_source"] == "dimensions"
        composed = engine.persona(t, "dimensions")
        assert req.adapter == composed.adapter
        assert {pole for pole, w in composed.weights if w > 0.5} == set(t)


def test_enfp_and_istj_answer_differently_and_in_type(engine):
    from mbti_persona.evaluation.style import StyleJudge

    answers = {}
    for t in ("ENFP", "ISTJ"):
        llm = ChatMBTI(mbti=t, temperature=0, max_tokens=48)
        answers[t] = [m.text for m in llm.batch(PROMPTS)]
    for a, b in zip(answers["ENFP"], answers["ISTJ"]):
        assert a.strip() and b.strip() and a != b
    judge = StyleJudge.default("en")
    # P(first pole: S, T, J) per dimension, averaged over the answers
    p = {t: {d: mean(s[d] for s in judge.score(texts)) for d in ("SN", "TF", "JP")}
         for t, texts in answers.items()}
    for dim in ("SN", "TF", "JP"):
        assert p["ISTJ"][dim] > 0.5 > p["ENFP"][dim], (dim, p, answers)
        assert p["ISTJ"][dim] - p["ENFP"][dim] > 0.2, (dim, p)
