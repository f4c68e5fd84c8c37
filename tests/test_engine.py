"""The engine: adapters load, compose and never cross between concurrent requests."""

import asyncio
import json
import shutil
import threading

import pytest

from conftest import MARKERS
from mbti_persona.adapters import AdapterError
from mbti_persona.generation import GenerationRequest


def chat(text="Tell me about yourself."):
    return [{"role": "user", "content": text}]


def greedy(adapter, text="Tell me about yourself.", n=12, **kw):
    return GenerationRequest(chat(text), adapter=adapter, max_new_tokens=n, temperature=0, **kw)


def test_marker_adapters_answer_with_their_marker(engine):
    reqs = [greedy(f"type:{t}") for t in MARKERS] + [greedy(None)]
    results = engine.generate(reqs)
    for t, res in zip(MARKERS, results):
        assert res.text.startswith(MARKERS[t]), (t, res.text)
        assert res.adapter == f"type:{t}"
    assert not any(m in results[-1].text for m in MARKERS.values())
    # One forward batch served all five rows, each with its own adapter.
    rec = engine.call_log[-1]
    assert rec.adapters == tuple(f"type:{t}" for t in MARKERS) + (None,)


def test_persona_resolution_prefers_type_adapter(engine):
    assert engine.persona("infp").adapter == "type:INFP"
    assert engine.persona("INFP", mode="none").adapter is None
    with pytest.raises(AdapterError, match="no whole-type adapter for INTJ"):
        engine.persona("INTJ", mode="type")
    if {"I", "N", "T", "J"} <= engine.poles_available():  # shipped pole adapters
        assert engine.persona("INTJ", mode="dimensions").source == "dimensions"
    else:
        with pytest.raises(AdapterError, match="needs the pole adapters"):
            engine.persona("INTJ", mode="dimensions")


