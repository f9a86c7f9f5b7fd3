"""What every canonical-benchmark probe (Winogender, WinoBias, CrowS-Pairs, BBQ) declares beyond a
:class:`~riskaudit.probes.base.Probe`: the benchmark it reads and the official files it read.

A benchmark probe's YAML (``kind: winogender`` …) is a :class:`BenchmarkSpec`: ``data`` optionally names the
directory of the official files; otherwise the scan's ``--benchmark-data`` roots are searched
(:func:`riskaudit.inputs.benchmark_data.locate`). Its factory takes the spec and those roots and raises
:class:`~riskaudit.inputs.benchmark_data.BenchmarkDataMissing` when the files are not found (the scan records
"not audited" and goes on) or a one-line error when a file is malformed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from riskaudit.inputs.benchmark_data import DataFile
from riskaudit.probes.base import Probe
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
