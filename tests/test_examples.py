"""Each example runs offline with one command in --smoke mode (subprocesses, run side by side)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _start(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(EXAMPLES / script), *args], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """All three examples in --smoke mode, started together (each loads the model once)."""
    trip = tmp_path_factory.mktemp("sim") / "trip.jsonl"
    procs = {
        "gift": _start("gift_bot.py", "--mbti", "ENFP", "--interests", "music, travel",
                       "--budget", "50", "--smoke", "--json"),
        "sim": _start("simulation.py", "--smoke", "--transcript", str(trip)),
        "agent": _start("agent_with_personality.py", "--smoke"),
    }
    out = {}
    for key, p in procs.items():
        try:
            stdout, stderr = p.communicate(timeout=420)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        out[key] = (p.returncode, stdout, stderr)
    out["trip"] = trip
    return out


def _ok(run):
    code, stdout, stderr = run
    assert code == 0, f"exit {code}\n{stdout}\n{stderr[-3000:]}"
    return stdout


def test_gift_bot_smoke(smoke_runs):
    result = json.loads(_ok(smoke_runs["gift"]))
    assert result["mbti"] == "ENFP" and result["interests"] == ["music", "travel"]
    ideas = result["ideas"]
    assert len(ideas) == 3 and [i["rank"] for i in ideas] == [1, 2, 3]
    assert all(i["price"] <= 50 for i in ideas)
    assert [i["score"] for i in ideas] == sorted((i["score"] for i in ideas), reverse=True)
    assert all(isinstance(i["reason"], str) and i["reason"] for i in ideas)
    assert any(i["matched_interests"] for i in ideas)
    assert {m["category"] for m in result["recalled"]} & {"gifts_loved", "gifts_disliked"}


def test_simulation_smoke(smoke_runs):
    stdout = _ok(smoke_runs["sim"])
    assert "-- round 1" in stdout and "-- round 2" in stdout and "one batch" in stdout
    for name in ("Ivy (INFP)", "Sam (ESTJ)", "Pat (ENTP)", "Joy (ISFJ)"):
        assert name in stdout
    assert "How each personality behaved" in stdout and "words/turn" in stdout
    rows = [json.loads(x) for x in smoke_runs["trip"].read_text().splitlines()]
    assert [r["round"] for r in rows] == [1] * 4 + [2] * 4


def test_agent_with_personality_smoke(smoke_runs):
    stdout = _ok(smoke_runs["agent"])
    assert "ENTJ agent:" in stdout and "persona ENTJ" in stdout
    assert "calculator('360 / 4') -> 90.0" in stdout
    assert "ask_infp:" in stdout
    assert "You are a person with the ENTJ personality type" in stdout
    assert "Use the calculator for arithmetic." in stdout


def _quick(*args):
    p = subprocess.run([sys.executable, str(EXAMPLES / "gift_bot.py"), *args], cwd=ROOT,
                       env=_env(), capture_output=True, text=True, timeout=120)
    return p.returncode, p.stderr


def test_gift_bot_unknown_type_and_empty_catalogue(tmp_path):
    code, err = _quick("--mbti", "XNFP", "--smoke")
    assert code == 2 and "unknown MBTI type 'XNFP'" in err
    empty = tmp_path / "empty.json"
    empty.write_text('{"gifts": []}')
    code, err = _quick("--catalogue", str(empty), "--smoke")
    assert code == 2 and "is empty" in err
    code, err = _quick("--catalogue", str(tmp_path / "nope.json"), "--smoke")
    assert code == 2 and "not found" in err
    pricey = tmp_path / "pricey.json"
    pricey.write_text('{"gifts": [{"name": "Sailing boat", "price": 900}]}')
    code, err = _quick("--catalogue", str(pricey), "--budget", "10")
    assert code == 1 and "no gift in the catalogue fits a budget of USD 10" in err
