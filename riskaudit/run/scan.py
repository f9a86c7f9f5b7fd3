"""A family scan: a loop over (member, probe) units followed by the report.

Each unit is independent of every other (its own model load, its own records), so units can later be
cached, resumed or spread over machines without touching probes. One member is loaded at a time and
freed before the next. Core code never prints: progress goes through :class:`ScanEvents`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from riskaudit.analysis.config import AnalysisConfig
from riskaudit.analysis.family import analyze_family
from riskaudit.analysis.replicates import ProbeReplicates, decode_replicates, encode_replicates
from riskaudit.analysis.results import FamilyAnalysis
from riskaudit.errors import ModelLoadError, RiskauditError
from riskaudit.inputs.benchmark_data import NotAudited
from riskaudit.inputs.family_spec import Family
from riskaudit.models import TokenizationInfo
from riskaudit.probes.base import Probe
from riskaudit.probes.memorization import NO_DATA_NOTE, MemorizationInputs, MemorizationProbe
from riskaudit.probes.registry import load_probes
from riskaudit.reporting.reanalysis import series_from_report
from riskaudit.reporting.report import (
    ExecutionInfo,
    FamilyInfo,
    MemberReport,
    NodeUsage,
    ProbeDefinition,
    ProbeOutcome,
    Report,
    RunMetadata,
    SidecarRow,
    encode_sidecar,
    run_metadata,
    utc_now,
)
from riskaudit.run.executor import Executor, LocalExecutor, UnitFailure
from riskaudit.run.member_runs import (
    MemberLookup,
    MemberRun,
    UnitStorer,
    lookup_member,
    member_report,
    served_member,
    stored_member,
)
from riskaudit.run.options import ProbeOptions, ScanEvents, ScanOptions, UnitCounter, _NoEvents
from riskaudit.run.store import ResultStore
from riskaudit.run.unit_key import code_fingerprint


def build_probes(
    family: Family | str, options: ProbeOptions, not_audited: list[NotAudited] | None = None
) -> list[Probe]:
    """Every probe of the registry (built-in ``probes/`` plus ``--probe-dir``); the benchmark probes whose
    official data is found (``--benchmark-data`` or their YAML's ``data:``; the others are appended to
    ``not_audited``); the memorization suite runs on the family's declared training data (or ``--data``) and
    ``--canaries``, and is left out when there are none."""
    fam = family if isinstance(family, Family) else None
    inputs = MemorizationInputs(
        family=fam.name if fam is not None else str(family),
        model=fam.members[0].source if fam is not None and fam.members else "",
        training_data=fam.training_data if fam is not None else None,
        data=options.data,
        canaries=options.canaries,
        prefix_len=options.prefix_len,
        suffix_len=options.suffix_len,
        exposure_candidates=options.exposure_candidates,
        include_text=options.include_text,
        enabled=options.memorization,
    )
    roots = [Path(d) for d in options.benchmark_data]  # the command line's first, then the family's
    roots += [Path(d) for d in (fam.benchmark_data if fam is not None else [])]
    return load_probes(options.probe_dirs, options.occupations, inputs, roots, not_audited)


def scan_notes(probes: Sequence[Probe], options: ProbeOptions) -> list[str]:
    """Scan-level notes: memorization not audited because there is no training data (and no canaries)."""
    if options.memorization and not any(isinstance(p, MemorizationProbe) for p in probes):
        return [NO_DATA_NOTE]
    return []


PRODUCT_FORMAT = 1


def product_key(family: Family, probes: Sequence[Probe], options: ScanOptions, runs: Sequence[MemberRun]) -> str:
    """sha256 over every input of a scan's family-level product: the code, the family, the probes and their
    content hashes, the seed, and each member's scale and unit keys (model, revision, weights, dtype, probe,
    options). Equal keys ⇒ the finalized outcomes, the analysis and the sidecar are equal."""
    doc = {
        "format": PRODUCT_FORMAT,
        "code": code_fingerprint(),
        "family": [family.name, family.description, family.flops_basis],
        "probes": [[p.id, p.content_hash()] for p in probes],
        "seed": options.seed,
        "members": [
            [
                r.report.model_dump(
                    mode="json", exclude={"load_seconds", "probes", "batch_halvings", "tokenization", "placement"}
                ),
                r.unit_digests,
            ]
            for r in runs
        ],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def scale_order(members: Sequence[MemberReport]) -> list[int]:
    """Indices of ``members`` from the smallest to the largest: by training FLOPs when every member's are
    known, else by parameters then tokens seen (ties keep the given order). Family-level metrics use this
    order, so a family listed largest-first, or a ``--members`` subset, gives the same reference member."""
    by_flops = all(m.flops is not None for m in members)

    def key(i: int) -> tuple[float, float, float]:
        m = members[i]
        first = (m.flops or 0.0) if by_flops else float(m.params_total or 0)
        return (first, float(m.params_total or 0), float(m.train_tokens or 0.0))

    return sorted(range(len(members)), key=key)


def _finalize(probes: Sequence[Probe], runs: list[MemberRun]) -> None:
    """Family-level metrics (e.g. a reference-model ratio against the smallest member) from the raw results.

    A probe may define ``finalize_family(results: list[ProbeResult]) -> list[ProbeResult]`` (results in scale
    order, smallest member first: :func:`scale_order`); it sees only members where the probe ran.
    """
    order = scale_order([r.report for r in runs])
    runs = [runs[i] for i in order]
    for probe in probes:
        ok = [r for r in runs if probe.id in r.results]
        if not ok:
            continue
        finalized = probe.finalize_family([r.results[probe.id] for r in ok])
        for run, res in zip(ok, finalized, strict=True):
            run.results[probe.id] = res


def _params_notes(members: Sequence[MemberReport]) -> set[str]:
    """One note per member whose declared parameter count is more than 1% off its loaded weights' count."""
    notes: set[str] = set()
    for m in members:
        if m.params_declared is not None and m.params_weights is not None:
            used = "the weights' count" if m.params_counted else 'the declared count (params_source = "declared")'
            notes.add(
                f"{m.name}: the family declares {m.params_declared:,} parameters but the loaded weights have "
                f"{m.params_weights:,}; the report and the analysis use {used} — see members[].params_declared"
            )
    return notes


