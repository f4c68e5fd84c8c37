"""Behaviour data: Alpaca JSON files, one per pole, paired by index within a dimension.

File names follow the Machine Mindset convention ``{lang}_{dimension}_{polename}.json``, e.g.
``en_energy_extraversion.json`` or ``zh_information_sensing.json``. The two files of one dimension
that sit in the same folder answer the same instructions in the same order; several folders (the
Machine Mindset release and ``mbti-extra``, say) are searched recursively and their pairs are
concatenated.

>>> files = discover_behaviour_files(["/data/machine-mindset", "/data/mbti-extra"])  # doctest: +SKIP
>>> pairs = load_dimension(["/data/machine-mindset"], "en", "EI")  # doctest: +SKIP
>>> pairs[0].outputs["E"], pairs[0].split  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..types import DIMENSIONS, POLES

__all__ = [
    "DataError",
    "BehaviourRecord",
    "BehaviourPair",
    "PoleFilePair",
    "DIMENSION_BY_NAME",
    "POLE_BY_NAME",
    "discover_behaviour_files",
    "available_poles",
    "read_alpaca_file",
    "load_dimension",
    "load_pole",
    "split_of",
    "split_pairs",
]

#: "energy" -> "EI", ...
DIMENSION_BY_NAME: dict[str, str] = {d.name: code for code, d in DIMENSIONS.items()}
#: "extraversion" -> "E", ...
POLE_BY_NAME: dict[str, str] = {p.name: letter for letter, p in POLES.items()}

_FILE_RE = re.compile(
    r"^(?P<lang>[a-z]{2,3})_(?P<dim>" + "|".join(DIMENSION_BY_NAME) + r")_(?P<pole>"
    + "|".join(POLE_BY_NAME) + r")\.json$"
)
_FIELDS = ("instruction", "input", "output")
_MAX_LISTED = 12  # problems listed in one DataError


class DataError(ValueError):
    """Training data that is missing, malformed or inconsistent (the message names file and record)."""


class _Instructed:
    """What a record and a pair share: the prompt built from instruction + input, and the split."""

    instruction: str
    input: str

    @property
    def prompt(self) -> str:
        """The user turn: the instruction, plus the input on its own paragraph when present."""
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction

    @property
    def split(self) -> str:
        return split_of(self.instruction, self.input)


@dataclass(frozen=True)
class BehaviourRecord(_Instructed):
    """One Alpaca record of one pole (``input`` normalised: " " becomes "")."""

    instruction: str
    input: str
    output: str
    pole: str
    language: str
    source: str  # file path
    index: int  # record index in that file

    def to_alpaca(self) -> dict[str, str]:
        return {"instruction": self.instruction, "input": self.input, "output": self.output}


@dataclass(frozen=True)
class BehaviourPair(_Instructed):
    """Record k of the two pole files of a dimension: the same instruction, one answer per pole."""

    instruction: str
    input: str
    outputs: dict[str, str]  # pole letter -> answer
    dimension: str  # "EI"
    language: str
    sources: dict[str, str]  # pole letter -> file path
    index: int

    def record(self, pole: str) -> BehaviourRecord:
        pole = pole.upper()
        return BehaviourRecord(self.instruction, self.input, self.outputs[pole], pole,
                               self.language, self.sources[pole], self.index)


@dataclass(frozen=True)
class PoleFilePair:
    """The two files of one dimension in one folder."""

    language: str
    dimension: str  # "EI"
    files: dict[str, Path] = field(hash=False)  # pole letter -> file

    @property
    def folder(self) -> Path:
        return next(iter(self.files.values())).parent


def _as_paths(dirs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    out = [Path(d).expanduser() for d in dirs]
    if not out:
        raise DataError("no data directory given: pass at least one folder of behaviour files "
                        "(e.g. --data /path/to/machine-mindset)")
    for d in out:
        if not d.exists():
            raise DataError(f"data directory {d} does not exist")
    return out


def discover_behaviour_files(
    dirs: str | os.PathLike | Iterable[str | os.PathLike],
    language: str | None = None,
) -> list[PoleFilePair]:
    """Find ``{lang}_{dimension}_{pole}.json`` files (recursively) and pair them per folder.

    A pole file whose partner is missing from its folder is an error (the pairs are what the split,
    the validation and the preference data rely on). A directory may also be a single file pair's
    file itself. Files of other names (``dpo_*.json``, READMEs) are ignored.
    """
    found: dict[tuple[Path, str, str], dict[str, Path]] = {}
    for d in _as_paths(dirs):
        candidates = [d] if d.is_file() else sorted(d.rglob("*.json"))
        for f in candidates:
            m = _FILE_RE.match(f.name)
            if not m:
                continue
            lang = m["lang"]
            if language is not None and lang != language:
                continue
            dim = DIMENSION_BY_NAME[m["dim"]]
            pole = POLE_BY_NAME[m["pole"]]
            if POLES[pole].dimension != dim:
                raise DataError(f"{f}: pole {POLES[pole].name} does not belong to dimension "
                                f"{m['dim']} (it belongs to {DIMENSIONS[POLES[pole].dimension].name})")
            key = (f.parent.resolve(), lang, dim)
            slot = found.setdefault(key, {})
            if pole in slot and slot[pole].resolve() != f.resolve():
                raise DataError(f"two files for pole {pole} in one folder: {slot[pole]} and {f}")
            slot[pole] = f
    pairs: list[PoleFilePair] = []
    for (folder, lang, dim), files in sorted(found.items(), key=lambda kv: (kv[0][1], kv[0][2],
                                                                              str(kv[0][0]))):
        missing = [p for p in DIMENSIONS[dim].poles if p not in files]
        if missing:
            have = next(iter(files.values()))
            want = f"{lang}_{DIMENSIONS[dim].name}_{POLES[missing[0]].name}.json"
            raise DataError(
                f"{have} has no partner file {want} in {have.parent}: the two pole files of a "
                "dimension must sit side by side (they are paired record by record)"
            )
        pairs.append(PoleFilePair(lang, dim, dict(files)))
    return pairs


def available_poles(dirs, language: str) -> list[str]:
    """Pole letters that have data for ``language`` in ``dirs``."""
    poles = {p for fp in discover_behaviour_files(dirs, language) for p in fp.files}
    return [p for p in POLES if p in poles]


def _problem_list(path: Path, problems: list[str]) -> str:
    shown = problems[:_MAX_LISTED]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(shown) + more


def read_alpaca_file(path: str | os.PathLike, *, allow_list_output: bool = False) -> list[dict]:
    """Read and check an Alpaca JSON list; normalise ``input`` (" " -> "").

    Raises :class:`DataError` naming the file and every bad record index: not a list, a record that
    is not an object, missing or non-string fields, an empty instruction or output.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text: {e}") from e
    except ValueError as e:
        raise DataError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(raw, list):
        raise DataError(f"{path}: expected a JSON list of {{instruction, input, output}} records, "
                        f"got a {type(raw).__name__}")
    if not raw:
        raise DataError(f"{path} holds no records")
    problems: list[str] = []
    out: list[dict] = []
    for i, rec in enumerate(raw):
        if not isinstance(rec, dict):
            problems.append(f"record {i}: expected an object, got {type(rec).__name__}")
            continue
        bad = False
        for f in _FIELDS:
            if f not in rec:
                if f == "input":  # tolerated: Alpaca allows no input
                    continue
                problems.append(f"record {i}: field {f!r} is missing")
                bad = True
                continue
            v = rec[f]
            if f == "output" and allow_list_output and isinstance(v, list):
                if len(v) != 2 or not all(isinstance(x, str) for x in v):
                    problems.append(f"record {i}: field 'output' must be a list of two strings "
                                    "[chosen, rejected]")
                    bad = True
                elif not all(x.strip() for x in v):
                    problems.append(f"record {i}: field 'output' holds an empty answer")
                    bad = True
                continue
            if v is None and f == "input":
                continue
            if not isinstance(v, str):
                problems.append(f"record {i}: field {f!r} must be a string, got "
                                f"{type(v).__name__}")
                bad = True
            elif f != "input" and not v.strip():
                problems.append(f"record {i}: field {f!r} is empty")
                bad = True
        if bad:
            continue
        out.append({
            "instruction": rec["instruction"].strip(),
            "input": (rec.get("input") or "").strip(),
            "output": rec["output"] if isinstance(rec["output"], list) else rec["output"].strip(),
        })
    if problems:
        raise DataError(_problem_list(path, problems))
    return out


