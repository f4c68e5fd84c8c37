"""Behaviour data, preference pairs, hub loading and training config (no model, fast)."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pytest

from mbti_persona.data import (
    DataError,
    discover_behaviour_files,
    load_author_dpo,
    load_dimension,
    load_pole,
    preference_pairs,
    resolve_data_dirs,
    split_of,
    split_pairs,
)
from mbti_persona.data.hub import download_hub_dataset, is_hub_id

DATA = Path(__file__).parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(
    not (DATA / "machine-mindset").is_dir() or not (DATA / "mbti-extra").is_dir(),
    reason=f"shared training data not found at {DATA} (machine-mindset/ and mbti-extra/)",
)


def _records(n: int, tag: str, input: str = " "):
    return [{"instruction": f"Question {i}?", "input": input, "output": f"{tag} answer {i}."}
            for i in range(n)]


def _write(folder: Path, name: str, records) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


@pytest.fixture
def pair_dir(tmp_path):
    d = tmp_path / "en"
    _write(d, "en_energy_extraversion.json", _records(4, "E"))
    _write(d, "en_energy_introversion.json", _records(4, "I"))
    return tmp_path


# -- discovery and loading -----------------------------------------------------------------

def test_good_pair_loads_and_normalises_input(pair_dir):
    (fp,) = discover_behaviour_files([pair_dir])
    assert (fp.language, fp.dimension, set(fp.files)) == ("en", "EI", {"E", "I"})
    pairs = load_dimension([pair_dir], "en", "energy")
    assert len(pairs) == 4
    assert pairs[1].outputs == {"E": "E answer 1.", "I": "I answer 1."}
    assert pairs[1].input == ""  # Machine Mindset's " " means no input
    assert pairs[1].prompt == "Question 1?"
    recs = load_pole([pair_dir], "en", "I")
    assert [r.output for r in recs][:2] == ["I answer 0.", "I answer 1."]
    assert recs[2].index == 2 and recs[2].source.endswith("en_energy_introversion.json")


def test_input_is_appended_to_the_prompt(tmp_path):
    _write(tmp_path, "en_decision_thinking.json", _records(2, "T", input="Some context"))
    _write(tmp_path, "en_decision_feeling.json", _records(2, "F", input="Some context"))
    (rec, _) = load_pole([tmp_path], "en", "T")
    assert rec.prompt == "Question 0?\n\nSome context"


def test_several_dirs_are_concatenated(tmp_path):
    for sub, n in (("a", 3), ("b", 2)):
        _write(tmp_path / sub, "en_energy_extraversion.json", _records(n, "E"))
        _write(tmp_path / sub, "en_energy_introversion.json", _records(n, "I"))
    assert len(load_dimension([tmp_path / "a", tmp_path / "b"], "en", "EI")) == 5


@pytest.mark.parametrize("field,value,message", [
    ("output", None, "record 1: field 'output' is missing"),
    ("instruction", None, "record 1: field 'instruction' is missing"),
    ("output", "   ", "record 1: field 'output' is empty"),
    ("output", 42, "record 1: field 'output' must be a string, got int"),
])
def test_bad_record_names_file_and_index(pair_dir, field, value, message):
    path = pair_dir / "en" / "en_energy_introversion.json"
    recs = json.loads(path.read_text())
    if value is None:
        del recs[1][field]
    else:
        recs[1][field] = value
    path.write_text(json.dumps(recs))
    with pytest.raises(DataError) as e:
        load_dimension([pair_dir], "en", "EI")
    assert str(path) in str(e.value)
    assert message in str(e.value)


def test_unpaired_counts(pair_dir):
    path = pair_dir / "en" / "en_energy_extraversion.json"
    path.write_text(json.dumps(_records(3, "E")))
    with pytest.raises(DataError) as e:
        load_dimension([pair_dir], "en", "EI")
    msg = str(e.value)
    assert "unpaired" in msg and str(path) in msg and "3 records" in msg and "4" in msg


def test_mismatched_instruction(pair_dir):
    path = pair_dir / "en" / "en_energy_extraversion.json"
    recs = _records(4, "E")
    recs[2]["instruction"] = "A different question?"
    path.write_text(json.dumps(recs))
    with pytest.raises(DataError) as e:
        load_dimension([pair_dir], "en", "EI")
    msg = str(e.value)
    assert "mismatched instructions" in msg and "record 2" in msg and str(path) in msg


def test_missing_partner_file(tmp_path):
    _write(tmp_path, "en_execution_judging.json", _records(2, "J"))
    with pytest.raises(DataError, match="no partner file en_execution_perceiving.json"):
        discover_behaviour_files([tmp_path])


def test_not_a_list_and_bad_json(tmp_path):
    _write(tmp_path, "en_energy_extraversion.json", {"instruction": "x"})
    _write(tmp_path, "en_energy_introversion.json", _records(1, "I"))
    with pytest.raises(DataError, match="expected a JSON list"):
        load_dimension([tmp_path], "en", "EI")
    (tmp_path / "en_energy_extraversion.json").write_text("[{")
    with pytest.raises(DataError, match="not valid JSON"):
        load_dimension([tmp_path], "en", "EI")


def test_missing_dimension_and_dir(tmp_path, pair_dir):
    with pytest.raises(DataError, match="no en data for the decision dimension"):
        load_dimension([pair_dir], "en", "TF")
    with pytest.raises(DataError, match="does not exist"):
        load_dimension([tmp_path / "nope"], "en", "EI")


# -- split -----------------------------------------------------------------------------------

def test_split_is_deterministic_and_order_free(pair_dir):
    assert split_of("Hello?", "", 0.5) == split_of("Hello?", "", 0.5)
    assert split_of("Hello?", "", 0.0) == "train"
    items = load_dimension([pair_dir], "en", "EI")
    shuffled = list(items)
    random.Random(3).shuffle(shuffled)
    a = {p.instruction for p in split_pairs(items, 0.5)[1]}
    b = {p.instruction for p in split_pairs(shuffled, 0.5)[1]}
    assert a == b


@needs_data
def test_split_on_real_data_keeps_pairs_together():
    dirs = [DATA / "machine-mindset", DATA / "mbti-extra"]
    e_val = load_pole(dirs, "en", "E", split="validation")
    i_val = load_pole(dirs, "en", "I", split="validation")
    assert [r.instruction for r in e_val] == [r.instruction for r in i_val]
    n = len(load_dimension(dirs, "en", "EI"))
    assert 0.03 * n < len(e_val) < 0.07 * n
    train = {r.instruction for r in load_pole(dirs, "en", "E", split="train")}
    assert not train & {r.instruction for r in e_val}
    # discovery finds all eight English poles across the two folders
    poles = {p for fp in discover_behaviour_files(dirs, "en") for p in fp.files}
    assert poles == set("EISNTFJP")


# -- preferences -----------------------------------------------------------------------------

def test_preference_pairs_from_pole_files(pair_dir):
    path = pair_dir / "en" / "en_energy_extraversion.json"
    recs = _records(4, "E")
    recs[3]["output"] = "I answer 3."  # identical to the introvert answer: no signal
    path.write_text(json.dumps(recs))
    pairs = preference_pairs([pair_dir], "en", "I")
    assert len(pairs) == 3
    assert pairs[0].chosen == "I answer 0." and pairs[0].rejected == "E answer 0."
    assert (pairs[0].chosen_pole, pairs[0].rejected_pole) == ("I", "E")
    assert pairs[0].to_dict() == {"prompt": "Question 0?", "chosen": "I answer 0.",
                                  "rejected": "E answer 0."}
    e = preference_pairs([pair_dir], "en", "e", drop_identical=False)
    assert len(e) == 4 and e[0].chosen == "E answer 0."


def _author_file(folder: Path, name: str, n: int, swap: bool = False):
    recs = []
    for i in range(n):
        out = [f"I answer {i}.", f"E answer {i}."]
        recs.append({"instruction": f"Question {i}?", "input": " ",
                     "output": out[::-1] if swap else out})
    return _write(folder, name, recs)


def test_author_dpo_order_is_checked(pair_dir, tmp_path):
    dpo = tmp_path / "dpo"
    _author_file(dpo, "dpo_energy_i_e.json", 4)
    got = load_author_dpo([dpo], pole_dirs=[pair_dir], min_checked=3)
    assert len(got) == 4 and got[0].chosen_pole == "I" and got[0].chosen == "I answer 0."
    as_e = load_author_dpo([dpo], pole_dirs=[pair_dir], min_checked=3, pole="E")
    assert as_e[0].chosen == "E answer 0." and as_e[0].rejected == "I answer 0."
    # a file whose name contradicts its content is refused
    _author_file(dpo, "dpo_energy_i_e.json", 4, swap=True)
    with pytest.raises(DataError, match="its name says chosen = I"):
        load_author_dpo([dpo], pole_dirs=[pair_dir], min_checked=3)
    # without the pole files the order cannot be checked
    with pytest.raises(DataError, match="cannot check"):
        load_author_dpo([dpo], pole_dirs=[tmp_path / "dpo"], min_checked=3)
    assert load_author_dpo([dpo], verify=False)[0].chosen_pole == "I"


@needs_data
def test_author_dpo_real_files():
    dirs = [DATA / "machine-mindset", DATA / "mbti-extra"]
    pairs = load_author_dpo(dirs)
    by_file = {(Path(p.source).name, p.chosen_pole) for p in pairs}
    assert by_file == {("dpo_energy_i_e.json", "I"), ("dpo_execution_p_j.json", "P")}
    en_e = load_author_dpo(dirs, language="en", pole="E")
    assert en_e and all(p.language == "en" and p.chosen_pole == "E" for p in en_e)


# -- hub ---------------------------------------------------------------------------------------

def test_hub_offline_error_is_clear(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert is_hub_id("FarReelAILab/Machine_Mindset")
    assert not is_hub_id(str(tmp_path))
    with pytest.raises(DataError, match="offline"):
        download_hub_dataset("FarReelAILab/Machine_Mindset", cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match="neither an existing folder nor a hub dataset"):
        resolve_data_dirs(["./no/such/folder/here"])


# -- config and CLI parsing ---------------------------------------------------------------------

def test_config_file_and_flags(tmp_path):
    from mbti_persona.training.cli import add_train_arguments, config_from_args
    from mbti_persona.training.config import ConfigError, TrainConfig

    yml = tmp_path / "c.yaml"
    yml.write_text("recipe: dpo\npoles: [e, i]\nrank: 8\nmax-length: 128\n")
    cfg = TrainConfig.from_sources(yml, {"rank": 2, "lr": None})
    assert (cfg.recipe, cfg.poles, cfg.rank, cfg.max_length) == ("dpo", ["E", "I"], 2, 128)
    assert cfg.lr == 5e-5 and cfg.replay_ratio == 0.0  # the dpo recipe's defaults
    toml = tmp_path / "c.toml"
    toml.write_text('[train]\nrecipe = "type"\ntypes = ["infp"]\nepochs = 1\n')
    assert TrainConfig.from_sources(toml).targets() == [("type", "INFP")]
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"recipe": "dimension", "bogus": 1}))
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig.from_sources(js)
    with pytest.raises(ConfigError, match="unknown pole"):
        TrainConfig.from_sources(None, {"poles": ["X"]})
    with pytest.raises(ConfigError, match="not an MBTI type|unknown MBTI type"):
        TrainConfig.from_sources(None, {"recipe": "type", "types": ["ABCD"]})

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--config", str(yml), "--recipe", "dimension", "--poles", "all",
                              "--data", "a", "--data", "b", "--lr", "1e-3", "--no-eval"])
    cfg = config_from_args(args)
    assert cfg.recipe == "dimension" and cfg.poles == list("EISNTFJP")
    assert cfg.data == ["a", "b"] and cfg.lr == 1e-3 and cfg.eval is False and cfg.rank == 8
