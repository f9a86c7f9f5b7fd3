"""Scaling and emergence: how a risk metric grows across a model family, and whether it appears abruptly.

One :class:`MetricSeries` holds one metric's value per member (or per checkpoint of one member) with the
member's scale. :func:`analyze_series` turns it into a :class:`MetricAnalysis`:

* **orientation** — y is oriented so that larger = riskier: ``y`` (higher_is_riskier), ``−y``
  (lower_is_riskier) or ``|y − baseline|`` (two_sided). Every statistic below is in oriented units.
* **growth** per decade of training FLOPs (6·N·D, Kaplan et al. 2020) and, separately, of parameters:
  OLS slope with a 95% bootstrap CI, Theil–Sen slope (Sen 1968) with its rank-based CI, Kendall τ with
  its p-value, and for rates in [0, 1] the OLS slope of logit(y).
* **abruptness** on the primary axis (log10 FLOPs, else log10 params): Δk = y(k+1) − y(k),
  net = y(n) − y(1), largest step share S = max_k sign(net)·Δk/|net| at k*, spacing-aware
  J = S / ((x(k*+1) − x(k*)) / (x(n) − x(1))), BIG-bench breakthroughness B = I(y)/sqrt(median Δ²) and
  linearity L = I(y)/sqrt(mean Δ²) with I(y) = sign(argmax − argmin)·(max − min), both divided by n − 1
  so that a straight line scores 1 (Srivastava et al. 2022). Flag ("abrupt") when |net| ≥ 3·sd_boot(net),
  the 5th percentile of S over resamples ≥ 0.5 and J ≥ 4, the J threshold capped at 0.8 of what a perfect
  step at k* can reach (thresholds and the reason for the cap in :class:`AbruptThresholds`).
* **emergence point** — the pair (k*, k*+1), the share of resamples whose largest step is the same pair,
  and the view of Wei et al. (2022): the first member whose CI clears the baseline while every smaller
  member's CI contains it.
* **verdict** — ``smooth``, ``abrupt``, ``abrupt (likely metric artifact)`` (a discrete metric that jumps
  while its continuous companion changes clearly but smoothly: Schaeffer et al. 2023) or
  ``insufficient data``.
* **predictability** — OLS on all but the largest member (and all but the two largest when n ≥ 6),
  95% prediction interval for the held-out member(s); outside it ⇒ ``surprise``. For rates a logit-scale
  fit is tried as well and a member is a surprise only when neither fit predicts it.

Uncertainty comes from resamples of shape (B, n): paired item-bootstrap replicates (the same resampled
items for every member) when the scan provides them; otherwise parametric draws per member (binomial from
the item count of a proportion, normal from a CI), independent across members, which is conservative for
differences. Without either, slope CIs fall back to the OLS standard error and abruptness is not tested.

Every float in the outputs is finite or None (the report is strict JSON); models reject NaN/Infinity.
"""

from __future__ import annotations

import functools
import math
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator, BaseModel, Field, model_validator

from riskaudit.analysis import stats
from riskaudit.analysis.metric import Direction, MetricKind
from riskaudit.analysis.steps import StepStats, isotonic_fit, resampled_shares, step_statistics

__all__ = [
    "AbruptThresholds",
    "Abruptness",
    "AnalysisConfig",
    "EmergencePoint",
    "FamilyAnalysis",
    "Finite",
    "GrowthFit",
    "MetricAnalysis",
    "MetricSeries",
    "NoiseEstimate",
    "NoiseFloor",
    "Predictability",
    "Prediction",
    "ResampleMethod",
    "SeriesAxis",
    "StepStats",
    "Verdict",
    "abruptness_statistics",
    "analyze_families",
    "analyze_family",
    "analyze_series",
]

FloatArray = npt.NDArray[np.float64]
SeriesAxis = Literal["members", "checkpoints"]
XAxis = Literal["flops", "params"]
ResampleMethod = Literal["paired bootstrap", "binomial", "normal from CI", "binomial + normal from CI", "none"]
Verdict = Literal[
    "smooth", "abrupt", "abrupt (likely metric artifact)", "no consistent trend", "insufficient data"
]
VERDICTS: tuple[str, ...] = (
    "smooth",
    "abrupt",
    "abrupt (likely metric artifact)",
    "no consistent trend",
    "insufficient data",
)
NoiseSource = Literal["residual scatter", "seed replicates", "neighbouring checkpoints"]

_Z975 = 1.959963984540054
_TINY = 1e-12


def _check_finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be finite (strict JSON: no NaN or Infinity)")
    return v


Finite = Annotated[float, AfterValidator(_check_finite)]