def _load_file_pair(fp: PoleFilePair) -> list[BehaviourPair]:
    a, b = DIMENSIONS[fp.dimension].poles
    recs = {p: read_alpaca_file(fp.files[p]) for p in (a, b)}
    na, nb = len(recs[a]), len(recs[b])
    if na != nb:
        raise DataError(
            f"unpaired files: {fp.files[a]} holds {na} records but {fp.files[b]} holds {nb}; record "
            f"k of one must answer the same instruction as record k of the other (first unpaired "
            f"record: {min(na, nb)})"
        )
    problems = []
    for i, (ra, rb) in enumerate(zip(recs[a], recs[b])):
        if ra["instruction"] != rb["instruction"] or ra["input"] != rb["input"]:
            problems.append(
                f"record {i}: instruction differs from record {i} of {fp.files[b].name} "
                f"({ra['instruction'][:60]!r} vs {rb['instruction'][:60]!r})"
            )
    if problems:
        raise DataError("mismatched instructions between paired files: "
                        + _problem_list(fp.files[a], problems))
    sources = {p: str(fp.files[p]) for p in (a, b)}
    return [
        BehaviourPair(ra["instruction"], ra["input"], {a: ra["output"], b: rb["output"]},
                      fp.dimension, fp.language, sources, i)
        for i, (ra, rb) in enumerate(zip(recs[a], recs[b]))
    ]


