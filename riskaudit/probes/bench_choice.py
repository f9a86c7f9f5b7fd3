"""What the multiple-choice benchmark probes (WinoBias, BBQ) share: a probe over items parsed from official
files, each scored by comparing the log-likelihood of a few answer continuations after one context.

- :class:`ChoiceProbeBase`: the spec, the parsed items and the :class:`DataFile` records; content hash (the
  spec plus every file's sha256 and the ``--limit``), ``limited``, ``finalize_family``, records, the result;
- :func:`add_rate`: one rate (a ratio of cluster sums) with its paired bootstrap replicates.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Generic, Self, TypeVar

import numpy as np
import numpy.typing as npt

from riskaudit.analysis import stats
from riskaudit.analysis.metric import Direction, MetricKind
from riskaudit.inputs.benchmark_data import DataFile
from riskaudit.models.base import ModelHandle
from riskaudit.probes.base import ItemRecord, ProbeResult, ProgressFn
from riskaudit.probes.benchmark import BenchmarkSpec, benchmark_content_hash
from riskaudit.probes.common import AttrValue, BootstrapArgs, FloatArray, score_pairs

SpecT = TypeVar("SpecT", bound=BenchmarkSpec)
ItemT = TypeVar("ItemT")


class ChoiceProbeBase(Generic[SpecT, ItemT]):
    """A benchmark probe over parsed items; a subclass sets ``benchmark`` and implements ``run``."""

    benchmark: str = ""

    def __init__(self, spec: SpecT, items: Sequence[ItemT], files: Sequence[DataFile], notes: Sequence[str]) -> None:
        self.spec: SpecT = spec
        self.id: str = spec.id
        self.items: list[ItemT] = list(items)
        self.files: list[DataFile] = list(files)
        self.notes: list[str] = list(notes)
        self.limit: int | None = None

    @property
    def data_files(self) -> Sequence[DataFile]:
        return self.files

    @property
    def description(self) -> str:
        return self.spec.description.strip()

    def limited(self, n: int) -> Self:
        """A copy over the first ``n`` items (``scan --limit``)."""
        out = copy.copy(self)
        out.items = self.items[:n]
        out.limit = n
        return out

    def content_hash(self) -> str:
        return benchmark_content_hash(self.spec, self.files, self.limit)

    def finalize_family(self, results: list[ProbeResult]) -> list[ProbeResult]:
        return results

    def bootstrap(self) -> BootstrapArgs:
        s = self.spec.settings
        return {"n_resamples": s.bootstrap_resamples, "seed": s.seed, "alpha": s.alpha}

    def score(self, model: ModelHandle, pairs: Sequence[tuple[str, str]], progress: ProgressFn | None) -> FloatArray:
        """log P(continuation | context) of every pair, in ONE ``model.loglikelihood`` call."""
        if progress is not None:
            progress(0, len(self.items))
        ll = score_pairs(model, pairs, self.id)[0]
        if progress is not None:
            progress(len(self.items), len(self.items))
        return ll

    def record(self, item_id: str, attrs: dict[str, AttrValue], values: Mapping[str, float]) -> ItemRecord:
        finite = {k: float(v) for k, v in values.items() if np.isfinite(v)}
        return ItemRecord(probe=self.id, item_id=item_id, attrs=attrs, values=finite)

    def result(
        self, collected: stats.MetricCollector, records: list[ItemRecord], *, last: Sequence[str] = ()
    ) -> ProbeResult:
        return ProbeResult(
            probe_id=self.id,
            probe_hash=self.content_hash(),
            metrics=collected.metrics,
            records=records,
            notes=[*self.notes, *collected.notes, *last],
            replicates=collected.replicates,
        )


def cluster_totals(
    unit: npt.NDArray[np.intp], n_units: int, values: FloatArray, mask: npt.NDArray[np.bool_]
) -> FloatArray:
    """Per-unit sums of ``values`` over the items in ``mask`` (NaN values count as 0 and should be masked)."""
    v = np.where(mask, np.nan_to_num(values), 0.0)
    return np.bincount(unit, weights=v, minlength=n_units).astype(np.float64)


def add_rate(
    out: stats.MetricCollector,
    name: str,
    num: FloatArray,
    den: FloatArray,
    idx: npt.NDArray[np.intp],
    *,
    direction: Direction,
    baseline: float,
    description: str,
    undefined_reason: str,
    kind: MetricKind = "continuous",
    companion: str | None = None,
    proportion: bool = False,
) -> tuple[float | None, FloatArray]:
    """sum(num) / sum(den) over resampling units (cluster totals), with its replicates from ``idx``;
    returns the value and the replicates (for derived metrics)."""
    value = stats.ratio(num, den)
    reps = stats.ratio_replicates(num, den, idx)
    out.add(
        name,
        value,
        reps,
        n_items=round(float(den.sum())),
        direction=direction,
        baseline=baseline,
        kind=kind,
        companion=companion,
        description=description,
        undefined_reason=undefined_reason,
        proportion=proportion,
    )
    return value, reps
