"""The fast decoder (stacked LoRA, static KV cache) matches the PEFT path on the real model."""

import pytest

from mbti_persona.generation import GenerationRequest

torch = pytest.importorskip("torch")


def chat(text):
    return [{"role": "user", "content": text}]


TEXTS = ["Hi.", "Tell me about your ideal weekend and how you would spend it with friends.",
         "What do you do when plans change at the last minute?", "Describe yourself."]


@pytest.fixture(scope="module")
def setup(private_base):
    """An engine of its own with the shipped pole adapters, on a copy of the base model (PEFT
    wraps the model it gets in place, so the session's copy is only borrowed while untouched)."""
    import copy

    from mbti_persona.base_model import LoadedBaseModel, load_base_model
    from mbti_persona.engine import PersonaEngine
    from mbti_persona.fast_decode import FastDecoder

    if any(hasattr(m, "lora_A") for m in private_base.model.modules()):
        base = load_base_model(device="cpu")
    else:
        base = LoadedBaseModel(copy.deepcopy(private_base.model), private_base.tokenizer,
                               private_base.info)
    eng = PersonaEngine(base, fast_decode=False)
    if len(eng.poles_available()) < 8:
        pytest.skip("the shipped pole adapters are missing")
    infp = eng.persona("INFP").adapter  # composed I+N+F+P ("cat")
    yield eng, FastDecoder(eng.model, eng.tokenizer), infp
    eng.close()


def _peft_logits(eng, seqs, adapters):
    """Logits at every position of left-padded sequences through PEFT mixed-adapter batches."""
    pad = eng.tokenizer.pad_token_id
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    attn = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s)
        attn[i, width - len(s):] = 1
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = eng.model(input_ids=ids, attention_mask=attn, position_ids=pos,
                        adapter_names=[a or "__base__" for a in adapters])
    return out.logits.float(), width


def test_prefill_logits_match_peft_for_a_mixed_batch(setup):
    eng, fast, infp = setup
    adapters = [None, "pole:I", infp, "pole:E"]  # base, poles, a composed type
    prompts = [eng.encode_chat(chat(t)) for t in TEXTS]
    assert len({len(p) for p in prompts}) == 4  # left padding of different widths
    ref, _ = _peft_logits(eng, prompts, adapters)
    got = fast.prefill_logits(prompts, adapters, pad_id=eng.tokenizer.pad_token_id).float()
    torch.testing.assert_close(got, ref[:, -1], atol=2e-3, rtol=1e-3)
    # The adapters really change the logits (so the comparison above means something).
    assert (ref[1, -1] - ref[0, -1]).abs().max() > 1e-2
    assert (ref[2, -1] - ref[1, -1]).abs().max() > 1e-2


def test_greedy_generation_and_step_logits_match_peft(setup):
    eng, fast, infp = setup
    adapters = [infp, None, "pole:T", "pole:P"]
    reqs = [GenerationRequest(chat(t), adapter=a, max_new_tokens=8, temperature=0)
            for t, a in zip(TEXTS, adapters)]
    prompts = [eng.encode_chat(r.messages) for r in reqs]
    trace = []
    fast.trace = trace
    try:
        fast_res = fast.decode(reqs, prompts=prompts, eos_ids=eng._eos_ids)
    finally:
        fast.trace = None
    eng.fast_decode = False
    peft_res = eng.generate(reqs)
    for f, p in zip(fast_res, peft_res):
        assert f.token_ids == p.token_ids, (f.adapter, f.text, p.text)
        assert (f.text, f.finish_reason, f.output_tokens) == (p.text, p.finish_reason,
                                                            p.output_tokens)
    # Logits of each decode step (KV cache, masks, positions) against a full PEFT forward.
    seqs = [p + f.token_ids for p, f in zip(prompts, fast_res)]
    ref, width = _peft_logits(eng, seqs, adapters)
    with torch.inference_mode():
        got = fast.prefill_logits(seqs, adapters, pad_id=eng.tokenizer.pad_token_id).float()
    torch.testing.assert_close(got, ref[:, -1], atol=2e-3, rtol=1e-3)
    for step, logits in enumerate(trace[1:], start=1):  # trace[0] is the prefill
        for i, (p, f) in enumerate(zip(prompts, fast_res)):
            if step >= len(f.token_ids):
                continue
            col = width - len(seqs[i]) + len(p) + step - 1
            torch.testing.assert_close(logits[i], ref[i, col], atol=2e-3, rtol=1e-3)