def _dimension_code(dimension: str) -> str:
    d = dimension.strip()
    if d.upper() in DIMENSIONS:
        return d.upper()
    if d.lower() in DIMENSION_BY_NAME:
        return DIMENSION_BY_NAME[d.lower()]
    raise DataError(f"unknown dimension {dimension!r}: use EI, SN, TF, JP or energy, information, "
                    "decision, execution")


def load_dimension(dirs, language: str, dimension: str, *, required: bool = True
                   ) -> list[BehaviourPair]:
    """All validated pairs of one dimension ("EI" or "energy") for ``language`` across ``dirs``."""
    code = _dimension_code(dimension)
    pairs: list[BehaviourPair] = []
    file_pairs = [fp for fp in discover_behaviour_files(dirs, language) if fp.dimension == code]
    if not file_pairs and required:
        name = DIMENSIONS[code].name
        a, b = DIMENSIONS[code].poles
        raise DataError(
            f"no {language} data for the {name} dimension in {', '.join(map(str, _as_paths(dirs)))}:"
            f" expected {language}_{name}_{POLES[a].name}.json and "
            f"{language}_{name}_{POLES[b].name}.json"
        )
    for fp in file_pairs:
        pairs.extend(_load_file_pair(fp))
    return pairs


def load_pole(dirs, language: str, pole: str, *, split: str | None = None,
              validation_fraction: float = 0.05, seed: int = 0) -> list[BehaviourRecord]:
    """The records of one pole (validated against its partner file); ``split``: None (all),
    "train" or "validation"."""
    p = pole.upper()
    if p not in POLES:
        raise DataError(f"unknown pole {pole!r}: use one of {', '.join(POLES)}")
    pairs = load_dimension(dirs, language, POLES[p].dimension)
    if split is not None:
        train, val = split_pairs(pairs, validation_fraction, seed)
        pairs = {"train": train, "validation": val}[_split_name(split)]
    return [pr.record(p) for pr in pairs]


def _split_name(split: str) -> str:
    s = split.lower()
    if s in ("train", "training"):
        return "train"
    if s in ("validation", "val", "eval", "valid", "test"):
        return "validation"
    raise DataError(f"unknown split {split!r}: use 'train' or 'validation'")


def split_of(instruction: str, input: str = "", validation_fraction: float = 0.05,
             seed: int = 0) -> str:
    """'train' or 'validation', from a hash of the instruction (and input): deterministic across
    runs, machines and file orders, and the same for both poles of a pair (and for an instruction
    that recurs in another dimension)."""
    if not 0.0 <= validation_fraction < 1.0:
        raise DataError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    key = f"{seed}\x00{instruction.strip()}\x00{(input or '').strip()}".encode("utf-8")
    h = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
    return "validation" if h < validation_fraction else "train"


def split_pairs(items: Sequence, validation_fraction: float = 0.05, seed: int = 0
                ) -> tuple[list, list]:
    """Split pairs or records (anything with .instruction and .input) into (train, validation)."""
    train, val = [], []
    for it in items:
        (val if split_of(it.instruction, it.input, validation_fraction, seed) == "validation"
         else train).append(it)
    return train, val
