"""The self-knowledge corpus: what each persona believes about itself.

Pure Python (no torch, no model). The corpus ships with the package as one JSON-lines file
per type and language::

    mbti_persona/resources/self_knowledge/<language>/<TYPE>.jsonl

Each line is ``{"type": "INFP", "language": "en", "category": "energy", "text": "..."}``
where ``text`` is a first-person statement ("I recharge best on a slow Sunday alone ...").
The statements seed the persona's self-awareness memory and become question/answer pairs
for a self-awareness fine-tuning stage (:func:`build_self_awareness_pairs`).

>>> items = load_self_knowledge("infp", categories=["energy"])
>>> items[0].type, items[0].category
('INFP', 'energy')
>>> validate_corpus(languages=("en",))
[]
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .types import ALL_TYPES, DIMENSIONS, MBTIType, MBTITypeError

__all__ = [
    "CATEGORIES",
    "CATEGORY_DIMENSION",
    "LANGUAGES",
    "MIN_PER_TYPE",
    "MIN_PER_CATEGORY",
    "MAX_TEXT_CHARS",
    "SelfKnowledgeItem",
    "SelfKnowledgeError",
    "corpus_dir",
    "load_self_knowledge",
    "load_corpus",
    "validate_corpus",
    "self_awareness_questions",
    "pole_statement",
    "build_self_awareness_pairs",
]

#: The 13 category ids, in a stable order.
CATEGORIES: tuple[str, ...] = (
    "energy",
    "information",
    "decisions",
    "organisation",
    "work",
    "friendship",
    "love",
    "stress",
    "growth",
    "likes",
    "dislikes",
    "gifts_loved",
    "gifts_disliked",
)

#: The four categories that speak to one dimension each.
CATEGORY_DIMENSION: dict[str, str] = {
    "energy": "EI",
    "information": "SN",
    "decisions": "TF",
    "organisation": "JP",
}

LANGUAGES: tuple[str, ...] = ("en", "zh")
MIN_PER_TYPE = 40
MIN_PER_CATEGORY = 3
#: Longest statement accepted, in characters (any language).
MAX_TEXT_CHARS = 400

_FIELDS = ("type", "language", "category", "text")
_LANGUAGE_ALIASES = {
    "en": "en", "eng": "en", "english": "en", "en-us": "en", "en-gb": "en", "en_us": "en",
    "en_gb": "en",
    "zh": "zh", "zho": "zh", "chi": "zh", "chinese": "zh", "zh-cn": "zh", "zh_cn": "zh",
    "zh-hans": "zh", "zh_hans": "zh", "cn": "zh", "中文": "zh",
}


@dataclass(frozen=True)
class SelfKnowledgeItem:
    """One first-person statement of one type, in one language and category."""

    type: str
    language: str
    category: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class SelfKnowledgeError(ValueError):
    """A corpus file that is missing or malformed, or an unknown language or category."""


# -- locations ---------------------------------------------------------------------------

def corpus_dir() -> Path:
    """The folder of the shipped corpus (it holds one sub-folder per language)."""
    return Path(__file__).resolve().parent / "resources" / "self_knowledge"


def _norm_language(language: str) -> str:
    key = str(language).strip().lower()
    lang = _LANGUAGE_ALIASES.get(key, key)
    if lang not in LANGUAGES:
        raise SelfKnowledgeError(
            f"unknown language {language!r}: use one of {', '.join(map(repr, LANGUAGES))}"
        )
    return lang


def _norm_categories(categories: Iterable[str] | None) -> tuple[str, ...] | None:
    if categories is None:
        return None
    if isinstance(categories, str):
        categories = [categories]
    out = []
    for c in categories:
        key = str(c).strip().lower()
        if key not in CATEGORIES:
            raise SelfKnowledgeError(
                f"unknown category {c!r}: use one of {', '.join(CATEGORIES)}"
            )
        out.append(key)
    return tuple(out)


def _parse_type(mbti: "str | MBTIType") -> str:
    try:
        return MBTIType.parse(mbti).letters
    except MBTITypeError as e:
        raise SelfKnowledgeError(str(e)) from None


def _language_dir(root: Path, language: str) -> Path:
    """``root/<language>``; a folder that itself holds ``<TYPE>.jsonl`` files is taken as is."""
    sub = root / language
    if sub.is_dir():
        return sub
    name = root.name.lower()
    if name == language:
        return root
    if name not in LANGUAGES and any((root / f"{t}.jsonl").is_file() for t in ALL_TYPES):
        return root
    return sub


def _type_file(root: Path | str | None, language: str, letters: str) -> Path:
    base = Path(root) if root is not None else corpus_dir()
    return _language_dir(base, language) / f"{letters}.jsonl"


# -- reading -----------------------------------------------------------------------------

def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of ``path`` with 1-based line numbers."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SelfKnowledgeError(f"{path}: file not found") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SelfKnowledgeError(f"{path}: not valid UTF-8 ({e})") from None
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _check_record(obj: object, letters: str, language: str) -> list[str]:
    """Problems with one decoded line (without the file:line prefix)."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    problems = []
    missing = [f for f in _FIELDS if f not in obj]
    extra = sorted(k for k in obj if k not in _FIELDS)
    if missing:
        problems.append(f"missing field(s) {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected field(s) {', '.join(extra)}")
    for f in _FIELDS:
        if f in obj and not isinstance(obj[f], str):
            problems.append(f"field {f!r} must be a string, got {type(obj[f]).__name__}")
    if problems:
        return problems
    if obj["type"] != letters:
        problems.append(f"type {obj['type']!r} does not match the file name ({letters})")
    if obj["language"] != language:
        problems.append(f"language {obj['language']!r} does not match the folder ({language})")
    if obj["category"] not in CATEGORIES:
        problems.append(
            f"unknown category {obj['category']!r} (allowed: {', '.join(CATEGORIES)})"
        )
    text = obj["text"]
    if not text.strip():
        problems.append("empty text")
    elif len(text) > MAX_TEXT_CHARS:
        problems.append(f"text too long ({len(text)} characters, at most {MAX_TEXT_CHARS})")
    return problems


