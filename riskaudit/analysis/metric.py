"""A metric of one probe on one model: the value, its bootstrap CI, its direction and baseline.

The shape that crosses from probes to the analysis and the report (it sits here, below the probes, so that
the statistics can read it without importing a probe).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Direction = Literal["higher_is_riskier", "lower_is_riskier", "two_sided"]
MetricKind = Literal["discrete", "continuous"]


class MetricResult(BaseModel):
    """A metric of one probe on one model, with a bootstrap CI over items."""

    name: str  # "stereotype_correlation_pearson"
    value: float | None  # None when undefined (e.g. a constant vector); never NaN
    ci_low: float | None = None
    ci_high: float | None = None
    n_items: int
    direction: Direction
    baseline: float  # the value of a model with no bias / no memorization
    kind: MetricKind
    companion: str | None = None  # for a discrete metric: its continuous companion's name
    # a plain proportion of ``n_items`` independent items: analysed as a rate (logit scale) and, without a CI,
    # resampled binomially. Declared by the probe; None only in results written before riskaudit declared it
    proportion: bool | None = None
    description: str = ""
