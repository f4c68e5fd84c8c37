"""Simulation on LangGraph: one batched generation per round, JSONL transcripts, resume, stop."""

from __future__ import annotations

import json

import pytest

from conftest import MARKERS
from mbti_persona.persona import MBTIPersona
from mbti_persona.simulation import (Simulation, SimulationError, Turn, meta_path_for,
                                     turn_stats)

FOUR = [("Ivy", "INFP"), ("Sam", "ESTJ"), ("Pat", "ENTP"), ("Joy", "ISFJ")]
ADAPTERS = ("type:INFP", "type:ESTJ", "type:ENTP", "type:ISFJ")
TOPIC = "Plan a weekend trip"


def sim(engine, tmp_path=None, **kw):
    kw.setdefault("rounds", 2)
    kw.setdefault("max_tokens", 3)
    kw.setdefault("temperature", 0)
    kw.setdefault("seed", 5)
    path = None if tmp_path is None else tmp_path / "trip.jsonl"
    return Simulation(kw.pop("personas", FOUR), kw.pop("topic", TOPIC), engine=engine,
                      transcript=path, **kw)


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_each_round_is_one_mixed_adapter_batch(engine, tmp_path):
    s = sim(engine, tmp_path)
    n = len(engine.call_log)
    turns = s.run()
    batches = engine.call_log[n:]
    assert [b.adapters for b in batches] == [ADAPTERS, ADAPTERS]  # one BatchRecord per round
    assert [(t.round, t.name) for t in turns] == [(r, name) for r in (1, 2) for name, _ in FOUR]
    for t in turns:
        assert t.text.startswith(MARKERS[t.persona]), t
        assert t.tokens > 0 and t.time > 0 and t.batch_size == 4
        assert t.adapter == f"type:{t.persona}"
    # the JSONL transcript: one line per turn with round, persona, name, text, tokens, time
    rows = lines(s.path)
    assert [Turn.from_dict(r) for r in rows] == turns
    assert {"round", "persona", "name", "text", "tokens", "time"} <= set(rows[0])
    assert Simulation.load_transcript(s.path) == turns
    meta = json.loads(meta_path_for(s.path).read_text())
    assert meta["personas"][1]["name"] == "Sam" and meta["personas"][1]["mbti"] == "ESTJ"
    assert s.done and "round" in s.graph.get_graph().nodes


def test_unbatched_generates_one_by_one(engine):
    s = sim(engine, rounds=1, batched=False)
    n = len(engine.call_log)
    turns = s.run()
    assert [b.adapters for b in engine.call_log[n:]] == [(a,) for a in ADAPTERS]
    assert all(t.text.startswith(MARKERS[t.persona]) and t.batch_size == 1 for t in turns)


def test_stop_then_resume_continues_from_the_last_round(engine, tmp_path):
    s = sim(engine, tmp_path, rounds=3, on_round=lambda turns: s.stop())
    assert len(s.run()) == 4 and s.rounds_done == 1 and not s.done
    assert len(lines(s.path)) == 4

    again = Simulation.resume(s.path, engine=engine)
    assert again.rounds_done == 1 and again.names == ["Ivy", "Sam", "Pat", "Joy"]
    assert again.turns == s.turns and again.seed == 5 and again.max_tokens == 3
    n = len(engine.call_log)
    again.run(max_rounds=1)
    assert again.rounds_done == 2 and len(engine.call_log) == n + 1
    turns = again.run()
    assert again.done and [t.round for t in turns] == [1] * 4 + [2] * 4 + [3] * 4
    assert Simulation.load_transcript(s.path) == turns
    # a resumed round is built from the transcript exactly as an uninterrupted one
    assert again.messages_for(0, 3, turns) == s.messages_for(0, 3, turns)


def test_interrupt_mid_round_keeps_a_consistent_transcript(engine, tmp_path, monkeypatch):
    real = engine.generate
    calls = []

    def flaky(reqs):
        calls.append(len(reqs))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(reqs)

    monkeypatch.setattr(engine, "generate", flaky)
    s = sim(engine, tmp_path, rounds=3)
    turns = s.run()
    assert s.interrupted and s.rounds_done == 1 and len(turns) == 4
    assert [r["round"] for r in lines(s.path)] == [1, 1, 1, 1]

    calls.clear()
    s2 = Simulation.resume(s.path, engine=engine, on_interrupt="raise")
    with pytest.raises(KeyboardInterrupt):
        s2.run()
    assert len(lines(s.path)) == 8  # round 2 was written, round 3 never started writing


def test_resume_drops_an_incomplete_round_and_a_damaged_line(engine, tmp_path):
    s = sim(engine, tmp_path, rounds=2, max_tokens=2)
    s.run(max_rounds=1)
    good = s.path.read_text()
    partial = [dict(r, round=2) for r in lines(s.path)[:2]]
    s.path.write_text(good + "".join(json.dumps(r) + "\n" for r in partial) + '{"round": 2, "pe')
    resumed = Simulation.resume(s.path, engine=engine, rounds=3)
    assert resumed.rounds_done == 1 and resumed.rounds == 3
    assert s.path.read_text() == good
    assert json.loads(meta_path_for(s.path).read_text())["rounds"] == 3


