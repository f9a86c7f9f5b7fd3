"""riskaudit.numbers: the one place numbers become text, parameterised so each former copy keeps its exact output."""

from __future__ import annotations

import math
from typing import Any

import pytest

from riskaudit.numbers import ci_suffix, fixed_decimals, human_count, num, sci


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((0.81234,), {}, "0.812"),
        ((None,), {}, "–"),
        ((None,), {"missing": "?"}, "?"),  # policy, diff and the analysis' verdict reasons write "?"
        ((0.0312, "+.3g"), {}, "+0.0312"),
        ((1.0 / 3, ".2f"), {"missing": "?"}, "0.33"),  # analysis/scaling.py's _fmt(v)
        ((math.inf,), {}, "inf"),
        ((math.inf,), {"finite": True}, "–"),  # the HTML page shows no inf or nan
        ((math.nan, "+.3g"), {"finite": True}, "–"),
        ((-2.5, ".2g"), {"finite": True}, "-2.5"),
    ],
)
def test_num(args: tuple[Any, ...], kwargs: dict[str, Any], expected: str) -> None:
    assert num(*args, **kwargs) == expected


def test_ci_suffix() -> None:
    assert ci_suffix(0.1, 0.25) == " [0.1, 0.25]"
    assert ci_suffix(None, 0.25) == ""
    assert ci_suffix(0.1, None) == ""
    assert ci_suffix(-0.01, 0.02, "+.3g") == " [-0.01, +0.02]"
    assert ci_suffix(0.1, 0.25, sep=",") == " [0.1,0.25]"
    assert ci_suffix(math.nan, 0.25, finite=True) == " [–, 0.25]"
    assert ci_suffix(math.nan, 0.25, missing="?", finite=True) == " [?, 0.25]"


def test_fixed_decimals() -> None:
    assert fixed_decimals(0.8123, 2) == "0.81"
    assert fixed_decimals(0.8123, 2, signed=True) == "+0.81"
    assert fixed_decimals(-3.0, 0, signed=True) == "-3"


@pytest.mark.parametrize(
    ("x", "largest", "expected"),
    [
        (None, "Z", "?"),
        (999.0, "Z", "999"),
        (70_426_624, "Z", "70.4M"),
        (3e11, "Z", "300B"),
        (2.1e21, "Z", "2.1Z"),
        (1.5e15, "Z", "1.5P"),
        (1.5e15, "T", "1.5e+03T"),  # the model card's table stops at T
        (-2e6, "Z", "-2M"),
    ],
)
def test_human_count(x: float | None, largest: str, expected: str) -> None:
    assert human_count(x, largest) == expected


def test_human_count_rejects_an_unknown_unit() -> None:
    with pytest.raises(ValueError):
        human_count(1.0, "X")


def test_sci() -> None:
    assert sci(2.5e19) == "2.5e19"
    assert sci(1.23e-4) == "1.2e-4"
    assert sci(None) == "?"
