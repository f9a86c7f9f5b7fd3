"""One member of a scan: the result-store keys of its units, what the store already holds for it, storing
what it computes as the results arrive, and its entry in the report (scale, parameter counts, tokenization).

:mod:`riskaudit.run.scan` runs the family; this module owns everything that concerns a single member.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from riskaudit.inputs.family_spec import PARAMS_TOLERANCE, Family, ModelSpec
from riskaudit.models import BatchHalving, TokenizationInfo
from riskaudit.models.devices import recorded_placement, resolve_dtype
from riskaudit.probes.base import Probe, ProbeResult
from riskaudit.reporting.report import MemberReport
from riskaudit.resources import portable_source
from riskaudit.run.executor import LocalExecutor
from riskaudit.run.options import ScanEvents, ScanOptions, UnitCounter
from riskaudit.run.store import ResultStore
from riskaudit.run.unit_key import ModelInfo, UnitKey, unit_options_hash
from riskaudit.run.units import UnitOutcome, UnitRequest, member_load_options
from riskaudit.run.weights import is_pinned


class MemberRun(BaseModel):
    """One member's unit of work before family-level finalization (raw probe results, timings)."""

    report: MemberReport  # scale and status; probes filled in by :func:`run_scan`
    results: dict[str, ProbeResult] = {}
    seconds: dict[str, float] = {}
    unit_digests: list[str] = []  # store keys of its units, in probe order (empty: not storable)
    served: int = 0  # units taken from the result store (their seconds: the original computation's)


def unit_keys(
    member: ModelSpec, probes: Sequence[Probe], options: ScanOptions, weights_hash: str
) -> dict[str, UnitKey]:
    """The result-store key of each probe's unit on ``member`` with the weights ``weights_hash``."""
    load = member_load_options(options.load, member)
    opts = unit_options_hash(load, options.seed, None if load.add_bos == "auto" else {"add_bos": load.add_bos})
    return {
        p.id: UnitKey(
            model_id=member.source,
            revision=member.revision,
            weights_hash=weights_hash,
            dtype=resolve_dtype(load),
            probe_id=p.id,
            probe_hash=p.content_hash(),
            unit_options_hash=opts,
        )
        for p in probes
    }


class MemberLookup(BaseModel):
    """What the result store already holds for one member: the weights' fingerprint, the probes' results and
    the parameter counts (found without loading the model)."""

    index: int
    member: ModelSpec
    fingerprint: str = ""  # "" without a store
    cached: dict[str, ProbeResult] = {}
    cached_seconds: dict[str, float] = {}
    info: ModelInfo | None = None

    def complete(self, probes: Sequence[Probe]) -> bool:
        """Every probe's result and the weights' parameter counts are known: nothing to load."""
        return bool(probes) and len(self.cached) == len(probes) and self.info is not None

    def request(self) -> UnitRequest:
        return UnitRequest(
            index=self.index, member=self.member, skip=sorted(self.cached), expected_fingerprint=self.fingerprint
        )


def lookup_member(
    index: int, member: ModelSpec, probes: Sequence[Probe], options: ScanOptions, store: ResultStore | None
) -> MemberLookup:
    """The member's results already in ``store`` (none without one, or when its weights are not pinned)."""
    if store is None:
        return MemberLookup(index=index, member=member)
    fp = store.weights_fingerprint(member.source, member.revision)
    found = MemberLookup(index=index, member=member, fingerprint=fp)
    if not is_pinned(fp) or not probes:
        return found
    keys = unit_keys(member, probes, options, fp)
    for probe in probes:
        hit = store.get(keys[probe.id])
        if hit is not None:
            found.cached[probe.id] = hit
            found.cached_seconds[probe.id] = store.unit_seconds(keys[probe.id]) or 0.0
    found.info = store.get_model_info(keys[probes[0].id].model)
    return found


