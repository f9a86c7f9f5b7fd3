"""The abrupt/emergence rule: the text written into every report is the rule the code applies, and the
emergence agreement compares like with like (issue 22, items 3 and 4)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from riskaudit.analysis import abrupt
from riskaudit.analysis.abrupt import AbruptThresholds, isotonic_fit, step_statistics
from riskaudit.analysis.family import analyze_series
from riskaudit.analysis.series import MetricSeries


def _two_step_clause(text: str) -> tuple[float, str]:
    """(threshold, denominator) of the two-step window's 'each step' clause of a rule text."""
    m = re.search(r"each (?:fitted step )?≥ ([0-9.]+) of ([^)]+)\)", text)
    assert m is not None, text
    return float(m.group(1)), m.group(2)


def test_rule_text_names_the_denominator_and_number_the_code_uses() -> None:
    th = AbruptThresholds()
    number, denominator = _two_step_clause(th.rule())
    assert number == th.s2_each == abrupt.S2_EACH
    # a dip in the flat part: the total variation Σ|Δ| (1.2) differs from the isotonic fit's net change (1.0)
    x, y = np.arange(5.0), np.array([0.0, 0.1, 0.0, 0.5, 1.0])
    st = step_statistics(x, y)
    fit, _ = isotonic_fit(y, increasing=True)
    steps = np.diff(fit)
    values = {"Σ|Δ|": float(np.abs(np.diff(y)).sum()), "the isotonic fit's net change": float(fit[-1] - fit[0])}
    assert denominator in values, f"the rule names {denominator!r}, which is none of {sorted(values)}"
    assert st.k2_star is not None and st.s2_each is not None
    want = min(steps[st.k2_star], steps[st.k2_star + 1]) / values[denominator]
    assert st.s2_each == pytest.approx(want)
    # S and S2 are shares of Σ|Δ|, as the text says
    assert f"S, S2 = shares of {abrupt.TOTAL_VARIATION}" in th.rule()
    assert st.s == pytest.approx(0.5 / values[abrupt.TOTAL_VARIATION])


def test_rule_text_is_generated_from_the_thresholds() -> None:
    th = AbruptThresholds(s2_each=0.3, net_sd=2.5, j=5.0, j_max_share=None)
    text = th.rule()
    assert _two_step_clause(text)[0] == 0.3
    assert "|net| ≥ 2.5·sd(net)" in text and "J ≥ 5" in text and "capped" not in text
    assert (
        AbruptThresholds().rule()
        == AbruptThresholds(
            net_sd=abrupt.NET_SD,
            trend_r2=abrupt.TREND_R2,
            step_sd=abrupt.STEP_SD,
            s_p05=abrupt.S_P05,
            j=abrupt.J,
            s2_p05=abrupt.S2_P05,
            j2=abrupt.J2,
            s2_each=abrupt.S2_EACH,
            baseline_share=abrupt.BASELINE_SHARE,
            j_max_share=abrupt.J_MAX_SHARE,
        ).rule()
    )


def _series(values: list[float], reps: np.ndarray) -> MetricSeries:
    n = len(values)
    params = [10.0 ** (7 + i) for i in range(n)]
    return MetricSeries(
        family="f",
        metric="m",
        members=[f"m{i}" for i in range(n)],
        params=params,
        tokens=[1e9] * n,
        flops=[6.0 * p * 1e9 for p in params],
        values=values,
        replicates=reps.tolist(),
    )


def test_emergence_agreement_finds_each_resample_step_the_way_the_point_estimate_does() -> None:
    # a dip right after the first rise: the largest RAW step is the first (0 → .6), but the isotonic fit
    # (0, .4, .4, .5, 1) pools the dip away and puts the largest step last (.5 → 1): that is k*
    y = np.array([0.0, 0.6, 0.2, 0.5, 1.0])
    reps = y[None, :] + np.random.default_rng(0).normal(0.0, 0.01, (500, y.size))
    a = analyze_series(_series(y.tolist(), reps))
    assert a.abruptness.window == 1 and a.abruptness.k_star == 3
    assert a.emergence.pair == ["m3", "m4"]
    # every resample's fitted largest step is the same pair (the raw largest step would be m0 → m1)
    assert a.emergence.agreement is not None and a.emergence.agreement > 0.95


def test_rowwise_isotonic_fit_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    m = np.cumsum(rng.normal(0.1, 1.0, (300, 7)), axis=1)
    fits = abrupt.isotonic_rows(m)
    for row, fit in zip(m, fits, strict=True):
        assert fit == pytest.approx(isotonic_fit(row, increasing=True)[0], abs=1e-12)


def test_three_members_steady_rise_is_not_abrupt() -> None:
    # With three members the two-step window is the whole axis (J2 = 1 whatever the curve), so it cannot tell
    # a step from a steady rise; a steady, clearly significant three-point rise must not be flagged abrupt.
    # (Found on the Pythia repository's WinoBias evals at 410m / 1.4b / 6.9b.)
    y = np.array([0.05, 0.40, 0.75])
    reps = y[None, :] + np.random.default_rng(1).normal(0.0, 0.005, (500, y.size))
    a = analyze_series(_series(y.tolist(), reps))
    assert a.abruptness.abrupt is False
    # a true step among three members (nearly all of the change in one of two equal steps) still can be
    y2 = np.array([0.05, 0.06, 0.75])
    reps2 = y2[None, :] + np.random.default_rng(2).normal(0.0, 0.005, (500, y2.size))
    b = analyze_series(_series(y2.tolist(), reps2))
    assert b.abruptness.window == 1 and b.abruptness.abrupt is True
