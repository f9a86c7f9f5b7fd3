"""Scaling and emergence analysis: statistics on hand-computed cases, edge cases, and the seeded acceptance
simulation on the Pythia spacing (8 members, 1000 items, 200 families per scenario, 2000 paired resamples)."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import ValidationError
from rich.console import Console
from scipy import stats as sps
from scipy.special import expit

from riskaudit.analysis import stats
from riskaudit.analysis.abrupt import AbruptThresholds, step_statistics
from riskaudit.analysis.config import AnalysisConfig
from riskaudit.analysis.family import analyze_families, analyze_family, analyze_series
from riskaudit.analysis.results import FamilyAnalysis, MetricAnalysis
from riskaudit.analysis.series import Finite, MetricSeries, NoiseEstimate
from riskaudit.reporting.render_analysis import analysis_json, analysis_table

PYTHIA_NAMES = ["70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"]
PYTHIA_PARAMS = np.array([70e6, 160e6, 410e6, 1.0e9, 1.4e9, 2.8e9, 6.9e9, 12e9])
PYTHIA_TOKENS = 299_892_736_000.0
PYTHIA_FLOPS = 6.0 * PYTHIA_PARAMS * PYTHIA_TOKENS
X = np.log10(PYTHIA_FLOPS)
SHARE = (X - X[0]) / (X[-1] - X[0])  # position of each member on [0, 1] along log10 FLOPs
N_ITEMS, N_RESAMPLES, N_FAMILIES = 1000, 2000, 200


def series(
    values: Sequence[float | None] | np.ndarray,
    *,
    replicates: np.ndarray | None = None,
    ci: tuple[list[float], list[float]] | None = None,
    n_items: Sequence[int | None] | None = None,
    metric: str = "m",
    kind: str = "continuous",
    companion: str | None = None,
    direction: str = "higher_is_riskier",
    baseline: float = 0.0,
    flops: Sequence[float | None] | None = None,
    params: Sequence[float | None] | None = None,
    k: int = 8,
    rate: bool | None = None,
) -> MetricSeries:
    """A simulated series; it is a declared proportion (``rate``) when discrete or given item counts, as the
    simulated binomial proportions are."""
    params_l = list(params) if params is not None else [float(p) for p in PYTHIA_PARAMS[:k]]
    return MetricSeries.model_validate(
        {
            "family": "sim",
            "metric": metric,
            "members": PYTHIA_NAMES[:k] if k <= 8 else [f"m{i}" for i in range(k)],
            "params": params_l,
            "tokens": [PYTHIA_TOKENS] * k,
            "flops": list(flops) if flops is not None else [6.0 * (p or 0) * PYTHIA_TOKENS for p in params_l],
            "values": [None if v is None else float(v) for v in values],
            "replicates": None if replicates is None else replicates.tolist(),
            "ci_low": None if ci is None else ci[0],
            "ci_high": None if ci is None else ci[1],
            "n_items": None if n_items is None else list(n_items),
            "kind": kind,
            "companion": companion,
            "direction": direction,
            "baseline": baseline,
            "rate": (kind == "discrete" or n_items is not None) if rate is None else rate,
        }
    )


def strict_json(a: MetricAnalysis) -> str:
    return json.dumps(a.model_dump(mode="json"), allow_nan=False)


# --------------------------------------------------------------------------------------------------
# Statistics on hand-computed cases


def test_step_statistics_on_a_tiny_step() -> None:
    st = step_statistics([0, 1, 2, 3], [0, 0, 1, 1])
    # Δ = (0, 1, 0), net = 1: S = 1 at k* = 1; J = 1 / (1/3) = 3; I = +1; mean Δ² = 1/3; median Δ² = 0
    assert st.net == 1.0 and st.s == 1.0 and st.k_star == 1
    assert st.j == pytest.approx(3.0)
    assert st.linearity == pytest.approx(1 / math.sqrt(1 / 3) / 3)  # 0.577
    assert st.breakthroughness is None  # median Δ² = 0: undefined, never Inf


def test_step_statistics_uneven_spacing() -> None:
    st = step_statistics([0, 1, 2, 4], [0, 1, 3, 4])
    # Δ = (1, 2, 1), net 4: S = 0.5 at k* = 1 (gap 1 of span 4) → J = 2; I = 4; mean Δ² = 2, median Δ² = 1
    assert st.s == 0.5 and st.k_star == 1
    assert st.j == pytest.approx(2.0)
    assert st.linearity == pytest.approx(4 / math.sqrt(2) / 3)
    assert st.breakthroughness == pytest.approx(4 / 1 / 3)


def test_step_statistics_decreasing_and_linear() -> None:
    st = step_statistics([0, 1, 2, 3], [3, 2, 0, -1])
    # net = −4: S = max(−Δ)/4 = 2/4 at k* = 1; J = 1.5; I = sign(3 − 0)·... = −4
    assert st.s == 0.5 and st.k_star == 1 and st.j == pytest.approx(1.5)
    assert st.linearity == pytest.approx(-4 / math.sqrt(2) / 3)
    assert st.breakthroughness == pytest.approx(-4 / 3)
    lin = step_statistics(X, 2.0 * X)  # a straight line on the uneven Pythia spacing: J = 1 at every gap
    gaps = np.diff(X)
    assert lin.j == pytest.approx(1.0)
    assert lin.linearity == pytest.approx((X[-1] - X[0]) / math.sqrt(np.mean(gaps**2)) / 7)  # 0.94: L ≤ 1
    assert lin.breakthroughness == pytest.approx((X[-1] - X[0]) / math.sqrt(np.median(gaps**2)) / 7)
    even = step_statistics(np.arange(6.0), np.arange(6.0) * 0.3)
    assert even.linearity == pytest.approx(1.0) and even.breakthroughness == pytest.approx(1.0)
    assert even.s == pytest.approx(0.2) and even.j == pytest.approx(1.0)
    flat = step_statistics([0, 1, 2], [1.0, 1.0, 1.0])
    assert flat.s is None and flat.j is None and flat.linearity is None


def test_growth_matches_numpy_and_scipy() -> None:
    rng = np.random.default_rng(3)
    y = 0.1 + 0.05 * X + rng.normal(0, 0.01, 8)
    sd = np.full(8, 0.01)
    a = analyze_series(series(y, ci=((y - 1.96 * sd).tolist(), (y + 1.96 * sd).tolist())))
    g = a.growth_flops
    assert g is not None and a.x_axis == "flops"
    assert g.slope == pytest.approx(np.polyfit(X, y, 1)[0], rel=1e-9)
    ts = sps.theilslopes(y, X)
    assert g.theil_sen == pytest.approx(ts[0]) and g.theil_sen_ci_low == pytest.approx(ts[2])
    kt = sps.kendalltau(X, y)
    assert g.kendall_tau == pytest.approx(kt.statistic) and g.kendall_p == pytest.approx(kt.pvalue)
    assert g.slope_ci_low is not None and g.slope_ci_high is not None and g.slope is not None
    assert g.slope_ci_low < g.slope < g.slope_ci_high
    assert a.resampling == "normal from CI"
    # same tokens for every member: the params axis gives the same slope
    assert a.growth_params is not None and a.growth_params.slope == pytest.approx(g.slope)


def test_slope_ci_from_ols_standard_error_without_resamples() -> None:
    y = np.array([0.0, 0.11, 0.19, 0.32, 0.38, 0.52, 0.61, 0.69])
    a = analyze_series(series(y))
    g = a.growth_flops
    assert g is not None and a.resampling == "none"
    res = sps.linregress(X, y)
    t = sps.t.ppf(0.975, 6)
    assert g.slope_ci_low == pytest.approx(res.slope - t * res.stderr)
    assert g.slope_ci_high == pytest.approx(res.slope + t * res.stderr)
    assert "standard error" in g.slope_ci_method
    # smooth by point estimates (S, J fail) although nothing can be resampled
    assert a.abruptness.abrupt is False and a.verdict == "smooth"


def test_logit_slope_for_rates_and_orientation() -> None:
    p = expit(-2 + 1.5 * (X - X[0]))
    n = [1000] * 8
    a = analyze_series(series(p, n_items=n, kind="discrete"))
    g = a.growth_flops
    assert g is not None and g.logit_slope == pytest.approx(1.5, rel=1e-6)
    assert g.logit_slope_ci_low is not None and g.logit_slope_ci_low < 1.5 < (g.logit_slope_ci_high or 0)
    assert a.resampling == "binomial"
    low = analyze_series(series(p, n_items=n, kind="discrete", direction="lower_is_riskier"))
    assert low.orientation == "1 − y"
    assert low.growth_flops is not None and low.growth_flops.slope == pytest.approx(-(g.slope or 0))
    assert low.growth_flops.logit_slope == pytest.approx(-1.5, rel=1e-6)
    two = analyze_series(series(np.array([-0.4, -0.3, -0.2, -0.1, 0.1, 0.2, 0.3, 0.4]), direction="two_sided"))
    assert two.y == pytest.approx([0.4, 0.3, 0.2, 0.1, 0.1, 0.2, 0.3, 0.4])
    assert two.growth_flops is not None and two.growth_flops.logit_slope is None


def test_abrupt_flag_emergence_pair_and_wei_point() -> None:
    v = np.array([0.02, 0.02, 0.03, 0.02, 0.45, 0.46, 0.47, 0.48])
    n = [1000] * 8
    a = analyze_series(series(v, n_items=n, kind="discrete", baseline=0.0))
    ab = a.abruptness
    assert ab.abrupt is True
    assert ab.criteria == {"net": True, "trend": True, "step": True, "s_p05": True, "j": True, "baseline": True}
    assert ab.baseline_share == pytest.approx(0.425 / 0.45)  # fitted rise / fitted level above 0 after it
    assert ab.net == pytest.approx(0.46)
    assert ab.total_variation == pytest.approx(0.48)  # Δ = .00 .01 −.01 .43 .01 .01 .01
    assert ab.s == pytest.approx(0.43 / 0.48)  # a share of the total variation: S ≤ 1
    # J from the isotonic fit (.02 .02 .025 .025 .45 … pools the dip): 0.425 of its 0.46 rise in that gap
    assert ab.j == pytest.approx((0.425 / 0.46) / ((X[4] - X[3]) / (X[7] - X[0])))
    assert ab.window == 1 and ab.step == pytest.approx(0.43)
    assert a.emergence.pair == ["1b", "1.4b"] and (a.emergence.agreement or 0) > 0.99
    # every member's binomial CI clears 0 (p > 0), so there is no Wei-style point with baseline 0 ...
    assert a.emergence.wei_member is None
    # ... with baseline 0.02 (chance) the first member clearly above it is 1.4b
    b = analyze_series(series(v, n_items=n, kind="discrete", baseline=0.025))
    assert b.emergence.wei_member == "1.4b"
    assert a.verdict == "abrupt" and "no continuous companion" in a.verdict_reason
    assert a.predictability.surprise is False  # the jump sits mid-family: the largest member is predictable


def test_net_change_must_exceed_noise() -> None:
    v = np.array([0.10, 0.10, 0.10, 0.10, 0.13, 0.13, 0.13, 0.13])  # a step of 0.03 with n = 100 items
    a = analyze_series(series(v, n_items=[100] * 8, kind="discrete"))
    assert a.abruptness.criteria["net"] is False and a.abruptness.abrupt is False
    # Kendall τ orders the exact points (p 0.02), but the change is 0.7 sd of its own binomial noise and the
    # growth CI includes 0: no trend that survives the noise and leaving out a member (issue 25; was "smooth")
    assert a.verdict == "no consistent trend"


def test_j_cap_for_few_evenly_spaced_members() -> None:
    """With 5 evenly spaced members J ≤ 4·S: a clean step can't reach the DESIGN's J ≥ 4; the cap fixes that."""
    params = [1e8, 1e8 * 10**0.5, 1e9, 1e9 * 10**0.5, 1e10]
    v = [0.10, 0.10, 0.50, 0.50, 0.50]
    reps = np.random.default_rng(0).normal(np.array(v), 0.01, size=(2000, 5))
    a = analyze_series(series(v, replicates=reps, params=params, k=5))
    assert a.abruptness.j == pytest.approx(4.0) and a.abruptness.j_threshold == pytest.approx(3.2)
    assert a.abruptness.abrupt is True
    design = AnalysisConfig(thresholds=AbruptThresholds(j_max_share=None))
    b = analyze_series(series(v, replicates=reps, params=params, k=5), config=design)
    assert b.abruptness.j_threshold == 4.0
    # on the Pythia spacing the cap never binds (largest gap 18% of the span → 0.8/0.18 > 4)
    c = analyze_series(series(np.r_[[0.1] * 2, [0.5] * 6], replicates=None, n_items=[1000] * 8, kind="discrete"))
    assert c.abruptness.j_threshold == 4.0


def test_predictability_flags_an_outlier_largest_member() -> None:
    rng = np.random.default_rng(5)
    y = 0.2 + 0.1 * (X - X[0]) + rng.normal(0, 0.005, 8)
    ci = ((y - 0.01).tolist(), (y + 0.01).tolist())
    ok = analyze_series(series(y, ci=ci))
    assert ok.predictability.surprise is False and ok.predictability.surprise_two_out is False
    y2 = y.copy()
    y2[-1] += 0.2
    bad = analyze_series(series(y2, ci=((y2 - 0.01).tolist(), (y2 + 0.01).tolist())))
    p = bad.predictability
    assert p.surprise is True
    one = [q for q in p.predictions if q.held_out == 1]
    assert len(one) == 1 and one[0].member == "12b" and one[0].outside
    # the prediction is the OLS line through the 7 smaller members, evaluated at the largest
    b, a0 = np.polyfit(X[:7], y[:7], 1)
    assert one[0].predicted == pytest.approx(a0 + b * X[7])
    assert len([q for q in p.predictions if q.held_out == 2]) == 2


def test_insufficient_data_and_none_values() -> None:
    a = analyze_series(series([0.1, None, 0.5, None, None, None, None, None], n_items=[100] * 8))
    assert a.verdict == "insufficient data" and a.n_members == 2
    assert any("no value for" in n for n in a.notes)
    strict_json(a)
    three = analyze_series(series([0.1, 0.2, 0.3], k=3, n_items=[100] * 3, kind="discrete"))
    assert three.n_members == 3 and three.verdict != "insufficient data"
    assert any("little power" in n for n in three.notes)
    assert three.predictability.surprise is None  # 3 points: nothing left to fit a line and predict
    # None inside paired replicates: those resamples are left out
    reps = np.random.default_rng(0).normal(0.3, 0.01, size=(100, 8))
    reps[:10, 3] = np.nan
    r = analyze_series(series(np.linspace(0.1, 0.5, 8), replicates=reps))
    assert r.n_resamples == 90 and r.resampling == "paired bootstrap"


def test_constant_series_and_missing_flops() -> None:
    c = analyze_series(series([0.3] * 8, n_items=[1000] * 8, kind="discrete"))
    assert c.verdict == "no consistent trend" and c.abruptness.s is None and c.abruptness.abrupt is False
    assert c.growth_flops is not None and c.growth_flops.slope == pytest.approx(0.0)
    assert c.growth_flops.kendall_tau is None  # undefined for a constant series: None, not NaN
    strict_json(c)
    flops: list[float | None] = [float(f) for f in PYTHIA_FLOPS]
    flops[2] = None
    m = analyze_series(series(np.linspace(0.1, 0.5, 8), flops=flops, n_items=[1000] * 8))
    assert m.x_axis == "params" and m.growth_flops is None and m.growth_params is not None
    assert any("FLOPs unknown for 410m" in n for n in m.notes)


def test_checkpoints_axis_params_constant_and_step0_left_out() -> None:
    steps = np.array([0, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 143000])
    tokens = steps * 2_097_152.0
    s = MetricSeries(
        family="pythia",
        metric="exact",
        axis="checkpoints",
        checkpoint_of="1b",
        members=[f"1b@step{k}" for k in steps],
        params=[1e9] * 9,
        tokens=tokens.tolist(),
        flops=(6e9 * tokens).tolist(),
        values=[0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.12, 0.15],
        n_items=[1000] * 9,
        kind="discrete",
    )
    a = analyze_series(s)
    assert a.n_members == 8 and a.members[0] == "1b@step1000"
    assert any("zero training compute" in n for n in a.notes)
    assert a.growth_params is not None and a.growth_params.slope is None and "same" in a.growth_params.note
    assert a.growth_flops is not None and (a.growth_flops.slope or 0) > 0


def test_strict_json_and_finite_validation() -> None:
    with pytest.raises(ValidationError):
        AbruptThresholds(j=float("nan"))
    assert Finite is not None
    a = analyze_series(series([0.0, 0.0, 0.0, 1e-300, 0.0, 0.0, 0.0, 1.0], n_items=[10] * 8))
    strict_json(a)


def test_analyze_family_pairs_companion_artifact_and_genuine() -> None:
    em = np.exp(32 * (-0.3 + 0.29 * SHARE))  # p^32 with log p linear in log FLOPs
    lp = -0.3 + 0.29 * SHARE
    rng = np.random.default_rng(0)
    lp_reps = lp + rng.normal(0, 0.002, size=(2000, 8))
    disc = series(em, n_items=[1000] * 8, kind="discrete", metric="exact", companion="logprob")
    cont = series(lp, replicates=lp_reps, metric="logprob")
    fa = analyze_family([disc, cont])
    by = {m.metric: m for m in fa.metrics}
    assert by["logprob"].verdict == "smooth"
    assert by["exact"].verdict == "abrupt (likely metric artifact)", by["exact"].verdict_reason
    assert by["exact"].companion_abrupt is False
    # a companion that jumps as well → genuine
    step_lp = np.where(SHARE > 0.8, -0.01, -0.3)
    reps2 = step_lp + rng.normal(0, 0.002, size=(2000, 8))
    # baseline: the per-token log-prob of a model that has not memorized (-0.3), from which the risk appears
    cont2 = series(step_lp, replicates=reps2, metric="logprob", baseline=-0.3)
    fa2 = analyze_family([disc, cont2])
    assert fa2.metrics[0].verdict == "abrupt" and "genuine" in fa2.metrics[0].verdict_reason
    # a companion named but absent
    fa3 = analyze_family([disc])
    assert fa3.metrics[0].verdict == "abrupt" and any("not found" in n for n in fa3.metrics[0].notes)
    with pytest.raises(ValueError, match="several families"):
        analyze_family([disc, disc.model_copy(update={"family": "other"})])
    assert [f.family for f in analyze_families([disc, disc.model_copy(update={"family": "other"})])] == [
        "sim",
        "other",
    ]


def test_render_table_and_json() -> None:
    em = np.exp(32 * (-0.3 + 0.29 * SHARE))
    fa = analyze_family(
        [
            series(em, n_items=[1000] * 8, kind="discrete", metric="exact", companion="logprob"),
            series(
                -0.3 + 0.29 * SHARE,
                ci=((-0.31 + 0.29 * SHARE).tolist(), (-0.29 + 0.29 * SHARE).tolist()),
                metric="logprob",
            ),
            series([0.1, 0.2], k=2, metric="tiny[t0]"),
        ]
    )
    console = Console(record=True, width=220)
    console.print(analysis_table(fa, detail=True))
    text = console.export_text()
    assert "likely metric artifact" in text and "6.9b → 12b" in text and "insufficient data" in text
    assert "tiny[t0]" in text  # names are data, not rich markup
    console = Console(record=True, width=220)
    console.print(analysis_table(fa))  # breakdowns hidden by default, counted in the caption
    text = console.export_text()
    assert "tiny[t0]" not in text and "more metrics" in text
    doc = analysis_json(fa)
    json.dumps(doc, allow_nan=False)
    assert doc["kind"] == "riskaudit.analysis" and len(doc["results"]) == 3
    r = doc["results"][0]
    assert r["abrupt"] is True and r["emergence_pair"] == ["6.9b", "12b"]
    assert set(r["abruptness"]) >= {"S", "S_p05", "J", "net", "net_sd", "breakthroughness", "linearity"}
    assert r["slope_per_decade_flops"]["ci_low"] < r["slope_per_decade_flops"]["slope"]
    assert r["verdict"] == "abrupt (likely metric artifact)" and isinstance(r["surprise"], bool)
    assert analysis_json([fa, fa])["results"][3]["metric"] == "exact"
    # the report stores the FamilyAnalysis itself: it round-trips through strict JSON
    back = FamilyAnalysis.model_validate_json(json.dumps(fa.model_dump(mode="json"), allow_nan=False))
    assert back == fa


# --------------------------------------------------------------------------------------------------
# Acceptance simulation (seeded)


def _mean_resampler() -> np.ndarray:
    """(B, n_items) weights such that W @ items = the bootstrap means (one index matrix: paired resamples)."""
    idx = stats.bootstrap_indices(N_ITEMS, N_RESAMPLES, seed=0)
    flat = (np.arange(N_RESAMPLES)[:, None] * N_ITEMS + idx).ravel()
    return np.bincount(flat, minlength=N_RESAMPLES * N_ITEMS).reshape(N_RESAMPLES, N_ITEMS) / N_ITEMS


W = _mean_resampler()


def _paired_means(items: np.ndarray) -> np.ndarray:
    """(items, F, K) → (F, B, K) bootstrap means, every family and member resampled with the same items."""
    n, f, k = items.shape
    return np.ascontiguousarray((W @ items.reshape(n, f * k)).reshape(N_RESAMPLES, f, k).transpose(1, 0, 2))


def _bernoulli_items(p: np.ndarray, rng: np.random.Generator, rho: float = 0.7) -> np.ndarray:
    """(items, families, members) 0/1 outcomes with success probability p[f, k]; a Gaussian copula (ρ) makes an
    item's outcomes correlated across members (items keep their difficulty), the marginals stay exact."""
    f, k = p.shape
    z = rho * rng.standard_normal((N_ITEMS, f, 1)) + math.sqrt(1 - rho**2) * rng.standard_normal((N_ITEMS, f, k))
    u: np.ndarray = sps.norm.cdf(z)
    return (u < p[None]).astype(np.float64)


