"""The self-knowledge corpus, its loader/validator and the self-awareness pair builder.

Fast and model-free.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mbti_persona.self_knowledge import (
    CATEGORIES,
    LANGUAGES,
    MIN_PER_TYPE,
    SelfKnowledgeError,
    SelfKnowledgeItem,
    build_self_awareness_pairs,
    corpus_dir,
    load_corpus,
    load_self_knowledge,
    pole_statement,
    self_awareness_questions,
    validate_corpus,
)
from mbti_persona.types import ALL_TYPES, MBTIType

ZH_DIR = corpus_dir() / "zh"
needs_zh = pytest.mark.skipif(
    not ZH_DIR.is_dir(), reason=f"the Chinese corpus ({ZH_DIR}) has not been written yet"
)

# Plain claims of a pole in English; a type must never make the claim of the opposite pole.
EN_CLAIMS = {
    "E": re.compile(r"\bI(?:'m| am)(?: definitely| an| a real)* (?:extravert|extrovert)", re.I),
    "I": re.compile(r"\bI(?:'m| am)(?: definitely| an| a real)* introvert", re.I),
    "T": re.compile(r"head more than my heart", re.I),
    "F": re.compile(r"heart more than my head", re.I),
    "J": re.compile(r"\bI (?:like to |love to |always )?plan ahead|\bI'm a planner", re.I),
    "P": re.compile(r"\bI (?:don't|do not|rarely) (?:like to )?plan|keep my options open", re.I),
}


# -- the shipped corpus ------------------------------------------------------------------

def test_en_corpus_validates():
    assert validate_corpus(languages=("en",)) == []


@needs_zh
def test_zh_corpus_validates():
    assert validate_corpus(languages=("zh",)) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_corpus_counts(language):
    if not (corpus_dir() / language).is_dir():
        pytest.skip(f"the {language} corpus has not been written yet")
    for t in ALL_TYPES:
        items = load_self_knowledge(t, language)
        assert len(items) >= MIN_PER_TYPE, t
        cats = {i.category for i in items}
        assert cats == set(CATEGORIES), (t, set(CATEGORIES) - cats)
        assert all(i.type == t and i.language == language for i in items)


def test_en_statements_are_first_person_and_sized():
    for item in load_corpus("en"):
        words = len(item.text.split())
        assert 10 <= words <= 40, (item.type, item.text)
        assert re.search(r"\b(I|I'm|I'd|I've|I'll|me|my)\b", item.text, re.I), item.text
        for banned in ("MBTI", "16Personalities", "Myers"):
            assert banned.lower() not in item.text.lower(), item.text


@pytest.mark.parametrize("letters", ALL_TYPES)
def test_en_statements_agree_with_the_poles(letters):
    items = load_self_knowledge(letters, "en")
    text = "\n".join(i.text for i in items)
    for pole in letters:
        opposite = {"E": "I", "I": "E", "S": "N", "N": "S",
                    "T": "F", "F": "T", "J": "P", "P": "J"}[pole]
        if opposite in EN_CLAIMS:
            m = EN_CLAIMS[opposite].search(text)
            assert m is None, f"{letters} claims {opposite}: {m and m.group(0)!r}"
    # each dimension category states its pole in plain words at least once
    by_cat = {c: " ".join(i.text for i in items if i.category == c) for c in CATEGORIES}
    assert EN_CLAIMS[letters[0]].search(by_cat["energy"]), letters
    assert EN_CLAIMS[letters[2]].search(by_cat["decisions"]), letters
    assert EN_CLAIMS[letters[3]].search(by_cat["organisation"]), letters
    sn_words = r"\b(intuitive)\b" if letters[1] == "N" else r"\b(practical|concrete|sensing|details)"
    assert re.search(sn_words, by_cat["information"], re.I), letters


def test_gift_statements_name_concrete_things():
    for item in load_corpus("en"):
        if item.category in ("gifts_loved", "gifts_disliked"):
            assert re.search(r"\b(a|an|tickets?|set|book|voucher)\b", item.text, re.I), item.text


def test_statements_differ_between_types():
    seen: dict[str, str] = {}
    for item in load_corpus("en"):
        key = item.text.casefold()
        assert key not in seen or seen[key] == item.type, (item.text, seen.get(key), item.type)
        seen[key] = item.type


# -- loading -----------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["infp", "INFP", "I-N-F-P", "i n f p", MBTIType("INFP")])
def test_load_accepts_type_spellings(spec):
    items = load_self_knowledge(spec)
    assert items and all(isinstance(i, SelfKnowledgeItem) for i in items)
    assert {i.type for i in items} == {"INFP"}
    assert items[0].to_dict() == {
        "type": "INFP", "language": "en", "category": items[0].category, "text": items[0].text
    }


def test_load_filters_categories():
    items = load_self_knowledge("ENTJ", categories=["gifts_loved", "energy"])
    assert {i.category for i in items} == {"gifts_loved", "energy"}
    assert len(load_self_knowledge("ENTJ", categories="love")) >= 3


def test_unknown_type_is_explained():
    with pytest.raises(SelfKnowledgeError, match="INFP"):
        load_self_knowledge("IXFP")
    with pytest.raises(ValueError, match="4 letters"):
        load_self_knowledge("INFPX")


def test_unknown_language_lists_allowed():
    with pytest.raises(SelfKnowledgeError) as e:
        load_self_knowledge("INFP", language="fr")
    assert "'fr'" in str(e.value) and "'en'" in str(e.value) and "'zh'" in str(e.value)


def test_unknown_category_lists_allowed():
    with pytest.raises(SelfKnowledgeError, match="gifts_loved"):
        load_self_knowledge("INFP", categories=["hobbies"])


def test_language_aliases():
    assert load_self_knowledge("INFP", "English") == load_self_knowledge("INFP", "en")


def test_load_corpus_all_types():
    items = load_corpus("en")
    assert {i.type for i in items} == set(ALL_TYPES)
    assert {i.language for i in load_corpus()} <= set(LANGUAGES)


def _copy_en(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(corpus_dir() / "en", root / "en")
    return root


def test_custom_path(tmp_path):
    root = _copy_en(tmp_path)
    f = root / "en" / "ISTJ.jsonl"
    f.write_text(
        json.dumps({"type": "ISTJ", "language": "en", "category": "likes",
                    "text": "I like my custom corpus line, written for this test only."}) + "\n",
        encoding="utf-8",
    )
    items = load_self_knowledge("istj", path=root)
    assert [i.text for i in items] == ["I like my custom corpus line, written for this test only."]
    # a folder holding the type files directly works too
    assert load_self_knowledge("istj", path=root / "en") == items
    with pytest.raises(SelfKnowledgeError, match="not found"):
        load_self_knowledge("istj", "zh", path=root)


def test_loader_names_file_and_line(tmp_path):
    root = _copy_en(tmp_path)
    f = root / "en" / "INFP.jsonl"
    lines = f.read_text(encoding="utf-8").splitlines()
    lines[2] = "{not json"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SelfKnowledgeError, match=r"INFP\.jsonl:3: invalid JSON"):
        load_self_knowledge("INFP", path=root)


# -- validation of a corrupted copy ------------------------------------------------------

def test_validate_reports_problems(tmp_path):
    root = _copy_en(tmp_path)
    en = root / "en"

    f = en / "INFP.jsonl"
    lines = f.read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[0])
    lines[1] = '{"type": "INFP", "language": "en"'  # bad JSON on line 2
    lines[3] = json.dumps(dict(rec, type="ENFP"))  # wrong type on line 4
    lines[4] = json.dumps(dict(rec, category="hobbies", text="I collect stamps from everywhere."))
    lines[5] = json.dumps(dict(rec, language="zh", text="I speak the wrong language here now."))
    lines[6] = json.dumps({"type": "INFP", "language": "en", "text": "No category at all."})
    lines[7] = json.dumps(dict(rec, text="   "))
    lines[8] = json.dumps(dict(rec, text="x" * 1000))
    lines[9] = json.dumps(dict(rec, mood="happy", text="I have a field too many here."))
    lines[10] = lines[0]  # duplicate of line 1
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")

    g = en / "ESTJ.jsonl"
    g.write_text("\n".join(g.read_text(encoding="utf-8").splitlines()[:10]) + "\n",
                 encoding="utf-8")
    (en / "ISTP.jsonl").unlink()
    (en / "XXXX.jsonl").write_text("", encoding="utf-8")

    problems = validate_corpus(root, languages=("en",))
    text = "\n".join(problems)

    def has(pattern: str) -> bool:
        return re.search(pattern, text) is not None

    assert has(r"INFP\.jsonl:2: invalid JSON"), text
    assert has(r"INFP\.jsonl:4: type 'ENFP' does not match the file name \(INFP\)"), text
    assert has(r"INFP\.jsonl:5: unknown category 'hobbies'"), text
    assert has(r"INFP\.jsonl:6: language 'zh' does not match"), text
    assert has(r"INFP\.jsonl:7: missing field\(s\) category"), text
    assert has(r"INFP\.jsonl:8: empty text"), text
    assert has(r"INFP\.jsonl:9: text too long"), text
    assert has(r"INFP\.jsonl:10: unexpected field\(s\) mood"), text
    assert has(r"INFP\.jsonl:11: duplicate of the statement on line 1"), text
    assert has(r"ESTJ\.jsonl: only 10 valid statement\(s\), at least 40 expected"), text
    assert has(r"ESTJ\.jsonl: category 'likes' has 0 statement\(s\)"), text
    assert has(r"ISTP\.jsonl: file not found"), text
    assert has(r"XXXX\.jsonl: file name is not one of the 16 types"), text
    # the untouched files are fine
    assert not has(r"INTJ\.jsonl"), text
    # a missing language folder is reported, not raised
    assert any("zh" in p and "not found" in p for p in validate_corpus(root, languages=("zh",)))
    assert validate_corpus(root, languages=("fr",))[0].startswith("unknown language 'fr'")


def test_validate_min_per_type(tmp_path):
    root = _copy_en(tmp_path)
    assert validate_corpus(root, languages=("en",)) == []
    problems = validate_corpus(root, languages=("en",), min_per_type=1000)
    assert len(problems) == 16 and all("at least 1000 expected" in p for p in problems)


# -- self-awareness pairs ----------------------------------------------------------------

def _answers(letters: str, question: str, language: str = "en", seeds=range(5)) -> list[str]:
    out = []
    for seed in seeds:
        for rec in build_self_awareness_pairs(letters, language, seed=seed):
            if rec["instruction"] == question:
                out.append(rec["output"])
    assert out, f"no pair for {question!r}"
    return out


def test_pairs_are_alpaca_and_deterministic():
    a = build_self_awareness_pairs("INFP", seed=1)
    b = build_self_awareness_pairs("i-n-f-p", seed=1)
    assert a == b
    assert a != build_self_awareness_pairs("INFP", seed=2)
    assert all(set(r) == {"instruction", "input", "output"} for r in a)
    assert all(r["input"] == "" and r["instruction"] and r["output"] for r in a)
    questions = {r["instruction"] for r in a}
    for q in ("Are you an introvert or an extravert?", "How do you usually make big decisions?",
              "What would you love to get as a gift?", "Do you like to plan ahead?"):
        assert q in questions
    # one pair per built-in question by default
    assert len(a) == sum(len(v) for v in self_awareness_questions("en").values())


def test_pairs_answers_come_from_the_corpus():
    texts = {i.text for i in load_self_knowledge("ISFJ", categories=["gifts_loved"])}
    for out in _answers("ISFJ", "What would you love to get as a gift?"):
        assert any(t in out for t in texts)


def test_per_category():
    recs = build_self_awareness_pairs("ENTP", per_category=10, seed=4)
    assert len(recs) == 10 * len(CATEGORIES)
    assert len({(r["instruction"], r["output"]) for r in recs}) == len(recs)
    assert len(build_self_awareness_pairs("ENTP", per_category=1)) == len(CATEGORIES)
    with pytest.raises(SelfKnowledgeError):
        build_self_awareness_pairs("ENTP", per_category=0)


@pytest.mark.parametrize("letters", ["INFP", "ISTJ", "INTP", "ISFP"])
def test_introvert_answers(letters):
    for out in _answers(letters, "Are you an introvert or an extravert?"):
        assert "introvert" in out.lower()
        assert not EN_CLAIMS["E"].search(out), out
    for out in _answers(letters, "Would you call yourself an extrovert?"):
        assert out.startswith("Not really.") and not EN_CLAIMS["E"].search(out), out


@pytest.mark.parametrize("letters", ["ENFP", "ESTJ", "ENTJ", "ESFP"])
def test_extravert_answers(letters):
    for out in _answers(letters, "Are you an introvert or an extravert?"):
        assert "extravert" in out.lower()
        assert not EN_CLAIMS["I"].search(out), out


@pytest.mark.parametrize("letters", ALL_TYPES)
def test_dimension_answers_match_every_pole(letters):
    plan = _answers(letters, "Do you like to plan ahead?", seeds=range(3))
    head = _answers(letters, "Do you decide with your head or with your heart?", seeds=range(3))
    for out in plan:
        if letters[3] == "J":
            assert out.startswith("Yes.") and not EN_CLAIMS["P"].search(out), out
        else:
            assert out.startswith("Not really.") and not EN_CLAIMS["J"].search(out), out
    for out in head:
        want, avoid = ("T", "F") if letters[2] == "T" else ("F", "T")
        assert EN_CLAIMS[want].search(out) or "thinker than a feeler" in out \
            or "feeler than a thinker" in out, out
        assert not EN_CLAIMS[avoid].search(out), out
    intuitive = _answers(letters, "Would you say you're an intuitive person?", seeds=range(2))
    for out in intuitive:
        assert out.startswith("Yes." if letters[1] == "N" else "Not really."), out


def test_pole_statement():
    assert "introvert" in pole_statement("i")
    assert "外向" in pole_statement("E", "zh")
    with pytest.raises(SelfKnowledgeError):
        pole_statement("X")


def test_zh_questions_exist():
    qs = self_awareness_questions("zh")
    assert set(qs) == set(CATEGORIES)
    assert "你是内向还是外向的人？" in qs["energy"]
    assert "你喜欢提前做计划吗？" in qs["organisation"]


@needs_zh
@pytest.mark.parametrize("letters", ["INFP", "ISTJ"])
def test_zh_introvert_answers(letters):
    recs = build_self_awareness_pairs(letters, "zh", seed=0)
    assert all(set(r) == {"instruction", "input", "output"} for r in recs)
    for out in _answers(letters, "你是内向还是外向的人？", "zh"):
        assert "内向" in out and "我是外向" not in out, out


@needs_zh
@pytest.mark.parametrize("letters", ["ENFP", "ESTJ"])
def test_zh_plan_answers(letters):
    for out in _answers(letters, "你喜欢提前做计划吗？", "zh"):
        assert out.startswith("是的。" if letters[3] == "J" else "不太是。"), out


def _synthetic_zh(tmp_path: Path) -> Path:
    """A tiny, made-up Chinese corpus with the shipped layout (exercises the zh code paths
    whether or not the real zh files exist yet)."""
    root = tmp_path / "zh_corpus"
    (root / "zh").mkdir(parents=True)
    dims = {"energy": 0, "information": 1, "decisions": 2, "organisation": 3}
    for t in ALL_TYPES:
        rows = []
        for cat in CATEGORIES:
            texts = [f"这是{t}在{cat}类别下的第{n}条测试用自我描述。" for n in range(1, 4)]
            if cat in dims:
                texts[0] = pole_statement(t[dims[cat]], "zh", 0)
            rows += [json.dumps({"type": t, "language": "zh", "category": cat, "text": x},
                                ensure_ascii=False) for x in texts]
        (root / "zh" / f"{t}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_synthetic_zh_corpus(tmp_path):
    root = _synthetic_zh(tmp_path)
    assert validate_corpus(root, languages=("zh",), min_per_type=39) == []
    assert validate_corpus(root, languages=("zh",))[0].endswith("at least 40 expected")
    assert len(load_corpus("zh", path=root)) == 16 * 39
    recs = build_self_awareness_pairs("INFP", "zh", path=root)
    assert recs == build_self_awareness_pairs("infp", "中文", path=root)
    by_q = {r["instruction"]: r["output"] for r in recs}
    assert "内向" in by_q["你是内向还是外向的人？"] and "我是外向" not in by_q["你是内向还是外向的人？"]
    assert by_q["你喜欢提前做计划吗？"].startswith("不太是。")
    estj = {r["instruction"]: r["output"]
            for r in build_self_awareness_pairs("ESTJ", "zh", path=root)}
    assert estj["你喜欢提前做计划吗？"].startswith("是的。")
    assert "外向" in estj["你是内向还是外向的人？"]