def test_threads_never_cross_adapters(engine):
    """24 requests from 24 threads at once, six per marker adapter: each gets its own."""
    types = list(MARKERS) * 6
    results = [None] * len(types)

    def worker(i, t):
        results[i] = engine.complete(greedy(f"type:{t}", n=6, tag=i))

    before = len(engine.call_log)
    threads = [threading.Thread(target=worker, args=(i, t)) for i, t in enumerate(types)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for i, (t, res) in enumerate(zip(types, results)):
        assert res.tag == i
        assert res.text.startswith(MARKERS[t]), (t, res.text)
    batches = engine.call_log[before:]
    assert len(batches) < len(types), "concurrent requests should share forward batches"
    assert any(len(set(b.adapters)) > 1 for b in batches), "expected mixed-adapter batches"


async def test_async_tasks_never_cross_adapters(engine):
    types = (list(MARKERS) + [None]) * 4

    async def ask(t):
        res = await engine.acomplete(greedy(f"type:{t}" if t else None, n=6))
        return t, res

    for t, res in await asyncio.gather(*(ask(t) for t in types)):
        if t is None:
            assert not any(m in res.text for m in MARKERS.values()), res.text
        else:
            assert res.text.startswith(MARKERS[t]), (t, res.text)


def test_stream_yields_pieces_then_result(engine):
    items = list(engine.stream(greedy("type:ENTP", n=8)))
    *pieces, result = items
    assert "".join(pieces) == result.text
    assert result.text.startswith("Paradox") and len(pieces) >= 2


def test_stop_sequences_and_lengths(engine):
    res = engine.generate([greedy("type:ESTJ", n=30, stop=["list"])])[0]
    assert res.text == "Check" and res.finish_reason == "stop"
    res = engine.generate([greedy(None, n=5)])[0]
    assert res.output_tokens == 5 and res.finish_reason == "length"


def test_seeded_sampling_is_reproducible(engine):
    a, b = engine.generate([GenerationRequest(chat(), seed=7, max_new_tokens=16)] * 2)
    assert a.text == b.text


def test_composition_is_the_weighted_sum_of_pole_adapters(private_base, tmp_path):
    """Dimension adapters compose into a type: delta(mix) = sum_i w_i * delta(pole_i)."""
    import torch
    from adapter_factory import random_adapter

    from mbti_persona.engine import PersonaEngine

    for i, p in enumerate("EINFP"):
        random_adapter(private_base, tmp_path / p, pole=p, seed=i)
    eng = PersonaEngine(private_base, adapter_dirs=[tmp_path], load_shipped_adapters=False)
    assert eng.poles_available() == set("EINFP")
    from mbti_persona.types import MBTIType

    t = MBTIType.parse("INFP", {"I": 0.8})
    resolved = eng.persona(t)
    assert resolved.source == "dimensions" and resolved.adapter == "mix:INFP@I0_80"
    assert dict(resolved.weights) == {"I": 0.8, "E": pytest.approx(0.2), "N": 1.0, "F": 1.0,
                                      "P": 1.0}
    layer = eng.model.base_model.model.model.layers[3].self_attn.q_proj

    def delta(name):
        return layer.get_delta_weight(name)

    expected = sum(w * delta(f"pole:{p}") for p, w in resolved.weights)
    assert torch.allclose(delta(resolved.adapter), expected, atol=1e-5)
    # The composed persona really changes the output, and the base rows stay the base.
    r = eng.generate([greedy(resolved.adapter, n=8), greedy(None, n=8)])
    assert r[0].text != r[1].text
    eng.close()


def _adapter_copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_adapter_for_another_base_model_is_refused(engine, test_adapters_dir, tmp_path):
    bad = _adapter_copy(test_adapters_dir / "type-INFP", tmp_path / "other")
    meta = json.loads((bad / "mbti_persona.json").read_text())
    meta.update(base_model="Qwen/Qwen2.5-7B-Instruct", base_fingerprint="qwen2-h3584-l28")
    (bad / "mbti_persona.json").write_text(json.dumps(meta))
    with pytest.raises(AdapterError, match="made for base model 'Qwen/Qwen2.5-7B-Instruct'"):
        engine.load_adapter(bad, name="other")
    assert "other" not in engine.adapters


def test_unlabelled_adapter_with_wrong_shapes_is_refused(engine, private_base, tmp_path):
    """A plain PEFT folder from another architecture fails on tensor shapes, clearly."""
    import torch
    from safetensors.torch import load_file, save_file

    from adapter_factory import random_adapter

    bad = random_adapter(private_base, tmp_path / "wrong")
    (bad / "mbti_persona.json").unlink()
    weights = {k: torch.zeros(v.shape[0] + 7, v.shape[1]) if "lora_B" in k else v
               for k, v in load_file(bad / "adapter_model.safetensors").items()}
    save_file(weights, bad / "adapter_model.safetensors")
    with pytest.raises(AdapterError, match="does not fit base model"):
        engine.load_adapter(bad, name="wrong")
    assert "wrong" not in engine.adapters
    # The engine still serves the other adapters.
    assert engine.generate([greedy("type:INFP", n=4)])[0].text.startswith("Moonlight")


def test_pickle_weights_and_missing_folders_are_refused(engine, test_adapters_dir, tmp_path):
    bad = _adapter_copy(test_adapters_dir / "type-ISFJ", tmp_path / "pickled")
    (bad / "adapter_model.safetensors").rename(bad / "adapter_model.bin")
    with pytest.raises(AdapterError, match="pickle weights"):
        engine.load_adapter(bad)
    with pytest.raises(AdapterError, match="does not exist"):
        engine.load_adapter(tmp_path / "missing")
    with pytest.raises(AdapterError, match="already loaded"):
        engine.load_adapter(test_adapters_dir / "type-ISFJ")
    with pytest.raises(AdapterError, match="no adapter named 'type:XXXX'"):
        engine.generate([greedy("type:XXXX")])


def test_score_continuations_prefers_the_adapters_marker(engine):
    base = engine.score_continuations(chat("hi"), ["Moonlight", "Checklist"])
    infp = engine.score_continuations(chat("hi"), ["Moonlight", "Checklist"], adapter="type:INFP")
    assert infp[0] > infp[1]
    assert infp[0] > base[0]
