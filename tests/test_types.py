import pytest

from mbti_persona.types import ALL_TYPES, MBTIType, MBTITypeError, types_with


@pytest.mark.parametrize("text", ["INFP", "infp", "I-N-F-P", "i n f p", " Infp ", "I_N_F_P"])
def test_parse_forms(text):
    assert MBTIType.parse(text).letters == "INFP"


def test_sixteen_types():
    assert len(ALL_TYPES) == 16 == len(set(ALL_TYPES))
    assert {MBTIType.parse(t).letters for t in ALL_TYPES} == set(ALL_TYPES)
    assert len(types_with("IN")) == 4


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("XNTP", "letter 1 is 'X', but position 1 must be E or I"),
        ("INXP", "position 3 must be T or F"),
        ("INF", "expected 4 letters"),
        ("INFPJ", "expected 4 letters"),
        ("", "empty MBTI type"),
        ("EEEE", "position 2 must be S or N"),
    ],
)
def test_bad_types_name_the_letter_and_what_is_allowed(bad, fragment):
    with pytest.raises(MBTITypeError, match=fragment.replace("(", r"\(")):
        MBTIType.parse(bad)


def test_non_string():
    with pytest.raises(MBTITypeError, match="must be a string"):
        MBTIType.parse(1234)


def test_intensities_and_weights():
    t = MBTIType.parse("INFP", intensities={"I": 0.8, "SN": 0.6})
    assert t.intensity("I") == 0.8 and t.intensity("E") == pytest.approx(0.2)
    assert t.intensity("SN") == 0.6
    assert t.pole_weights() == {"I": 0.8, "E": 0.2, "N": 0.6, "S": 0.4, "F": 1.0, "P": 1.0}
    assert t.key() == "INFP@I0.80-N0.60" and not t.is_full
    assert MBTIType.parse("INFP").key() == "INFP"


@pytest.mark.parametrize(
    "intensities, fragment",
    [
        ({"E": 0.8}, "give it for I instead"),
        ({"I": 1.5}, "between 0.5"),
        ({"I": 0.2}, "use E at 0.80 instead"),
        ({"X": 0.7}, "unknown intensity key"),
        ({"I": "lots"}, "must be a number"),
    ],
)
def test_bad_intensities(intensities, fragment):
    with pytest.raises(MBTITypeError, match=fragment):
        MBTIType.parse("INFP", intensities=intensities)


def test_types_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, mbti_persona.types, mbti_persona; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
