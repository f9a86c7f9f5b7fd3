"""A family scan: a loop over (member, probe) units followed by the report.

Each unit is independent of every other (its own model load, its own records), so units can later be
cached, resumed or spread over machines without touching probes. One member is loaded at a time and
freed before the next. Core code never prints: progress goes through :class:`ScanEvents`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ValidationError

from riskaudit.errors import ModelLoadError, RiskauditError
from riskaudit.families import Family, ModelSpec
from riskaudit.memdata import DataOptions
from riskaudit.models import BatchHalving, LoadOptions, load_model
from riskaudit.points import series_from_report
from riskaudit.probes.base import Probe, ProbeResult
from riskaudit.probes.memorization import MemorizationProbe
from riskaudit.probes.registry import load_bias_probes, unhandled_probe_files
from riskaudit.report import (
    FamilyInfo,
    MemberReport,
    ProbeDefinition,
    ProbeOutcome,
    Report,
    RunMetadata,
    SidecarRow,
    encode_sidecar,
    run_metadata,
    utc_now,
)
from riskaudit.scaling import AnalysisConfig, FamilyAnalysis, analyze_family
from riskaudit.store import ModelInfo, ResultStore, UnitKey, code_fingerprint, is_pinned, unit_options_hash

OccupationTable = Literal["bls2015", "bls2022"]


class ProbeOptions(BaseModel):
    """Which probes a scan runs and with which data."""

    occupations: OccupationTable = "bls2015"
    probe_dirs: list[str] = []  # user probe directories (--probe-dir), added to the built-in probes/
    data: DataOptions | None = None  # memorization data (--data); the demo family ships its own
    prefix_len: int | None = None
    suffix_len: int | None = None
    include_text: bool = False  # put extracted text in records (off: hashes, lengths, positions only)


class ScanOptions(BaseModel):
    load: LoadOptions = LoadOptions()
    seed: int = 0
    occupations: OccupationTable = "bls2015"
    keep_going: bool = False  # record members that fail to load and go on
    command: str = ""
    limit: int | None = None  # --limit: the probes were cut to their first N items (a smoke run)


class ScanEvents(Protocol):
    def member_start(self, index: int, total: int, member: ModelSpec) -> None: ...

    def probe_progress(self, member: ModelSpec, probe_id: str, done: int, total: int) -> None: ...

    def member_done(
        self, index: int, total: int, result: MemberReport, seconds: float, from_store: bool = False
    ) -> None: ...


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


def _step_done(events: ScanEvents, step: str, seconds: float) -> None:
    """Tell ``events`` a family-level step finished (optional: ``step_done(step, seconds)``)."""
    hook = getattr(events, "step_done", None)
    if hook is not None:
        hook(step, seconds)


def build_probes(family_name: str, options: ProbeOptions) -> list[Probe]:
    """Every bias probe (built-in ``probes/`` plus ``--probe-dir``), plus the memorization suite for the demo
    family or whenever ``--data`` is given (a memorization file in a probe directory replaces the built-in)."""
    probes: list[Probe] = load_bias_probes(options.probe_dirs, options.occupations)
    if options.data is not None or family_name == "demo":
        mem_files = [i for i in unhandled_probe_files(options.probe_dirs) if i.kind == "memorization"]
        user_files = [i for i in mem_files if not i.builtin]
        chosen = (user_files or mem_files)[-1] if mem_files else None
        probes.append(
            MemorizationProbe.for_family(
                family_name,
                options.data,
                options.include_text,
                prefix_len=options.prefix_len,
                suffix_len=options.suffix_len,
                spec_path=None if chosen is None else chosen.path,
            )
        )
    return probes


def _probe_description(probe: Probe) -> str:
    spec = getattr(probe, "spec", None)
    return str(getattr(spec, "description", "")).strip()


ProbeReplicates = dict[str, dict[str, list[float | None]]]  # probe id -> metric -> paired bootstrap replicates


class MemberRun(BaseModel):
    """One member's unit of work before family-level finalization (raw probe results, timings)."""

    report: MemberReport  # scale and status; probes filled in by :func:`run_scan`
    results: dict[str, ProbeResult] = {}
    seconds: dict[str, float] = {}
    unit_digests: list[str] = []  # store keys of its units, in probe order (empty: not storable)
    served: int = 0  # units taken from the result store (their seconds: the original computation's)


