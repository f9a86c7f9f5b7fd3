"""Growth of a risk per decade of a scale axis: OLS slope with its CI, Theil–Sen slope (Sen 1968) with its
rank-based CI, Kendall τ with its p-value, for rates the OLS slope of logit(y), and the OLS growth with each
member left out in turn (:class:`LeaveOneOut`): whether a trend rests on one member alone."""

from __future__ import annotations

import math
import warnings

import numpy as np
from pydantic import BaseModel

from riskaudit.analysis import stats
from riskaudit.analysis.series import Finite, FloatArray, PreparedSeries, XAxis

__all__ = ["GrowthFit", "LeaveOneOut", "growth_fit", "ols"]

_TINY = 1e-12
_f = stats.finite_or_none


class LeaveOneOut(BaseModel):
    """The OLS growth refitted with each member left out in turn: x and the member's column of the resamples
    dropped, the CI recomputed the same way. Computed when the full CI excludes 0."""

    holds: bool  # the sign and a CI excluding 0 survive leaving out any one member
    breaking: list[str] = []  # members whose omission makes the CI include 0 or change sign
    # when exactly one member breaks it: that member against the others
    rest_slope: Finite | None = None  # OLS slope of the others
    rest_slope_ci_low: Finite | None = None
    rest_slope_ci_high: Finite | None = None
    rest_kendall_p: Finite | None = None  # Kendall τ p-value of the others
    offset: Finite | None = None  # the member minus the mean of the others (oriented units)
    offset_sd: Finite | None = None  # its sd over the resamples


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
    kendall_p_loo: Finite | None = None  # the largest Kendall p with any one member left out (1 if τ flips sign)
    net_z_loo: Finite | None = None  # smallest net change (τ's direction) over its sd, any one member left out
    logit_slope: Finite | None = None  # rates only: OLS slope of logit(y) per decade
    logit_slope_ci_low: Finite | None = None
    logit_slope_ci_high: Finite | None = None
    loo: LeaveOneOut | None = None  # None: the full CI includes 0 (or is unknown): nothing to hold
    note: str = ""

    def theil_sen_disagrees(self, factor: float = 2.0) -> bool:
        """The robust Theil–Sen slope and the OLS slope differ by more than ``factor`` (or in sign)."""
        if self.slope is None or self.theil_sen is None:
            return False
        if self.slope == 0.0 or self.slope * self.theil_sen <= 0:
            return self.slope != self.theil_sen
        r = self.theil_sen / self.slope
        return not (1 / factor <= r <= factor)


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


def _excludes_zero(lo: float | None, hi: float | None) -> int:
    """+1 (CI above 0), −1 (below 0) or 0 (contains 0, touches it up to rounding — a CI end of 1e-15 from the
    summation order of resamples that are all equal — or is unknown)."""
    if lo is None or hi is None:
        return 0
    tol = _TINY * max(1.0, abs(lo), abs(hi))
    return 1 if lo > tol else (-1 if hi < -tol else 0)


def _kendall_p(x: FloatArray, y: FloatArray) -> float | None:
    from scipy import stats as sps

    if x.size < 3 or stats.is_constant(y):
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return _f(sps.kendalltau(x, y).pvalue)


def _kendall_p_loo(x: FloatArray, y: FloatArray, tau: float | None) -> float | None:
    """The largest Kendall τ p-value over the series with one member left out; 1 where τ changes sign."""
    from scipy import stats as sps

    if tau is None or tau == 0 or x.size < 4:
        return None
    worst = 0.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for j in range(x.size):
            keep = np.arange(x.size) != j
            kt = sps.kendalltau(x[keep], y[keep])
            t, p = _f(kt.statistic), _f(kt.pvalue)
            worst = max(worst, 1.0 if t is None or p is None or t * tau <= 0 else p)
    return worst


def _net_z_loo(y: FloatArray, reps: FloatArray | None, tau: float | None) -> float | None:
    """The smallest net change y(last) − y(first), in the direction of τ, over its sd across the resamples, with
    any one member left out (only leaving out an end member changes it). None without resamples."""
    if tau is None or tau == 0 or reps is None or reps.shape[0] < 2 or y.size < 4:
        return None
    sign = 1.0 if tau > 0 else -1.0
    zs = []
    for a, b in ((0, y.size - 1), (1, y.size - 1), (0, y.size - 2)):
        sd = float(np.std(reps[:, b] - reps[:, a], ddof=1))
        net = sign * float(y[b] - y[a])
        zs.append(net / sd if sd > _TINY else (math.inf if net > 0 else -math.inf))
    return _f(max(-1e6, min(1e6, min(zs))))


def leave_one_out(
    x: FloatArray, y: FloatArray, reps: FloatArray | None, members: list[str], sign: int, alpha: float
) -> LeaveOneOut:
    """Refit the OLS slope and its CI without each member; ``sign`` is the side of 0 the full CI lies on. A
    member breaks the growth when, without it, the CI includes 0 (or lies on the other side)."""
    n = y.size
    breaking: list[int] = []
    rest: dict[int, tuple[float | None, float | None, float | None]] = {}
    for j in range(n):
        keep = np.arange(n) != j
        xj, yj = x[keep], y[keep]
        rj = None if reps is None else reps[:, keep]
        fit = ols(xj, yj)
        lo, hi, _ = _slope_ci(xj, yj, rj, alpha) if fit is not None else (None, None, "")
        rest[j] = (None if fit is None else _f(fit[0]), lo, hi)
        if _excludes_zero(lo, hi) != sign:
            breaking.append(j)
    out = LeaveOneOut(holds=not breaking, breaking=[members[j] for j in breaking])
    if len(breaking) == 1:
        j = breaking[0]
        keep = np.arange(n) != j
        out.rest_slope, out.rest_slope_ci_low, out.rest_slope_ci_high = rest[j]
        out.rest_kendall_p = _kendall_p(x[keep], y[keep])
        out.offset = _f(float(y[j] - y[keep].mean()))
        if reps is not None and reps.shape[0] >= 2:
            out.offset_sd = _f(float(np.std(reps[:, j] - reps[:, keep].mean(axis=1), ddof=1)))
    return out


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
    sign = _excludes_zero(lo, hi)
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
        kendall_p_loo=_kendall_p_loo(x, y, tau),
        net_z_loo=_net_z_loo(y, prep.reps, tau),
        logit_slope=lslope,
        logit_slope_ci_low=llo,
        logit_slope_ci_high=lhi,
        loo=leave_one_out(x, y, prep.reps, prep.members, sign, alpha) if sign else None,
    )