class UnitStorer:
    """The driver's side of the result store: each unit's result is stored once, as soon as it reaches the
    driver (the local executor: when its probe returns; Ray: when its task returns)."""

    def __init__(
        self, probes: Sequence[Probe], options: ScanOptions, store: ResultStore | None, counter: UnitCounter | None
    ) -> None:
        self.probes, self.options, self.store, self.counter = probes, options, store, counter
        self.members: dict[int, ModelSpec] = {}
        self.stored: set[tuple[int, str]] = set()
        self._keys: dict[tuple[int, str], dict[str, UnitKey]] = {}

    def keys(self, index: int, fingerprint: str) -> dict[str, UnitKey]:
        """The member's unit keys under ``fingerprint``, computed once (probe content hashes are not free)."""
        if (index, fingerprint) not in self._keys:
            self._keys[index, fingerprint] = unit_keys(self.members[index], self.probes, self.options, fingerprint)
        return self._keys[index, fingerprint]

    def put(self, index: int, probe_id: str, result: ProbeResult, seconds: float, fingerprint: str) -> None:
        if self.store is None or not is_pinned(fingerprint) or (index, probe_id) in self.stored:
            return
        key = self.keys(index, fingerprint)[probe_id]
        self.store.put(key, result, seconds=seconds)
        self.stored.add((index, probe_id))
        if self.counter is not None:
            self.counter.stored += 1

    def finish(self, found: MemberLookup, outcome: UnitOutcome, family: Family) -> MemberRun:
        """Store what the unit computed (what is not stored yet) and build the member's run."""
        member, probes, fp = found.member, self.probes, outcome.fingerprint
        for pid, res in outcome.results.items():
            self.put(found.index, pid, res, outcome.seconds[pid], fp)
        results = dict(outcome.results)
        seconds = dict(outcome.seconds)
        if fp == found.fingerprint:
            for pid, res in found.cached.items():
                results.setdefault(pid, res)
                seconds.setdefault(pid, found.cached_seconds.get(pid, 0.0))
        pinned = self.store is not None and is_pinned(fp) and bool(probes)
        keys = self.keys(found.index, fp) if pinned else {}
        counted = ModelInfo(params_total=outcome.params_total, params_nonembedding=outcome.params_nonembedding)
        if pinned and self.store is not None:
            self.store.put_model_info(keys[probes[0].id].model, counted)
        results = {p.id: results[p.id] for p in probes}  # scan order, whatever came from the store
        report = member_report(family, member, counted, outcome.load_seconds, outcome.halvings)
        placing = recorded_placement(member_load_options(self.options.load, member), outcome.loaded)
        report = report.model_copy(
            update={"tokenization": _member_tokenization(results.values()), "placement": outcome.placement, **placing}
        )
        digests = [keys[p.id].digest() for p in probes] if pinned else []
        served = sum(1 for p in probes if p.id not in outcome.results)
        return MemberRun(report=report, results=results, seconds=seconds, unit_digests=digests, served=served)


def served_member(family: Family, found: MemberLookup, probes: Sequence[Probe], options: ScanOptions) -> MemberRun:
    """A member whose every unit (and parameter counts) came from the store: nothing loaded."""
    member = found.member
    results = {p.id: found.cached[p.id] for p in probes}
    report = _stored_report(family, member, found.info, options)
    report = report.model_copy(update={"tokenization": _member_tokenization(results.values())})
    keys = unit_keys(member, probes, options, found.fingerprint)
    return MemberRun(
        report=report,
        results=results,
        seconds={p.id: found.cached_seconds.get(p.id, 0.0) for p in probes},
        unit_digests=[keys[p.id].digest() for p in probes],
        served=len(probes),
    )


def scan_member(
    family: Family,
    member: ModelSpec,
    probes: Sequence[Probe],
    options: ScanOptions,
    events: ScanEvents,
    store: ResultStore | None = None,
    counter: UnitCounter | None = None,
) -> MemberRun:
    """Load one member in this process, run every probe on it, free it.

    With a ``store``: units already stored for exactly these weights, dtype, probe and options are taken
    from it (the member is not even loaded when every unit and its parameter counts are stored); each
    newly computed unit is stored as soon as its probe returns, raw, before any family-level finalization.
    """
    found = lookup_member(0, member, probes, options, store)
    if found.complete(probes):
        return served_member(family, found, probes, options)
    storer = UnitStorer(probes, options, store, counter)
    storer.members[0] = member
    outcome = LocalExecutor(store).compute(found.request(), probes, options, events, storer.put)
    return storer.finish(found, outcome, family)