def _halving_notes(members: Sequence[MemberReport]) -> set[str]:
    """One note per member whose batch size had to be halved after running out of memory."""
    notes: set[str] = set()
    for m in members:
        if m.batch_halvings:
            steps = ", ".join(f"{h.from_size}→{h.to_size} in {h.probe_id or h.stage}" for h in m.batch_halvings)
            notes.add(
                f"{m.name}: ran out of memory and retried with half the batch ({steps}); scores do not depend on the "
                "batch size beyond float rounding — see members[].batch_halvings"
            )
    return notes


class ScanOutput(NamedTuple):
    """A scan's three files: the report, its per-item sidecar (JSON lines) and its paired bootstrap replicates
    (``.npz``, :mod:`riskaudit.analysis.replicates`), as :func:`~riskaudit.reporting.report.write_report`
    writes them."""

    report: Report
    sidecar: bytes
    replicates: bytes


def run_scan(
    family: Family,
    options: ScanOptions | None = None,
    probes: Sequence[Probe] | None = None,
    events: ScanEvents | None = None,
    store: ResultStore | None = None,
    counter: UnitCounter | None = None,
) -> tuple[Report, bytes]:
    """:func:`scan_family` without the replicates file: (report, sidecar)."""
    out = scan_family(family, options, probes, events, store, counter)
    return out.report, out.sidecar