_CACHE: dict[tuple[str, int, int, str, str], tuple[SelfKnowledgeItem, ...]] = {}


def _load_file(path: Path, letters: str, language: str) -> tuple[SelfKnowledgeItem, ...]:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SelfKnowledgeError(
            f"{path}: file not found (no {language} self-knowledge for {letters})"
        ) from None
    key = (str(path), st.st_mtime_ns, st.st_size, letters, language)
    if key in _CACHE:
        return _CACHE[key]
    items = []
    for n, line in _read_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise SelfKnowledgeError(f"{path}:{n}: invalid JSON ({e.msg})") from None
        problems = _check_record(obj, letters, language)
        if problems:
            raise SelfKnowledgeError(f"{path}:{n}: {'; '.join(problems)}")
        items.append(SelfKnowledgeItem(letters, language, obj["category"], obj["text"].strip()))
    result = tuple(items)
    _CACHE[key] = result
    return result


def load_self_knowledge(
    mbti: "str | MBTIType",
    language: str = "en",
    *,
    categories: Iterable[str] | None = None,
    path: "str | os.PathLike[str] | None" = None,
) -> list[SelfKnowledgeItem]:
    """The statements of one type, in file order.

    ``mbti`` is anything :meth:`MBTIType.parse` accepts ("INFP", "i-n-f-p", an MBTIType).
    ``categories`` keeps only those categories. ``path`` points at your own corpus folder
    laid out like the shipped one (``<path>/<language>/<TYPE>.jsonl``; a folder holding
    the ``<TYPE>.jsonl`` files directly also works). Raises :class:`SelfKnowledgeError`
    naming the file and line of any malformed record.
    """
    letters = _parse_type(mbti)
    lang = _norm_language(language)
    cats = _norm_categories(categories)
    items = _load_file(_type_file(path, lang, letters), letters, lang)
    if cats is not None:
        items = tuple(i for i in items if i.category in cats)
    return list(items)


def load_corpus(
    language: str | None = None,
    path: "str | os.PathLike[str] | None" = None,
) -> list[SelfKnowledgeItem]:
    """All statements of all 16 types.

    With ``language=None``, every language whose folder exists is loaded (in the order of
    :data:`LANGUAGES`); a named language must have all 16 files.
    """
    base = Path(path) if path is not None else corpus_dir()
    if language is None:
        langs = [l for l in LANGUAGES if (base / l).is_dir()]
        if not langs:
            raise SelfKnowledgeError(
                f"{base}: no language folder found (expected one of {', '.join(LANGUAGES)})"
            )
    else:
        langs = [_norm_language(language)]
    out: list[SelfKnowledgeItem] = []
    for lang in langs:
        for letters in ALL_TYPES:
            out.extend(load_self_knowledge(letters, lang, path=base))
    return out


