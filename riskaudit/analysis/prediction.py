"""Predictability: is the largest member (and the two largest, from six members) predicted by a fit on the
smaller ones? OLS with a 95% prediction interval; for rates a logit-scale fit as well, and a member is a
surprise only when no fit predicts it."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel

from riskaudit.analysis import stats
from riskaudit.analysis.config import AnalysisConfig
from riskaudit.analysis.growth import ols
from riskaudit.analysis.series import Finite, FloatArray, PreparedSeries

__all__ = ["Predictability", "Prediction", "predictability"]

_f = stats.finite_or_none


class Prediction(BaseModel):
    """One held-out member predicted from the smaller ones (oriented units)."""

    member: str
    held_out: int  # 1 = largest held out, 2 = two largest held out
    scale: Literal["linear", "logit"]
    observed: Finite
    predicted: Finite
    pi_low: Finite
    pi_high: Finite
    outside: bool


class Predictability(BaseModel):
    predictions: list[Prediction] = []
    surprise: bool | None = None  # the largest member lies outside every fit's 95% PI (one held out)
    surprise_two_out: bool | None = None  # with the two largest held out: either lies outside every PI
    note: str = ""


def _predict_one(
    x: FloatArray, y: FloatArray, reps: FloatArray | None, m: int, alpha: float
) -> list[tuple[float, float, float]] | None:
    """Fit OLS on the first m points; (predicted, pi_low, pi_high) for each later point.

    Half-width: t_{m−2}·sqrt(s²(1 + 1/m + (x0 − x̄)²/Sxx)) (residual variance s²), floored by z·sd of
    (observed − predicted) over the resamples, refitted in every resample. The floor keeps a near-perfect
    fit from giving a zero-width interval and respects the pairing of the item resamples.
    """
    if m < 3:
        return None
    fit = ols(x[:m], y[:m])
    if fit is None:
        return None
    b, a, s2, sxx, mx = fit
    t, z = stats.t_quantile(alpha, m - 2), stats.z_quantile(alpha)
    boot_b = boot_a = None
    if reps is not None and reps.shape[0] > 1:
        xc = x[:m] - mx
        boot_b = reps[:, :m] @ xc / sxx
        boot_a = reps[:, :m].mean(axis=1) - boot_b * mx
    out = []
    for j, x0 in enumerate(x[m:]):
        pred = a + b * float(x0)
        half = t * math.sqrt(s2 * (1 + 1 / m + (float(x0) - mx) ** 2 / sxx))
        if boot_b is not None and boot_a is not None and reps is not None:
            err = reps[:, m + j] - (boot_a + boot_b * float(x0))
            half = max(half, z * float(np.std(err, ddof=1)))
        out.append((pred, pred - half, pred + half))
    return out


def predictability(prep: PreparedSeries, config: AnalysisConfig) -> Predictability:
    assert prep.primary is not None
    x, y = prep.x[prep.primary], prep.y
    n = y.size
    # item resamples only: the prediction interval's residual variance s² already holds the model-to-model
    # scatter of the fitted members, and a floor estimated from every member would include the held-out one
    reps = prep.item_reps
    scales: list[tuple[Literal["linear", "logit"], FloatArray, FloatArray | None]] = [("linear", y, reps)]
    if prep.rate:
        lr = None if reps is None else stats.logit(reps, prep.logit_eps)
        scales.append(("logit", stats.logit(y, prep.logit_eps), lr))
    out = Predictability()
    holds = [1] + ([2] if n >= config.two_out_min_members else [])
    flags: dict[int, bool | None] = {}
    for h in holds:
        m = n - h
        outside_all = [True] * h
        any_fit = False
        for scale, yy, rr in scales:
            preds = _predict_one(x, yy, rr, m, config.alpha)
            if preds is None:
                continue
            any_fit = True
            for t_i, (pred, lo, hi) in enumerate(preds):
                obs = float(yy[m + t_i])
                outside = not (lo <= obs <= hi)
                outside_all[t_i] = outside_all[t_i] and outside
                if scale == "logit":  # report in oriented units of the metric
                    pred, lo, hi, obs = (float(_expit(v)) for v in (pred, lo, hi, obs))
                    obs = float(y[m + t_i])
                vals = [_f(v) for v in (obs, pred, lo, hi)]
                if any(v is None for v in vals):
                    continue
                out.predictions.append(
                    Prediction(
                        member=prep.members[m + t_i],
                        held_out=h,
                        scale=scale,
                        observed=float(obs),
                        predicted=float(pred),
                        pi_low=float(lo),
                        pi_high=float(hi),
                        outside=outside,
                    )
                )
        flags[h] = any(outside_all) if any_fit else None
    out.surprise = flags.get(1)
    out.surprise_two_out = flags.get(2)
    if out.surprise is None:
        out.note = "needs at least 4 members with distinct scale (3 to fit, 1 to predict)"
    elif 2 not in flags:
        out.note = f"two-largest hold-out needs at least {config.two_out_min_members} members"
    return out


def _expit(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0