def test_sixteen_personas_share_one_batch(engine):
    personas = [MBTIPersona(mbti=t, name=f"{t}-{i}") for i in range(4) for t in MARKERS]
    s = Simulation(personas, TOPIC, engine=engine, rounds=1, max_tokens=2, temperature=0,
                   context_turns=3)
    n = len(engine.call_log)
    turns = s.run()
    (batch,) = engine.call_log[n:]
    assert len(batch.adapters) == 16 and batch.adapters == tuple(s.adapters())
    assert [t.name for t in turns] == [p.persona_name for p in personas]
    assert all(t.text.startswith(MARKERS[t.persona][:2]) for t in turns)
    # prompts stay short: a persona sees only the last few turns, and "N others"
    msgs = s.messages_for(0, 2)
    assert msgs[1]["content"].count("\n") <= 3 + 4
    assert "15 others" in msgs[0]["content"]


def test_prompts_for_each_mode(engine):
    prev = [Turn(1, p, n, f"text {i}", 3, 0.1, index=i) for i, (n, p) in enumerate(FOUR)]
    conv = sim(engine, context_turns=2)
    first = conv.messages_for(1, 1, [])
    assert "You speak first" in first[1]["content"]
    assert first[0]["content"].startswith("Your name is Sam. You are a person with the ESTJ")
    later = conv.messages_for(1, 2, prev)[1]["content"]
    assert "Pat: text 2" in later and "Joy: text 3" in later and "Ivy" not in later

    debate = sim(engine, mode="debate", sides={"Ivy": "against"})
    sys_, user = debate.messages_for(0, 2, prev)
    assert "You argue against the motion" in sys_["content"]
    assert "Sam (against): text 1" in user["content"] and "Pat (for)" in user["content"]

    q = sim(engine, mode="question", questions=["What is home?", "What is rest?"])
    assert q.messages_for(2, 1, [])[1]["content"] == "What is home?"
    assert q.messages_for(2, 2, prev)[1]["content"] == "What is rest?"  # no one else's answers


def test_personas_with_memory_and_names(engine):
    p = MBTIPersona(mbti="INFP", name="Ivy", persona_prompt=False)
    s = Simulation([p, "ESTJ", "ESTJ"], TOPIC, engine=engine)
    assert s.names == ["Ivy", "ESTJ", "ESTJ-2"]
    assert s.messages_for(0, 1, [])[0]["content"].startswith("You are Ivy, in a group chat")


@pytest.mark.parametrize("kwargs, fragment", [
    ({"mode": "chat"}, "unknown mode 'chat'"),
    ({"rounds": 0}, "rounds must be >= 1"),
    ({"topic": " "}, "needs a topic"),
    ({"personas": []}, "at least one persona"),
    ({"personas": [("A", "INFP"), ("A", "ESTJ")]}, "names must be unique"),
    ({"personas": [42]}, "a persona must be"),
    ({"mode": "debate", "sides": {"Zed": "for"}}, "who is not in the simulation"),
])
def test_bad_settings(engine, kwargs, fragment):
    with pytest.raises(SimulationError, match=fragment):
        sim(engine, **kwargs)


def test_existing_transcript_is_not_overwritten(engine, tmp_path):
    (tmp_path / "trip.jsonl").write_text('{"round": 1}\n')
    with pytest.raises(SimulationError, match="resume"):
        sim(engine, tmp_path)
    with pytest.raises(SimulationError, match="no transcript"):
        Simulation.resume(tmp_path / "missing.jsonl")


def test_turn_stats():
    turns = [Turn(1, "ESTJ", "Sam", "First we book the hotel, then plan the budget.", 9, 0.1),
             Turn(1, "ENFP", "Ann", "Maybe we could just explore? I love surprises!", 9, 0.1)]
    st = turn_stats(turns)
    assert st["Sam"]["plan_per_100w"] > st["Sam"]["options_per_100w"]
    assert st["Ann"]["questions"] == 1 and st["Ann"]["options_per_100w"] > 0
    assert st["Ann"]["feeling_per_100w"] > 0 and st["Sam"]["words_per_turn"] == 9.0


def test_persona_memories_reach_the_round_prompt(engine):
    from mbti_persona.memory import PersonaMemory

    with PersonaMemory("ISFJ", user="sim-tests", in_memory=True) as mem:
        joy = MBTIPersona(mbti="ISFJ", name="Joy", memory=mem, memory_k=2,
                          memory_token_budget=80)
        s = Simulation([joy, ("Sam", "ESTJ")], "Where should we stay on the trip?",
                       engine=engine)
        system = s.messages_for(0, 1, [])[0]["content"]
        assert "Things you know about yourself and remember:" in system
        assert s.messages_for(1, 1, [])[0]["content"].count("Things you know") == 0
        assert s.settings()["personas"][0]["memory"] is None