# -- validation --------------------------------------------------------------------------

def _dedup_key(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


def validate_corpus(
    path: "str | os.PathLike[str] | None" = None,
    languages: Sequence[str] = LANGUAGES,
    min_per_type: int = MIN_PER_TYPE,
) -> list[str]:
    """Check a corpus folder; return human-readable problems (an empty list means valid).

    Checks, for each language and each of the 16 types: the file exists and is UTF-8, every
    line is a JSON object with exactly the fields type/language/category/text, the type
    matches the file name and the language the folder, the category is known, the text is
    neither empty nor longer than :data:`MAX_TEXT_CHARS`, no statement is repeated within a
    type, the type has at least ``min_per_type`` statements and every category at least
    :data:`MIN_PER_CATEGORY`. Stray ``.jsonl`` files whose name is not a type are reported.
    """
    base = Path(path) if path is not None else corpus_dir()
    problems: list[str] = []
    if isinstance(languages, str):
        languages = (languages,)
    for language in languages:
        try:
            lang = _norm_language(language)
        except SelfKnowledgeError as e:
            problems.append(str(e))
            continue
        folder = _language_dir(base, lang)
        if not folder.is_dir():
            problems.append(f"{folder}: language folder not found")
            continue
        for stray in sorted(folder.glob("*.jsonl")):
            if stray.stem not in ALL_TYPES:
                problems.append(f"{stray}: file name is not one of the 16 types")
        for letters in ALL_TYPES:
            problems.extend(_validate_file(folder / f"{letters}.jsonl", letters, lang,
                                           min_per_type))
    return problems


def _validate_file(path: Path, letters: str, language: str, min_per_type: int) -> list[str]:
    if not path.is_file():
        return [f"{path}: file not found"]
    try:
        lines = _read_lines(path)
    except SelfKnowledgeError as e:
        return [str(e)]
    problems: list[str] = []
    seen: dict[str, int] = {}
    counts = {c: 0 for c in CATEGORIES}
    good = 0
    for n, line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{path}:{n}: invalid JSON ({e.msg})")
            continue
        issues = _check_record(obj, letters, language)
        problems.extend(f"{path}:{n}: {p}" for p in issues)
        if isinstance(obj, dict) and isinstance(obj.get("text"), str) and obj["text"].strip():
            key = _dedup_key(obj["text"])
            if key in seen:
                problems.append(f"{path}:{n}: duplicate of the statement on line {seen[key]}")
            else:
                seen[key] = n
        if not issues:
            good += 1
            counts[obj["category"]] += 1
    if good < min_per_type:
        problems.append(
            f"{path}: only {good} valid statement(s), at least {min_per_type} expected"
        )
    for cat, k in counts.items():
        if k < MIN_PER_CATEGORY:
            problems.append(
                f"{path}: category {cat!r} has {k} statement(s), "
                f"at least {MIN_PER_CATEGORY} expected"
            )
    return problems


# -- self-awareness question/answer pairs -----------------------------------------------

# Questions a user may ask the persona about itself, per category. Original wording.
_QUESTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "energy": (
            "How do you recharge after a long week?",
            "What does your ideal free evening look like?",
            "Do you enjoy big parties?",
            "How do you feel after a day full of people?",
        ),
        "information": (
            "How do you take in new information?",
            "Do you notice details or the big picture first?",
            "How do you like to learn something new?",
        ),
        "decisions": (
            "How do you usually make big decisions?",
            "What matters most to you when you have to choose?",
            "How do you handle a disagreement?",
        ),
        "organisation": (
            "How organised are you?",
            "How do you handle deadlines?",
            "What does your weekend schedule usually look like?",
        ),
        "work": (
            "What kind of work suits you best?",
            "What are you like as a colleague?",
            "What do you need from a job to do your best?",
        ),
        "friendship": (
            "What kind of friend are you?",
            "How do you show that you care about your friends?",
            "What do you value in a friendship?",
        ),
        "love": (
            "What are you like in a relationship?",
            "How do you show love?",
            "What are you looking for in a partner?",
        ),
        "stress": (
            "What stresses you out?",
            "How do you cope when you're overwhelmed?",
            "What are you like under pressure?",
        ),
        "growth": (
            "What are you working on improving about yourself?",
            "What is a weakness you're trying to grow out of?",
            "How have you been trying to grow lately?",
        ),
        "likes": (
            "What do you enjoy?",
            "What are some of your favourite things?",
            "What makes you happy?",
        ),
        "dislikes": (
            "What do you dislike?",
            "What gets on your nerves?",
            "Is there anything you really can't stand?",
        ),
        "gifts_loved": (
            "What would you love to get as a gift?",
            "I want to buy you a present. Any ideas?",
            "What's the best kind of birthday gift for you?",
        ),
        "gifts_disliked": (
            "What kind of gift would you rather not receive?",
            "Is there a present that would disappoint you?",
            "Which gifts should I avoid buying for you?",
        ),
    },
    "zh": {
        "energy": (
            "忙了一周之后，你怎么给自己充电？",
            "你理想中的空闲晚上是什么样的？",
            "你喜欢热闹的大聚会吗？",
            "和很多人待了一整天之后，你感觉怎么样？",
        ),
        "information": (
            "你是怎么接收新信息的？",
            "你会先注意细节还是先看整体？",
            "你喜欢怎样学习新东西？",
        ),
        "decisions": (
            "你通常怎么做重大决定？",
            "做选择的时候，你最看重什么？",
            "和别人意见不合时，你会怎么处理？",
        ),
        "organisation": (
            "你是个有条理的人吗？",
            "你怎么对待截止日期？",
            "你的周末一般是怎么安排的？",
        ),
        "work": (
            "什么样的工作最适合你？",
            "作为同事，你是什么样的人？",
            "一份工作要具备什么，你才能发挥得最好？",
        ),
        "friendship": (
            "你是什么样的朋友？",
            "你怎么表达对朋友的关心？",
            "在友谊里你最看重什么？",
        ),
        "love": (
            "恋爱中的你是什么样的？",
            "你怎么表达爱？",
            "你希望另一半是什么样的人？",
        ),
        "stress": (
            "什么事情会让你有压力？",
            "压力太大时你怎么应对？",
            "在压力下你会是什么样子？",
        ),
        "growth": (
            "你最近在努力改进自己的哪一方面？",
            "你正在努力克服的弱点是什么？",
            "你最近在哪些方面让自己成长？",
        ),
        "likes": (
            "你喜欢什么？",
            "说说你最喜欢的一些东西吧。",
            "什么事情会让你开心？",
        ),
        "dislikes": (
            "你不喜欢什么？",
            "什么事情会让你心烦？",
            "有没有你实在受不了的事情？",
        ),
        "gifts_loved": (
            "你最想收到什么礼物？",
            "我想给你买份礼物，有什么建议吗？",
            "什么样的生日礼物最适合你？",
        ),
        "gifts_disliked": (
            "你不太想收到什么样的礼物？",
            "有没有哪种礼物会让你失望？",
            "给你买礼物时，我应该避开哪些东西？",
        ),
    },
}