def _unit_keys(
    member: ModelSpec, probes: Sequence[Probe], options: ScanOptions, weights_hash: str
) -> dict[str, UnitKey]:
    opts = unit_options_hash(options.load, options.seed)
    return {
        p.id: UnitKey(
            model_id=member.source,
            revision=member.revision,
            weights_hash=weights_hash,
            dtype=options.load.dtype,
            probe_id=p.id,
            probe_hash=p.content_hash(),
            unit_options_hash=opts,
        )
        for p in probes
    }


def scan_member(
    family: Family,
    member: ModelSpec,
    probes: Sequence[Probe],
    options: ScanOptions,
    events: ScanEvents,
    store: ResultStore | None = None,
    counter: UnitCounter | None = None,
) -> MemberRun:
    """Load one member, run every probe on it, free it.

    With a ``store``: units already stored for exactly these weights, dtype, probe and options are taken
    from it (the member is not even loaded when every unit and its parameter counts are stored); each
    newly computed unit is stored as soon as its probe returns, raw, before any family-level finalization.
    """
    t0 = time.perf_counter()
    results: dict[str, ProbeResult] = {}
    seconds: dict[str, float] = {}
    fp = ""
    keys: dict[str, UnitKey] = {}
    info: ModelInfo | None = None
    if store is not None:
        fp = store.weights_fingerprint(member.source, member.revision)
        keys = _unit_keys(member, probes, options, fp)
        if is_pinned(fp):
            for probe in probes:
                hit = store.get(keys[probe.id])
                if hit is not None:
                    results[probe.id] = hit
                    seconds[probe.id] = store.unit_seconds(keys[probe.id]) or 0.0
            info = store.get_model_info(keys[probes[0].id].model) if probes else None
    counted = member.params_total is None
    params_total = member.params_total
    params_nonemb = member.params_nonembedding
    load_s = 0.0
    halvings: list[BatchHalving] = []
    computed: set[str] = set()
    need_counts = params_total is None or params_nonemb is None
    if len(results) < len(probes) or (need_counts and info is None):
        with load_model(member.source, member.revision, options.load, name=member.name) as model:
            load_s = time.perf_counter() - t0
            import torch  # only here: a scan served from the store never imports it

            torch.manual_seed(options.seed)
            if params_total is None:
                params_total = model.n_params_total
            if params_nonemb is None:
                params_nonemb = model.n_params_nonembedding
            if store is not None:
                after = store.weights_fingerprint(member.source, member.revision)
                if after != fp:  # the loaded weights are not the ones looked up: trust nothing cached
                    results.clear()
                    seconds.clear()
                    fp, keys = after, _unit_keys(member, probes, options, after)
                if is_pinned(fp) and probes:
                    store.put_model_info(
                        keys[probes[0].id].model,
                        ModelInfo(params_total=model.n_params_total, params_nonembedding=model.n_params_nonembedding),
                    )
            for probe in probes:
                if probe.id in results:
                    continue
                tp = time.perf_counter()

                def progress(done: int, total: int, _pid: str = probe.id) -> None:
                    events.probe_progress(member, _pid, done, total)

                before = len(getattr(model, "batch_halvings", []))
                results[probe.id] = probe.run(model, progress=progress)
                computed.add(probe.id)
                new_halvings = getattr(model, "batch_halvings", [])[before:]
                halvings.extend(h.model_copy(update={"probe_id": probe.id}) for h in new_halvings)
                seconds[probe.id] = round(time.perf_counter() - tp, 3)
                if store is not None and is_pinned(fp):
                    store.put(keys[probe.id], results[probe.id], seconds=seconds[probe.id])
                    if counter is not None:
                        counter.stored += 1
    else:
        assert info is not None or not need_counts
        if params_total is None and info is not None:
            params_total = info.params_total
        if params_nonemb is None and info is not None:
            params_nonemb = info.params_nonembedding
    results = {p.id: results[p.id] for p in probes}  # scan order, whatever came from the store
    report = _member_report(family, member, params_total, params_nonemb, counted, load_s, halvings)
    digests = [keys[p.id].digest() for p in probes] if store is not None and is_pinned(fp) else []
    served = sum(1 for p in probes if p.id in results and p.id not in computed)
    return MemberRun(report=report, results=results, seconds=seconds, unit_digests=digests, served=served)


