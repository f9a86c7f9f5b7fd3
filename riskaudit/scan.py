"""A family scan: a loop over (member, probe) units followed by the report.

Each unit is independent of every other (its own model load, its own records), so units can later be
cached, resumed or spread over machines without touching probes. One member is loaded at a time and
freed before the next. Core code never prints: progress goes through :class:`ScanEvents`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal, Protocol

import torch
from pydantic import BaseModel

from riskaudit.errors import ModelLoadError, RiskauditError
from riskaudit.families import Family, ModelSpec
from riskaudit.models import LoadOptions, load_model
from riskaudit.probes.base import Probe
from riskaudit.probes.pronoun import PronounProbe
from riskaudit.report import (
    FamilyInfo,
    MemberReport,
    ProbeDefinition,
    ProbeOutcome,
    Report,
    SidecarRow,
    run_metadata,
    utc_now,
)

OccupationTable = Literal["bls2015", "bls2022"]


class ScanOptions(BaseModel):
    load: LoadOptions = LoadOptions()
    seed: int = 0
    occupations: OccupationTable = "bls2015"
    keep_going: bool = False  # record members that fail to load and go on
    command: str = ""


class ScanEvents(Protocol):
    def member_start(self, index: int, total: int, member: ModelSpec) -> None: ...

    def probe_progress(self, member: ModelSpec, probe_id: str, done: int, total: int) -> None: ...

    def member_done(self, index: int, total: int, result: MemberReport) -> None: ...


class _NoEvents:
    def member_start(self, index: int, total: int, member: ModelSpec) -> None:
        pass

    def probe_progress(self, member: ModelSpec, probe_id: str, done: int, total: int) -> None:
        pass

    def member_done(self, index: int, total: int, result: MemberReport) -> None:
        pass


def default_probes(options: ScanOptions) -> list[Probe]:
    return [PronounProbe.load(table=options.occupations)]


def _probe_description(probe: Probe) -> str:
    spec = getattr(probe, "spec", None)
    return str(getattr(spec, "description", "")).strip()


def scan_member(
    family: Family, member: ModelSpec, probes: Sequence[Probe], options: ScanOptions, events: ScanEvents
) -> tuple[MemberReport, list[SidecarRow]]:
    """Load one member, run every probe on it, free it."""
    t0 = time.perf_counter()
    torch.manual_seed(options.seed)
    rows: list[SidecarRow] = []
    outcomes: list[ProbeOutcome] = []
    with load_model(member.source, member.revision, options.load, name=member.name) as model:
        load_s = time.perf_counter() - t0
        counted = member.params_total is None
        params_total = member.params_total if member.params_total is not None else model.n_params_total
        params_nonemb = (
            member.params_nonembedding if member.params_nonembedding is not None else model.n_params_nonembedding
        )
        for probe in probes:
            tp = time.perf_counter()

            def progress(done: int, total: int, _pid: str = probe.id) -> None:
                events.probe_progress(member, _pid, done, total)

            result = probe.run(model, progress=progress)
            rows.extend(SidecarRow(member=member.name, record=r) for r in result.records)
            outcomes.append(
                ProbeOutcome(
                    probe_id=result.probe_id,
                    probe_hash=result.probe_hash,
                    metrics=result.metrics,
                    n_records=len(result.records),
                    notes=result.notes,
                    seconds=round(time.perf_counter() - tp, 3),
                )
            )
    spec = member.model_copy(update={"params_total": params_total, "params_nonembedding": params_nonemb})
    report = MemberReport(
        name=member.name,
        source=member.source,
        revision=member.revision,
        params_total=params_total,
        params_nonembedding=params_nonemb,
        params_counted=counted,
        train_tokens=member.train_tokens,
        flops=spec.flops(family.flops_basis),
        load_seconds=round(load_s, 3),
        probes=outcomes,
    )
    return report, rows


def run_scan(
    family: Family,
    options: ScanOptions | None = None,
    probes: Sequence[Probe] | None = None,
    events: ScanEvents | None = None,
) -> tuple[Report, list[SidecarRow]]:
    """Scan every member of ``family`` with ``probes`` (default: the built-in probes)."""
    opts = options or ScanOptions()
    ev: ScanEvents = events or _NoEvents()
    probe_list = list(probes) if probes is not None else default_probes(opts)
    if not family.members:
        raise RiskauditError(f"family {family.name!r} has no members to scan")
    meta = run_metadata(opts.load.device, opts.load.dtype, opts.seed, opts.command)
    members: list[MemberReport] = []
    rows: list[SidecarRow] = []
    n = len(family.members)
    for i, member in enumerate(family.members):
        ev.member_start(i, n, member)
        try:
            rep, member_rows = scan_member(family, member, probe_list, opts, ev)
        except ModelLoadError as exc:
            if not opts.keep_going:
                raise
            rep = MemberReport(
                name=member.name,
                source=member.source,
                revision=member.revision,
                params_total=member.params_total,
                params_nonembedding=member.params_nonembedding,
                train_tokens=member.train_tokens,
                flops=family.member_flops(member),
                status="failed",
                error=str(exc),
            )
            member_rows = []
        members.append(rep)
        rows.extend(member_rows)
        ev.member_done(i, n, rep)
    notes = sorted({note for m in members for p in m.probes for note in p.notes})
    report = Report(
        run=meta.model_copy(update={"finished_utc": utc_now()}),
        family=FamilyInfo(name=family.name, description=family.description, flops_basis=family.flops_basis),
        members=members,
        probes=[
            ProbeDefinition(id=p.id, content_hash=p.content_hash(), description=_probe_description(p))
            for p in probe_list
        ],
        notes=notes,
    )
    return report, rows
