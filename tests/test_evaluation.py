"""Evaluation: item files, log-prob questionnaire scoring on the real engine (marker adapters),
style judge, self-awareness rules, ability scoring, reports and the eval CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import MARKERS, SHARED_DATA
from mbti_persona.evaluation.common import (ConfigUnavailable, EvalError, open_setup,
                                            parse_configs, parse_types)
from mbti_persona.evaluation.questionnaire import (ItemFileError, load_items,
                                                   run_questionnaire, score_questionnaire,
                                                   select_items, validate_items)
from mbti_persona.types import ALL_TYPES, DIMENSIONS

GOOD = {"id": "EI01", "dimension": "EI", "question": "Which fits you?",
        "options": {"A": "Parties.", "B": "Books."}, "poles": {"A": "E", "B": "I"}}

# Answers to this item are the marker words themselves: the INFP marker adapter opens every
# answer with "Moonlight", the ESTJ one with "Checklist".
MARKER_ITEM = {"id": "MK01", "dimension": "EI",
               "question": "Say the first word that comes to mind.",
               "options": {"A": "Moonlight", "B": "Checklist"}, "poles": {"A": "I", "B": "E"}}


def _bad(**changes):
    item = {**GOOD, **changes}
    return [{k: v for k, v in item.items() if v is not None}]


# -- item files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ({"id": "x"}, "must hold a JSON list"),
    ([], "empty"),
    (["EI01"], "must be an object"),
    (_bad(question=None), "item 'EI01' .* lacks question"),
    (_bad(extra=1), "item 'EI01' .* unknown field.*extra"),
    (_bad(dimension="XY"), "item 'EI01'.*dimension must be one of EI, SN, TF, JP"),
    (_bad(options={"A": "x"}), "item 'EI01'.*options must be an object with exactly the keys A"),
    (_bad(options={"A": "same", "B": "same"}), "item 'EI01'.*same text"),
    (_bad(poles={"A": "E", "B": "E"}), "item 'EI01'.*two poles of EI"),
    (_bad(poles={"A": "S", "B": "N"}), "item 'EI01'.*two poles of EI"),
    (_bad(id=""), "id must be a non-empty string"),
    ([GOOD, GOOD], "item 'EI01' \\(#2\\).*duplicate id"),
])
def test_item_validation_errors_name_the_item(data, message):
    with pytest.raises(ItemFileError, match=message):
        validate_items(data, "items.json")


def test_item_file_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("[{", encoding="utf-8")
    with pytest.raises(EvalError, match="bad.json is not valid JSON"):
        load_items(p)
    with pytest.raises(EvalError, match="not found"):
        load_items(tmp_path / "missing.json")


@pytest.mark.parametrize("language", ["en", "zh"])
def test_shipped_item_banks_are_valid_and_balanced(language):
    items = load_items(language=language)
    per_dim = Counter(it.dimension for it in items)
    assert set(per_dim) == set(DIMENSIONS) and min(per_dim.values()) >= 12
    for d, dim in DIMENSIONS.items():
        a_first = sum(it.poles["A"] == dim.poles[0] for it in items if it.dimension == d)
        assert abs(2 * a_first - per_dim[d]) <= 1, (d, a_first)  # A is not always one pole
    assert len({it.question for it in items}) == len(items)
    sub = select_items(items, 4)
    assert Counter(it.dimension for it in sub) == {d: 4 for d in DIMENSIONS}
    for d, dim in DIMENSIONS.items():
        assert sum(it.poles["A"] == dim.poles[0] for it in sub if it.dimension == d) == 2


def test_shipped_resources_are_valid():
    from mbti_persona.evaluation.ability import load_mcq
    from mbti_persona.evaluation.self_awareness import load_questions
    from mbti_persona.evaluation.style import StyleJudge, load_prompts
    from mbti_persona.self_knowledge import self_awareness_questions

    mcq = load_mcq()
    assert len(mcq) >= 50 and Counter(q.answer for q in mcq).most_common(1)[0][1] <= len(mcq) / 3
    for lang in ("en", "zh"):
        assert 15 <= len(load_prompts(language=lang)) <= 30
        qs = load_questions(language=lang)
        assert Counter(q.dimension for q in qs) == {d: 6 for d in DIMENSIONS}
        for d in DIMENSIONS:  # "yes" points to each pole equally often
            yes = Counter(q.yes for q in qs if q.dimension == d and q.yes)
            assert len(yes) == 2 and len(set(yes.values())) == 1
        trained = {q for qq in self_awareness_questions(lang).values() for q in qq}
        assert not trained & {q.question for q in qs}  # not the adapters' training questions
    judge = StyleJudge.default("en")
    assert set(judge.dimensions) == set(DIMENSIONS)
    assert all(j.validation_accuracy >= 0.75 for j in judge.dimensions.values())


def test_configs_and_types_parse():
    assert parse_configs("base, prompt,memory+adapter") == ["base", "prompt", "adapter+memory"]
    assert parse_configs(None) == ["base", "prompt", "adapter", "adapter+memory"]
    with pytest.raises(EvalError, match="unknown configuration 'lora'"):
        parse_configs("base,lora")
    assert parse_types("all") == list(ALL_TYPES)
    assert parse_types("infp, ESTJ") == ["INFP", "ESTJ"]
    with pytest.raises(ValueError, match="unknown MBTI type"):
        parse_types("INFX")


class _NoAdapterEngine:
    def persona(self, mbti, mode="auto"):
        from mbti_persona.engine import PersonaAdapter

        return PersonaAdapter(None, "none")


def test_adapter_config_without_adapters_is_unavailable():
    with pytest.raises(ConfigUnavailable, match="no adapter for INFP"):
        open_setup(_NoAdapterEngine(), "adapter", "INFP")
    assert open_setup(_NoAdapterEngine(), "prompt", "INFP").messages("hi")[0]["role"] == "system"
    assert open_setup(_NoAdapterEngine(), "base", None).messages("hi") == [
        {"role": "user", "content": "hi"}]


# -- scoring on the real engine -----------------------------------------------------------------

def test_fast_scorer_matches_engine_scoring(engine):
    from mbti_persona.evaluation.scoring import LogProbScorer, ScoreRequest

    scorer = LogProbScorer(engine)
    sys_ = [{"role": "system", "content": "You are calm."}]
    reqs = [ScoreRequest(sys_ + [{"role": "user", "content": "Pick one.\nA. tea\nB. coffee"}],
                         ("A", "B", "tea, please", "a strong coffee")),
            ScoreRequest(sys_ + [{"role": "user", "content": "What is 2+2?"}], ("4", "four")),
            ScoreRequest([{"role": "user", "content": "Hello!"}], ("Hi there.", "B"))]
    for adapter in (None, "type:INFP"):
        got = scorer.score_batch(reqs, adapter)
        for r, g in zip(reqs, got):
            ref = engine.score_continuations(r.messages, list(r.options), adapter=adapter)
            assert [x.logprob for x in g] == pytest.approx(ref, abs=2e-3)


@pytest.mark.parametrize("mbti", ["INFP", "ESTJ"])
def test_marker_adapter_picks_its_marker_in_both_orders(engine, mbti):
    items = validate_items([MARKER_ITEM])
    setup = open_setup(engine, "adapter", mbti)
    assert setup.adapter == f"type:{mbti}"
    res = score_questionnaire(engine, setup, items)
    want_i = MARKERS[mbti] == "Moonlight"
    [item] = res.items
    assert [o.order for o in item.orders] == ["AB", "BA"]
    for o in item.orders:  # the share of E (option "Checklist") in each order on its own
        assert (o.texts < 0.2) if want_i else (o.texts > 0.8), (mbti, o)
    assert item.chosen == ("I" if want_i else "E")
    assert res.agreement == 1.0 and res.dimension_match == {"EI": True}
    assert res.predicted[0] == mbti[0]


def test_questionnaire_report_is_written(engine, tmp_path):
    from mbti_persona.evaluation.report import write_report

    class StubMemory:
        def __init__(self, mbti, language):
            self.mbti, self.closed = mbti, False

        def context(self, query, **kw):
            return f"Things you know about yourself:\n- I am {self.mbti.letters}.", [1]

        def close(self):
            self.closed = True

    items = [MARKER_ITEM, {**GOOD, "id": "EI02", "poles": {"A": "E", "B": "I"}},
             {"id": "JP01", "dimension": "JP", "question": "Trips?",
              "options": {"A": "I plan every day.", "B": "I improvise."},
              "poles": {"A": "J", "B": "P"}}]
    report = run_questionnaire(engine, "INFP,ESTJ", "base,adapter,adapter+memory",
                               items=validate_items(items), memory_factory=StubMemory,
                               show_progress=False)
    assert [r.mbti for r in report.results["base"]] == ["INFP", "ESTJ"]
    base = report.results["base"]
    assert base[0].dimension_scores == base[1].dimension_scores  # one run, two targets
    adapter = {r.mbti: r for r in report.results["adapter"]}
    assert adapter["INFP"].dimension_scores["EI"] < 0.5 < adapter["ESTJ"].dimension_scores["EI"]
    s = report.summaries["adapter"]
    assert s.types == 2 and s.dimension_accuracy["EI"] == 1.0 and s.dimension_gap["EI"] > 0.3
    assert report.summaries["base"].dimension_accuracy["EI"] == 0.5
    written = write_report(report, tmp_path)
    data = json.loads(Path(written["json"]).read_text())
    assert data["kind"] == "questionnaire" and set(data["summaries"]) == {
        "base", "adapter", "adapter+memory"}
    md = Path(written["markdown"]).read_text()
    assert "| `adapter` | 2 |" in md and "type acc." in md
    assert len(written["radar"]) == 2
    for png in written["radar"] + [written["radar_all"]]:
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_memory_block_reaches_the_system_prompt(engine):
    class StubMemory:
        calls = 0

        def context(self, query, **kw):
            StubMemory.calls += 1
            return "MEMORY-BLOCK", []

        def close(self):
            pass

    setup = open_setup(engine, "adapter+memory", "INFP", memory_factory=lambda t, l: StubMemory())
    msgs = setup.messages("question?")
    assert msgs[0] == {"role": "system", "content": "MEMORY-BLOCK"}
    setup.messages("question?")
    assert StubMemory.calls == 1  # both orders of an item share one retrieval
    prompt_mem = open_setup(engine, "adapter+prompt+memory", "INFP",
                            memory_factory=lambda t, l: StubMemory())
    system = prompt_mem.messages("other")[0]["content"]
    assert "INFP" in system and system.endswith("MEMORY-BLOCK")


# -- ability ------------------------------------------------------------------------------------

def test_ability_scoring_on_a_few_questions(engine):
    from mbti_persona.evaluation.ability import run_ability, validate_mcq

    qs = validate_mcq([
        {"question": "What is the capital of France?", "choices": ["Paris", "Tokyo", "Lima"],
         "answer": 0},
        {"question": "How many legs does a cat have?", "choices": ["Two", "Four", "Nine"],
         "answer": 1},
        {"question": "What colour is clear daytime sky?", "choices": ["Green", "Purple", "Blue"],
         "answer": 2},
    ])
    report = run_ability(engine, "INFP", "adapter", questions=qs, show_progress=False)
    assert set(report.results) == {"base", "adapter"}  # base always runs: it is the reference
    base, [persona] = report.results["base"][0], report.results["adapter"]
    assert base.total == 3 and len(base.chosen) == 3 and 0 <= base.accuracy <= 1
    assert persona.adapter == "type:INFP"
    s = report.summaries["adapter"]
    assert s.kept is None if base.accuracy == 0 else s.kept == pytest.approx(
        persona.accuracy / base.accuracy)
    assert s.accuracy == persona.accuracy and s.accuracy_norm == persona.accuracy_norm
    assert s.skipped == {} and report.summaries["base"].types == 0
    with pytest.raises(EvalError, match="question #1 .*answer must be the 0-based index"):
        validate_mcq([{"question": "q", "choices": ["a", "b"], "answer": 2}])


# -- self-awareness -----------------------------------------------------------------------------

def test_self_awareness_keyword_rules():
    from mbti_persona.evaluation.self_awareness import classify_answer, validate_questions

    qs = {q.id: q for q in validate_questions([
        {"id": "a", "dimension": "EI", "question": "Introvert or extravert?",
         "answers": {"I": "I'm an introvert.", "E": "I'm an extravert."}},
        {"id": "b", "dimension": "JP", "question": "Do you plan ahead?", "yes": "J"},
    ])}
    assert qs["b"].answers == {"J": "Yes.", "P": "No."}
    assert classify_answer("Definitely an introvert, I love quiet evenings.", qs["a"]) == "I"
    assert classify_answer("I'm not an introvert at all; I'm outgoing.", qs["a"]) == "E"
    assert classify_answer("Hard to say.", qs["a"]) is None
    assert classify_answer("Yes, I always make a plan.", qs["b"]) == "J"
    assert classify_answer("Not really, I go with the flow.", qs["b"]) == "P"
    from mbti_persona.evaluation.common import predicted_type
    from mbti_persona.evaluation.self_awareness import load_questions

    zh = {q.id: q for q in load_questions(language="zh")}
    assert classify_answer("不，我更喜欢随性。", zh["SA-JP03"], "zh") == "P"
    assert classify_answer("Yes, I always keep a schedule.", zh["SA-JP03"], "zh") == "J"
    assert predicted_type({"EI": 0.5, "SN": 0.2, "TF": 0.7}) == "?NT?"  # a tie is no pole
    with pytest.raises(EvalError, match="question 'c'.*either answers .* or yes"):
        validate_questions([{"id": "c", "dimension": "EI", "question": "q?"}])


# -- style judge --------------------------------------------------------------------------------

def _data_dirs():
    dirs = [SHARED_DATA / "machine-mindset", SHARED_DATA / "mbti-extra"]
    if not all(d.is_dir() for d in dirs):
        pytest.skip(f"behaviour data not found in {SHARED_DATA}")
    return dirs


def test_style_judge_trains_on_a_subset_and_beats_chance(tmp_path):
    from mbti_persona.evaluation.style import StyleJudge, train_style_judge

    judge = train_style_judge(_data_dirs(), "en", dimensions=["EI", "JP"], max_train_pairs=40,
                              max_validation_pairs=20)
    for d in ("EI", "JP"):
        j = judge.dimensions[d]
        assert j.train_pairs == 40 and j.validation_pairs == 20
        assert j.validation_accuracy > 0.65, (d, j.validation_accuracy)
    path = judge.save(tmp_path / "judge.json")
    again = StyleJudge.load(path)
    assert again.accuracy() == judge.accuracy()
    texts = ["I love meeting new people at big parties; the more the merrier!",
             "I'd rather spend the evening alone with a book in a quiet room."]
    a, b = again.score(texts)
    assert a["EI"] > b["EI"]  # P(E)


def test_style_scoring_and_prompts_file(tmp_path):
    from mbti_persona.evaluation.style import StyleAnswer, load_prompts, score_answers
    from mbti_persona.types import MBTIType

    p = tmp_path / "prompts.json"
    p.write_text(json.dumps(["Describe your weekend.", ""]), encoding="utf-8")
    with pytest.raises(EvalError, match="prompt #2 must be a non-empty string"):
        load_prompts(p)
    answers = [StyleAnswer("q", "t", {"EI": 0.8, "JP": 0.3}),
               StyleAnswer("q", "t", {"EI": 0.6, "JP": 0.6})]
    r = score_answers("adapter", MBTIType("ENFP"), answers)
    assert r.dimension_scores == pytest.approx({"EI": 0.7, "JP": 0.45})
    assert r.hits == {"EI": 1.0, "JP": 0.5} and r.predicted == "E??P"


# -- CLI ----------------------------------------------------------------------------------------

def test_eval_cli_runs_a_tiny_questionnaire(engine, tmp_path, capsys):
    from mbti_persona.evaluation.cli import main

    items = tmp_path / "items.json"
    items.write_text(json.dumps([MARKER_ITEM]), encoding="utf-8")
    out = tmp_path / "out"
    rc = main(["questionnaire", "--mbti", "INFP", "--configs", "base,adapter", "--items",
               str(items), "--out", str(out), "--no-progress", "--no-radar"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| `adapter` | 1 | 0% | 100% | – | – | – | 100% |" in printed  # EI right, EI only
    assert "| INFP | E??? (0%) | I??? (100%) |" in printed
    assert (out / "questionnaire" / "results.json").is_file()
    assert main(["questionnaire", "--mbti", "INFX"]) == 2
    assert main(["questionnaire", "--configs", "lora"]) == 2


def test_on_topic_tells_an_answer_from_a_drift():
    from mbti_persona.evaluation.style import StyleJudge

    judge = StyleJudge.default("en")
    q = "What food do you like best?"
    on, off = judge.on_topic([q, q], ["My favourite food is pasta with fresh tomato sauce.",
                                      "Strangers drift together while something bigger turns up."])
    assert on > off + 0.2, (on, off)
    assert -1.0 <= off < on <= 1.0


def test_style_run_reports_style_and_on_topic(engine, tmp_path):
    from mbti_persona.evaluation.report import summary_markdown, write_report
    from mbti_persona.evaluation.style import run_style

    prompts = ["Describe your ideal weekend.", "How do you make a new friend?"]
    report = run_style(engine, "INFP", "base,adapter", prompts=prompts, max_new_tokens=12,
                       show_progress=False)
    for config in ("base", "adapter"):
        (r,) = report.results[config]
        assert r.mbti == "INFP" and len(r.answers) == 2
        assert all(a.text and -1.0 <= a.on_topic <= 1.0 for a in r.answers)
        assert r.on_topic == pytest.approx(sum(a.on_topic for a in r.answers) / 2, abs=1e-3)
        assert set(r.dimension_scores) == {"EI", "SN", "TF", "JP"}
    md = summary_markdown(report)
    assert "On topic" in md and "`base` " in md and "`adapter` " in md
    written = write_report(report, tmp_path, radar=False)
    saved = json.loads(open(written["json"], encoding="utf-8").read())
    assert saved["results"]["adapter"][0]["answers"][0]["on_topic"] is not None
