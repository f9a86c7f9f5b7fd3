"""riskaudit.numbers: the one place numbers become text, parameterised so each former copy keeps its exact output."""

from __future__ import annotations

import math
import random
import re
from typing import Any

import pytest

from riskaudit.numbers import ci_suffix, estimate, fixed_decimals, human_count, num, sci, value_text


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


# ---------------------------------------------------------------------------------------------------------------
# The one format for measured numbers (issue 23 item 8): digits by the metric's scale, the CI in the value's format


@pytest.mark.parametrize(
    ("value", "low", "high", "signed", "expected"),
    [
        # 3 significant digits of the CI's width fix the last digit; value and bounds share it
        (0.41, 0.341, 0.486, False, "0.410 [0.341, 0.486]"),
        (0.51, 0.452, 0.571, False, "0.510 [0.452, 0.571]"),  # was "0.51 [0.452, 0.571]"
        (123.4, 120.1, 126.9, False, "123.40 [120.10, 126.90]"),
        (1.4, 1.38, 1.42, False, "1.4000 [1.3800, 1.4200]"),
        # below 1e-3 (and from 1e6): one exponent for the value and its CI, written as sci() writes it
        (3.56e-05, 1.2e-05, 6.01e-05, True, "+3.56e-5 [+1.20e-5, +6.01e-5]"),  # was "+3.56e-05 [1.2e-05, 6.01e-05]"
        (8.9e-06, 0.0, 2.59e-05, False, "0.89e-5 [0, 2.59e-5]"),
        (-2.5e7, -3.0e7, -2.0e7, False, "-2.50e7 [-3.00e7, -2.00e7]"),
        # a CI straddling zero; signs: "-" always, "+" on every positive number when signed
        (-0.106, -0.281, 0.0637, False, "-0.106 [-0.281, 0.064]"),
        (-0.106, -0.281, 0.0637, True, "-0.106 [-0.281, +0.064]"),
        (0.344, 0.222, 0.463, True, "+0.344 [+0.222, +0.463]"),  # was "+0.344 [0.222, 0.463]"
        (0.125, -0.805, 1.09, False, "0.12 [-0.81, 1.09]"),
        # exact zero is "0"; a number that only rounds to zero keeps its decimals and has no sign
        (0.0, 0.0, 0.0, False, "0 [0, 0]"),
        (0.0, 1.06e-14, 1.06e-14, False, "0 [1.06e-14, 1.06e-14]"),  # a zero-width CI: digits from the magnitude
        (0.0, -0.0375, 0.0354, True, "0 [-0.0375, +0.0354]"),
        (1e-7, -0.0103, 0.0094, True, "0.0000 [-0.0103, +0.0094]"),
        (-1e-7, -0.0103, 0.0094, True, "0.0000 [-0.0103, +0.0094]"),
        # float noise in a CI: at most 6 significant digits of the magnitude
        (1.0, 1.0 - 1e-14, 1.0 + 1e-14, False, "1.00000 [1.00000, 1.00000]"),
        # missing parts
        (None, 0.1, 0.2, False, "–"),
        (math.nan, 0.1, 0.2, False, "–"),
        (0.41, None, 0.486, False, "0.410"),
        (0.41, math.nan, 0.486, False, "0.410 [–, 0.486]"),
    ],
)
def test_estimate(value: float | None, low: float | None, high: float | None, signed: bool, expected: str) -> None:
    assert estimate(value, low, high, signed=signed) == expected


@pytest.mark.parametrize(
    ("v", "signed", "expected"),
    [
        (1e-14, False, "1.00e-14"),
        (3.56e-05, True, "+3.56e-5"),
        (0.41, False, "0.410"),
        (123.4, False, "123"),
        (-2.0958, False, "-2.10"),
        (0.0, True, "0"),
        (-0.0, False, "0"),
        (0.001, False, "0.00100"),  # the fixed range starts at 1e-3
        (0.000999, False, "9.99e-4"),
        (999999.0, False, "999999"),
        (1e6, False, "1.00e6"),
        (9.9996e-5, False, "1.000e-4"),  # rounding carries into the exponent, not "10.00e-5"
        (None, False, "–"),
        (math.inf, False, "–"),
    ],
)
def test_value_text(v: float | None, signed: bool, expected: str) -> None:
    assert value_text(v, signed=signed) == expected