def scan_family(
    family: Family,
    options: ScanOptions | None = None,
    probes: Sequence[Probe] | None = None,
    events: ScanEvents | None = None,
    store: ResultStore | None = None,
    counter: UnitCounter | None = None,
    executor: Executor | None = None,
) -> ScanOutput:
    """Scan every member of ``family`` with ``probes`` (default: the built-in probes); returns the report and
    its sidecar (JSON lines, one per item record, as :func:`~riskaudit.reporting.report.write_report` writes them).

    With a ``store``: units are taken from it and stored as computed (see
    :func:`~riskaudit.run.member_runs.scan_member`), and the family-level product (finalized outcomes,
    analysis, sidecar) is stored under :func:`product_key`; when every unit and that product are stored, the
    scan is served from it without loading, decoding or analysing anything. ``counter`` (optional) counts the
    units stored as they are stored, so a caller interrupted mid-scan can say how much work was kept.
    ``executor`` computes the units that are not stored (default:
    :class:`~riskaudit.run.executor.LocalExecutor`, one after another in this process).
    """
    opts = options or ScanOptions()
    ev: ScanEvents = events or _NoEvents()
    probe_list = (
        list(probes) if probes is not None else build_probes(family, ProbeOptions(occupations=opts.occupations))
    )
    if not family.members:
        raise RiskauditError(f"family {family.name!r} has no members to scan")
    runner = executor or LocalExecutor(store)
    opts = opts.model_copy(update={"load": runner.resolve_load(opts.load)})
    meta = run_metadata(opts.load.device, opts.load.dtype, opts.seed, opts.command)
    meta = meta.model_copy(update={"limit": opts.limit})
    served = _from_product(family, probe_list, opts, store, ev) if store is not None else None
    if served is not None:
        members, analysis, sidecar, rep_bytes = served
        if executor is not None:
            meta = meta.model_copy(update={"execution": executor.info})
        report = _assemble(meta, family, probe_list, members, analysis, opts.notes, opts.not_audited)
        return ScanOutput(report, sidecar, rep_bytes)
    runs = _run_members(family, probe_list, opts, ev, store, counter, runner)
    meta = meta.model_copy(update={"execution": _execution(runner.info, runs)})
    _finalize(probe_list, runs)
    members = []
    rows: list[SidecarRow] = []
    replicates: dict[str, ProbeReplicates] = {}
    for run in runs:
        outcomes = [
            ProbeOutcome(
                probe_id=res.probe_id,
                probe_hash=res.probe_hash,
                metrics=res.metrics,
                n_records=len(res.records),
                notes=res.notes,
                seconds=run.seconds.get(pid, 0.0),
            )
            for pid, res in run.results.items()
        ]
        members.append(run.report.model_copy(update={"probes": outcomes}))
        rows.extend(SidecarRow(member=run.report.name, record=r) for res in run.results.values() for r in res.records)
        replicates[run.report.name] = {pid: res.replicates for pid, res in run.results.items()}
    sidecar = encode_sidecar(rows)
    report = _assemble(meta, family, probe_list, members, None, opts.notes, opts.not_audited)
    t_analysis = time.perf_counter()
    # analyse exactly what the replicates file holds (float32), so that a re-analysis of the report is exact
    rep_bytes = encode_replicates(replicates)
    analysis = analyze_family(series_from_report(report, decode_replicates(rep_bytes)), AnalysisConfig(seed=opts.seed))
    ev.step_done("analysis", time.perf_counter() - t_analysis)
    if store is not None and all(r.unit_digests and r.report.status == "ok" for r in runs):
        product = {
            "outcomes": [[p.model_dump(mode="json") for p in m.probes] for m in members],
            "tokenization": [m.tokenization and m.tokenization.model_dump(mode="json") for m in members],
            "analysis": analysis.model_dump(mode="json"),
            "sidecar": sidecar.decode(),
            "replicates": base64.b64encode(rep_bytes).decode(),
        }
        store.put_product(product_key(family, probe_list, opts, runs), product)
    return ScanOutput(report.model_copy(update={"analysis": analysis}), sidecar, rep_bytes)


def _execution(info: ExecutionInfo, runs: Sequence[MemberRun]) -> ExecutionInfo:
    """The executor's description with the nodes that computed units (in order of first use)."""
    nodes: dict[tuple[str | None, str], NodeUsage] = {}
    for run in runs:
        p = run.report.placement
        if p is None:
            continue
        node = nodes.setdefault(
            (p.node_id, p.hostname), NodeUsage(node_id=p.node_id, node_ip=p.node_ip, hostname=p.hostname)
        )
        node.units.append(run.report.name)
    return info.model_copy(update={"nodes": list(nodes.values())})


