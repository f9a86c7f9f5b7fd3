"""Step statistics of a metric series: is there a trend, and does most of it happen in one or two steps?

Pure functions on increasing x and (oriented) y, point estimates and their vectorised form over resamples.
The flag rule that combines them lives in :mod:`riskaudit.analysis.scaling`; docs/analysis.md explains and
calibrates it.

* **total variation** TV = Σ|Δk| with Δk = y(k+1) − y(k); **monotonicity** M = |net| / TV (1 for a
  monotone series, near 0 for a zig-zag); net = y(n) − y(1).
* **step share** S = max_k sign(net)·Δk / TV — bounded by 1, unlike max step / |net|, which is unbounded
  when the steps are large and the net change small (a zig-zag .50 .60 .50 … has S = 0.15, not 2).
* **two-step share** S2 = max_k sign(net)·(Δk + Δk+1) / TV: the textbook emergent curve often rises over
  two steps at the top of the range (GPT-3 few-shot two-digit addition, Brown et al. 2020, Table 3.9 /
  Figure 3.10: a few percent up to 6.7B, 55.5% at 13B, 100% at 175B).
* **spacing-aware jump** J = (the step's share of the change) / (gap / span) and J2 the same for two adjacent
  steps: the window's share of the change over its share of the axis (1 for a straight line). The shares in
  J, J2 and the window's position k* are those of the isotonic fit, so that noise in the flat parts (which
  pools away in the fit) does not dilute them; for a monotone series the fit is the series itself.
* **isotonic fit** (pool-adjacent-violators, scipy) in the direction of the net change: its R² says whether
  a monotone trend explains most of the variance, and its residual scatter estimates the variance that item
  resampling cannot see (model-to-model noise). The residual variance is RSS / (n − number of distinct
  fitted levels): the number of levels is the effective degrees of freedom of isotonic regression
  (Meyer & Woodroofe 2000, *On the degrees of freedom in shape-restricted regression*, Ann. Statist. 28).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from riskaudit.analysis import stats

__all__ = ["StepStats", "isotonic_fit", "resampled_shares", "step_statistics"]

FloatArray = npt.NDArray[np.float64]
_TINY = 1e-12


@dataclass(frozen=True)
class StepStats:
    """Point statistics of a series over increasing x (see the module docstring)."""

    net: float
    tv: float
    monotonicity: float | None  # |net| / TV
    s: float | None  # largest single step share of TV, in the direction of net
    k_star: int | None  # the largest step of the isotonic fit lies between points k* and k*+1
    j: float | None  # its share of the fit's change over its share of the axis
    s2: float | None  # largest share of two adjacent steps of TV
    k2_star: int | None  # the largest two adjacent steps of the fit lie between points k2* and k2*+2
    j2: float | None
    s2_each: float | None  # the smaller of those two fitted steps' shares (both must rise for a two-step)
    breakthroughness: float | None  # BIG-bench B / (n − 1)
    linearity: float | None  # BIG-bench L / (n − 1)
    trend_r2: float | None  # R² of the isotonic fit in the direction of net
    fit: FloatArray | None = field(default=None, compare=False)  # that fit (None without a net change)


def isotonic_fit(y: FloatArray, increasing: bool) -> tuple[FloatArray, int]:
    """(fitted values, number of distinct fitted levels) of the least-squares monotone fit."""
    from scipy.optimize import isotonic_regression

    res = isotonic_regression(np.asarray(y, dtype=np.float64), increasing=increasing)
    return np.asarray(res.x, dtype=np.float64), int(len(res.blocks) - 1)


def step_statistics(x: Sequence[float] | FloatArray, y: Sequence[float] | FloatArray) -> StepStats:
    """S, k*, J, S2, k2*, J2, M, BIG-bench B and L (divided by n − 1; Srivastava et al. 2022) and the
    isotonic R² of y over increasing x. Shares are None when there is no net change; J (J2) is None when
    the gap (window) or the span is 0; B and L are None when their denominator is 0."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    n = ya.size
    if n < 2 or xa.size != n:
        raise ValueError("need at least two points and equal lengths")
    d = np.diff(ya)
    net = float(ya[-1] - ya[0])
    tv = float(np.abs(d).sum())
    scale = max(1.0, float(np.max(np.abs(ya))))
    span = float(xa[-1] - xa[0])
    s = k = j = s2 = k2 = j2 = each = mono = r2 = None
    fit: FloatArray | None = None
    if abs(net) > _TINY * scale and tv > _TINY * scale:
        sgn = math.copysign(1.0, net)
        sd = sgn * d
        mono = abs(net) / tv
        s = float(sd.max() / tv)
        fit, _ = isotonic_fit(ya, increasing=net > 0)
        tss = float(((ya - ya.mean()) ** 2).sum())
        r2 = 1.0 - float(((ya - fit) ** 2).sum()) / tss if tss > _TINY * scale * scale else None
        # where the change happens and how steep it is are read off the monotone fit, so that noise in the
        # flat parts (which pools away in the fit) does not dilute J; S above stays a share of the raw Σ|Δ|
        fd = sgn * np.diff(fit)
        fnet = float(fd.sum())
        if fnet <= _TINY * scale:  # the fit is flat (the raw net change is against the monotone trend)
            fd, fnet = sd, float(sd.sum())
        k = int(np.argmax(fd))
        gap = float(xa[k + 1] - xa[k])
        j = float(fd[k] / fnet) / (gap / span) if gap > _TINY and span > _TINY and fnet > 0 else None
        if n >= 3:
            s2 = float((sd[:-1] + sd[1:]).max() / tv)
            pair = fd[:-1] + fd[1:]
            k2 = int(np.argmax(pair))
            width = float(xa[k2 + 2] - xa[k2])
            each = float(min(fd[k2], fd[k2 + 1]) / fnet) if fnet > 0 else None
            j2 = float(pair[k2] / fnet) / (width / span) if width > _TINY and span > _TINY and fnet > 0 else None
    amax, amin = int(np.argmax(ya)), int(np.argmin(ya))
    i_y = float(np.sign(amax - amin) * (ya[amax] - ya[amin]))
    d2 = d * d
    mean2, med2 = float(d2.mean()), float(np.median(d2))
    f = stats.finite_or_none
    lin = f(i_y / math.sqrt(mean2) / (n - 1)) if mean2 > 0 else None
    brk = f(i_y / math.sqrt(med2) / (n - 1)) if med2 > 0 else None
    return StepStats(
        net=net,
        tv=tv,
        monotonicity=f(mono),
        s=f(s),
        k_star=k,
        j=f(j),
        s2=f(s2),
        k2_star=k2,
        j2=f(j2),
        s2_each=f(each),
        breakthroughness=brk,
        linearity=lin,
        trend_r2=f(r2),
        fit=fit,
    )