def test_engine_fast_path_streams_stops_and_logs(setup):
    eng, _, infp = setup
    eng.fast_decode = True
    try:
        before = len(eng.call_log)
        items = list(eng.stream(GenerationRequest(chat(TEXTS[3]), adapter=infp,
                                                  max_new_tokens=8, temperature=0)))
        *pieces, res = items
        assert "".join(pieces) == res.text and res.output_tokens == 8
        assert eng.call_log[-1].adapters == (infp,) and len(eng.call_log) == before + 1
        full = res.text
        stop = full.split()[1] if len(full.split()) > 1 else full[-2:]
        cut = eng.generate([GenerationRequest(chat(TEXTS[3]), adapter=infp, max_new_tokens=8,
                                              temperature=0, stop=[stop])])[0]
        assert cut.finish_reason == "stop" and cut.text == full[:full.find(stop)]
        # Seeded sampling is reproducible, top_k=1 is greedy, penalties apply per row.
        a, b = eng.generate([GenerationRequest(chat("hi"), seed=3, max_new_tokens=12)] * 2)
        assert a.token_ids == b.token_ids
        k1 = eng.generate([GenerationRequest(chat(TEXTS[3]), adapter=infp, max_new_tokens=8,
                                             top_k=1, seed=1)])[0]
        assert k1.token_ids == res.token_ids
    finally:
        eng.fast_decode = False


def test_adapters_added_or_replaced_later_are_picked_up(setup):
    eng, fast, infp = setup
    greedy = {"max_new_tokens": 6, "temperature": 0}
    prompts = [eng.encode_chat(chat(TEXTS[1]))] * 3
    fast.decode([GenerationRequest(chat(TEXTS[1]), adapter=infp, **greedy)],
                prompts=prompts[:1], eos_ids=eng._eos_ids)
    estj = eng.persona("ESTJ").adapter  # composed after the fast decoder's first call
    eng.load_adapter(eng.adapters["pole:S"].path, name="late-pole")  # a new adapter
    reqs = [GenerationRequest(chat(TEXTS[1]), adapter=a, **greedy)
            for a in (estj, "late-pole", infp)]
    got = fast.decode(reqs, prompts=prompts, eos_ids=eng._eos_ids)
    ref = eng.generate(reqs)
    assert [r.token_ids for r in got] == [r.token_ids for r in ref]
    # Re-created under the same name with other weights: the fast decoder notices.
    eng.model.delete_adapter(estj)
    eng.model.add_weighted_adapter(["pole:I", "pole:N"], [1.0, 1.0], adapter_name=estj,
                                   combination_type="cat")
    eng.model.eval()
    prompt = prompts[:1]
    got = fast.prefill_logits(prompt, [estj], pad_id=eng.tokenizer.pad_token_id).float()
    ref_logits, _ = _peft_logits(eng, prompt, [estj])
    torch.testing.assert_close(got, ref_logits[:, -1], atol=2e-3, rtol=1e-3)
    eng.unload_adapter("late-pole")
    fast.prefill_logits(prompt, [infp], pad_id=eng.tokenizer.pad_token_id)
    assert "late-pole" not in fast._slots and estj in fast._slots  # deleted slots are freed


def test_threads_never_cross_adapters_on_the_fast_path(setup):
    import threading

    eng, _, infp = setup
    adapters = [infp, "pole:S", None, "pole:J"]

    def req(a, i=None):
        return GenerationRequest(chat(TEXTS[2]), adapter=a, max_new_tokens=4, temperature=0,
                                 tag=i)

    eng.fast_decode = False
    expected = {a: r.token_ids for a, r in zip(adapters, eng.generate([req(a) for a in adapters]))}
    types = adapters * 2
    results = [None] * len(types)

    def worker(i, a):
        results[i] = eng.complete(req(a, i))

    eng.fast_decode = True
    before = len(eng.call_log)
    try:
        threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(types)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        eng.fast_decode = False
    for i, (a, res) in enumerate(zip(types, results)):
        assert res.tag == i and res.adapter == a and res.token_ids == expected[a], (a, res.text)
    assert any(len(set(b.adapters)) > 1 for b in eng.call_log[before:]), "expected mixed batches"
