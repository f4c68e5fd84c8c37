"""Tiny end-to-end runs of every training recipe on the real embedded model (CPU, a few minutes).

Each run trains a rank-4 LoRA for 1-2 steps on a handful of records (max length 64) and checks that
the adapter folder is complete and loadable, and that it changes the model's greedy output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("datasets")

DATA = Path(__file__).parents[1].parent / "shared" / "data"
if not (DATA / "machine-mindset").is_dir() or not (DATA / "mbti-extra").is_dir():
    pytest.skip(f"shared training data not found at {DATA} (machine-mindset/ and mbti-extra/)",
                allow_module_level=True)

DIRS = [str(DATA / "machine-mindset"), str(DATA / "mbti-extra")]
PROMPT = "Describe how you would spend a free weekend."
TINY = dict(data=DIRS, language="en", rank=4, max_samples=6, max_eval_samples=2, max_length=64,
            batch_size=2, max_steps=2, save_steps=2, logging_steps=1, lr=1e-2, replay_ratio=0.0,
            eval=False, progress=False, seed=0)


@pytest.fixture(scope="module")
def base():
    import torch

    from mbti_persona.base_model import load_base_model

    torch.manual_seed(0)
    return load_base_model(device="cpu")


def _greedy(base, adapter_dir=None, n=20):
    import torch

    tok = base.tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False,
                                   add_generation_prompt=True)
    enc = tok(text, return_tensors="pt", add_special_tokens=False)
    model = base.model
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(base.model, str(adapter_dir))
    try:
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=n, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
    finally:
        if adapter_dir is not None:
            base.model = model.unload()
    return out[0, enc["input_ids"].shape[1]:].tolist()


@pytest.fixture(scope="module")
def base_output(base):
    return _greedy(base)


def _check_adapter(folder: Path, kind: str, name: str, stages: list[str]):
    from mbti_persona.adapters import read_adapter

    for f in ("adapter_model.safetensors", "adapter_config.json", "mbti_persona.json",
              "training_report.json", "loss_curve.png"):
        assert (folder / f).is_file(), f"{folder} lacks {f}"
    assert not list(folder.glob("*.bin"))
    meta = read_adapter(folder)
    assert meta.kind == kind and (meta.pole if kind == "pole" else meta.type) == name
    assert meta.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta.base_fingerprint == "llama-h576-l30-v49152-i1536"
    assert meta.extra["stages"] == stages
    from safetensors import safe_open

    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        dtypes = {str(f.get_slice(k).get_dtype()) for k in f.keys()}
    assert dtypes == {"BF16"}
    report = json.loads((folder / "training_report.json").read_text())
    for key in ("data", "steps", "train_seconds", "samples_per_second", "final_train_loss",
                "device", "versions", "config", "log_history"):
        assert key in report, key
    assert (folder / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    return report


@pytest.fixture(scope="module")
def stage1(base, tmp_path_factory):
    """A dimension run interrupted after its first checkpoint, then resumed."""
    from mbti_persona.training import TrainConfig, TrainingInterrupted, train

    out = tmp_path_factory.mktemp("dimension")
    cfg = dict(TINY, recipe="dimension", poles=["E"], output=str(out), max_steps=2, save_steps=1,
               replay_ratio=0.5, replay_max_new_tokens=8, eval=True, eval_steps=100)
    with pytest.raises(TrainingInterrupted):
        train(TrainConfig.from_sources(None, dict(cfg, interrupt_after_steps=1)), base=base)
    work = out / ".mbti-train" / "dimension-E"
    checkpoints = sorted(p.name for p in work.glob("checkpoint-*"))
    assert not (out / "E").exists()
    (result,) = train(TrainConfig.from_sources(None, dict(cfg, resume=True)), base=base)
    return {"out": out, "checkpoints": checkpoints, "result": result, "cfg": cfg}


def test_dimension_resume_after_interruption(stage1, base, base_output):
    from mbti_persona.training import TrainConfig, train

    assert stage1["checkpoints"] == ["checkpoint-1"]
    r = stage1["result"]
    assert r.status == "trained"
    report = _check_adapter(r.path, "pole", "E", ["dimension"])
    assert report["resumed_from_step"] == 1 and report["steps"] == 2
    assert report["data"]["behaviour_train"] == 6 and report["data"]["replay_train"] == 3
    assert "eval_behaviour_loss" in report["final_eval"]
    assert "eval_replay_loss" in report["final_eval"]
    assert not list((stage1["out"] / ".mbti-train" / "dimension-E").glob("checkpoint-*"))
    assert _greedy(base, r.path) != base_output
    # a finished adapter is not retrained
    mtime = (r.path / "adapter_model.safetensors").stat().st_mtime_ns
    (again,) = train(TrainConfig.from_sources(None, dict(stage1["cfg"], resume=True)), base=base)
    assert again.status == "skipped"
    assert (r.path / "adapter_model.safetensors").stat().st_mtime_ns == mtime


def test_type_recipe_through_the_cli(tmp_path, monkeypatch, base, base_output):
    from mbti_persona.training.cli import add_train_arguments, run_train

    cfg_file = tmp_path / "train.json"
    cfg_file.write_text(json.dumps(dict(TINY, recipe="type", types=["INFP"])))
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--config", str(cfg_file), "--output", str(tmp_path / "out")])
    # run_train loads its own base model: hand it the loaded one, for speed
    monkeypatch.setattr("mbti_persona.base_model.load_base_model", lambda *a, **k: base)
    assert run_train(args) == 0
    folder = tmp_path / "out" / "type-INFP"
    report = _check_adapter(folder, "type", "INFP", ["type"])
    assert report["data"]["behaviour_train"] == 6
    assert _greedy(base, folder) != base_output


def test_self_awareness_on_top_of_stage1(stage1, tmp_path, base, base_output):
    from mbti_persona.training import TrainConfig, train

    cfg = dict(TINY, recipe="self-awareness", poles=["E"], init_adapters=str(stage1["out"]),
               output=str(tmp_path), rehearsal_ratio=0.5)
    (r,) = train(TrainConfig.from_sources(None, cfg), base=base)
    report = _check_adapter(r.path, "pole", "E", ["dimension", "self-awareness"])
    assert report["data"]["self_awareness_train"] == 6
    assert report["data"]["rehearsal_train"] == 3
    assert _greedy(base, r.path) != base_output


def test_dpo_on_top_of_stage1(stage1, tmp_path, base, base_output):
    from mbti_persona.training import TrainConfig, train

    cfg = dict(TINY, recipe="dpo", poles=["E"], init_adapters=str(stage1["out"]),
               output=str(tmp_path), lr=1e-3, max_steps=1)
    (r,) = train(TrainConfig.from_sources(None, cfg), base=base)
    report = _check_adapter(r.path, "pole", "E", ["dimension", "dpo"])
    assert report["data"]["preference_train"] == 6
    assert _greedy(base, r.path) != base_output
    # only the trained adapter is saved (not TRL's frozen "ref" copy)
    assert not (r.path / "ref").exists()


def test_missing_stage1_is_a_clear_error(tmp_path, base):
    from mbti_persona.training import TrainConfig, TrainingError, train

    cfg = dict(TINY, recipe="dpo", poles=["I"], output=str(tmp_path))
    with pytest.raises(TrainingError, match="Train it first"):
        train(TrainConfig.from_sources(None, cfg), base=base)
