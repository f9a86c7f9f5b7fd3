"""The result shapes of the scaling analysis: one metric series analysed (:class:`MetricAnalysis`) and a
whole family (:class:`FamilyAnalysis`, the report's ``analysis``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from riskaudit.analysis.abrupt import Abruptness, EmergencePoint
from riskaudit.analysis.config import AnalysisConfig
from riskaudit.analysis.growth import GrowthFit
from riskaudit.analysis.metric import Direction, MetricKind
from riskaudit.analysis.pair import PairDifference
from riskaudit.analysis.prediction import Predictability
from riskaudit.analysis.series import Finite, ResampleMethod, SeriesAxis, XAxis
from riskaudit.analysis.verdicts import Verdict

__all__ = ["FamilyAnalysis", "MetricAnalysis"]


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
    difference: PairDifference | None = None  # two analysable members: larger − smaller, with its CI
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