def test_estimate_missing_placeholder_and_separator() -> None:
    assert estimate(None, missing="?") == "?"
    assert estimate(0.41, 0.341, 0.486, sep=",") == "0.410 [0.341,0.486]"  # the compact terminal cell


_NUM = re.compile(r"^[+-]?(\d+)(?:\.(\d+))?(?:e(-?\d+))?$")


def one_format(text: str) -> bool:
    """True when ``V [L, H]`` is written in one format: each part a plain number (no ``e+`` or ``e-05``),
    the non-zero parts with the same decimals and exponent, and a ``+`` on all positive parts or on none."""
    m = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", text)
    if m is None:
        return False
    parts = list(m.groups())
    matches = [_NUM.match(p) for p in parts]
    if not all(matches):
        return False
    shapes = {(mm.group(2) or "", mm.group(3)) for mm, p in zip(matches, parts, strict=True) if p != "0"}
    if len({(len(d), e) for d, e in shapes}) > 1:
        return False
    positive = [p for p in parts if p != "0" and not p.startswith("-") and float(p) != 0]
    return len({p.startswith("+") for p in positive}) <= 1


def test_one_format_checker() -> None:
    assert one_format("0.410 [0.341, 0.486]") and one_format("0 [0, 0]") and one_format("+1.2e-5 [-3.0e-5, +4.1e-5]")
    assert not one_format("0.41 [0.341, 0.486]")  # the issue's three ways
    assert not one_format("+3.56e-05 [1.2e-05, 6.01e-05]")
    assert not one_format("+0.344 [0.222, 0.463]")


@pytest.mark.parametrize("seed", range(3))
def test_estimate_over_many_magnitudes_keeps_one_format(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(2000):
        scale = 10.0 ** rng.uniform(-15, 9)
        value = rng.uniform(-1, 1) * scale
        half = abs(rng.gauss(0, 1)) * scale * 10.0 ** rng.uniform(-4, 1)
        low, high = value - half * rng.uniform(0.2, 1), value + half * rng.uniform(0.2, 1)
        text = estimate(value, low, high, signed=rng.random() < 0.5)
        assert one_format(text), (value, low, high, text)
        # the last digit shown is the 3rd significant digit of the CI's width (capped at 6 of the magnitude)
        shown = text.split(" [")[0]
        mm = _NUM.match(shown)
        assert mm is not None
        last = -len(mm.group(2) or "") + int(mm.group(3) or 0)
        width_exp = int(f"{high - low:e}".split("e")[1])
        top_exp = int(f"{max(abs(value), abs(low), abs(high)):e}".split("e")[1])
        q = max(width_exp - 2, top_exp - 5)
        assert last == (min(0, q) if mm.group(3) is None else min(top_exp, q)), text  # fixed point: no rounding to tens


def test_the_card_writes_the_one_format() -> None:
    from pathlib import Path

    from riskaudit.reporting.card import card_section
    from riskaudit.reporting.lookup import find_metric, member_analysis, representative_members
    from riskaudit.reporting.report import read_report

    report = read_report(Path(__file__).resolve().parent.parent / "reports" / "demo.json")
    section = card_section(report)
    members = representative_members(report)
    checked = 0
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        metric = cells[0].strip("`")
        probe = next(p.id for p in report.probes for m in members if find_metric(m, p.id, metric) is not None)
        for m, cell in zip(members, cells[2 : 2 + len(members)], strict=True):
            r = find_metric(m, probe, metric)
            expected = "–" if r is None else estimate(r.value, r.ci_low, r.ci_high)
            assert cell == expected, (metric, m.name, cell)
            assert "[" not in cell or one_format(cell), cell
            checked += 1
        a = member_analysis(report, probe, metric)
        g = None if a is None else a.growth_flops
        if g is not None and g.slope is not None:
            assert cells[2 + len(members)] == estimate(g.slope, g.slope_ci_low, g.slope_ci_high, signed=True)
    assert checked > 50
