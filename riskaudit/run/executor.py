"""Where a scan's units run: in this process, one after another (``--executor local``), or as Ray tasks
spread over a cluster's CPUs and GPUs (``--executor ray``, :mod:`riskaudit.run.ray_executor`).

An executor only computes: it takes :class:`~riskaudit.run.units.UnitRequest` s and yields each one's
:class:`~riskaudit.run.units.UnitOutcome` (or the reason its member could not be loaded) as it finishes. The
driver (:func:`riskaudit.run.scan.scan_family`) alone reads and writes the result store, reports progress and
runs the family finalization and the analysis.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from riskaudit.errors import ModelLoadError
from riskaudit.models import LoadOptions
from riskaudit.probes.base import Probe, ProbeResult
from riskaudit.reporting.report import ExecutionInfo
from riskaudit.run.units import UnitOutcome, UnitRequest, compute_unit

if TYPE_CHECKING:
    from riskaudit.run.options import ScanEvents, ScanOptions
    from riskaudit.run.store import ResultStore

    class IndexedSink(Protocol):
        def __call__(
            self, index: int, probe_id: str, result: ProbeResult, seconds: float, fingerprint: str
        ) -> None: ...


class UnitFailure(BaseModel):
    """A unit whose member could not be computed: the one-line reason (a load error, a worker that died more
    often than Ray retries it)."""

    error: str


class Executor(Protocol):
    """Runs units and yields each outcome as it finishes (in any order)."""

    @property
    def info(self) -> ExecutionInfo: ...

    def resolve_load(self, load: LoadOptions) -> LoadOptions:
        """The load options with what depends on where units run (``--device auto``) resolved, so the driver's
        result-store keys name what the units compute in."""
        ...

    def run(
        self,
        requests: Sequence[UnitRequest],
        probes: Sequence[Probe],
        options: ScanOptions,
        events: ScanEvents,
        total: int,
        on_result: IndexedSink,
    ) -> Iterator[tuple[UnitRequest, UnitOutcome | UnitFailure]]:
        """``on_result(index, probe id, result, seconds, fingerprint)`` may be called before a unit's outcome is
        yielded, as each probe returns (the local executor does, so an interrupted scan keeps finished probes)."""
        ...


class LocalExecutor:
    """One unit after another in this process (the default)."""

    def __init__(self, store: ResultStore | None = None) -> None:
        self.store = store

    @property
    def info(self) -> ExecutionInfo:
        return ExecutionInfo()

    def resolve_load(self, load: LoadOptions) -> LoadOptions:
        return load  # resolved on this machine when the model loads (riskaudit.models.devices)

    def compute(
        self,
        request: UnitRequest,
        probes: Sequence[Probe],
        options: ScanOptions,
        events: ScanEvents,
        on_result: IndexedSink,
    ) -> UnitOutcome:
        """Compute one unit here; raises :class:`ModelLoadError` when its member cannot be loaded."""
        member = request.member

        def progress(probe_id: str, done: int, total: int) -> None:
            events.probe_progress(member, probe_id, done, total)

        def sink(probe_id: str, result: ProbeResult, seconds: float, fingerprint: str) -> None:
            on_result(request.index, probe_id, result, seconds, fingerprint)

        store = self.store
        return compute_unit(
            member,
            probes,
            options.load,
            options.seed,
            skip=request.skip,
            expected_fingerprint=request.expected_fingerprint,
            fingerprint=None if store is None else store.weights_fingerprint,
            on_result=sink,
            progress=progress,
        )

    def run(
        self,
        requests: Sequence[UnitRequest],
        probes: Sequence[Probe],
        options: ScanOptions,
        events: ScanEvents,
        total: int,
        on_result: IndexedSink,
    ) -> Iterator[tuple[UnitRequest, UnitOutcome | UnitFailure]]:
        for request in requests:
            events.member_start(request.index, total, request.member)
            try:
                outcome: UnitOutcome | UnitFailure = self.compute(request, probes, options, events, on_result)
            except ModelLoadError as exc:
                outcome = UnitFailure(error=str(exc))
            yield request, outcome


_: type[Executor] = LocalExecutor  # LocalExecutor satisfies the protocol
