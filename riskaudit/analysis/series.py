"""The input of the scaling analysis: one metric of one family across its members (:class:`MetricSeries`),
the model-to-model noise shapes it carries, and :class:`PreparedSeries`, the same series sorted along the
scale axis, oriented (larger = riskier) and resampled, which every statistic of the analysis reads.

Every float in the analysis' outputs is finite or None (the report is strict JSON); :data:`Finite` makes the
models reject NaN/Infinity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator, BaseModel, model_validator

from riskaudit.analysis.metric import Direction, MetricKind

__all__ = [
    "Finite",
    "FloatArray",
    "MetricSeries",
    "NoiseEstimate",
    "NoiseFloor",
    "NoiseSource",
    "PreparedSeries",
    "ResampleMethod",
    "SeriesAxis",
    "XAxis",
]

FloatArray = npt.NDArray[np.float64]
SeriesAxis = Literal["members", "checkpoints"]
XAxis = Literal["flops", "params"]
ResampleMethod = Literal["paired bootstrap", "binomial", "normal from CI", "binomial + normal from CI", "none"]
NoiseSource = Literal["residual scatter", "seed replicates", "neighbouring checkpoints"]


def _check_finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be finite (strict JSON: no NaN or Infinity)")
    return v


Finite = Annotated[float, AfterValidator(_check_finite)]


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
    from ``n_items`` (binomial, for a proportion) or from the CI (normal). ``rate`` says the metric is a
    proportion; the analysis never infers it from the values.
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
    rate: bool = False  # a declared proportion in [0, 1]: logit slope and fit, 1 − y orientation (never inferred)
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



@dataclass
class PreparedSeries:
    """A series ready for the statistics: analysable members sorted along the primary axis, y oriented."""

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
