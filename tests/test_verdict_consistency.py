"""Issue 25: ``smooth`` means a trend that survives leaving out any one member. A series that is flat except
one member is never ``smooth`` (it is ``one member differs`` when the others show no trend), steady growth
stays ``smooth``, published Pythia curves keep their verdicts, and the tables show the Theil–Sen slope beside
OLS when the two disagree by more than 2×."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from scipy.special import expit

from riskaudit.analysis.family import analyze_series
from riskaudit.analysis.results import FamilyAnalysis
from riskaudit.analysis.verdicts import VERDICTS
from riskaudit.reporting.render_analysis import analysis_table
from tests.conftest import run_cli
from tests.test_scaling import N_FAMILIES, SHARE, _bernoulli_items, _paired_means, series


def _verdicts(curve: np.ndarray, seed: int) -> tuple[Counter[str], list[str]]:
    """Verdicts of N_FAMILIES simulated families (1000 items, paired resamples, Pythia spacing) and the
    reasons of the ``one member differs`` ones."""
    rng = np.random.default_rng(seed)
    items = _bernoulli_items(np.tile(curve, (N_FAMILIES, 1)), rng)
    values, reps = items.mean(axis=0), _paired_means(items)
    out: Counter[str] = Counter()
    reasons: list[str] = []
    for f in range(N_FAMILIES):
        a = analyze_series(series(values[f], replicates=reps[f], kind="discrete"))
        out[a.verdict] += 1
        if a.verdict == "one member differs":
            reasons.append(a.verdict_reason)
    return out, reasons


@pytest.mark.parametrize(
    ("label", "curve", "odd"),
    [
        # a present risk that drops from the smallest member to a plateau far from baseline (the demo's
        # gap_magnitude shape): not abrupt (baseline share 0.29), and not a trend either
        ("flat 0.5 except the smallest member at 0.7", np.array([0.7] + [0.5] * 7), "70m"),
        ("flat 0.5 except the largest member at 0.7", np.array([0.5] * 7 + [0.7]), "12b"),
    ],
)
def test_flat_except_one_member_is_never_smooth(label: str, curve: np.ndarray, odd: str) -> None:
    verdicts, reasons = _verdicts(curve, 7 + int(curve[0] * 10))
    rate = verdicts["smooth"] / N_FAMILIES
    warnings.warn(f"simulation: {label}: smooth {rate:.3f}, verdicts {dict(verdicts)}", UserWarning, stacklevel=1)
    assert rate <= 0.02, verdicts
    assert verdicts["one member differs"] / N_FAMILIES >= 0.8, verdicts
    assert all(f"rests on {odd} alone" in r for r in reasons)


@pytest.mark.parametrize(
    ("label", "curve"),
    [
        ("linear, rate 0.10 → 0.40", 0.10 + 0.30 * SHARE),
        ("logit-linear, logit −3 → +1 (0.047 → 0.73)", expit(-3 + 4.0 * SHARE)),
    ],
)
def test_steady_growth_stays_smooth(label: str, curve: np.ndarray) -> None:
    verdicts, _ = _verdicts(curve, 3 + int(100 * curve[-1]))
    rate = verdicts["smooth"] / N_FAMILIES
    warnings.warn(f"simulation: {label}: smooth {rate:.3f}, verdicts {dict(verdicts)}", UserWarning, stacklevel=1)
    assert rate >= 0.95, verdicts


def test_the_demo_gap_magnitude_shape_names_the_member() -> None:
    """The demo's gap_magnitude (nats, smallest → largest member): OLS −0.40/decade with a CI excluding 0,
    carried by the degenerate smallest member alone (Theil–Sen −0.09, Kendall τ −0.07). Was ``smooth``."""
    values = [3.27, 1.40, 1.87, 1.97, 2.01, 1.76]
    sd = 0.08
    lo, hi = [v - 1.96 * sd for v in values], [v + 1.96 * sd for v in values]
    a = analyze_series(series(values, ci=(lo, hi), k=6))
    g = a.growth
    assert g is not None and g.slope_ci_high is not None and g.slope_ci_high < 0  # the full CI excludes 0
    assert g.loo is not None and g.loo.breaking == ["70m"] and not g.loo.holds
    assert a.verdict == "one member differs", a.verdict_reason
    assert "rests on 70m alone" in a.verdict_reason
    assert g.theil_sen_disagrees()
    buf = Console(width=250, record=True)
    fa = FamilyAnalysis.model_validate({"family": "sim", "config": {}, "rule": "", "metrics": [a]})
    buf.print(analysis_table(fa, detail=True))
    text = buf.export_text()
    assert "Theil–Sen" in text and "one member differs" in text
    assert "one member differs" in VERDICTS


def test_agreeing_robust_slope_is_not_repeated() -> None:
    v = 0.10 + 0.30 * SHARE
    a = analyze_series(series(v, n_items=[1000] * 8, kind="discrete"))
    assert a.verdict == "smooth" and a.growth is not None and not a.growth.theil_sen_disagrees()
    assert "left out" in a.verdict_reason or "Theil–Sen" in a.verdict_reason


PYTHIA = ["70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"]
PYTHIA_PARAMS = [70426624, 162322944, 405334016, 1011781632, 1414647808, 2775208960, 6857302016, 11846072320]
# CrowS-Pairs pct_stereotype of Pythia by size (n = 1,508 pairs each), and the share of 32-extractable
# sequences of the Pythia training data (146,432,000 sequences each)
CROWS = [0.519, 0.562, 0.590, 0.601, 0.607, 0.636, 0.652, 0.648]
EXTRACTABLE = [0.00317, 0.00471, 0.00663, 0.00858, 0.00938, 0.01144, 0.01448, 0.01627]


def test_published_pythia_curves_stay_smooth(tmp_path: Path) -> None:
    rows = ["family,member,params,tokens,metric,value,n,kind"]
    for name, params, crows, ext in zip(PYTHIA, PYTHIA_PARAMS, CROWS, EXTRACTABLE, strict=True):
        rows.append(f"pythia,{name},{params},299892736000,crows_pct_stereotype,{crows},1508,discrete")
        rows.append(f"pythia,{name},{params},299892736000,extractable_32,{ext},146432000,discrete")
    csv = tmp_path / "pythia.csv"
    csv.write_text("\n".join(rows) + "\n")
    res = run_cli("analyze", str(csv), "--json")
    assert res.returncode == 0, res.stderr
    verdicts = {m["metric"]: (m["verdict"], m["verdict_reason"]) for m in json.loads(res.stdout)["results"]}
    assert verdicts["crows_pct_stereotype"][0] == "smooth", verdicts
    assert verdicts["extractable_32"][0] == "smooth", verdicts
