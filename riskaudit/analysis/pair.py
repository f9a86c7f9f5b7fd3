"""Two analysable members: no trend, step or verdict can be read from two points (the analysis needs
``min_members``, at least 3), but the difference between them, with its CI, is still a finding.

The CI comes from the same resamples the analysis would use for a longer series: the scan's PAIRED bootstrap
replicates (row b of both members from the same resampled items, so item noise common to both cancels), else
parametric draws, independent across the two members (wider). Model-to-model noise (another training seed of
the same size) is not in it: two members cannot estimate it.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from riskaudit.analysis.series import Finite, MetricSeries, PreparedSeries, ResampleMethod
from riskaudit.analysis.stats import finite_or_none, percentile_ci

__all__ = ["PairDifference", "pair_difference"]


class PairDifference(BaseModel):
    """The larger member minus the smaller one (along the primary axis), in the metric's own units."""

    smaller: str
    larger: str
    value: Finite
    ci_low: Finite | None = None
    ci_high: Finite | None = None
    ci_method: ResampleMethod = "none"
    n_resamples: int = 0

    @property
    def excludes_zero(self) -> bool | None:
        """Whether the 95% CI lies wholly above or below 0 (None without a CI)."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low > 0 or self.ci_high < 0


def pair_difference(series: MetricSeries, prep: PreparedSeries, alpha: float) -> PairDifference | None:
    """The difference of a prepared two-member series and its percentile CI over the resamples (None unless
    exactly two members are analysable along a scale axis)."""
    if len(prep.members) != 2 or prep.primary is None:
        return None
    raw = [series.values[series.members.index(m)] for m in prep.members]
    value = None if raw[0] is None or raw[1] is None else finite_or_none(raw[1] - raw[0])
    if value is None:
        return None
    low: float | None = None
    high: float | None = None
    n = 0
    if prep.raw_reps is not None and prep.raw_reps.shape[0] >= 2:
        diff = prep.raw_reps[:, 1] - prep.raw_reps[:, 0]
        n = int(np.isfinite(diff).sum())
        low, high = percentile_ci(diff, alpha)
    method: ResampleMethod = prep.method if low is not None else "none"
    return PairDifference(
        smaller=prep.members[0], larger=prep.members[1], value=value, ci_low=low, ci_high=high,
        ci_method=method, n_resamples=n if low is not None else 0,
    )  # fmt: skip