def member_params(member: ModelSpec, counted: ModelInfo | None) -> dict[str, Any]:
    """The member's parameter fields for its report: the counts of the loaded weights (``counted``; None when
    the member was not loaded), or the family's declared counts where it asks for them (``params_source =
    "declared"``) or nothing was counted. A declared total more than 1% off the weights' count is kept beside
    it (``params_declared``, ``params_weights``), whichever one is used."""
    declared = member.params_source == "declared"
    if counted is None:
        return {"params_total": member.params_total, "params_nonembedding": member.params_nonembedding}
    use_declared_total = declared and member.params_total is not None
    fields: dict[str, Any] = {
        "params_total": member.params_total if use_declared_total else counted.params_total,
        "params_nonembedding": (
            member.params_nonembedding
            if declared and member.params_nonembedding is not None
            else counted.params_nonembedding
        ),
        "params_counted": not use_declared_total,
    }
    if member.params_total is not None and params_differ(member.params_total, counted.params_total):
        fields.update(params_declared=member.params_total, params_weights=counted.params_total)
    return fields


def params_differ(declared: int, counted: int) -> bool:
    """The declared total is more than 1% off the loaded weights' count."""
    return abs(declared - counted) > PARAMS_TOLERANCE * counted


def member_report(
    family: Family,
    member: ModelSpec,
    counted: ModelInfo | None,
    load_s: float = 0.0,
    halvings: list[BatchHalving] | None = None,
) -> MemberReport:
    """The member's report entry (probes filled in later); ``counted``: its loaded weights' parameter counts."""
    params = member_params(member, counted)
    spec = member.model_copy(
        update={"params_total": params["params_total"], "params_nonembedding": params["params_nonembedding"]}
    )
    return MemberReport(
        name=member.name,
        source=portable_source(member.source),
        revision=member.revision,
        **params,
        train_tokens=member.train_tokens,
        flops=spec.flops(family.flops_basis),
        replicate_of=member.replicate_of,
        load_seconds=round(load_s, 3),
        batch_halvings=halvings or [],
    )


def stored_member(
    family: Family, member: ModelSpec, probes: Sequence[Probe], options: ScanOptions, store: ResultStore
) -> MemberRun | None:
    """The member's report and unit keys when every unit (and its weights' parameter counts) is in the store,
    found without loading the model or decoding any result; None otherwise."""
    fp = store.weights_fingerprint(member.source, member.revision)
    if not probes or not is_pinned(fp):
        return None
    keys = unit_keys(member, probes, options, fp)
    if not all(store.has(keys[p.id]) for p in probes):
        return None
    info = store.get_model_info(keys[probes[0].id].model)
    if info is None:
        return None
    report = _stored_report(family, member, info, options)
    return MemberRun(report=report, unit_digests=[keys[p.id].digest() for p in probes])


def _stored_report(family: Family, member: ModelSpec, info: ModelInfo | None, options: ScanOptions) -> MemberReport:
    """The report of a member served from the store: the stored parameter counts of its weights (see
    :func:`member_params`); the dtype and device kind its unit keys name; nothing loaded."""
    report = member_report(family, member, info)
    return report.model_copy(update=recorded_placement(member_load_options(options.load, member)))


def _member_tokenization(results: Iterable[ProbeResult]) -> TokenizationInfo | None:
    """A member's convention with the pair counts of all its probes (None when no result records it)."""
    infos = [r.tokenization for r in results if r.tokenization is not None]
    if not infos:
        return None
    return infos[0].model_copy(
        update={"pairs": sum(i.pairs for i in infos), "boundary_fallbacks": sum(i.boundary_fallbacks for i in infos)}
    )