def _member_report(
    family: Family,
    member: ModelSpec,
    params_total: int | None,
    params_nonemb: int | None,
    counted: bool,
    load_s: float = 0.0,
    halvings: list[BatchHalving] | None = None,
) -> MemberReport:
    spec = member.model_copy(update={"params_total": params_total, "params_nonembedding": params_nonemb})
    return MemberReport(
        name=member.name,
        source=member.source,
        revision=member.revision,
        params_total=params_total,
        params_nonembedding=params_nonemb,
        params_counted=counted,
        train_tokens=member.train_tokens,
        flops=spec.flops(family.flops_basis),
        load_seconds=round(load_s, 3),
        batch_halvings=halvings or [],
    )


def _stored_member(
    family: Family, member: ModelSpec, probes: Sequence[Probe], options: ScanOptions, store: ResultStore
) -> MemberRun | None:
    """The member's report and unit keys when every unit (and its parameter counts) is in the store, found
    without loading the model or decoding any result; None otherwise."""
    fp = store.weights_fingerprint(member.source, member.revision)
    if not probes or not is_pinned(fp):
        return None
    keys = _unit_keys(member, probes, options, fp)
    if not all(store.has(keys[p.id]) for p in probes):
        return None
    params_total, params_nonemb = member.params_total, member.params_nonembedding
    if params_total is None or params_nonemb is None:
        info = store.get_model_info(keys[probes[0].id].model)
        if info is None:
            return None
        params_total = info.params_total if params_total is None else params_total
        params_nonemb = info.params_nonembedding if params_nonemb is None else params_nonemb
    report = _member_report(family, member, params_total, params_nonemb, member.params_total is None)
    return MemberRun(report=report, unit_digests=[keys[p.id].digest() for p in probes])


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
            [r.report.model_dump(mode="json", exclude={"load_seconds", "probes", "batch_halvings"}), r.unit_digests]
            for r in runs
        ],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _finalize(probes: Sequence[Probe], runs: list[MemberRun]) -> None:
    """Family-level metrics (e.g. a reference-model ratio against the smallest member) from the raw results.

    A probe may define ``finalize_family(results: list[ProbeResult]) -> list[ProbeResult]`` (results in scan
    order, smallest member first); it sees only members where the probe ran.
    """
    for probe in probes:
        hook = getattr(probe, "finalize_family", None)
        if hook is None:
            continue
        ok = [r for r in runs if probe.id in r.results]
        if not ok:
            continue
        finalized = hook([r.results[probe.id] for r in ok])
        for run, res in zip(ok, finalized, strict=True):
            run.results[probe.id] = res


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