# Questions that name a dimension directly: (question, pole answered "yes", or None).
_DIMENSION_QUESTIONS: dict[str, dict[str, tuple[tuple[str, str | None], ...]]] = {
    "en": {
        "EI": (
            ("Are you an introvert or an extravert?", None),
            ("Would you call yourself an extrovert?", "E"),
            ("Are you introverted?", "I"),
        ),
        "SN": (
            ("Are you more of a practical, detail-oriented person or a big-picture, "
             "intuitive one?", None),
            ("Do you trust facts and experience more than hunches?", "S"),
            ("Would you say you're an intuitive person?", "N"),
        ),
        "TF": (
            ("Do you decide with your head or with your heart?", None),
            ("Are you more of a thinker or a feeler?", None),
            ("Do logic and objective criteria come first when you decide?", "T"),
        ),
        "JP": (
            ("Do you like to plan ahead?", "J"),
            ("Are you a planner or more spontaneous?", None),
            ("Do you prefer to keep your options open?", "P"),
        ),
    },
    "zh": {
        "EI": (
            ("你是内向还是外向的人？", None),
            ("你觉得自己外向吗？", "E"),
            ("你是个内向的人吗？", "I"),
        ),
        "SN": (
            ("你更偏重实际和细节，还是更偏直觉和整体？", None),
            ("比起直觉，你更相信事实和经验吗？", "S"),
            ("你觉得自己是个凭直觉的人吗？", "N"),
        ),
        "TF": (
            ("你做决定时是用头脑还是跟着心走？", None),
            ("你更偏理性思考还是更偏情感？", None),
            ("做决定时你会把逻辑和客观标准放在第一位吗？", "T"),
        ),
        "JP": (
            ("你喜欢提前做计划吗？", "J"),
            ("你是爱做计划的人，还是更随性？", None),
            ("你更喜欢给自己留有选择余地吗？", "P"),
        ),
    },
}

