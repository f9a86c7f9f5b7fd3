"""Bootstrap and correlation helpers: known cases, seeding, and the never-NaN rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from riskaudit.analysis import stats


def test_bootstrap_ci_of_mean_covers_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(1)
    small = rng.normal(3.0, 1.0, size=20)
    large = rng.normal(3.0, 1.0, size=2000)
    lo_s, hi_s = stats.bootstrap_ci(small, seed=7)
    lo_l, hi_l = stats.bootstrap_ci(large, seed=7)
    assert lo_s is not None and hi_s is not None and lo_l is not None and hi_l is not None
    assert lo_s < small.mean() < hi_s
    assert lo_l < large.mean() < hi_l
    # width ~ 1/sqrt(n): 100x the items -> ~10x narrower
    assert (hi_l - lo_l) < 0.2 * (hi_s - lo_s)
    # a 95% CI of the mean of N(0,1) with n=2000 is about +-1.96/sqrt(2000) = +-0.044
    assert (hi_l - lo_l) == pytest.approx(2 * 1.96 / math.sqrt(2000), rel=0.15)


def test_bootstrap_is_seeded_and_statistic_form_matches_values_form() -> None:
    x = np.random.default_rng(0).normal(size=50)
    a = stats.bootstrap_ci(x, seed=11)
    b = stats.bootstrap_ci(x, seed=11)
    c = stats.bootstrap_ci(x, seed=12)
    assert a == b
    assert a != c
    via_fn = stats.bootstrap_ci(lambda idx: x[idx].mean(axis=1), n_items=x.size, seed=11)
    assert via_fn == pytest.approx(a)
    # one index matrix, shape (resamples, items), reproducible
    idx = stats.bootstrap_indices(50, 300, seed=3)
    assert idx.shape == (300, 50)
    assert np.array_equal(idx, stats.bootstrap_indices(50, 300, seed=3))
    assert stats.bootstrap_ci(x, indices=idx) == stats.bootstrap_ci(x, n_resamples=300, seed=3)


def test_statistic_must_return_one_value_per_resample() -> None:
    with pytest.raises(ValueError, match="shape"):
        stats.bootstrap_ci(lambda idx: np.zeros(3), n_items=5, n_resamples=10)
    with pytest.raises(ValueError, match="n_items"):
        stats.bootstrap_ci(lambda idx: idx.mean(axis=1).astype(float))


def test_constant_and_degenerate_inputs_give_none_never_nan() -> None:
    const = np.full(10, -0.7)
    ramp = np.arange(10.0)
    assert stats.pearson(const, ramp) is None
    assert stats.pearson(ramp, const) is None
    assert stats.spearman(const, ramp) is None
    assert stats.ols_slope(const, ramp) is None  # x constant
    assert stats.ols_slope(ramp, const) == pytest.approx(0.0)  # y constant: slope 0
    assert stats.pearson([1.0], [2.0]) is None
    assert stats.pearson([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]) is None
    assert stats.is_constant(const) and not stats.is_constant(ramp)
    # the CI of a constant mean is the constant, finite
    assert stats.bootstrap_ci(const, n_resamples=50) == pytest.approx((-0.7, -0.7))
    # an all-undefined statistic gives no CI rather than NaN
    assert stats.bootstrap_ci(lambda idx: stats.rowwise_pearson(const[idx], ramp[idx]), n_items=10) == (
        None,
        None,
    )
    with pytest.raises(ValueError, match="length"):
        stats.pearson([1.0, 2.0], [1.0, 2.0, 3.0])


def test_correlations_on_known_cases() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert stats.pearson(x, 3 * x + 1) == pytest.approx(1.0)
    assert stats.pearson(x, -x) == pytest.approx(-1.0)
    assert stats.spearman(x, np.exp(x)) == pytest.approx(1.0)  # monotone, not linear
    r_exp = stats.pearson(x, np.exp(x))
    assert r_exp is not None and r_exp < 0.95
    assert stats.ols_slope(x, 2 * x - 4) == pytest.approx(2.0)
    y = np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    assert stats.pearson(x, y) == pytest.approx(float(np.corrcoef(x, y)[0, 1]))
    assert stats.spearman(x, y) == pytest.approx(0.8)


def test_rowwise_helpers_match_scalar_ones_and_ignore_missing_pairs() -> None:
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(4, 30)), rng.normal(size=(4, 30))
    for i in range(4):
        assert stats.rowwise_pearson(X, Y)[i] == pytest.approx(stats.pearson(X[i], Y[i]))
        assert stats.rowwise_spearman(X, Y)[i] == pytest.approx(stats.spearman(X[i], Y[i]))
        assert stats.rowwise_ols_slope(X, Y)[i] == pytest.approx(stats.ols_slope(X[i], Y[i]))
    Xn = X.copy()
    Xn[0, :3] = np.nan
    assert stats.rowwise_pearson(Xn, Y)[0] == pytest.approx(stats.pearson(X[0, 3:], Y[0, 3:]))


def test_logit_is_clipped_and_finite() -> None:
    assert stats.logit(0.5) == 0.0
    assert stats.logit(0.9) == pytest.approx(math.log(9.0))
    lo, hi = stats.logit(0.0), stats.logit(1.0)
    assert math.isfinite(lo) and math.isfinite(hi) and lo == pytest.approx(-hi)
    arr = stats.logit(np.array([0.0, 0.25, 1.0]))
    assert np.all(np.isfinite(arr)) and arr[1] == pytest.approx(math.log(1 / 3))
    assert stats.finite_or_none(float("nan")) is None
    assert stats.finite_or_none(float("inf")) is None
    assert stats.finite_or_none(np.float64(2.5)) == 2.5


def test_rowwise_spearman_masks_missing_pairs() -> None:
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(3, 25)), rng.normal(size=(3, 25))
    X[0, :5] = np.nan
    Y[2, 7] = np.nan
    r = stats.rowwise_spearman(X, Y)
    for i in range(3):
        ok = np.isfinite(X[i]) & np.isfinite(Y[i])
        assert r[i] == pytest.approx(stats.spearman(X[i][ok], Y[i][ok]))


def test_ratio_helpers_and_metric_collector() -> None:
    num, den = np.array([1.0, 2.0, 0.0]), np.array([2.0, 2.0, 0.0])
    assert stats.ratio(num, den) == pytest.approx(0.75)
    assert stats.ratio(num, np.zeros(3)) is None
    idx = np.array([[0, 1, 2], [2, 2, 2], [1, 1, 0]])
    reps = stats.ratio_replicates(num, den, idx)
    assert reps[0] == pytest.approx(0.75) and np.isnan(reps[1]) and reps[2] == pytest.approx(5 / 6)
    out = stats.MetricCollector(n_resamples=3, alpha=0.1)
    out.add(
        "share",
        0.75,
        reps,
        n_items=3,
        direction="two_sided",
        baseline=0.5,
        kind="discrete",
        companion="margin",
        description="d",
    )
    out.add(
        "margin",
        None,
        None,
        n_items=3,
        direction="two_sided",
        baseline=0.0,
        description="d",
        undefined_reason="constant",
    )
    assert out.replicates["share"][1] is None and out.replicates["margin"] == [None, None, None]
    assert out.metrics[1].value is None and any("margin is undefined: constant" in n for n in out.notes)
    out.check_companions()
    with pytest.raises(ValueError, match="twice"):
        out.add("share", 0.1, None, n_items=1, direction="two_sided", baseline=0.0, description="")
    with pytest.raises(ValueError, match="companion"):
        out.add("bad", 0.1, None, n_items=1, direction="two_sided", baseline=0.0, description="", kind="discrete")
    out.add(
        "orphan",
        0.1,
        None,
        n_items=1,
        direction="two_sided",
        baseline=0.0,
        description="",
        kind="discrete",
        companion="missing",
    )
    with pytest.raises(ValueError, match="not reported"):
        out.check_companions()
