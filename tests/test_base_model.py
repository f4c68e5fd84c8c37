
import pytest

from mbti_persona.base_model import (EMBEDDED_MODEL_NAME, BaseModelError, embedded_gguf_path,
                                     load_base_model, verify_embedded)


def test_embedded_model_is_verified_and_loaded(private_base):
    info = private_base.info
    assert info.name == EMBEDDED_MODEL_NAME
    assert info.device == "cpu" and info.dtype == "float32"
    assert info.fingerprint.startswith("llama-h576-l30")
    assert private_base.tokenizer.padding_side == "left"
    assert verify_embedded() == embedded_gguf_path()


def test_corrupt_gguf_is_refused(tmp_path):
    fake = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 1000)
    with pytest.raises(BaseModelError, match="sha256"):
        verify_embedded(fake)


def test_missing_path(tmp_path):
    with pytest.raises(BaseModelError, match="neither an existing path nor a hub id"):
        load_base_model(str(tmp_path / "nope" / "model"))


def test_folder_without_model(tmp_path):
    (tmp_path / "readme.txt").write_text("not a model")
    with pytest.raises(BaseModelError, match="neither a config.json nor a .gguf"):
        load_base_model(tmp_path)


def test_hub_id_offline_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(BaseModelError, match="offline"):
        load_base_model("someorg/not-a-cached-model")


def test_bad_dtype():
    with pytest.raises(BaseModelError, match="unknown dtype"):
        load_base_model(dtype="float7")


def test_local_folder_round_trip(private_base, tmp_path):
    """A model saved with save_pretrained loads from its folder (the path users take)."""
    out = tmp_path / "smol"
    private_base.model.save_pretrained(out)
    private_base.tokenizer.save_pretrained(out)
    loaded = load_base_model(out, name="my-smol")
    assert loaded.info.name == "my-smol"
    assert loaded.info.fingerprint == private_base.info.fingerprint