def run_scan(
    family: Family,
    options: ScanOptions | None = None,
    probes: Sequence[Probe] | None = None,
    events: ScanEvents | None = None,
    store: ResultStore | None = None,
    counter: UnitCounter | None = None,
) -> tuple[Report, bytes]:
    """Scan every member of ``family`` with ``probes`` (default: the built-in probes); returns the report and
    its sidecar (JSON lines, one per item record, as :func:`~riskaudit.report.write_report` writes them).

    With a ``store``: units are taken from it and stored as computed (see :func:`scan_member`), and the
    family-level product (finalized outcomes, analysis, sidecar) is stored under :func:`product_key`; when
    every unit and that product are stored, the scan is served from it without loading, decoding or
    analysing anything. ``counter`` (optional) counts the units stored as they are stored, so a caller
    interrupted mid-scan can say how much work was kept.
    """
    opts = options or ScanOptions()
    ev: ScanEvents = events or _NoEvents()
    probe_list = (
        list(probes) if probes is not None else build_probes(family.name, ProbeOptions(occupations=opts.occupations))
    )
    if not family.members:
        raise RiskauditError(f"family {family.name!r} has no members to scan")
    meta = run_metadata(opts.load.device, opts.load.dtype, opts.seed, opts.command)
    meta = meta.model_copy(update={"limit": opts.limit})
    served = _from_product(family, probe_list, opts, store, ev) if store is not None else None
    if served is not None:
        members, analysis, sidecar = served
        return _assemble(meta, family, probe_list, members, analysis), sidecar
    runs: list[MemberRun] = []
    n = len(family.members)
    for i, member in enumerate(family.members):
        ev.member_start(i, n, member)
        try:
            run = scan_member(family, member, probe_list, opts, ev, store, counter)
        except ModelLoadError as exc:
            if not opts.keep_going:
                raise
            run = MemberRun(
                report=MemberReport(
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
            )
        runs.append(run)
        from_store = bool(probe_list) and run.served == len(probe_list)
        spent = sum(run.seconds.values()) + run.report.load_seconds
        ev.member_done(i, n, run.report.model_copy(update={"probes": []}), spent, from_store=from_store)
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
    report = _assemble(meta, family, probe_list, members, None)
    t_analysis = time.perf_counter()
    analysis = analyze_family(series_from_report(report, replicates), AnalysisConfig(seed=opts.seed))
    _step_done(ev, "analysis", time.perf_counter() - t_analysis)
    if store is not None and all(r.unit_digests and r.report.status == "ok" for r in runs):
        product = {
            "outcomes": [[p.model_dump(mode="json") for p in m.probes] for m in members],
            "analysis": analysis.model_dump(mode="json"),
            "sidecar": sidecar.decode(),
        }
        store.put_product(product_key(family, probe_list, opts, runs), product)
    return report.model_copy(update={"analysis": analysis}), sidecar


def _assemble(
    meta: RunMetadata,
    family: Family,
    probes: Sequence[Probe],
    members: list[MemberReport],
    analysis: FamilyAnalysis | None,
) -> Report:
    notes = sorted({note for m in members for p in m.probes for note in p.notes} | _halving_notes(members))
    return Report(
        run=meta.model_copy(update={"finished_utc": utc_now()}),
        family=FamilyInfo(name=family.name, description=family.description, flops_basis=family.flops_basis),
        members=members,
        probes=[
            ProbeDefinition(id=p.id, content_hash=p.content_hash(), description=_probe_description(p)) for p in probes
        ],
        notes=notes,
        analysis=analysis,
    )


def _from_product(
    family: Family, probes: Sequence[Probe], options: ScanOptions, store: ResultStore, events: ScanEvents
) -> tuple[list[MemberReport], FamilyAnalysis, bytes] | None:
    """Members (no time spent: nothing computed), analysis and sidecar of a stored family product whose
    every input is unchanged; None when any unit or the product is missing (or undecodable)."""
    runs: list[MemberRun] = []
    for member in family.members:
        run = _stored_member(family, member, probes, options, store)
        if run is None:
            return None
        runs.append(run)
    product = store.get_product(product_key(family, probes, options, runs))
    if product is None:
        return None
    try:
        analysis = FamilyAnalysis.model_validate(product["analysis"])
        sidecar = str(product["sidecar"]).encode()
        members = [  # probe seconds: the original computation's; load_seconds 0: nothing was loaded this run
            run.report.model_copy(update={"probes": [ProbeOutcome.model_validate(o) for o in outcomes]})
            for run, outcomes in zip(runs, product["outcomes"], strict=True)
        ]
    except (KeyError, TypeError, ValueError, ValidationError):
        return None
    n = len(members)
    for i, (member, m) in enumerate(zip(family.members, members, strict=True)):
        events.member_start(i, n, member)
        spent = sum(p.seconds for p in m.probes)
        events.member_done(i, n, m.model_copy(update={"probes": []}), spent, from_store=True)
    return members, analysis, sidecar
