"""Preparing a series for the statistics: members sorted along the scale axis, values oriented so that
larger = riskier, and the resamples every interval and test reads.

Resamples have shape (B, n): paired item-bootstrap replicates (the same resampled items for every member)
when the scan provides them; otherwise parametric draws per member (normal from the member's CI; binomial
from the item count of a declared proportion without a CI), independent across members, which is
conservative for differences. On top
of the item resamples come draws of the model-to-model noise floor (:func:`noise_floor`).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from riskaudit.analysis import stats
from riskaudit.analysis.abrupt import isotonic_fit
from riskaudit.analysis.config import AnalysisConfig
from riskaudit.analysis.metric import Direction
from riskaudit.analysis.series import (
    FloatArray,
    MetricSeries,
    NoiseEstimate,
    NoiseFloor,
    PreparedSeries,
    ResampleMethod,
    XAxis,
)

__all__ = ["noise_floor", "orientation_label", "prepare_series"]


def orientation_label(direction: Direction, rate: bool) -> str:
    """What the oriented y is, in words: ``"y"``, ``"−y"`` (``"1 − y"`` for a rate) or ``"|y − baseline|"``."""
    lower = "1 − y" if rate else "−y"
    return {"higher_is_riskier": "y", "lower_is_riskier": lower, "two_sided": "|y − baseline|"}[direction]


def _orient(v: FloatArray, direction: Direction, baseline: float | FloatArray, offset: float = 0.0) -> FloatArray:
    """Larger = riskier: y, offset − y (offset 1 for a rate, so it stays in [0, 1]) or |y − baseline|."""
    if direction == "higher_is_riskier":
        return v
    if direction == "lower_is_riskier":
        return np.asarray(offset - v, dtype=np.float64)
    return np.asarray(np.abs(v - baseline), dtype=np.float64)


def _orient_interval(
    lo: FloatArray, hi: FloatArray, direction: Direction, baseline: float | FloatArray, offset: float = 0.0
) -> FloatArray:
    """Map raw intervals (n,) to oriented (n, 2); for two_sided an interval containing b maps to [0, ·]."""
    if direction == "higher_is_riskier":
        return np.stack([lo, hi], axis=1)
    if direction == "lower_is_riskier":
        return np.stack([offset - hi, offset - lo], axis=1)
    a, b = np.abs(lo - baseline), np.abs(hi - baseline)
    inside = (lo <= baseline) & (baseline <= hi)
    return np.stack([np.where(inside, 0.0, np.minimum(a, b)), np.maximum(a, b)], axis=1)


def _stream_seed(seed: int, series: MetricSeries) -> list[int]:
    tag = f"{series.family}\0{series.axis}\0{series.checkpoint_of or ''}\0{series.probe}\0{series.metric}"
    return [seed, zlib.crc32(tag.encode())]


def _log10_axis(vals: list[float | None]) -> FloatArray | None:
    if any(v is None or not math.isfinite(v) or v <= 0 for v in vals):
        return None
    return np.log10(np.asarray(vals, dtype=np.float64))


def prepare_series(series: MetricSeries, config: AnalysisConfig) -> PreparedSeries:
    notes: list[str] = list(series.notes)
    n_all = len(series.members)
    keep = [i for i, v in enumerate(series.values) if v is not None and math.isfinite(v)]
    dropped = [series.members[i] for i in range(n_all) if i not in keep]
    if dropped:
        notes.append(f"no value for {', '.join(dropped)}: left out")

    def nonpositive(v: float | None) -> bool:
        return v is not None and v <= 0

    zero = [i for i in keep if nonpositive(series.flops[i]) or nonpositive(series.tokens[i])]
    if zero:
        names = ", ".join(series.members[i] for i in zero)
        notes.append(f"{names}: zero training compute cannot sit on a log axis; left out")
        keep = [i for i in keep if i not in zero]

    fl = _log10_axis([series.flops[i] for i in keep])
    pa = _log10_axis([series.params[i] for i in keep])
    primary: XAxis | None = "flops" if fl is not None else ("params" if pa is not None else None)
    if keep and fl is None:
        missing = [series.members[i] for i in keep if series.flops[i] is None]
        if primary == "params":
            notes.append(
                f"FLOPs unknown for {', '.join(missing) or 'some members'}: the params axis is used for "
                "abruptness, emergence and predictability, and there is no growth per decade of FLOPs"
            )
        else:
            notes.append("neither FLOPs nor params are known (and positive) for every member: no scale axis")
    x: dict[str, FloatArray] = {}
    idx: list[int] = []
    order: list[int] = []
    if primary is not None:
        px = fl if primary == "flops" else pa
        assert px is not None
        order = sorted(range(len(keep)), key=lambda j: float(px[j]))
        idx = [keep[j] for j in order]
        for name, arr in (("flops", fl), ("params", pa)):
            if arr is not None:
                x[name] = arr[order]
        if len(idx) > 1 and np.any(np.diff(x[primary]) <= 0):
            notes.append(f"some members share the same {primary}: their order is arbitrary and J is undefined there")
    members = [series.members[i] for i in idx]
    raw = np.asarray([series.values[i] for i in idx], dtype=np.float64)

    in_unit = bool(raw.size) and bool(np.all((raw >= 0) & (raw <= 1)))
    if series.rate and not in_unit and raw.size:
        notes.append("declared a proportion, but some value lies outside [0, 1]: analysed on the linear scale only")
    rate = series.rate and in_unit and series.direction != "two_sided"
    offset = 1.0 if rate else 0.0
    b_raw = np.asarray(
        [
            series.baseline if series.baselines is None or series.baselines[i] is None else series.baselines[i]
            for i in idx
        ],
        dtype=np.float64,
    )
    y = _orient(raw, series.direction, b_raw, offset)
    max_n = max((series.n_items[i] or 0 for i in idx), default=0) if series.n_items is not None else 0
    logit_eps = 0.5 / max_n if max_n else 1e-3

    # resamples: paired replicates, else parametric draws
    raw_reps: FloatArray | None = None
    method: ResampleMethod = "none"
    n_total = 0
    if series.replicates is not None and idx:
        mat = np.asarray(series.replicates, dtype=np.float64)[:, idx]
        n_total = int(mat.shape[0])
        ok = np.all(np.isfinite(mat), axis=1)
        n_ok = int(ok.sum())
        if n_ok >= 2 and n_ok >= stats.MIN_VALID_SHARE * n_total:
            raw_reps, method = mat[ok], "paired bootstrap"
            if n_ok < n_total:
                notes.append(f"{n_total - n_ok} of {n_total} paired resamples are undefined for some member: left out")
        else:
            notes.append("the paired replicates are undefined in most resamples: falling back to parametric draws")
    if raw_reps is None and idx:
        raw_reps, method, n_total = _parametric(series, idx, raw, config)
        if method != "none":
            notes.append(f"resamples are parametric ({method}), independent across members: conservative for steps")
        else:
            notes.append("no paired replicates, item counts or CIs: slope CIs from the OLS standard error only")
    item_reps = None if raw_reps is None else _orient(raw_reps, series.direction, b_raw, offset)

    # member CIs (given, else percentile of the member's resamples), then oriented
    lo = np.full(len(idx), np.nan)
    hi = np.full(len(idx), np.nan)
    if raw_reps is not None and idx:
        lo, hi = np.quantile(raw_reps, [config.alpha / 2, 1 - config.alpha / 2], axis=0)
    for j, i in enumerate(idx):
        cl = series.ci_low[i] if series.ci_low is not None else None
        ch = series.ci_high[i] if series.ci_high is not None else None
        if cl is not None and ch is not None and math.isfinite(cl) and math.isfinite(ch):
            lo[j], hi[j] = cl, ch
    ci = _orient_interval(lo, hi, series.direction, b_raw, offset) if idx else None
    base = {
        "higher_is_riskier": b_raw,
        "lower_is_riskier": offset - b_raw,
        "two_sided": np.zeros_like(b_raw),
    }[series.direction]
    noise = noise_floor(y, item_reps, series)
    reps = item_reps
    if item_reps is not None and noise.sd > 0:
        seeds = np.asarray([max(1, series.n_seeds[i]) if series.n_seeds else 1 for i in idx], dtype=np.float64)
        rng = np.random.default_rng([*_stream_seed(config.seed, series), 1])
        reps = item_reps + rng.normal(0.0, 1.0, item_reps.shape) * (noise.sd / np.sqrt(seeds))[None, :]
    return PreparedSeries(
        members=members,
        y=y,
        x=x,
        primary=primary,
        reps=reps,
        item_reps=item_reps,
        raw_reps=raw_reps,
        n_reps_total=n_total,
        method=method,
        ci=ci,
        base=base,
        rate=rate,
        logit_eps=logit_eps,
        noise=noise,
        notes=notes,
    )


def noise_floor(y: FloatArray, item_reps: FloatArray | None, series: MetricSeries) -> NoiseFloor:
    """Model-to-model noise: the residual scatter about the isotonic fit beyond item noise, and the estimates
    the series carries (seed replicates, neighbouring checkpoints); the largest one is used (conservative).

    Residual: σ² = RSS / (n − levels) (Meyer & Woodroofe 2000) minus the mean item variance of the members,
    floored at 0. Needs item resamples (to subtract item noise) and more points than fitted levels.
    """
    estimates = list(series.noise_estimates)
    n = y.size
    if item_reps is not None and n >= 3:
        net = float(y[-1] - y[0])
        fit, levels = isotonic_fit(y, increasing=net >= 0)
        if n > levels:
            resid_var = float(((y - fit) ** 2).sum()) / (n - levels)
            item_var = float(np.mean(np.var(item_reps, axis=0, ddof=1)))
            tau2 = max(0.0, resid_var - item_var)
            estimates.append(
                NoiseEstimate(
                    source="residual scatter",
                    sd=math.sqrt(tau2),
                    df=n - levels,
                    note=f"isotonic fit with {levels} level(s); residual sd {math.sqrt(resid_var):.3g}, "
                    f"item sd {math.sqrt(item_var):.3g}",
                )
            )
    if not estimates:
        return NoiseFloor()
    top = max(estimates, key=lambda e: e.sd)
    return NoiseFloor(sd=top.sd, source=top.source if top.sd > 0 else None, estimates=estimates)


def _parametric(
    series: MetricSeries, idx: list[int], raw: FloatArray, config: AnalysisConfig
) -> tuple[FloatArray | None, ResampleMethod, int]:
    """Independent per-member draws with the spread the data gives: normal with sd from the member's CI when
    it has one; else, for a declared proportion of ``n_items`` independent items, binomial. A metric that is
    not a declared proportion (a correlation or gap resampled over occupations) never gets a binomial spread:
    its item count says nothing of it."""
    rng = np.random.default_rng(_stream_seed(config.seed, series))
    B = config.n_resamples
    out = np.empty((B, len(idx)), dtype=np.float64)
    used: set[str] = set()
    for j, i in enumerate(idx):
        n = series.n_items[i] if series.n_items is not None else None
        v = float(raw[j])
        cl = series.ci_low[i] if series.ci_low is not None else None
        ch = series.ci_high[i] if series.ci_high is not None else None
        if cl is not None and ch is not None and math.isfinite(cl) and math.isfinite(ch) and ch >= cl:
            sd = (ch - cl) / (2.0 * stats.z_quantile(config.alpha))
            out[:, j] = rng.normal(v, sd, size=B) if sd > 0 else v
            used.add("normal from CI")
        elif series.rate and n is not None and n > 0 and 0.0 <= v <= 1.0:
            out[:, j] = rng.binomial(n, v, size=B) / n
            used.add("binomial")
        else:
            return None, "none", 0
    method: ResampleMethod = (
        "binomial + normal from CI" if len(used) == 2 else ("binomial" if "binomial" in used else "normal from CI")
    )
    return out, method, B
