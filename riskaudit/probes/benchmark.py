"""What every canonical-benchmark probe (Winogender, WinoBias, CrowS-Pairs, BBQ) declares beyond a
:class:`~riskaudit.probes.base.Probe`: the benchmark it reads and the official files it read.

A benchmark probe's YAML (``kind: winogender`` …) is a :class:`BenchmarkSpec`: ``data`` optionally names the
directory of the official files; otherwise the scan's ``--benchmark-data`` roots are searched
(:func:`riskaudit.inputs.benchmark_data.locate`). Its factory takes the spec and those roots and raises
:class:`~riskaudit.inputs.benchmark_data.BenchmarkDataMissing` when the files are not found (the scan records
"not audited" and goes on) or a one-line error when a file is malformed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import numpy as np
import numpy.typing as npt

from riskaudit.analysis import stats
from riskaudit.inputs.benchmark_data import DataFile
from riskaudit.probes.base import ItemRecord, Probe, ProbeResult
from riskaudit.probes.spec import SpecBase


class BenchmarkSpec(SpecBase):
    """Fields every benchmark probe definition has; subclasses add ``kind`` (a Literal) and options.

    ``data`` is excluded from the content hash's meaning only through the files' own sha256 (which the
    probe folds into its :meth:`~riskaudit.probes.base.Probe.content_hash`): moving the files does not
    change results, editing them does."""

    data: str | None = None  # directory holding the official files (relative to the YAML's directory)


class BenchmarkProbe(Probe, Protocol):
    """A probe over a canonical benchmark's official files."""

    @property
    def benchmark(self) -> str:
        """``winogender`` / ``winobias`` / ``crows_pairs`` / ``bbq``."""
        ...

    @property
    def data_files(self) -> Sequence[DataFile]:
        """The official files read (name, sha256, rows), for the report."""
        ...


class BenchmarkFactory(Protocol):
    """Builds a benchmark probe from its validated spec, the YAML's directory and the ``--benchmark-data``
    roots; raises BenchmarkDataMissing (not audited) or BenchmarkFileError (malformed, exit 2)."""

    def __call__(self, spec: SpecBase, spec_dir: Path, roots: Sequence[Path], /) -> BenchmarkProbe: ...


SpecB = TypeVar("SpecB", bound=BenchmarkSpec)


def data_dir(spec: BenchmarkSpec, spec_dir: Path) -> Path | None:
    """The YAML's ``data:`` directory, relative to the YAML's own directory (None when not given)."""
    if spec.data is None:
        return None
    p = Path(spec.data).expanduser()
    return p if p.is_absolute() else spec_dir / p


def benchmark_content_hash(spec: BenchmarkSpec, files: Sequence[DataFile], limit: int | None) -> str:
    """sha256 of the spec's canonical JSON without ``data:`` (moving the files changes nothing), every file's
    (name, sha256) (editing a file does) and the ``--limit`` when one was given: every benchmark probe's hash."""
    canonical = json.loads(spec.canonical_json())
    canonical.pop("data", None)
    payload: dict[str, object] = {"spec": canonical, "files": [[f.name, f.sha256] for f in files]}
    if limit is not None:
        payload["limit"] = limit
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class BenchmarkProbeBase(Generic[SpecB]):
    """What the benchmark probes share: the spec, the files read, ``--limit`` and the content hash.

    The content hash is the spec without its ``data`` path plus the (name, sha256) of every file read (and the
    ``--limit``): moving the files keeps stored results, editing a file invalidates them."""

    benchmark: ClassVar[str]

    def __init__(self, spec: SpecB, files: Sequence[DataFile]) -> None:
        self.spec: SpecB = spec
        self.id: str = spec.id
        self._files: list[DataFile] = list(files)
        self.limit: int | None = None

    @property
    def description(self) -> str:
        return self.spec.description.strip()

    @property
    def data_files(self) -> Sequence[DataFile]:
        return list(self._files)

    def limited(self, n: int) -> Self:
        out = copy.copy(self)
        out.limit = n
        return out

    def content_hash(self) -> str:
        return benchmark_content_hash(self.spec, self._files, self.limit)

    def finalize_family(self, results: list[ProbeResult]) -> list[ProbeResult]:
        return results

    def bootstrap(self) -> tuple[int, int, float]:
        """(resamples, seed, alpha) from the spec's settings."""
        s = self.spec.settings
        return s.bootstrap_resamples, s.seed, s.alpha

    def result(self, collected: stats.MetricCollector, records: list[ItemRecord], notes: Sequence[str]) -> ProbeResult:
        return ProbeResult(
            probe_id=self.id,
            probe_hash=self.content_hash(),
            metrics=collected.metrics,
            records=records,
            notes=[*notes, *collected.notes],
            replicates=collected.replicates,
        )


def group_metric(
    out: stats.MetricCollector,
    name: str,
    values: npt.NDArray[np.float64],
    mask: npt.NDArray[np.bool_],
    unit: npt.NDArray[np.intp],
    n_units: int,
    idx: npt.NDArray[np.intp],
    **kwargs: Any,
) -> None:
    """A mean of ``values`` over the items in ``mask``, with replicates from cluster totals (``unit``: each
    item's resampling unit; ``idx``: the resample matrix over units, the same for every metric of a probe and
    every member of a family, so the replicates are paired)."""
    ok = mask & np.isfinite(values)
    num = np.bincount(unit[ok], weights=values[ok], minlength=n_units).astype(np.float64)
    den = np.bincount(unit[ok], minlength=n_units).astype(np.float64)
    out.add(name, stats.ratio(num, den), stats.ratio_replicates(num, den, idx), n_items=int(ok.sum()), **kwargs)
