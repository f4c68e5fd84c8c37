"""MBTI types, poles and dimensions. Pure Python: no torch, no model.

>>> t = MBTIType.parse("i-n-f-p", intensities={"I": 0.8, "N": 0.6})
>>> t.letters, t.intensity("I"), t.pole_weights()["E"]
('INFP', 0.8, 0.2)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

__all__ = [
    "DIMENSIONS",
    "POLES",
    "ALL_TYPES",
    "Dimension",
    "Pole",
    "MBTIType",
    "MBTITypeError",
    "parse_type",
]


class MBTITypeError(ValueError):
    """An MBTI type, pole or intensity that cannot be understood."""


@dataclass(frozen=True)
class Pole:
    letter: str
    name: str
    dimension: str  # "EI", "SN", "TF" or "JP"
    opposite: str
    summary: str  # one sentence, second person, used in persona prompts


@dataclass(frozen=True)
class Dimension:
    code: str  # "EI"
    name: str  # "energy"
    poles: tuple[str, str]
    position: int  # 0..3, the letter's place in a type


DIMENSIONS: dict[str, Dimension] = {
    "EI": Dimension("EI", "energy", ("E", "I"), 0),
    "SN": Dimension("SN", "information", ("S", "N"), 1),
    "TF": Dimension("TF", "decision", ("T", "F"), 2),
    "JP": Dimension("JP", "execution", ("J", "P"), 3),
}

POLES: dict[str, Pole] = {
    "E": Pole("E", "extraversion", "EI", "I",
              "You draw energy from people and activity, think out loud, and reach out first."),
    "I": Pole("I", "introversion", "EI", "E",
              "You recharge in quiet and solitude, think before you speak, and prefer a few deep "
              "conversations to a crowd."),
    "S": Pole("S", "sensing", "SN", "N",
              "You trust concrete facts, details and experience, and like practical, proven ways."),
    "N": Pole("N", "intuition", "SN", "S",
              "You look for patterns, meanings and possibilities, and like ideas about what could be."),
    "T": Pole("T", "thinking", "TF", "F",
              "You decide by logic, consistency and objective criteria, and value candour."),
    "F": Pole("F", "feeling", "TF", "T",
              "You decide by values and by how choices affect people, and value harmony and warmth."),
    "J": Pole("J", "judging", "JP", "P",
              "You like plans, structure, lists and deadlines met early, and enjoy closure."),
    "P": Pole("P", "perceiving", "JP", "J",
              "You keep options open, improvise, adapt to what comes, and enjoy spontaneity."),
}

_BY_POSITION: tuple[Dimension, ...] = tuple(sorted(DIMENSIONS.values(), key=lambda d: d.position))

ALL_TYPES: tuple[str, ...] = tuple(
    a + b + c + d for a in "EI" for b in "SN" for c in "TF" for d in "JP"
)

# Short, original nicknames used in prompts and listings.
NICKNAMES: dict[str, str] = {
    "ISTJ": "the steady keeper of commitments",
    "ISFJ": "the quiet caretaker",
    "INFJ": "the far-sighted confidant",
    "INTJ": "the long-range strategist",
    "ISTP": "the hands-on troubleshooter",
    "ISFP": "the gentle maker",
    "INFP": "the idealistic dreamer",
    "INTP": "the curious theorist",
    "ESTP": "the quick-acting realist",
    "ESFP": "the lively entertainer",
    "ENFP": "the enthusiastic explorer of possibilities",
    "ENTP": "the inventive debater",
    "ESTJ": "the practical organiser",
    "ESFJ": "the warm host",
    "ENFJ": "the encouraging mentor",
    "ENTJ": "the decisive commander",
}

_SEPARATORS = re.compile(r"[\s\-_/.|,]+")


def _allowed(position: int) -> str:
    d = _BY_POSITION[position]
    return f"{d.poles[0]} or {d.poles[1]} ({d.name})"


def _check_intensity(letter: str, value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MBTITypeError(
            f"intensity for {letter} must be a number between 0.5 and 1.0, got {value!r}"
        ) from None
    if not 0.5 <= v <= 1.0:
        opposite = POLES[letter].opposite
        hint = (
            f"; below 0.5 the opposite pole dominates: use {opposite} at {1 - v:.2f} instead"
            if 0.0 <= v < 0.5
            else ""
        )
        raise MBTITypeError(
            f"intensity for {letter} must be between 0.5 (balanced) and 1.0 (full), got {v}{hint}"
        )
    return v


@dataclass(frozen=True)
class MBTIType:
    """One of the 16 types, with an intensity in [0.5, 1.0] for each of its four poles.

    An intensity of 1.0 means the pole fully; 0.5 means balanced between the pole and its
    opposite. Adapters are composed with weight ``intensity`` for the named pole and
    ``1 - intensity`` for the opposite one.
    """

    letters: str
    intensities: tuple[float, float, float, float] = field(default=(1.0, 1.0, 1.0, 1.0))

    def __post_init__(self) -> None:
        if self.letters not in ALL_TYPES:
            raise MBTITypeError(f"{self.letters!r} is not an MBTI type; use MBTIType.parse()")
        if len(self.intensities) != 4:
            raise MBTITypeError("intensities must hold four numbers, one per dimension")
        for letter, v in zip(self.letters, self.intensities):
            _check_intensity(letter, v)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def parse(
        cls,
        value: "str | MBTIType",
        intensities: Mapping[str, float] | None = None,
    ) -> "MBTIType":
        """Parse "INFP", "infp", "I-N-F-P" or "I N F P" (an MBTIType passes through).

        ``intensities`` maps a pole letter ("I") or a dimension ("EI") to a value in [0.5, 1].
        """
        if isinstance(value, MBTIType):
            base = value
        else:
            if not isinstance(value, str):
                raise MBTITypeError(
                    f"an MBTI type must be a string such as 'INFP', got {type(value).__name__}"
                )
            raw = value.strip()
            letters = _SEPARATORS.sub("", raw).upper()
            if not letters:
                raise MBTITypeError(
                    "empty MBTI type: give four letters, one of E/I, S/N, T/F, J/P, e.g. 'INFP'"
                )
            if len(letters) != 4:
                raise MBTITypeError(
                    f"unknown MBTI type {raw!r}: expected 4 letters, one from each of E/I, S/N, "
                    f"T/F and J/P (e.g. 'INFP'), got {len(letters)}"
                )
            for i, ch in enumerate(letters):
                if ch not in _BY_POSITION[i].poles:
                    raise MBTITypeError(
                        f"unknown MBTI type {raw!r}: letter {i + 1} is {ch!r}, but position "
                        f"{i + 1} must be {_allowed(i)}. Valid types: {', '.join(ALL_TYPES)}"
                    )
            base = cls(letters)
        if not intensities:
            return base
        values = list(base.intensities)
        for key, v in intensities.items():
            k = str(key).strip().upper()
            if k in DIMENSIONS:
                letter = base.letters[DIMENSIONS[k].position]
            elif k in POLES:
                letter = k
            else:
                raise MBTITypeError(
                    f"unknown intensity key {key!r}: use a pole letter (E, I, S, N, T, F, J, P) "
                    "or a dimension (EI, SN, TF, JP)"
                )
            pos = DIMENSIONS[POLES[letter].dimension].position
            if base.letters[pos] != letter:
                raise MBTITypeError(
                    f"intensity given for {letter}, but {base.letters} has "
                    f"{base.letters[pos]} on the {DIMENSIONS[POLES[letter].dimension].name} "
                    f"dimension; give it for {base.letters[pos]} instead"
                )
            values[pos] = _check_intensity(letter, v)
        return cls(base.letters, tuple(values))  # type: ignore[arg-type]

    # -- views --------------------------------------------------------------------------
    @property
    def poles(self) -> tuple[str, str, str, str]:
        return tuple(self.letters)  # type: ignore[return-value]

    @property
    def nickname(self) -> str:
        return NICKNAMES[self.letters]

    @property
    def is_full(self) -> bool:
        """True when every intensity is 1.0."""
        return all(v == 1.0 for v in self.intensities)

    def pole(self, dimension: str) -> str:
        d = DIMENSIONS.get(dimension.upper())
        if d is None:
            raise MBTITypeError(f"unknown dimension {dimension!r}: use EI, SN, TF or JP")
        return self.letters[d.position]

    def intensity(self, key: str) -> float:
        k = key.upper()
        if k in DIMENSIONS:
            return self.intensities[DIMENSIONS[k].position]
        if k in POLES:
            pos = DIMENSIONS[POLES[k].dimension].position
            v = self.intensities[pos]
            return v if self.letters[pos] == k else 1.0 - v
        raise MBTITypeError(f"unknown pole or dimension {key!r}")

    def pole_weights(self) -> dict[str, float]:
        """Weight of each of the eight pole adapters for this type (zero weights omitted)."""
        out: dict[str, float] = {}
        for letter, v in zip(self.letters, self.intensities):
            out[letter] = round(v, 4)
            if v < 1.0:
                out[POLES[letter].opposite] = round(1.0 - v, 4)
        return out

    def key(self) -> str:
        """A stable identifier, e.g. 'INFP' or 'INFP@I0.80-N0.60'."""
        if self.is_full:
            return self.letters
        parts = [f"{l}{v:.2f}" for l, v in zip(self.letters, self.intensities) if v != 1.0]
        return f"{self.letters}@{'-'.join(parts)}"

    def describe(self) -> str:
        """Second-person description of the persona's poles, weighted by intensity."""
        lines = []
        for letter, v in zip(self.letters, self.intensities):
            pole = POLES[letter]
            if v >= 0.85:
                lines.append(pole.summary)
            elif v > 0.55:
                lines.append(f"Somewhat: {pole.summary[0].lower()}{pole.summary[1:]}")
            else:
                opp = POLES[pole.opposite]
                lines.append(f"You balance {pole.name} and {opp.name}.")
        return " ".join(lines)

    def __str__(self) -> str:
        return self.key()

    @staticmethod
    def all() -> list["MBTIType"]:
        return [MBTIType(t) for t in ALL_TYPES]


def parse_type(value: "str | MBTIType", intensities: Mapping[str, float] | None = None) -> MBTIType:
    """Shorthand for :meth:`MBTIType.parse`."""
    return MBTIType.parse(value, intensities)


def dimension_of(letter: str) -> Dimension:
    p = POLES.get(letter.upper())
    if p is None:
        raise MBTITypeError(f"unknown pole {letter!r}: use one of {', '.join(POLES)}")
    return DIMENSIONS[p.dimension]


def types_with(poles: Iterable[str]) -> list[str]:
    """All types holding every given pole letter."""
    want = {p.upper() for p in poles}
    return [t for t in ALL_TYPES if want <= set(t)]
