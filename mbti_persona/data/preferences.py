"""Preference pairs {prompt, chosen, rejected} for DPO.

Two sources:

* the two pole files of a dimension: for target pole ``I``, chosen = the introvert answer and
  rejected = the extravert answer to the same instruction (:func:`preference_pairs`);
* the Machine Mindset authors' ``dpo/dpo_{dimension}_{a}_{b}.json`` files, whose ``output`` is a
  two-element list. Their order is *checked* against the pole files of the same dimension before use
  (:func:`load_author_dpo`): the chosen answer must be the pole file's answer of one pole and the
  rejected one of the other.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..types import DIMENSIONS, POLES
from .behaviour import (
    DIMENSION_BY_NAME,
    DataError,
    _as_paths,
    load_dimension,
    read_alpaca_file,
    split_of,
    split_pairs,
)

__all__ = [
    "PreferencePair",
    "AuthorDpoFile",
    "preference_pairs",
    "discover_author_dpo",
    "load_author_dpo",
]

_DPO_RE = re.compile(r"^dpo_(?P<dim>" + "|".join(DIMENSION_BY_NAME) + r")_(?P<a>[a-z])_(?P<b>[a-z])"
                     r"\.json$")
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class PreferencePair:
    prompt: str  # user turn (instruction + input)
    chosen: str
    rejected: str
    chosen_pole: str
    rejected_pole: str
    language: str
    source: str
    index: int
    instruction: str = ""
    input: str = ""

    @property
    def split(self) -> str:
        return split_of(self.instruction or self.prompt, self.input)

    def to_dict(self) -> dict[str, str]:
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}


def preference_pairs(dirs, language: str, pole: str, *, split: str | None = None,
                     validation_fraction: float = 0.05, seed: int = 0,
                     drop_identical: bool = True) -> list[PreferencePair]:
    """Pairs from the two pole files of ``pole``'s dimension, chosen = ``pole``'s answer.

    ``drop_identical`` skips pairs whose two answers are the same text (no preference signal).
    """
    p = pole.upper()
    if p not in POLES:
        raise DataError(f"unknown pole {pole!r}: use one of {', '.join(POLES)}")
    opp = POLES[p].opposite
    pairs = load_dimension(dirs, language, POLES[p].dimension)
    if split is not None:
        train, val = split_pairs(pairs, validation_fraction, seed)
        pairs = val if split.lower().startswith(("val", "eval", "test")) else train
    out = []
    for pr in pairs:
        if drop_identical and pr.outputs[p].strip() == pr.outputs[opp].strip():
            continue
        out.append(PreferencePair(pr.prompt, pr.outputs[p], pr.outputs[opp], p, opp, language,
                                  pr.sources[p], pr.index, pr.instruction, pr.input))
    return out


@dataclass(frozen=True)
class AuthorDpoFile:
    path: Path
    dimension: str  # "EI"
    named_order: tuple[str, str]  # pole letters from the file name, e.g. ("I", "E")


def discover_author_dpo(dirs) -> list[AuthorDpoFile]:
    """``dpo_{dimension}_{a}_{b}.json`` files found (recursively) in ``dirs``."""
    out = []
    for d in _as_paths(dirs):
        for f in ([d] if d.is_file() else sorted(d.rglob("dpo_*.json"))):
            m = _DPO_RE.match(f.name)
            if not m:
                continue
            dim = DIMENSION_BY_NAME[m["dim"]]
            a, b = m["a"].upper(), m["b"].upper()
            if {a, b} != set(DIMENSIONS[dim].poles):
                raise DataError(f"{f}: the letters {a}/{b} in its name are not the poles of the "
                                f"{m['dim']} dimension ({'/'.join(DIMENSIONS[dim].poles)})")
            out.append(AuthorDpoFile(f, dim, (a, b)))
    return out


def _language_of(text: str) -> str:
    """'zh' when CJK characters make up a fifth of the text, else 'en' (the authors' DPO files mix
    English and Chinese records, and some Chinese records have English instructions)."""
    return "zh" if len(_CJK.findall(text)) > 0.2 * max(1, len(text)) else "en"


def load_author_dpo(dirs, *, language: str | None = None, pole: str | None = None,
                    pole_dirs: Iterable[str | os.PathLike] | None = None,
                    min_checked: int = 20, min_agreement: float = 0.9,
                    verify: bool = True) -> list[PreferencePair]:
    """Load the authors' DPO files after checking their [chosen, rejected] order.

    Each record's language is read from its answers (the files mix English and Chinese). Its
    instruction is looked up in the pole files of that language and dimension (searched in
    ``pole_dirs``, default ``dirs``); the chosen answer must equal the pole-file answer of one pole
    and the rejected one the other's, in at least ``min_agreement`` of the records found there (and
    at least ``min_checked`` of them). That pole becomes ``chosen_pole`` for the whole file; a file
    whose name says otherwise, or whose order cannot be established, raises :class:`DataError`
    (``verify=False`` trusts the file name instead). ``language`` keeps only records of that
    language; ``pole`` keeps only pairs for that target pole (the file's pairs are swapped when it
    prefers the opposite pole).
    """
    results: list[PreferencePair] = []
    for f in discover_author_dpo(dirs):
        recs = read_alpaca_file(f.path, allow_list_output=True)
        bad = [i for i, r in enumerate(recs) if not isinstance(r["output"], list)]
        if bad:
            raise DataError(f"{f.path}: record {bad[0]}: 'output' must be a list [chosen, rejected]"
                            f" ({len(bad)} such record(s))")
        langs = [_language_of(" ".join(r["output"])) for r in recs]
        if language is not None and language not in langs:
            continue
        chosen_pole, rejected_pole = f.named_order
        if verify:
            chosen_pole, rejected_pole = _check_order(f, recs, langs, pole_dirs or dirs,
                                                      min_checked, min_agreement)
        for i, (r, lang) in enumerate(zip(recs, langs)):
            if language is not None and lang != language:
                continue
            c, rj = r["output"]
            cp, rp = chosen_pole, rejected_pole
            if pole is not None and pole.upper() != cp:
                if pole.upper() != rp:
                    continue
                c, rj, cp, rp = rj, c, rp, cp
            prompt = f"{r['instruction']}\n\n{r['input']}" if r["input"] else r["instruction"]
            results.append(PreferencePair(prompt, c, rj, cp, rp, lang, str(f.path), i,
                                          r["instruction"], r["input"]))
    return results


def _check_order(f: AuthorDpoFile, recs: list[dict], langs: list[str], pole_dirs,
                 min_checked: int, min_agreement: float) -> tuple[str, str]:
    by_instruction: dict[tuple[str, str, str], object] = {}
    errors = []
    for lang in sorted(set(langs)):
        try:
            pairs = load_dimension(pole_dirs, lang, f.dimension)
        except DataError as e:
            errors.append(str(e))
            continue
        for pr in pairs:
            by_instruction.setdefault((lang, pr.instruction, pr.input), pr)
    a, b = DIMENSIONS[f.dimension].poles
    votes = {a: 0, b: 0}
    for r, lang in zip(recs, langs):
        pr = by_instruction.get((lang, r["instruction"], r["input"]))
        if pr is None or pr.outputs[a] == pr.outputs[b]:
            continue
        chosen, rejected = r["output"]
        for p, q in ((a, b), (b, a)):
            if chosen == pr.outputs[p] and rejected == pr.outputs[q]:
                votes[p] += 1
    checked = votes[a] + votes[b]
    if checked < min_checked:
        why = f" ({'; '.join(errors)})" if errors else ""
        raise DataError(
            f"cannot check the [chosen, rejected] order of {f.path}: only {checked} of its "
            f"{len(recs)} records match the pole files of its dimension (need {min_checked})"
            f"{why}. Give the pole files of that dimension too, or load with verify=False to "
            "trust the file name"
        )
    winner = a if votes[a] >= votes[b] else b
    share = votes[winner] / checked
    if share < min_agreement:
        raise DataError(f"{f.path}: inconsistent [chosen, rejected] order: {votes[a]} records "
                        f"prefer {a}, {votes[b]} prefer {b}")
    loser = b if winner == a else a
    if f.named_order[0] != winner:
        raise DataError(
            f"{f.path}: its name says chosen = {f.named_order[0]}, but {votes[winner]} of "
            f"{checked} checked records have chosen = {winner}'s answer"
        )
    return winner, loser
