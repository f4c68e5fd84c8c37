"""Shared fixtures: the real embedded base model, and small real adapters made for the tests."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

# Whole-type marker adapters: each teaches the model to open its answers with a word of its own,
# so a test can tell which adapter produced an answer.
MARKERS = {"INFP": "Moonlight", "ESTJ": "Checklist", "ENTP": "Paradox", "ISFJ": "Blanket"}

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    """MBTI_TEST_THREADS=1 on a machine whose cores are busy with other work: torch's default
    (one thread per core) then spins against the other jobs and runs many times slower."""
    n = int(os.environ.get("MBTI_TEST_THREADS", "0") or 0)
    if n > 0:
        import torch

        torch.set_num_threads(n)
    yield


def _cache_root() -> Path:
    """Adapters made by the tests are cached per version of the factory (CI starts empty)."""
    src = (Path(__file__).parent / "adapter_factory.py").read_bytes()
    key = hashlib.sha256(src + repr(sorted(MARKERS.items())).encode()).hexdigest()[:12]
    base = Path(os.environ.get("MBTI_TEST_CACHE", Path.home() / ".cache" / "mbti-persona-tests"))
    return base / key


@pytest.fixture(scope="session")
def test_adapters_dir() -> Path:
    """Folder with the four marker type adapters (trained once, a few steps each)."""
    root = _cache_root() / "markers"
    if all((root / f"type-{t}" / "mbti_persona.json").is_file() for t in MARKERS):
        return root
    from adapter_factory import train_marker_adapter

    from mbti_persona.base_model import load_base_model

    base = load_base_model()  # a private copy: training must not touch the shared engine
    tmp = root.with_name("markers.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for t, marker in MARKERS.items():
        train_marker_adapter(base, tmp / f"type-{t}", marker, mbti_type=t, steps=24)
    shutil.rmtree(root, ignore_errors=True)
    tmp.replace(root)
    return root


@pytest.fixture(scope="session")
def engine(test_adapters_dir):
    """The process-wide shared engine (the one ChatMBTI uses), with the marker adapters."""
    from mbti_persona.engine import get_engine

    eng = get_engine()
    for t in MARKERS:
        if f"type:{t}" not in eng.adapters:
            eng.load_adapter(test_adapters_dir / f"type-{t}")
    return eng


@pytest.fixture(scope="session")
def private_base():
    """A second copy of the base model for tests that build adapters or engines of their own."""
    from mbti_persona.base_model import load_base_model

    return load_base_model()