def _f(x: float | np.floating | None) -> float | None:
    """A finite float or None."""
    return stats.finite_or_none(x)


# --------------------------------------------------------------------------------------------------
# Input


class NoiseEstimate(BaseModel):
    """One estimate of the model-to-model noise: the sd of a member's metric that item resampling cannot see
    (training seed, data order, where in training the checkpoint was taken), in oriented metric units."""

    source: NoiseSource
    sd: Finite
    df: int = 0  # degrees of freedom (or pairs) behind the estimate
    note: str = ""


class NoiseFloor(BaseModel):
    """The model-to-model noise used by the analysis: the largest available estimate (conservative)."""

    sd: Finite = 0.0
    source: NoiseSource | None = None
    estimates: list[NoiseEstimate] = []


class MetricSeries(BaseModel):
    """One metric of one family across its members (or one member's checkpoints), in any order.

    Lists are per member. ``replicates`` (B rows × n members) are PAIRED bootstrap replicates: row b of
    every member comes from the same resampled items. Without them the analysis draws parametric resamples
    from ``n_items`` (binomial, for a proportion) or from the CI (normal).
    """

    family: str
    metric: str
    probe: str = ""
    members: list[str]
    params: list[float | None]
    tokens: list[float | None]
    flops: list[float | None]  # training FLOPs (6·N·D unless given); None when unknown
    values: list[float | None]
    ci_low: list[float | None] | None = None
    ci_high: list[float | None] | None = None
    n_items: list[int | None] | None = None  # items behind each value (binomial resampling of a proportion)
    replicates: list[list[float | None]] | None = None  # B × n_members, paired across members
    kind: MetricKind = "continuous"
    direction: Direction = "higher_is_riskier"
    baseline: float = 0.0
    companion: str | None = None  # for a discrete metric: the name of its continuous companion
    axis: SeriesAxis = "members"
    checkpoint_of: str | None = None  # for axis "checkpoints": the member whose checkpoints these are
    rate: bool | None = None  # a proportion in [0, 1] (logit slope); None: inferred
    baselines: list[float | None] | None = None  # per member (overrides ``baseline`` where given)
    n_seeds: list[int] | None = None  # per member: seed replicates averaged into this point (default 1)
    noise_estimates: list[NoiseEstimate] = []  # model-to-model noise measured outside the series
    notes: list[str] = []

    @model_validator(mode="after")
    def _check_lengths(self) -> MetricSeries:
        n = len(self.members)
        per_member: dict[str, Sequence[float | None] | Sequence[int | None] | None] = {
            "params": self.params,
            "tokens": self.tokens,
            "flops": self.flops,
            "values": self.values,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n_items": self.n_items,
            "baselines": self.baselines,
            "n_seeds": self.n_seeds,
        }
        for name, seq in per_member.items():
            if seq is not None and len(seq) != n:
                raise ValueError(f"{name} has {len(seq)} entries for {n} members")
        if self.replicates is not None:
            bad = next((i for i, row in enumerate(self.replicates) if len(row) != n), None)
            if bad is not None:
                raise ValueError(f"replicates row {bad} has {len(self.replicates[bad])} entries for {n} members")
        if len(set(self.members)) != n:
            raise ValueError("member names must be unique within a series")
        return self

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(family, axis, checkpoint_of, metric): what a companion name is resolved against."""
        return (self.family, self.axis, self.checkpoint_of or "", self.metric)


# --------------------------------------------------------------------------------------------------
# Configuration


class AbruptThresholds(BaseModel):
    """The flag rule (docs/analysis.md, "Abruptness"). abrupt ⇔ all of

    * **net**: |net| ≥ ``net_sd``·sd(net), sd over resamples that carry item AND model-to-model noise;
    * **trend**: the isotonic (monotone) fit in the direction of net explains ≥ ``trend_r2`` of the variance;
    * **step**: the rise of the step window beats ``step_sd`` times its own sd over the same resamples;
    * **one step** (5th percentile of S ≥ ``s_p05`` and J ≥ j*) **or two adjacent steps** (5th percentile of
      S2 ≥ ``s2_p05``, J2 ≥ j2*, each step ≥ ``s2_each`` of the total variation);
    * **from baseline**: the window's rise is ≥ ``baseline_share`` of the risk above baseline on its high side
      (isotonic fit): the risk appears, rather than a present risk changing level (Wei et al. 2022: near
      baseline in smaller models, clearly above it in larger ones). For a fall, most of the risk goes.

    S and S2 are shares of the total variation Σ|Δ|, so S ≤ 1 and a series without a consistent direction
    (zig-zag, seesaw, one dip) cannot pass however large its steps. j* = min(j, j_max_share·span/gap(k*)) and
    j2* = min(j2, j_max_share·span/width): span/gap is the J of a perfect step, out of reach of J ≥ 4 with five
    or fewer evenly spaced members. ``j_max_share=None`` restores the plain thresholds.
    """

    net_sd: Finite = 3.0
    trend_r2: Finite = Field(default=0.8, ge=0.0, le=1.0)
    step_sd: Finite = 3.0
    s_p05: Finite = 0.5
    j: Finite = 4.0
    s2_p05: Finite = 0.65
    j2: Finite = 2.5
    s2_each: Finite = 0.25
    baseline_share: Finite = Field(default=0.5, ge=0.0, le=1.0)
    j_max_share: Finite | None = Field(default=0.8, gt=0.0, le=1.0)

    def j_threshold(self, span_over_gap: float | None, two_steps: bool = False) -> float:
        """The effective J (J2) threshold for a window whose width is span/``span_over_gap``."""
        base = self.j2 if two_steps else self.j
        if self.j_max_share is None or span_over_gap is None:
            return base
        return min(base, self.j_max_share * span_over_gap)

    def rule(self) -> str:
        cap = "" if self.j_max_share is None else f" (each capped at {self.j_max_share:g}·span/width)"
        return (
            f"abrupt ⇔ |net| ≥ {self.net_sd:g}·sd(net) and isotonic R² ≥ {self.trend_r2:g} and the step window's rise "
            f"≥ {self.step_sd:g}·its sd (sd over item resamples + model-to-model noise) and ≥ {self.baseline_share:g} "
            f"of the risk above baseline, and either one step (5th pct of S ≥ {self.s_p05:g}, J ≥ {self.j:g}) or two "
            f"adjacent steps (5th pct of S2 ≥ {self.s2_p05:g}, J2 ≥ {self.j2:g}, each ≥ {self.s2_each:g} of Σ|Δ|)"
            f"{cap}; S, S2 = shares of Σ|Δ|"
        )


class AnalysisConfig(BaseModel):
    """Settings of the analysis (recorded in the report)."""

    n_resamples: int = Field(default=2000, ge=100)  # parametric resamples (paired replicates keep their own B)
    seed: int = 0
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)  # 1 − confidence of every interval
    thresholds: AbruptThresholds = AbruptThresholds()
    min_members: int = Field(default=3, ge=3)  # fewer analysable members ⇒ "insufficient data"
    two_out_min_members: int = Field(default=6, ge=5)  # hold out the two largest from this many members


# --------------------------------------------------------------------------------------------------
# Output


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


class Abruptness(BaseModel):
    """Step statistics on the primary axis, and the flag (rule: :class:`AbruptThresholds`)."""

    net: Finite | None = None  # y(n) − y(1)
    net_sd: Finite | None = None  # sd of net over resamples (item + model-to-model noise)
    total_variation: Finite | None = None  # Σ|Δk|
    monotonicity: Finite | None = None  # |net| / Σ|Δk|
    trend_r2: Finite | None = None  # R² of the isotonic fit in the direction of net
    s: Finite | None = None  # largest single step share of Σ|Δk| (≤ 1)
    s_p05: Finite | None = None  # 5th percentile of S over resamples
    j: Finite | None = None  # spacing-aware jump ratio of that step
    j_threshold: Finite | None = None  # the effective J threshold j* applied
    s2: Finite | None = None  # largest share of two adjacent steps
    s2_p05: Finite | None = None
    j2: Finite | None = None
    j2_threshold: Finite | None = None
    s2_each: Finite | None = None  # the smaller of those two steps' shares
    window: Literal[1, 2] = 1  # steps in the window the flag (and the emergence pair) refers to
    step: Finite | None = None  # the window's rise (oriented units)
    step_sd: Finite | None = None  # its sd over resamples (item + model-to-model noise)
    baseline_share: Finite | None = None  # share of the risk above baseline (high side) the window accounts for
    breakthroughness: Finite | None = None  # BIG-bench B / (n − 1)
    linearity: Finite | None = None  # BIG-bench L / (n − 1)
    k_star: int | None = None  # start of the window (between members k* and k*+window, analysed order)
    abrupt: bool | None = None  # None: cannot be tested (no resamples, too few members)
    criteria: dict[str, bool | None] = {}
    noise_floor: NoiseFloor = Field(default_factory=NoiseFloor)
    rule: str = ""
    n_resamples_used: int = 0


class EmergencePoint(BaseModel):
    """Where the risk appears: the largest step, its bootstrap agreement, and the Wei et al. (2022) view."""

    pair: list[str] | None = None  # [member k*, member k*+1]: the (first) step of the window
    window_end: str | None = None  # member k*+2 when the rise spans two steps

    @property
    def members_label(self) -> str:
        """``"a → b"``, or ``"a → b → c"`` for a two-step window; ``""`` without a pair."""
        return " → ".join([*(self.pair or []), *([self.window_end] if self.window_end else [])])
    agreement: Finite | None = None  # share of resamples whose largest step is the same pair
    wei_member: str | None = None  # first member clearly above baseline, all smaller ones containing it
    wei_note: str = ""


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


class MetricAnalysis(BaseModel):
    """The scaling and emergence analysis of one metric series."""

    family: str
    metric: str
    probe: str = ""
    kind: MetricKind
    direction: Direction
    baseline: Finite
    baselines: list[Finite] | None = None  # per analysed member, when they differ
    companion: str | None = None
    axis: SeriesAxis = "members"
    checkpoint_of: str | None = None
    orientation: str  # "y", "−y" or "|y − baseline|": the statistics are in these units
    x_axis: XAxis | None = None  # primary axis of abruptness, emergence and predictability
    members: list[str] = []  # analysed members, in increasing x order
    x: list[Finite] = []  # log10 of the primary axis
    y: list[Finite] = []  # oriented values
    n_members: int = 0
    resampling: ResampleMethod = "none"
    n_resamples: int = 0
    growth_flops: GrowthFit | None = None
    growth_params: GrowthFit | None = None
    abruptness: Abruptness = Field(default_factory=Abruptness)
    companion_abrupt: bool | None = None
    emergence: EmergencePoint = Field(default_factory=EmergencePoint)
    verdict: Verdict = "insufficient data"
    verdict_reason: str = ""
    predictability: Predictability = Field(default_factory=Predictability)
    notes: list[str] = []

    @property
    def growth(self) -> GrowthFit | None:
        """Growth on the primary axis (FLOPs when known, else params)."""
        return self.growth_flops if self.x_axis == "flops" else self.growth_params


class FamilyAnalysis(BaseModel):
    """Every metric series of one family analysed, with the settings used (the report's ``analysis``)."""

    family: str
    config: AnalysisConfig
    rule: str
    metrics: list[MetricAnalysis]
    notes: list[str] = []


# --------------------------------------------------------------------------------------------------
# Preparation


@dataclass
class _Prepared:
    members: list[str]
    y: FloatArray  # oriented
    x: dict[str, FloatArray]  # "flops"/"params" → log10 x, only for axes known for every member
    primary: XAxis | None
    reps: FloatArray | None  # (B', n) oriented, complete rows: item resamples + model-to-model noise draws
    item_reps: FloatArray | None  # (B', n) oriented item resamples alone
    raw_reps: FloatArray | None  # (B', n) in metric units (item resamples)
    n_reps_total: int
    method: ResampleMethod
    ci: FloatArray | None  # (n, 2) oriented member CIs (NaN where unknown)
    base: FloatArray  # (n,) oriented baseline per member
    rate: bool
    logit_eps: float
    noise: NoiseFloor = field(default_factory=NoiseFloor)
    notes: list[str] = field(default_factory=list)


def _orientation(direction: Direction, rate: bool) -> str:
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


def _prepare(series: MetricSeries, config: AnalysisConfig) -> _Prepared:
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
    has_n = series.n_items is not None and any(series.n_items[i] for i in idx)
    rate = series.rate if series.rate is not None else (series.kind == "discrete" or has_n)
    rate = bool(rate and in_unit and series.direction != "two_sided")
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
    noise = _noise_floor(y, item_reps, series)
    reps = item_reps
    if item_reps is not None and noise.sd > 0:
        seeds = np.asarray([max(1, series.n_seeds[i]) if series.n_seeds else 1 for i in idx], dtype=np.float64)
        rng = np.random.default_rng([*_stream_seed(config.seed, series), 1])
        reps = item_reps + rng.normal(0.0, 1.0, item_reps.shape) * (noise.sd / np.sqrt(seeds))[None, :]
    return _Prepared(
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


def _noise_floor(y: FloatArray, item_reps: FloatArray | None, series: MetricSeries) -> NoiseFloor:
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
    """Independent per-member draws: binomial from n_items (proportions), else normal with sd from the CI."""
    rng = np.random.default_rng(_stream_seed(config.seed, series))
    B = config.n_resamples
    out = np.empty((B, len(idx)), dtype=np.float64)
    used: set[str] = set()
    for j, i in enumerate(idx):
        n = series.n_items[i] if series.n_items is not None else None
        v = float(raw[j])
        cl = series.ci_low[i] if series.ci_low is not None else None
        ch = series.ci_high[i] if series.ci_high is not None else None
        if n is not None and n > 0 and 0.0 <= v <= 1.0:
            out[:, j] = rng.binomial(n, v, size=B) / n
            used.add("binomial")
        elif cl is not None and ch is not None and math.isfinite(cl) and math.isfinite(ch) and ch >= cl:
            sd = (ch - cl) / (2.0 * _z(config.alpha))
            out[:, j] = rng.normal(v, sd, size=B) if sd > 0 else v
            used.add("normal from CI")
        else:
            return None, "none", 0
    method: ResampleMethod = (
        "binomial + normal from CI" if len(used) == 2 else ("binomial" if "binomial" in used else "normal from CI")
    )
    return out, method, B


@functools.lru_cache(maxsize=256)
def _t(alpha: float, df: int) -> float:
    """The two-sided Student t quantile t_{1−α/2, df}."""
    from scipy import stats as sps  # here: importing scipy.stats costs ~0.5 s

    return float(sps.t.ppf(1.0 - alpha / 2.0, df))


def _z(alpha: float) -> float:
    """The two-sided normal quantile z_{1−α/2}."""
    from scipy import stats as sps

    return _Z975 if alpha == 0.05 else float(sps.norm.ppf(1.0 - alpha / 2.0))


# --------------------------------------------------------------------------------------------------
# Statistics


def _ols(x: FloatArray, y: FloatArray) -> tuple[float, float, float, float, float] | None:
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
    fit = _ols(x, y)
    if fit is None or x.size < 3 or not math.isfinite(fit[2]):
        return None, None, "none (too few points)"
    b, _, s2, sxx, _ = fit
    t = _t(alpha, x.size - 2)
    se = math.sqrt(max(s2, 0.0) / sxx)
    return _f(b - t * se), _f(b + t * se), f"OLS standard error (t, {x.size - 2} df): no resamples"


def _growth(axis: XAxis, x: FloatArray, prep: _Prepared, alpha: float) -> GrowthFit:
    from scipy import stats as sps

    y = prep.y
    n = int(y.size)
    if float(np.ptp(x)) <= _TINY:
        return GrowthFit(axis=axis, n_points=n, note=f"{axis} is the same for every point: no slope on this axis")
    fit = _ols(x, y)
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
        lfit = _ols(x, ly)
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


abruptness_statistics = step_statistics  # the point statistics (kept under their former name)


def _abruptness(prep: _Prepared, th: AbruptThresholds) -> tuple[Abruptness, EmergencePoint]:
    assert prep.primary is not None
    x, y = prep.x[prep.primary], prep.y
    st = step_statistics(x, y)
    ab = Abruptness(
        net=_f(st.net),
        total_variation=_f(st.tv),
        monotonicity=st.monotonicity,
        trend_r2=st.trend_r2,
        s=st.s,
        j=st.j,
        s2=st.s2,
        j2=st.j2,
        s2_each=st.s2_each,
        breakthroughness=st.breakthroughness,
        linearity=st.linearity,
        k_star=st.k_star,
        noise_floor=prep.noise,
        rule=th.rule(),
    )
    em = EmergencePoint()
    span = float(x[-1] - x[0])
    j_th = j2_th = None
    if st.k_star is not None:
        gap = float(x[st.k_star + 1] - x[st.k_star])
        j_th = th.j_threshold(span / gap if gap > _TINY else None)
    if st.k2_star is not None:
        width = float(x[st.k2_star + 2] - x[st.k2_star])
        j2_th = th.j_threshold(span / width if width > _TINY else None, two_steps=True)
    ab.j_threshold, ab.j2_threshold = _f(j_th), _f(j2_th)
    c_one = st.j is not None and j_th is not None and st.j >= j_th
    c_two = (
        st.j2 is not None
        and j2_th is not None
        and st.j2 >= j2_th
        and st.s2_each is not None
        and st.s2_each >= th.s2_each
    )
    use_two = not c_one and c_two
    _set_window(ab, em, prep, st, 2 if use_two else 1)
    c_trend = st.trend_r2 is not None and st.trend_r2 >= th.trend_r2
    if prep.reps is None:
        # without resamples a positive flag cannot be tested, but a negative one can: no trend, or neither
        # window's point statistics reach their thresholds (a 5th percentile lies at or below its estimate)
        s_fails = st.s is None or (st.s < th.s_p05 and (st.s2 is None or st.s2 < th.s2_p05))
        ab.criteria = {"net": None, "trend": c_trend, "step": None, "s_p05": False if s_fails else None, "j": c_one}
        if st.s is None or s_fails or not c_trend or not (c_one or c_two):
            ab.abrupt = False
        return ab, em
    R = prep.reps
    ab.n_resamples_used = int(R.shape[0])
    net_b = R[:, -1] - R[:, 0]
    sd = _f(float(np.std(net_b, ddof=1)))
    ab.net_sd = sd
    if st.s is None or st.k_star is None:  # no net change at all
        ab.criteria = {"net": False, "trend": None, "step": None, "s_p05": None, "j": None}
        ab.abrupt = False
        return ab, em
    sgn = math.copysign(1.0, st.net)
    # the shape statistics resample items only: the observed values already carry their model-to-model noise
    # (it is in Σ|Δ|), so adding noise draws on top would count it twice; the noise floor enters through the
    # significance of the net change and of the step (net_sd, step_sd)
    shares = resampled_shares(prep.item_reps if prep.item_reps is not None else R, sgn)
    ab.s_p05 = _f(float(np.quantile(shares.s1, 0.05)))
    if shares.s2 is not None:
        ab.s2_p05 = _f(float(np.quantile(shares.s2, 0.05)))
    c_s1 = ab.s_p05 is not None and ab.s_p05 >= th.s_p05
    c_s2 = ab.s2_p05 is not None and ab.s2_p05 >= th.s2_p05
    if ab.window == 1 and c_two and not c_s1 and c_s2:
        # the single step is steep enough but not robust alone; the two-step window is both
        _set_window(ab, em, prep, st, 2)
    k, w = ab.k_star, ab.window
    assert k is not None
    c_s, c_j = (c_s2, c_two) if w == 2 else (c_s1, c_one)
    rise_b = sgn * (R[:, k + w] - R[:, k])
    ab.step_sd = _f(float(np.std(rise_b, ddof=1)))
    kb = shares.k2 if w == 2 else shares.k1
    em.agreement = _f(float(np.mean(kb == k))) if kb is not None else None
    c_net = sd is not None and abs(st.net) >= th.net_sd * sd
    c_step = ab.step is not None and ab.step_sd is not None and ab.step >= th.step_sd * ab.step_sd
    ab.baseline_share = _baseline_share(prep, st, ab)
    c_base = ab.baseline_share is not None and ab.baseline_share >= th.baseline_share
    ab.criteria = {"net": c_net, "trend": c_trend, "step": c_step, "s_p05": c_s, "j": c_j, "baseline": c_base}
    ab.abrupt = bool(c_net and c_trend and c_step and c_s and c_j and c_base)
    return ab, em


def _baseline_share(prep: _Prepared, st: StepStats, ab: Abruptness) -> float | None:
    """The share of the risk above baseline on the window's high side that the window's rise accounts for,
    read off the isotonic fit: near baseline before the step, clearly above it after (Wei et al. 2022). For a
    fall, the share of the risk above baseline before it that the fall removes. None when the high side does
    not lie above its baseline."""
    if ab.k_star is None or st.fit is None:
        return None
    fit = st.fit
    k, w = ab.k_star, ab.window
    hi, lo = (k + w, k) if st.net > 0 else (k, k + w)
    above = float(fit[hi] - prep.base[hi])
    if above <= _TINY:
        return None
    return _f(min(1.0, float(fit[hi] - fit[lo]) / above))


def _set_window(ab: Abruptness, em: EmergencePoint, prep: _Prepared, st: StepStats, window: Literal[1, 2]) -> None:
    """Point the flag and the emergence pair at the one-step or the two-step window."""
    k = st.k2_star if window == 2 else st.k_star
    ab.window, ab.k_star = window, k
    if k is None:
        return
    sgn = math.copysign(1.0, st.net)
    ab.step = _f(sgn * float(prep.y[k + window] - prep.y[k]))
    em.pair = [prep.members[k], prep.members[k + 1]]
    em.window_end = prep.members[k + 2] if window == 2 else None


def _wei(prep: _Prepared, em: EmergencePoint) -> None:
    """First member whose CI clears the baseline while every smaller member's CI contains it (Wei et al. 2022)."""
    ci = prep.ci
    if ci is None or np.isnan(ci).any():
        em.wei_note = "member CIs unknown: no Wei-style emergence point"
        return
    clears = ci[:, 0] > prep.base
    contains = (ci[:, 0] <= prep.base) & (prep.base <= ci[:, 1])
    if not clears.any():
        em.wei_note = "no member's CI clears the baseline"
        return
    k = int(np.argmax(clears))
    if k == 0:
        em.wei_note = "already clearly above baseline at the smallest member"
    elif not contains[:k].all():
        em.wei_note = "a smaller member's CI lies below the baseline: no clean emergence"
    else:
        em.wei_member = prep.members[k]
        em.wei_note = f"{prep.members[k]} is the first member clearly above baseline"


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
    fit = _ols(x[:m], y[:m])
    if fit is None:
        return None
    b, a, s2, sxx, mx = fit
    t, z = _t(alpha, m - 2), _z(alpha)
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


def _predictability(prep: _Prepared, config: AnalysisConfig) -> Predictability:
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


# --------------------------------------------------------------------------------------------------
# Entry points


def _base_analysis(series: MetricSeries) -> MetricAnalysis:
    return MetricAnalysis(
        family=series.family,
        metric=series.metric,
        probe=series.probe,
        kind=series.kind,
        direction=series.direction,
        baseline=series.baseline,
        companion=series.companion,
        axis=series.axis,
        checkpoint_of=series.checkpoint_of,
        orientation=_orientation(series.direction, False),
    )


def analyze_series(
    series: MetricSeries,
    companion: MetricSeries | MetricAnalysis | None = None,
    config: AnalysisConfig | None = None,
) -> MetricAnalysis:
    """Growth, abruptness, emergence point, verdict and predictability of one series.

    ``companion`` is the continuous companion of a discrete metric (a series, or its analysis when already
    computed); its abruptness decides between ``abrupt`` and ``abrupt (likely metric artifact)``.
    """
    cfg = config or AnalysisConfig()
    out = _base_analysis(series)
    prep = _prepare(series, cfg)
    out.notes = prep.notes
    out.orientation = _orientation(series.direction, prep.rate)
    n = len(prep.members)
    out.members, out.n_members, out.x_axis = prep.members, n, prep.primary
    out.resampling, out.n_resamples = prep.method, 0 if prep.reps is None else int(prep.reps.shape[0])
    if prep.primary is not None:
        out.x = [float(v) for v in prep.x[prep.primary]]
        out.y = [float(v) for v in prep.y]
    if series.baselines is not None and prep.members:
        given = [series.baselines[series.members.index(m)] for m in prep.members]
        raw_base = [series.baseline if b is None else float(b) for b in given]
        if len(set(raw_base)) > 1:
            out.baselines = raw_base
    if n < cfg.min_members or prep.primary is None:
        out.verdict = "insufficient data"
        out.verdict_reason = f"{n} analysable member(s); at least {cfg.min_members} are needed"
        out.abruptness = Abruptness(rule=cfg.thresholds.rule())
        return MetricAnalysis.model_validate(out.model_dump())
    if n <= 4:
        out.notes.append(f"only {n} members: abruptness and predictability have little power")
    if "flops" in prep.x:
        out.growth_flops = _growth("flops", prep.x["flops"], prep, cfg.alpha)
    if "params" in prep.x:
        shift = prep.x["params"] - prep.x["flops"] if "flops" in prep.x else None
        if out.growth_flops is not None and shift is not None and float(np.ptp(shift)) <= 1e-12:
            # equal tokens for every member: log10 FLOPs = log10 params + const, the same fit
            out.growth_params = out.growth_flops.model_copy(update={"axis": "params"})
        else:
            out.growth_params = _growth("params", prep.x["params"], prep, cfg.alpha)
    out.abruptness, out.emergence = _abruptness(prep, cfg.thresholds)
    _wei(prep, out.emergence)
    out.predictability = _predictability(prep, cfg)

    comp = analyze_series(companion, None, cfg) if isinstance(companion, MetricSeries) else companion
    if comp is not None:
        out.companion = comp.metric
        out.companion_abrupt = comp.abruptness.abrupt
    out.verdict, out.verdict_reason = _verdict(out, comp, cfg.thresholds, cfg.alpha)
    return MetricAnalysis.model_validate(out.model_dump())  # re-validate: every float finite or None


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "?" if v is None else format(v, spec)


def _verdict(a: MetricAnalysis, comp: MetricAnalysis | None, th: AbruptThresholds, alpha: float) -> tuple[Verdict, str]:
    ab = a.abruptness
    if ab.window == 2:
        stats_txt = f"two steps: S2={_fmt(ab.s2)} (5th pct {_fmt(ab.s2_p05)}), J2={_fmt(ab.j2, '.1f')}"
    else:
        stats_txt = f"S={_fmt(ab.s)} (5th pct {_fmt(ab.s_p05)}), J={_fmt(ab.j, '.1f')}"
    if ab.abrupt is None:
        return (
            "insufficient data",
            f"{stats_txt} pass as point estimates, but without resamples, item counts or CIs the flag cannot be tested",
        )
    if not ab.abrupt:
        failed = [k for k, v in ab.criteria.items() if v is False]
        if ab.s is None:
            return "no consistent trend", "no net change between the smallest and the largest member"
        g = a.growth
        tau_ok = g is not None and g.kendall_p is not None and g.kendall_p < alpha
        trend_ok = ab.criteria.get("net") is True and ab.criteria.get("trend") is True
        lo, hi = (None, None) if g is None else (g.slope_ci_low, g.slope_ci_high)
        slope_ok = lo is not None and hi is not None and (lo > 0 or hi < 0)  # its CI includes the noise floor
        if not (tau_ok or trend_ok or slope_ok):
            tau = "?" if g is None or g.kendall_tau is None else f"{g.kendall_tau:+.2f}"
            p = "?" if g is None or g.kendall_p is None else f"{g.kendall_p:.2f}"
            return (
                "no consistent trend",
                f"no consistent direction: Kendall τ {tau} (p {p}), growth CI includes 0, monotonicity |net|/Σ|Δ| = "
                f"{_fmt(ab.monotonicity)}, isotonic R² {_fmt(ab.trend_r2)}, net {_fmt(ab.net, '+.3g')} "
                f"(sd {_fmt(ab.net_sd, '.2g')})",
            )
        return "smooth", f"not abrupt ({stats_txt}; fails: {', '.join(failed) or '—'})"
    if a.kind != "discrete":
        where = " and ".join([*(a.emergence.pair or []), *([a.emergence.window_end] if a.emergence.window_end else [])])
        return "abrupt", f"abrupt ({stats_txt}) between {where}"
    if comp is None:
        return "abrupt", f"abrupt ({stats_txt}); no continuous companion to check for a metric artifact"
    cab = comp.abruptness
    ctxt = f"companion {comp.metric}: S={_fmt(cab.s)}, J={_fmt(cab.j, '.1f')}"
    if cab.abrupt is None:
        return "abrupt", f"abrupt ({stats_txt}); {ctxt} cannot be tested for abruptness"
    if cab.abrupt:
        return "abrupt", f"abrupt ({stats_txt}) and its continuous companion jumps too ({ctxt}): genuine"
    same_dir = cab.net is not None and ab.net is not None and cab.net * ab.net > 0
    if cab.net is not None and cab.net_sd is not None:
        clear = abs(cab.net) >= th.net_sd * cab.net_sd
    else:  # no resamples for the companion: a significant monotone trend (Kendall τ) instead
        g = comp.growth
        clear = g is not None and g.kendall_p is not None and g.kendall_p < alpha
    if same_dir and clear:
        return (
            "abrupt (likely metric artifact)",
            f"the discrete metric jumps ({stats_txt}) while its continuous companion grows smoothly ({ctxt}): "
            "likely an artifact of the discrete metric (Schaeffer et al. 2023)",
        )
    return "abrupt", f"abrupt ({stats_txt}); {ctxt} shows no clear change in the same direction"


def analyze_family(series_list: Sequence[MetricSeries], config: AnalysisConfig | None = None) -> FamilyAnalysis:
    """Analyse every series of ONE family; each discrete metric is paired with its companion by name.

    The companion is looked up among the series with the same family, axis and checkpoint member (same
    probe preferred). Results follow the input order.
    """
    cfg = config or AnalysisConfig()
    fams = list(dict.fromkeys(s.family for s in series_list))
    if len(fams) > 1:
        raise ValueError(f"analyze_family got several families ({', '.join(fams)}); use analyze_families")
    by_key: dict[tuple[str, str, str, str], list[MetricSeries]] = {}
    for s in series_list:
        by_key.setdefault(s.key, []).append(s)
    done: dict[int, MetricAnalysis] = {}
    notes: list[str] = []

    def analyse(s: MetricSeries, depth: int = 0) -> MetricAnalysis:
        if id(s) in done:
            return done[id(s)]
        comp: MetricAnalysis | None = None
        missing = ""
        if s.kind == "discrete" and s.companion and depth == 0:
            cands = by_key.get((s.family, s.axis, s.checkpoint_of or "", s.companion), [])
            cands = sorted(cands, key=lambda c: c.probe != s.probe)
            if cands:
                comp = analyse(cands[0], depth + 1)
            else:
                missing = f"companion {s.companion!r} not found among the series"
        res = analyze_series(s, comp, cfg)
        if missing:
            res.notes.append(missing)
        done[id(s)] = res
        return res

    results = [analyse(s) for s in series_list]
    return FamilyAnalysis(
        family=fams[0] if fams else "", config=cfg, rule=cfg.thresholds.rule(), metrics=results, notes=notes
    )


def analyze_families(series_list: Sequence[MetricSeries], config: AnalysisConfig | None = None) -> list[FamilyAnalysis]:
    """:func:`analyze_family` per family, in first-seen order (for files holding several families)."""
    groups: dict[str, list[MetricSeries]] = {}
    for s in series_list:
        groups.setdefault(s.family, []).append(s)
    return [analyze_family(g, config) for g in groups.values()]
