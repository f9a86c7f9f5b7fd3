"""Probe records and metric results: the data shapes that cross from probes to the scan and the report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, Field

from riskaudit.analysis.metric import MetricResult
from riskaudit.models.base import ModelHandle, TokenizationInfo

ProgressFn = Callable[[int, int], None]  # (done, total)


class ItemRecord(BaseModel):
    """One scored item of one probe on one model (written to the per-item sidecar)."""

    probe: str
    item_id: str
    attrs: dict[str, str | int | float | None] = {}
    values: dict[str, float] = {}


class ProbeResult(BaseModel):
    probe_id: str
    probe_hash: str  # sha256 of the probe definition's canonical content
    metrics: list[MetricResult]
    records: list[ItemRecord]
    notes: list[str] = []
    tokenization: TokenizationInfo | None = None  # the model's convention and this probe's pairs (set by the scan)
    # Bootstrap replicates per metric name (length = n_resamples), computed from a resample-index matrix
    # that depends only on (seed, n_items): the same items are resampled for every member of a family,
    # so replicates are PAIRED across members (used by the scaling analysis). Not serialized.
    replicates: dict[str, list[float | None]] = Field(default_factory=dict, exclude=True)


class Probe(Protocol):
    id: str

    @property
    def description(self) -> str:
        """One paragraph on what the probe measures (from its definition), for reports."""
        ...

    def content_hash(self) -> str: ...

    def limited(self, n: int) -> Probe:
        """A copy that scores only its first ``n`` items (``scan --limit``, a smoke run); its content hash
        folds the limit in, so its store units are its own even when nothing is cut."""
        ...

    def run(self, model: ModelHandle, progress: ProgressFn | None = None) -> ProbeResult: ...

    def finalize_family(self, results: list[ProbeResult]) -> list[ProbeResult]:
        """Family-level metrics from this probe's raw results on every member where it ran (scan order,
        smallest member first); one result per input, in order. A probe without any returns ``results``."""
        ...
