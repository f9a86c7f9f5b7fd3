"""Seeded, vectorised bootstrap over items, and correlation helpers that never return NaN.

Bootstrap: the index matrix of shape ``(n_resamples, n_items)`` is drawn once from
``numpy.random.default_rng(seed)``; a statistic function receives that whole matrix and returns one
value per row (NaN where undefined in that resample). The same seed and item count give the same
matrix, so metrics of several models over the same items are resampled *paired*. CIs use the percentile
method (Efron & Tibshirani 1993).

Strictness: every scalar returned here is a finite float or None — never NaN or Inf.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import overload

import numpy as np
import numpy.typing as npt

from riskaudit.analysis.metric import Direction, MetricKind, MetricResult

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
Statistic = Callable[[IndexArray], FloatArray]  # (n_resamples, n_items) indices -> (n_resamples,) values

_CONST_TOL = 1e-10  # a row whose sd is below this share of max(1, max |x|) counts as constant
MIN_VALID_SHARE = 0.5  # below this share of defined resamples, a CI is None


def finite_or_none(x: float | np.floating | None) -> float | None:
    """``float(x)`` when finite, else None."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


_Z975 = 1.959963984540054


@functools.lru_cache(maxsize=256)
def t_quantile(alpha: float, df: int) -> float:
    """The two-sided Student t quantile t_{1−α/2, df}."""
    from scipy import stats as sps  # here: importing scipy.stats costs ~0.5 s

    return float(sps.t.ppf(1.0 - alpha / 2.0, df))


def z_quantile(alpha: float) -> float:
    """The two-sided normal quantile z_{1−α/2}."""
    from scipy import stats as sps

    return _Z975 if alpha == 0.05 else float(sps.norm.ppf(1.0 - alpha / 2.0))


