"""What a scan is asked to do (its options) and what it tells its caller while it runs (its events).

Shared by the scan and the executors, so that neither imports the other for them.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel

from riskaudit.inputs.benchmark_data import NotAudited
from riskaudit.inputs.family_spec import ModelSpec
from riskaudit.inputs.memdata import DataOptions
from riskaudit.models import LoadOptions
from riskaudit.reporting.report import MemberReport

OccupationTable = Literal["bls2015", "bls2022"]


class ProbeOptions(BaseModel):
    """Which probes a scan runs and with which data."""

    occupations: OccupationTable = "bls2015"
    probe_dirs: list[str] = []  # user probe directories (--probe-dir), added to the built-in probes/
    data: DataOptions | None = None  # memorization data (--data); default: the family's declared training data
    prefix_len: int | None = None
    suffix_len: int | None = None
    include_text: bool = False  # put extracted text in records (off: hashes, lengths, positions only)
    canaries: str | None = None  # --canaries FILE
    exposure_candidates: int | None = None  # --exposure-candidates N
    memorization: bool = True  # False: --no-memorization
    benchmark_data: list[str] = []  # --benchmark-data roots of the canonical benchmarks' official files


class ScanOptions(BaseModel):
    load: LoadOptions = LoadOptions()
    seed: int = 0
    occupations: OccupationTable = "bls2015"
    keep_going: bool = False  # record members that fail to load and go on
    command: str = ""
    limit: int | None = None  # --limit: the probes were cut to their first N items (a smoke run)
    notes: list[str] = []  # scan-level notes for the report (e.g. memorization not audited)
    not_audited: list[NotAudited] = []  # benchmarks whose official data was not found


class ScanEvents(Protocol):
    def member_start(self, index: int, total: int, member: ModelSpec) -> None: ...

    def probe_progress(self, member: ModelSpec, probe_id: str, done: int, total: int) -> None: ...

    def member_done(
        self, index: int, total: int, result: MemberReport, seconds: float, from_store: bool = False
    ) -> None: ...

    def step_done(self, step: str, seconds: float, detail: str = "") -> None:
        """A family-level step (the analysis) finished."""
        ...


class UnitCounter:
    """Counts the units a scan stored in the result store (reported when the scan is interrupted)."""

    def __init__(self) -> None:
        self.stored = 0


class _NoEvents:
    def member_start(self, index: int, total: int, member: ModelSpec) -> None:
        pass

    def probe_progress(self, member: ModelSpec, probe_id: str, done: int, total: int) -> None:
        pass

    def member_done(
        self, index: int, total: int, result: MemberReport, seconds: float, from_store: bool = False
    ) -> None:
        pass

    def step_done(self, step: str, seconds: float, detail: str = "") -> None:
        pass