@dataclass(frozen=True)
class ResampledShares:
    """Per resample: the largest one-step and two-step shares of TV (0 where the net change reverses), and
    the index of the largest one-step and two-step window."""

    s1: FloatArray
    s2: FloatArray | None
    k1: npt.NDArray[np.intp]
    k2: npt.NDArray[np.intp] | None


def resampled_shares(reps: FloatArray, sign: float) -> ResampledShares:
    """:class:`ResampledShares` of every row of ``reps`` (B × n, oriented) in the direction ``sign``."""
    diffs = np.diff(reps, axis=1)
    dd = sign * diffs
    tv = np.abs(diffs).sum(axis=1)
    ok = (sign * (reps[:, -1] - reps[:, 0]) > 0) & (tv > 0)
    safe = np.where(tv > 0, tv, 1.0)
    s1 = np.where(ok, dd.max(axis=1) / safe, 0.0)
    k1 = np.argmax(dd, axis=1)
    s2 = k2 = None
    if reps.shape[1] >= 3:
        pair = dd[:, :-1] + dd[:, 1:]
        s2 = np.where(ok, pair.max(axis=1) / safe, 0.0)
        k2 = np.argmax(pair, axis=1)
    return ResampledShares(s1=s1, s2=s2, k1=k1, k2=k2)