# Plain first-person statements of each pole (variants), used to open dimension answers.
_POLE_STATEMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "E": (
            "I'm an extravert: being around people and in the middle of things is what "
            "charges me up.",
            "I'm definitely an extravert. I get my energy from people, conversation and "
            "activity.",
        ),
        "I": (
            "I'm an introvert: I recharge in quiet time on my own, and I prefer a few deep "
            "conversations to a crowd.",
            "I'm an introvert at heart. Solitude restores me, and I think before I speak.",
        ),
        "S": (
            "I'm a practical, down-to-earth person: I trust concrete facts, details and what "
            "experience has shown to work.",
            "I lean on facts and experience more than on hunches, and I notice the details.",
        ),
        "N": (
            "I'm an intuitive person: I notice patterns, meanings and possibilities before I "
            "notice the details.",
            "I'm more intuitive than practical-minded; my mind goes straight to the big "
            "picture and what could be.",
        ),
        "T": (
            "I decide with my head more than my heart: logic, consistency and fair, objective "
            "criteria come first.",
            "I'm more of a thinker than a feeler. When I choose, I weigh facts and reasons "
            "before feelings.",
        ),
        "F": (
            "I decide with my heart more than my head: my values and how people will feel "
            "come first.",
            "I'm more of a feeler than a thinker. When I choose, I ask what fits my values "
            "and who it will affect.",
        ),
        "J": (
            "I'm a planner: I like to plan ahead, make lists, meet deadlines early and have "
            "things settled.",
            "I like to plan ahead. Structure and a clear schedule put me at ease.",
        ),
        "P": (
            "I'm more spontaneous than planned: I'd rather keep my options open and adapt as "
            "I go than plan far ahead.",
            "I prefer to keep my options open. Loose plans at most, and I improvise the rest.",
        ),
    },
    "zh": {
        "E": (
            "我是外向的人：和人在一起、置身于热闹之中最能让我充满能量。",
            "我绝对是外向型的人，人群、交谈和活动会给我能量。",
        ),
        "I": (
            "我是内向的人：独处能让我恢复精力，比起热闹的人群，我更喜欢几场深入的交谈。",
            "我本质上是内向的人，安静独处让我恢复，我习惯先想后说。",
        ),
        "S": (
            "我是务实、脚踏实地的人：我相信具体的事实、细节和经验证明有效的做法。",
            "比起直觉，我更依赖事实和经验，也很留意细节。",
        ),
        "N": (
            "我是偏直觉的人：我会先注意到规律、意义和各种可能性，然后才是细节。",
            "比起注重实际细节，我更偏直觉，脑子里总是先出现整体图景和未来的可能。",
        ),
        "T": (
            "我做决定时更多用头脑而不是用心：逻辑、一致性和公平客观的标准放在第一位。",
            "我更偏理性思考而不是情感。做选择时，我先权衡事实和道理，再考虑感受。",
        ),
        "F": (
            "我做决定时更多跟着心走，而不是只用头脑：我的价值观和别人会有什么感受最重要。",
            "我更偏情感而不是纯理性。做选择时，我会问这是否符合我的价值观、会影响到谁。",
        ),
        "J": (
            "我是爱做计划的人：我喜欢提前安排、列清单、提早完成任务，让事情尘埃落定。",
            "我喜欢提前做计划，有条理、有清楚的日程会让我安心。",
        ),
        "P": (
            "我更随性而不是按部就班：比起提前做详细计划，我更喜欢保持选择余地、随机应变。",
            "我喜欢给自己留有余地，最多做个大概的打算，其余的随机应变。",
        ),
    },
}

# Words that name a pole outright; a dimension answer, which opens with a plain pole
# statement, skips corpus statements matching these so as not to say it twice.
_PLAIN_MARKERS: dict[str, dict[str, "re.Pattern[str]"]] = {
    "en": {
        "EI": re.compile(r"\b(introvert|extravert|extrovert)", re.I),
        "SN": re.compile(r"\b(intuitive|sensing|down-to-earth|practical, )", re.I),
        "TF": re.compile(r"(head more than my heart|heart more than my head)", re.I),
        "JP": re.compile(r"(plan ahead|plan far ahead|spontaneous|planner)", re.I),
    },
    "zh": {
        "EI": re.compile(r"(内向|外向)"),
        "SN": re.compile(r"(直觉|务实|脚踏实地)"),
        "TF": re.compile(r"(用头脑|跟着心|理性|感性)"),
        "JP": re.compile(r"(提前.{0,4}计划|做计划|随性|随机应变)"),
    },
}