def _as_vector(x: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {arr.shape}")
    return arr


def is_constant(x: npt.ArrayLike) -> bool:
    """True when x has under two entries or its sd is at most 1e-10 of max(1, max |x|)."""
    arr = _as_vector(x)
    if arr.size == 0:
        return True
    row = arr[None, :]
    return bool(_degenerate(row, (_centered(row) ** 2).sum(axis=1), arr.size)[0])


def _pair(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray] | None:
    xa, ya = _as_vector(x), _as_vector(y)
    if xa.shape != ya.shape:
        raise ValueError(f"length mismatch: {xa.size} vs {ya.size}")
    if xa.size < 2 or not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        return None
    return xa, ya


def pearson(x: npt.ArrayLike, y: npt.ArrayLike) -> float | None:
    """Pearson r; None when either vector is constant, shorter than 2, or not finite."""
    pair = _pair(x, y)
    if pair is None:
        return None
    return finite_or_none(float(rowwise_pearson(pair[0][None, :], pair[1][None, :])[0]))


def spearman(x: npt.ArrayLike, y: npt.ArrayLike) -> float | None:
    """Spearman ρ (Pearson of average ranks); None when either vector is constant."""
    from scipy.stats import rankdata  # here: importing scipy.stats costs ~0.5 s

    pair = _pair(x, y)
    if pair is None:
        return None
    return pearson(rankdata(pair[0]), rankdata(pair[1]))


def ols_slope(x: npt.ArrayLike, y: npt.ArrayLike) -> float | None:
    """Least-squares slope of y on x; None when x is constant (a constant y gives 0)."""
    pair = _pair(x, y)
    if pair is None:
        return None
    return finite_or_none(float(rowwise_ols_slope(pair[0][None, :], pair[1][None, :])[0]))


def _centered(m: FloatArray) -> FloatArray:
    return np.asarray(m - m.mean(axis=1, keepdims=True), dtype=np.float64)


def _degenerate(m: FloatArray, ss: FloatArray, n: npt.NDArray[np.intp] | int) -> npt.NDArray[np.bool_]:
    """Rows whose sd (from the centred sum of squares ``ss`` over ``n`` entries) is ~0 relative to scale."""
    counts = np.asarray(n, dtype=np.float64)
    scale = np.maximum(1.0, np.max(np.abs(m), axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(ss / counts)
    return np.asarray((counts < 2) | ~(sd > _CONST_TOL * scale), dtype=np.bool_)


def _masked_moments(
    x: FloatArray, y: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per row over the pairs where both are finite: (sxx, syy, sxy, x degenerate, y degenerate)."""
    w = np.isfinite(x) & np.isfinite(y)
    n = w.sum(axis=1).astype(np.intp)
    xz, yz = np.where(w, x, 0.0), np.where(w, y, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mx, my = xz.sum(axis=1) / n, yz.sum(axis=1) / n
    xc, yc = np.where(w, x - mx[:, None], 0.0), np.where(w, y - my[:, None], 0.0)
    sxx, syy, sxy = (xc * xc).sum(axis=1), (yc * yc).sum(axis=1), (xc * yc).sum(axis=1)
    return sxx, syy, sxy, _degenerate(xz, sxx, n), _degenerate(yz, syy, n)


def rowwise_pearson(x: FloatArray, y: FloatArray) -> FloatArray:
    """Pearson r of each row pair of two ``(B, n)`` matrices, over the pairs where both are finite.

    NaN where a row has fewer than two such pairs or either side is constant.
    """
    sxx, syy, sxy, bad_x, bad_y = _masked_moments(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
    r[bad_x | bad_y] = np.nan
    return r


def rowwise_spearman(x: FloatArray, y: FloatArray) -> FloatArray:
    """Spearman ρ of each row pair over the pairs where both are finite (average ranks among those pairs);
    NaN where a row has fewer than two such pairs or either side is constant."""
    from scipy.stats import rankdata

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.isfinite(x) & np.isfinite(y)
    if w.all():
        return rowwise_pearson(rankdata(x, axis=1), rankdata(y, axis=1))
    # missing pairs rank last (+inf), which leaves the ranks of the finite pairs at 1..k; then mask them
    rx = np.where(w, rankdata(np.where(w, x, np.inf), axis=1), np.nan)
    ry = np.where(w, rankdata(np.where(w, y, np.inf), axis=1), np.nan)
    return rowwise_pearson(rx, ry)


def rowwise_ols_slope(x: FloatArray, y: FloatArray) -> FloatArray:
    """OLS slope of y on x for each row pair, over finite pairs; NaN where the x row is constant."""
    sxx, _, sxy, bad_x, _ = _masked_moments(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = sxy / sxx
    b[bad_x] = np.nan
    return b


@overload
def logit(p: float, eps: float = 1e-6) -> float: ...
@overload
def logit(p: FloatArray, eps: float = 1e-6) -> FloatArray: ...
def logit(p: float | FloatArray, eps: float = 1e-6) -> float | FloatArray:
    """log(p / (1 − p)) with p clipped to [eps, 1 − eps], so 0 and 1 give finite values."""
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps}")
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    out = np.log(q) - np.log1p(-q)
    if np.ndim(out) == 0:
        return float(out)
    return out


def bootstrap_indices(n_items: int, n_resamples: int = 2000, seed: int = 0) -> IndexArray:
    """The resample matrix: ``(n_resamples, n_items)`` item indices drawn with replacement."""
    if n_items < 1 or n_resamples < 1:
        raise ValueError(f"need n_items >= 1 and n_resamples >= 1, got {n_items} and {n_resamples}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_items, size=(n_resamples, n_items), dtype=np.intp)


def bootstrap_distribution(
    data: npt.ArrayLike | Statistic,
    *,
    n_items: int | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    indices: IndexArray | None = None,
) -> FloatArray:
    """Bootstrap replicates of the mean of ``data`` (a vector) or of a statistic function.

    A statistic function needs ``n_items`` (or ``indices``); it receives the index matrix and returns
    one value per resample. Pass ``indices`` to reuse one matrix across metrics (paired resampling).
    """
    if callable(data):
        stat = data
    else:
        values = _as_vector(data)
        if n_items is not None and n_items != values.size:
            raise ValueError(f"n_items={n_items} but {values.size} values")
        n_items = values.size

        def stat(idx: IndexArray) -> FloatArray:
            return np.asarray(values[idx].mean(axis=1), dtype=np.float64)

    if indices is None:
        if n_items is None:
            raise ValueError("a statistic function needs n_items or indices")
        indices = bootstrap_indices(n_items, n_resamples, seed)
    out = np.asarray(stat(indices), dtype=np.float64)
    if out.shape != (indices.shape[0],):
        raise ValueError(f"statistic returned shape {out.shape}, expected ({indices.shape[0]},)")
    return out


def percentile_ci(replicates: FloatArray, alpha: float = 0.05) -> tuple[float | None, float | None]:
    """Percentile CI ``(q_{α/2}, q_{1−α/2})`` of the finite replicates; None when under half are finite."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0 or finite.size < MIN_VALID_SHARE * replicates.size:
        return None, None
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return finite_or_none(low), finite_or_none(high)


def bootstrap_ci(
    data: npt.ArrayLike | Statistic,
    *,
    n_items: int | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    indices: IndexArray | None = None,
) -> tuple[float | None, float | None]:
    """Seeded percentile bootstrap CI over items of the mean of ``data`` or of a statistic function."""
    reps = bootstrap_distribution(data, n_items=n_items, n_resamples=n_resamples, seed=seed, indices=indices)
    return percentile_ci(reps, alpha)


# --------------------------------------------------------------------------------------------- metric assembly


def replicate_list(replicates: npt.ArrayLike | None, n_resamples: int) -> list[float | None]:
    """Bootstrap replicates as a JSON-safe list (NaN/Inf -> None); all None when there are none."""
    if replicates is None:
        return [None] * n_resamples
    arr = np.asarray(replicates, dtype=np.float64).ravel()
    if arr.size != n_resamples:
        raise ValueError(f"{arr.size} replicates, expected {n_resamples}")
    return [float(v) if math.isfinite(v) else None for v in arr.tolist()]


class MetricCollector:
    """Assembles a probe's :class:`~riskaudit.probes.base.MetricResult` list with percentile CIs, the notes
    explaining undefined values, and every metric's bootstrap replicates (paired across models when the
    replicates come from :func:`bootstrap_indices` with the same seed and item count)."""

    def __init__(self, n_resamples: int, alpha: float = 0.05) -> None:
        self.n_resamples = n_resamples
        self.alpha = alpha
        self.metrics: list[MetricResult] = []
        self.notes: list[str] = []
        self.replicates: dict[str, list[float | None]] = {}

    def add(
        self,
        name: str,
        value: float | None,
        replicates: npt.ArrayLike | None,
        *,
        n_items: int,
        direction: Direction,
        baseline: float,
        description: str,
        kind: MetricKind = "continuous",
        companion: str | None = None,
        undefined_reason: str = "",
        proportion: bool = False,
    ) -> None:
        """Record one metric; ``value`` None (or non-finite) means undefined and gets a note. ``proportion``:
        the value is a plain proportion of ``n_items`` independent items (see ``MetricResult.proportion``)."""
        if name in self.replicates:
            raise ValueError(f"metric {name!r} added twice")
        if kind == "discrete" and companion is None:
            raise ValueError(f"discrete metric {name!r} needs a continuous companion")
        value = finite_or_none(value)
        reps = replicate_list(replicates, self.n_resamples)
        low, high = (None, None)
        if value is not None and replicates is not None:
            low, high = percentile_ci(np.asarray(replicates, dtype=np.float64).ravel(), self.alpha)
        if value is None:
            self.notes.append(f"{name} is undefined: {undefined_reason or 'no defined value'}")
        elif low is None:
            self.notes.append(f"{name}: no CI (under half of the {self.n_resamples} resamples were defined)")
        self.replicates[name] = reps
        self.metrics.append(
            MetricResult(
                name=name,
                value=value,
                ci_low=low,
                ci_high=high,
                n_items=n_items,
                direction=direction,
                baseline=baseline,
                kind=kind,
                companion=companion,
                description=description,
                proportion=proportion,
            )
        )

    def check_companions(self) -> None:
        """Every named companion must be a metric of the same probe (raises ValueError otherwise)."""
        names = {m.name for m in self.metrics}
        for m in self.metrics:
            if m.companion is not None and m.companion not in names:
                raise ValueError(f"metric {m.name!r} names companion {m.companion!r}, which is not reported")


def ratio_replicates(num: npt.ArrayLike, den: npt.ArrayLike, idx: IndexArray) -> FloatArray:
    """Per resample row: sum(num[idx]) / sum(den[idx]) (NaN where the denominator is 0). Cluster sums:
    ``num`` and ``den`` hold one total per resampling unit (e.g. per occupation)."""
    n, d = _as_vector(num)[idx].sum(axis=1), _as_vector(den)[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(d > 0, n / np.where(d > 0, d, 1.0), np.nan), dtype=np.float64)


def ratio(num: npt.ArrayLike, den: npt.ArrayLike) -> float | None:
    """sum(num) / sum(den), None when the denominator is 0."""
    d = float(np.sum(_as_vector(den)))
    return finite_or_none(float(np.sum(_as_vector(num))) / d) if d > 0 else None
