"""Growth of a risk per decade of a scale axis: OLS slope with its CI, Theil–Sen slope (Sen 1968) with its
rank-based CI, Kendall τ with its p-value, and for rates the OLS slope of logit(y)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from pydantic import BaseModel

from riskaudit.analysis import stats
from riskaudit.analysis.series import Finite, FloatArray, PreparedSeries, XAxis

__all__ = ["GrowthFit", "growth_fit", "ols"]

_TINY = 1e-12
_f = stats.finite_or_none


class GrowthFit(BaseModel):
    """Growth of the oriented metric per decade of one scale axis."""

    axis: XAxis
    n_points: int
    slope: Finite | None = None  # OLS, per decade
    slope_ci_low: Finite | None = None
    slope_ci_high: Finite | None = None
    slope_ci_method: str = ""
    theil_sen: Finite | None = None
    theil_sen_ci_low: Finite | None = None
    theil_sen_ci_high: Finite | None = None
    kendall_tau: Finite | None = None
    kendall_p: Finite | None = None
    logit_slope: Finite | None = None  # rates only: OLS slope of logit(y) per decade
    logit_slope_ci_low: Finite | None = None
    logit_slope_ci_high: Finite | None = None
    note: str = ""


def ols(x: FloatArray, y: FloatArray) -> tuple[float, float, float, float, float] | None:
    """(slope, intercept, residual variance s², Sxx, mean x) of y on x; None when x is constant or n < 2."""
    n = x.size
    if n < 2:
        return None
    mx = float(x.mean())
    sxx = float(((x - mx) ** 2).sum())
    if sxx <= _TINY:
        return None
    b = float(((x - mx) * (y - y.mean())).sum() / sxx)
    a = float(y.mean() - b * mx)
    s2 = float(((y - a - b * x) ** 2).sum() / (n - 2)) if n > 2 else math.nan
    return b, a, s2, sxx, mx


def _slope_ci(
    x: FloatArray, y: FloatArray, reps: FloatArray | None, alpha: float
) -> tuple[float | None, float | None, str]:
    if reps is not None and reps.shape[0] >= 2:
        xc = x - x.mean()  # reps hold complete rows: the slope of every row at once
        slopes = np.asarray(reps @ xc / float(xc @ xc), dtype=np.float64)
        lo, hi = stats.percentile_ci(slopes, alpha)
        return lo, hi, "bootstrap percentile (item resamples, x fixed)"
    fit = ols(x, y)
    if fit is None or x.size < 3 or not math.isfinite(fit[2]):
        return None, None, "none (too few points)"
    b, _, s2, sxx, _ = fit
    t = stats.t_quantile(alpha, x.size - 2)
    se = math.sqrt(max(s2, 0.0) / sxx)
    return _f(b - t * se), _f(b + t * se), f"OLS standard error (t, {x.size - 2} df): no resamples"


def growth_fit(axis: XAxis, x: FloatArray, prep: PreparedSeries, alpha: float) -> GrowthFit:
    from scipy import stats as sps

    y = prep.y
    n = int(y.size)
    if float(np.ptp(x)) <= _TINY:
        return GrowthFit(axis=axis, n_points=n, note=f"{axis} is the same for every point: no slope on this axis")
    fit = ols(x, y)
    slope = None if fit is None else _f(fit[0])
    lo, hi, method = _slope_ci(x, y, prep.reps, alpha)
    if prep.reps is not None and prep.noise.sd > 0:
        method += f" + model-to-model noise (sd {prep.noise.sd:.3g}, {prep.noise.source})"
    ts_slope = ts_lo = ts_hi = None
    tau = p = None
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # ties and constant y: undefined → None below
        warnings.simplefilter("ignore", RuntimeWarning)
        if n >= 3:
            ts = sps.theilslopes(y, x, alpha=1 - alpha)
            ts_slope, ts_lo, ts_hi = _f(ts[0]), _f(ts[2]), _f(ts[3])
        if not stats.is_constant(y):
            kt = sps.kendalltau(x, y)
            tau, p = _f(kt.statistic), _f(kt.pvalue)
    lslope = llo = lhi = None
    if prep.rate:
        ly = stats.logit(y, prep.logit_eps)
        lfit = ols(x, ly)
        lslope = None if lfit is None else _f(lfit[0])
        lreps = None if prep.reps is None else stats.logit(prep.reps, prep.logit_eps)
        llo, lhi, _ = _slope_ci(x, ly, lreps, alpha)
    return GrowthFit(
        axis=axis,
        n_points=n,
        slope=slope,
        slope_ci_low=lo,
        slope_ci_high=hi,
        slope_ci_method=method,
        theil_sen=ts_slope,
        theil_sen_ci_low=ts_lo,
        theil_sen_ci_high=ts_hi,
        kendall_tau=tau,
        kendall_p=p,
        logit_slope=lslope,
        logit_slope_ci_low=llo,
        logit_slope_ci_high=lhi,
    )