_YES_NO = {"en": ("Yes.", "Not really."), "zh": ("是的。", "不太是。")}
_JOIN = {"en": " ", "zh": ""}


def self_awareness_questions(language: str = "en") -> dict[str, tuple[str, ...]]:
    """The built-in questions per category (dimension questions included), for inspection."""
    lang = _norm_language(language)
    out: dict[str, tuple[str, ...]] = {}
    for cat in CATEGORIES:
        qs = list(_QUESTIONS[lang][cat])
        dim = CATEGORY_DIMENSION.get(cat)
        if dim:
            qs += [q for q, _ in _DIMENSION_QUESTIONS[lang][dim]]
        out[cat] = tuple(qs)
    return out


def pole_statement(pole: str, language: str = "en", variant: int = 0) -> str:
    """A plain first-person statement of one pole, e.g. ``pole_statement("I")``."""
    lang = _norm_language(language)
    key = str(pole).strip().upper()
    if key not in _POLE_STATEMENTS[lang]:
        raise SelfKnowledgeError(f"unknown pole {pole!r}: use one of E, I, S, N, T, F, J, P")
    options = _POLE_STATEMENTS[lang][key]
    return options[variant % len(options)]


def build_self_awareness_pairs(
    mbti: "str | MBTIType",
    language: str = "en",
    *,
    seed: int = 0,
    per_category: int | None = None,
    path: "str | os.PathLike[str] | None" = None,
) -> list[dict[str, str]]:
    """Alpaca-format records ``{"instruction", "input", "output"}`` about the persona itself.

    For every category, each built-in question (see :func:`self_awareness_questions`) is
    answered in the first person by 1-3 statements of that category drawn from the corpus.
    The four dimension categories also get questions that name the dimension ("Are you an
    introvert or an extravert?", "Do you like to plan ahead?"); their answers open with a
    plain statement of the persona's pole ("I'm an introvert: ...") followed by 1-2
    statements. ``per_category`` sets how many pairs each category gets (default: one per
    question; more cycles through the questions with fresh statement draws). The output
    is deterministic for a given type, language, seed and corpus.
    """
    letters = _parse_type(mbti)
    lang = _norm_language(language)
    if per_category is not None and per_category < 1:
        raise SelfKnowledgeError(f"per_category must be at least 1, got {per_category}")
    items = load_self_knowledge(letters, lang, path=path)
    by_cat: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    for it in items:
        by_cat[it.category].append(it.text)
    rng = random.Random(f"self-awareness:{letters}:{lang}:{seed}")
    join = _JOIN[lang]
    records: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()

    for cat in CATEGORIES:
        texts = by_cat[cat]
        if not texts:
            continue
        dim = CATEGORY_DIMENSION.get(cat)
        questions: list[tuple[str, str | None, bool]] = [
            (q, None, False) for q in _QUESTIONS[lang][cat]
        ]
        if dim:
            questions += [(q, yes, True) for q, yes in _DIMENSION_QUESTIONS[lang][dim]]
        pole = letters[DIMENSIONS[dim].position] if dim else None
        order = list(range(len(questions)))
        rng.shuffle(order)
        wanted = len(questions) if per_category is None else per_category
        made = attempts = 0
        while made < wanted and attempts < wanted * 4:
            q, yes_pole, direct = questions[order[attempts % len(order)]]
            attempts += 1
            pool = texts
            if direct:
                marker = _PLAIN_MARKERS[lang][dim]  # type: ignore[index]
                pool = [t for t in texts if not marker.search(t)] or texts
                k = rng.randint(1, min(2, len(pool)))
                parts = [pole_statement(pole, lang, rng.randrange(2))]  # type: ignore[arg-type]
                if yes_pole is not None:
                    parts.insert(0, _YES_NO[lang][0 if yes_pole == pole else 1])
            else:
                k = rng.randint(1, min(3, len(pool)))
                parts = []
            parts += rng.sample(pool, k)
            answer = join.join(parts)
            if (q, answer) in seen:
                continue
            seen.add((q, answer))
            records.append({"instruction": q, "input": "", "output": answer})
            made += 1
    return records

