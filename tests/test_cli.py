"""The mbti-persona command, run as a user would (a subprocess, the real embedded model)."""

import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "mbti_persona.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def run(*args, timeout=300):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def test_types_lists_sixteen():
    out = run("types")
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 16
    assert {l[:4] for l in lines} == set(__import__("mbti_persona").ALL_TYPES)


def test_chat_one_message_streams_an_answer(test_adapters_dir):
    out = run("chat", "--mbti", "isfj", "--message", "hi", "--max-tokens", "8",
              "--temperature", "0", "--adapters", str(test_adapters_dir))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Blanket")
    assert "ISFJ on HuggingFaceTB/SmolLM2-135M-Instruct" in out.stderr
    assert "whole-type adapter" in out.stderr


def test_chat_interactive_reads_stdin(test_adapters_dir):
    p = subprocess.run(CLI + ["chat", "--mbti", "ENTP", "--max-tokens", "6", "--temperature", "0",
                              "--adapters", str(test_adapters_dir)],
                       input="hello\nand again\n\n", capture_output=True, text=True, env=ENV,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("Paradox") >= 2


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["chat", "--mbti", "XNTP", "-m", "hi"], "letter 1 is 'X'"),
        (["chat", "--mbti", "INFP", "--intensity", "I=2", "-m", "hi"], "between 0.5"),
        (["chat", "--mbti", "INFP", "--model", "/no/such/model", "-m", "hi"], "neither an existing path"),
    ],
)
def test_bad_input_is_one_clear_line(args, fragment):
    out = run(*args)
    assert out.returncode == 2
    assert fragment in out.stderr and "Traceback" not in out.stderr
