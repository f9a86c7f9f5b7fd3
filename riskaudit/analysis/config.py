"""The settings of the scaling analysis (recorded in every report's ``analysis.config``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from riskaudit.analysis.abrupt import AbruptThresholds

__all__ = ["AnalysisConfig"]


class AnalysisConfig(BaseModel):
    """Settings of the analysis (recorded in the report)."""

    n_resamples: int = Field(default=2000, ge=100)  # parametric resamples (paired replicates keep their own B)
    seed: int = 0
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)  # 1 − confidence of every interval
    thresholds: AbruptThresholds = AbruptThresholds()
    min_members: int = Field(default=3, ge=3)  # fewer analysable members ⇒ "insufficient data"
    two_out_min_members: int = Field(default=6, ge=5)  # hold out the two largest from this many members