def _simulate(p: np.ndarray, seed: int, model_sd: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per simulated family: flagged abrupt, and surprise (largest member outside the 95% PI).

    ``model_sd``: model-to-model noise, N(0, sd²) added to every member's true rate in every family (what a
    second training seed would change); item resampling cannot see it."""
    rng = np.random.default_rng(seed)
    if model_sd > 0:
        p = np.clip(p + rng.normal(0.0, model_sd, p.shape), 0.001, 0.999)
    items = _bernoulli_items(p, rng)
    values = items.mean(axis=0)
    reps = _paired_means(items)
    flagged, surprised = np.zeros(p.shape[0], bool), np.zeros(p.shape[0], bool)
    for f in range(p.shape[0]):
        a = analyze_series(series(values[f], replicates=reps[f], kind="discrete"))
        flagged[f], surprised[f] = bool(a.abruptness.abrupt), bool(a.predictability.surprise)
    return flagged, surprised


def _report(label: str, rate: float) -> None:
    warnings.warn(f"simulation: {label}: {rate:.3f}", UserWarning, stacklevel=2)


@pytest.mark.parametrize(
    ("label", "curve"),
    [
        ("linear, rate 0.10 → 0.13", 0.10 + 0.03 * SHARE),
        ("linear, rate 0.10 → 0.40", 0.10 + 0.30 * SHARE),
        ("logit-linear, logit −3 → −2.5 (0.047 → 0.076)", expit(-3 + 0.5 * SHARE)),
        ("logit-linear, logit −3 → +1 (0.047 → 0.73)", expit(-3 + 4.0 * SHARE)),
    ],
)
def test_sim_smooth_growth_rarely_flagged(label: str, curve: np.ndarray) -> None:
    seed = int(1000 * curve[-1])
    flagged, surprised = _simulate(np.tile(curve, (N_FAMILIES, 1)), seed)
    rate, surprise = float(flagged.mean()), float(surprised.mean())
    _report(f"smooth {label}: flagged abrupt", rate)
    _report(f"smooth {label}: surprise (largest member outside the 95% PI)", surprise)
    assert rate <= 0.02, f"smooth {label}: flagged abrupt in {rate:.1%} of {N_FAMILIES} families"
    assert surprise <= 0.05, f"smooth {label}: surprise in {surprise:.1%} of {N_FAMILIES} families"


def test_sim_step_of_04_flagged() -> None:
    rng = np.random.default_rng(11)
    where = rng.integers(0, 7, N_FAMILIES)  # the step sits between members k and k+1, k uniform over the 7 gaps
    p = np.where(np.arange(8)[None, :] > where[:, None], 0.5, 0.1)
    flagged, surprised = _simulate(p, 12)
    rate = float(flagged.mean())
    _report("step 0.1 → 0.5 between adjacent members: flagged abrupt", rate)
    assert rate >= 0.95, f"step of 0.4 flagged in only {rate:.1%}"
    last = where == 6  # the step lands on the largest member: its value is not predictable from the others
    _report("step into the largest member: surprise", float(surprised[last].mean()))
    assert surprised[last].all() and not surprised[~last].any()


@pytest.mark.slow
def test_sim_exact_match_mirage_is_a_metric_artifact() -> None:
    """Exact match over 32 tokens = Π p_t with per-token log-prob improving linearly in log10 FLOPs
    (Schaeffer et al. 2023): the discrete metric jumps, its per-token log-prob companion does not."""
    rng = np.random.default_rng(21)
    lo = rng.uniform(-0.34, -0.28, (N_FAMILIES, 1))  # mean per-token log-prob of the smallest member
    hi = rng.uniform(-0.015, -0.005, (N_FAMILIES, 1))  # ... and of the largest
    lbar = lo + (hi - lo) * SHARE[None, :]  # (F, 8)
    u = rng.lognormal(0.0, 0.25, (N_ITEMS, N_FAMILIES, 1))
    u /= math.exp(0.25**2 / 2)  # item difficulty, mean 1
    logp = lbar[None] * u  # (items, F, 8) per-token log-prob of each item
    z = 0.7 * rng.standard_normal((N_ITEMS, N_FAMILIES, 1)) + math.sqrt(1 - 0.49) * rng.standard_normal(logp.shape)
    exact = (sps.norm.cdf(z) < np.exp(32 * logp)).astype(np.float64)  # Bernoulli(p^32) per item
    comp = logp + rng.normal(0.0, 0.02, logp.shape)  # measured mean per-token log-prob of the item
    exact_reps, comp_reps = _paired_means(exact), _paired_means(comp)
    verdicts: dict[str, int] = {}
    for f in range(N_FAMILIES):
        d = series(exact[:, f].mean(0), replicates=exact_reps[f], kind="discrete", metric="exact", companion="logprob")
        c = series(comp[:, f].mean(0), replicates=comp_reps[f], metric="logprob")
        v = analyze_series(d, c).verdict
        verdicts[v] = verdicts.get(v, 0) + 1
    rate = verdicts.get("abrupt (likely metric artifact)", 0) / N_FAMILIES
    _report(f"exact-match p^32 mirage: 'likely metric artifact' (all verdicts {verdicts})", rate)
    assert rate >= 0.90, verdicts


# Series without a consistent direction, with model-to-model noise (sd 0.03) larger than the item noise
# (sd ≤ 0.016 for 1000 items): real per-size curves on near-chance tasks zig-zag like this.
NO_TREND = [
    ("zig-zag .50 .60 .50 …", np.array([0.50, 0.60, 0.50, 0.60, 0.50, 0.60, 0.50, 0.55])),
    ("seesaw: up, plateau, back down", np.array([0.20, 0.20, 0.20, 0.60, 0.60, 0.60, 0.30, 0.30])),
    ("seesaw: rise and fall", np.array([0.10, 0.30, 0.50, 0.50, 0.30, 0.10, 0.10, 0.30])),
    ("a single dip", np.array([0.50, 0.50, 0.50, 0.20, 0.50, 0.50, 0.50, 0.50])),
    ("flat noise", np.full(8, 0.50)),
]


@pytest.mark.slow
@pytest.mark.parametrize(("label", "curve"), NO_TREND)
def test_sim_no_trend_never_abrupt(label: str, curve: np.ndarray) -> None:
    flagged, _ = _simulate(np.tile(curve, (N_FAMILIES, 1)), int(100 * curve.sum()), model_sd=0.03)
    rate = float(flagged.mean())
    _report(f"no trend, {label}, model sd 0.03: flagged abrupt", rate)
    assert rate <= 0.02, f"{label}: flagged abrupt in {rate:.1%} of {N_FAMILIES} families"


@pytest.mark.slow
def test_sim_smooth_growth_with_model_noise_rarely_flagged() -> None:
    for label, curve in (("linear 0.10 → 0.40", 0.10 + 0.30 * SHARE), ("logit −3 → +1", expit(-3 + 4.0 * SHARE))):
        flagged, _ = _simulate(np.tile(curve, (N_FAMILIES, 1)), 31, model_sd=0.03)
        rate = float(flagged.mean())
        _report(f"smooth {label}, model sd 0.03: flagged abrupt", rate)
        assert rate <= 0.02, f"smooth {label} with model noise: flagged in {rate:.1%}"


@pytest.mark.slow
def test_sim_step_with_model_noise_flagged() -> None:
    rng = np.random.default_rng(11)
    where = rng.integers(0, 7, N_FAMILIES)
    p = np.where(np.arange(8)[None, :] > where[:, None], 0.5, 0.1)
    flagged, _ = _simulate(p, 12, model_sd=0.02)
    rate = float(flagged.mean())
    _report("step 0.1 → 0.5, model sd 0.02: flagged abrupt", rate)
    assert rate >= 0.95, f"step of 0.4 with model noise flagged in only {rate:.1%}"


def _two_step_top(model_sd: float) -> tuple[float, float]:
    """GPT-3 few-shot two-digit addition has this shape (Brown et al. 2020, Figure 3.10 / Table 3.9: a few
    percent up to 6.7B, 55.5% at 13B, 100% at 175B): near baseline, then most of the way up, then the rest."""
    curve = np.array([0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.555, 0.99])
    rng = np.random.default_rng(41)
    p = np.tile(curve, (N_FAMILIES, 1))
    if model_sd > 0:
        p = np.clip(p + rng.normal(0.0, model_sd, p.shape), 0.001, 0.999)
    items = _bernoulli_items(p, rng)
    values, reps = items.mean(axis=0), _paired_means(items)
    flagged = at_first = 0
    for f in range(N_FAMILIES):
        a = analyze_series(series(values[f], replicates=reps[f], kind="discrete", baseline=0.02))
        if a.abruptness.abrupt:
            flagged += 1
            at_first += a.emergence.pair == ["2.8b", "6.9b"]
    return flagged / N_FAMILIES, at_first / max(flagged, 1)


def test_sim_two_step_emergence_at_the_top_is_abrupt() -> None:
    rate, at_first = _two_step_top(0.0)
    _report("two-step emergence at the top: flagged abrupt", rate)
    assert rate >= 0.90 and at_first >= 0.95, (rate, at_first)


@pytest.mark.slow
def test_sim_two_step_emergence_with_model_noise() -> None:
    rate, at_first = _two_step_top(0.03)
    _report("two-step emergence at the top, model sd 0.03: flagged abrupt", rate)
    assert rate >= 0.90 and at_first >= 0.95, (rate, at_first)


def test_zigzag_without_trend_gets_its_own_verdict() -> None:
    """The case that used to be flagged: S = max step / |net| = 2.0, J = 12.3 (net 0.05, steps 0.1)."""
    v = [0.50, 0.60, 0.50, 0.60, 0.50, 0.60, 0.50, 0.55]
    a = analyze_series(series(v, n_items=[5000] * 8, kind="discrete"))
    ab = a.abruptness
    assert ab.s is not None and ab.s == pytest.approx(0.1 / 0.65) and ab.s <= 1.0
    assert ab.monotonicity == pytest.approx(0.05 / 0.65)
    assert ab.abrupt is False and ab.criteria["trend"] is False
    assert a.verdict == "no consistent trend" and "Kendall" in a.verdict_reason
    # the residual scatter about the monotone fit is far above the binomial item noise: a model-to-model floor
    assert ab.noise_floor.source == "residual scatter" and ab.noise_floor.sd > 0.03


def test_two_step_window_and_noise_floor_estimates() -> None:
    v = np.array([0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.555, 0.99])
    a = analyze_series(series(v, n_items=[1000] * 8, kind="discrete"))
    ab = a.abruptness
    assert ab.abrupt is True and ab.window == 2 and a.emergence.pair == ["2.8b", "6.9b"]
    assert a.emergence.window_end == "12b" and ab.s2 == pytest.approx(0.91 / 0.97)
    assert ab.j2 == pytest.approx((0.91 / 0.97) / ((X[7] - X[5]) / (X[7] - X[0])))
    assert "two steps" in a.verdict_reason
    # a seed-replicate estimate larger than the residual one becomes the floor and can veto the flag
    noisy = series(v, n_items=[1000] * 8, kind="discrete").model_copy(
        update={"noise_estimates": [NoiseEstimate(source="seed replicates", sd=0.3, df=8)]}
    )
    b = analyze_series(noisy)
    assert b.abruptness.noise_floor.source == "seed replicates" and b.abruptness.noise_floor.sd == 0.3
    assert b.abruptness.abrupt is False and b.abruptness.criteria["step"] is False


def test_a_level_shift_of_a_present_risk_is_not_emergence() -> None:
    """A step from 0.5 to 0.9 above a baseline of 0 is abrupt in shape, but the risk was already there: the
    rise is 0.4 of the 0.9 above baseline (< 0.5). From a baseline of 0.45 it is emergence."""
    v = np.array([0.50, 0.50, 0.51, 0.50, 0.90, 0.90, 0.91, 0.90])
    a = analyze_series(series(v, n_items=[1000] * 8, kind="discrete", baseline=0.0))
    assert a.abruptness.criteria["baseline"] is False and a.abruptness.abrupt is False
    assert a.abruptness.baseline_share == pytest.approx(0.395 / 0.90)  # isotonic levels .505 → .90
    assert a.verdict == "smooth"
    b = analyze_series(series(v, n_items=[1000] * 8, kind="discrete", baseline=0.45))
    assert b.abruptness.abrupt is True and b.verdict == "abrupt"


def test_per_member_baselines_are_kept() -> None:
    v = [0.10, 0.11, 0.12, 0.30, 0.32, 0.34, 0.36, 0.38]
    base = [0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17]
    s = series(v, n_items=[1000] * 8, kind="discrete").model_copy(update={"baselines": base})
    a = analyze_series(s)
    assert a.baselines == pytest.approx(base)
    assert a.emergence.wei_member == "1b"  # 0.30 clears its own baseline 0.13; smaller members sit on theirs
    two = analyze_series(series(v, direction="two_sided", n_items=[1000] * 8).model_copy(update={"baselines": base}))
    assert two.y == pytest.approx(np.abs(np.array(v) - np.array(base)))