def _run_members(
    family: Family,
    probes: Sequence[Probe],
    options: ScanOptions,
    events: ScanEvents,
    store: ResultStore | None,
    counter: UnitCounter | None,
    executor: Executor,
) -> list[MemberRun]:
    """Every member's run, in family order: members whose units are all stored are served from the store;
    the others are computed by ``executor`` and stored here as their results arrive."""
    n = len(family.members)
    storer = UnitStorer(probes, options, store, counter)
    runs: dict[int, MemberRun] = {}
    pending: dict[int, MemberLookup] = {}
    for i, member in enumerate(family.members):
        storer.members[i] = member
        found = lookup_member(i, member, probes, options, store)
        if found.complete(probes):
            events.member_start(i, n, member)
            runs[i] = served_member(family, found, probes, options)
            spent = sum(runs[i].seconds.values())
            events.member_done(i, n, runs[i].report.model_copy(update={"probes": []}), spent, from_store=True)
        else:
            pending[i] = found
    requests = [found.request() for found in pending.values()]
    for request, outcome in executor.run(requests, probes, options, events, n, storer.put):
        i, member = request.index, request.member
        if isinstance(outcome, UnitFailure):
            if not options.keep_going:
                raise ModelLoadError(outcome.error)
            declared = member_report(family, member, None)
            runs[i] = MemberRun(report=declared.model_copy(update={"status": "failed", "error": outcome.error}))
        else:
            runs[i] = storer.finish(pending[i], outcome, family)
        run = runs[i]
        from_store = bool(probes) and run.served == len(probes)
        spent = sum(run.seconds.values()) + run.report.load_seconds
        events.member_done(i, n, run.report.model_copy(update={"probes": []}), spent, from_store=from_store)
    return [runs[i] for i in range(n)]


def _assemble(
    meta: RunMetadata,
    family: Family,
    probes: Sequence[Probe],
    members: list[MemberReport],
    analysis: FamilyAnalysis | None,
    scan_notes: Sequence[str] = (),
    not_audited: Sequence[NotAudited] = (),
) -> Report:
    notes = sorted(
        {note for m in members for p in m.probes for note in p.notes}
        | _halving_notes(members)
        | _params_notes(members)
        | set(scan_notes)
    )
    ranked = [members[i].name for i in scale_order(members) if members[i].status == "ok"]
    return Report(
        run=meta.model_copy(update={"finished_utc": utc_now()}),
        family=FamilyInfo(
            name=family.name,
            description=family.description,
            flops_basis=family.flops_basis,
            scale_order=ranked,
            reference_member=ranked[0] if ranked else None,
            largest_member=ranked[-1] if ranked else None,
        ),
        members=members,
        probes=[
            ProbeDefinition(
                id=p.id,
                content_hash=p.content_hash(),
                description=p.description,
                benchmark=getattr(p, "benchmark", None),
                data_files=list(getattr(p, "data_files", [])),
            )
            for p in probes
        ],
        not_audited=list(not_audited),
        notes=notes,
        analysis=analysis,
    )


def _from_product(
    family: Family, probes: Sequence[Probe], options: ScanOptions, store: ResultStore, events: ScanEvents
) -> tuple[list[MemberReport], FamilyAnalysis, bytes, bytes] | None:
    """Members (no time spent: nothing computed), analysis and sidecar of a stored family product whose
    every input is unchanged; None when any unit or the product is missing (or undecodable)."""
    runs: list[MemberRun] = []
    for member in family.members:
        run = stored_member(family, member, probes, options, store)
        if run is None:
            return None
        runs.append(run)
    product = store.get_product(product_key(family, probes, options, runs))
    if product is None:
        return None
    try:
        analysis = FamilyAnalysis.model_validate(product["analysis"])
        sidecar = str(product["sidecar"]).encode()
        rep_bytes = base64.b64decode(str(product["replicates"]), validate=True)
        tokenization = product.get("tokenization") or [None] * len(runs)
        members = [  # probe seconds: the original computation's; load_seconds 0: nothing was loaded this run
            run.report.model_copy(
                update={
                    "probes": [ProbeOutcome.model_validate(o) for o in outcomes],
                    "tokenization": None if tok is None else TokenizationInfo.model_validate(tok),
                }
            )
            for run, outcomes, tok in zip(runs, product["outcomes"], tokenization, strict=True)
        ]
    except (KeyError, TypeError, ValueError, ValidationError, binascii.Error):
        return None
    n = len(members)
    for i, (member, m) in enumerate(zip(family.members, members, strict=True)):
        events.member_start(i, n, member)
        spent = sum(p.seconds for p in m.probes)
        events.member_done(i, n, m.model_copy(update={"probes": []}), spent, from_store=True)
    return members, analysis, sidecar, rep_bytes
