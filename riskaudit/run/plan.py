"""A scan's plan (``scan --plan``): its units, what each needs and requests, what the result store already
holds, and the forward-pass tokens left to run, without loading any model weights (and without Ray).

One unit is one (member, revision): one ``ModelSpec`` of the family, loaded once for all its probes. Its
memory and resource request come from :mod:`riskaudit.run.placement` (the same calls the executor makes), its
stored probes from the result store under the scan's own keys (:func:`riskaudit.run.member_runs.unit_keys`),
its tokens from :mod:`riskaudit.run.token_count`. A unit is submitted when any of its probes is not stored; only the
missing probes run, so only their tokens count towards the work left.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from riskaudit.errors import ModelLoadError
from riskaudit.inputs.family_spec import Family, ModelSpec
from riskaudit.probes.base import Probe
from riskaudit.run.member_runs import unit_keys
from riskaudit.run.options import ScanOptions
from riskaudit.run.placement import MemberFootprint, TaskResources, estimate_footprint, task_resources
from riskaudit.run.store import ResultStore
from riskaudit.run.token_count import ProbeTokens, TokenCounter, workload_shapes
from riskaudit.run.units import member_load_options
from riskaudit.run.weights import is_pinned


class ProbeUnitPlan(BaseModel):
    """One probe of one unit."""

    probe_id: str
    stored: bool  # its result is in the result store (it will not run)
    tokens: int | None  # forward-pass tokens of this probe on this member (None: not countable)
    sequences: int = 0  # model inputs
    error: str = ""  # why the tokens are unknown


class UnitPlan(BaseModel):
    """One (member, revision): the unit of remote work."""

    name: str
    source: str
    revision: str | None
    weights: str = ""  # the weights fingerprint the store is keyed by ("" without a store)
    footprint: MemberFootprint
    resources: TaskResources
    probes: list[ProbeUnitPlan]
    submit: bool  # some probe is not stored: the unit will run
    tokens: int | None  # forward-pass tokens of every probe (None when any is unknown)
    tokens_to_run: int | None  # of the probes not stored


class ScanPlan(BaseModel):
    """What a scan would do, without doing it (:func:`plan_scan`)."""

    family: str
    executor: str
    gpu_memory: int | None  # bytes of one device (None: CPU tasks)
    device_map: bool
    probes: list[str]
    units: list[UnitPlan]
    units_total: int
    units_to_run: int
    tokens_total: int | None  # every probe of every unit (None when any is unknown)
    tokens_to_run: int | None  # the probes that will run
    peak_bytes_max: int | None  # the largest estimated peak among the units to run (None: none known)
    distinct_tokenizers: int  # tokenizers the token counts were made with (members sharing one counted once)


def _sum(values: Sequence[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _stored(
    member: ModelSpec, probes: Sequence[Probe], options: ScanOptions, store: ResultStore
) -> tuple[str, set[str]]:
    """(weights fingerprint, ids of the probes whose unit is stored), as the scan looks them up."""
    try:
        fp = store.weights_fingerprint(member.source, member.revision)
    except ModelLoadError:  # unreadable files: the scan will fail on them; nothing is stored
        return "", set()
    if not is_pinned(fp):
        return fp, set()
    keys = unit_keys(member, probes, options, fp)
    return fp, {p.id for p in probes if store.has(keys[p.id])}


def plan_scan(
    family: Family,
    probes: Sequence[Probe],
    options: ScanOptions,
    store: ResultStore | None,
    executor: str,
    gpu_memory: int | None,
    device_map: bool,
) -> ScanPlan:
    """The plan of scanning ``family`` with ``probes`` (module docstring). Raises RiskauditError when a member
    needs more than one device and ``device_map`` is off (:func:`riskaudit.run.placement.task_resources`)."""
    counter = TokenCounter(probes)
    units: list[UnitPlan] = []
    for member in family.members:
        load = member_load_options(options.load, member)
        counts = counter.count(member, load)
        counted: dict[str, ProbeTokens] = {t.probe_id: t for t in counts}
        shapes = workload_shapes(counts)
        footprint = estimate_footprint(member, load, use_gpu=gpu_memory is not None, shapes=shapes)
        resources = task_resources(footprint, gpu_memory, device_map)
        weights, stored = ("", set()) if store is None else _stored(member, probes, options, store)
        rows = [
            ProbeUnitPlan(
                probe_id=p.id,
                stored=p.id in stored,
                tokens=counted[p.id].tokens,
                sequences=counted[p.id].sequences,
                error=counted[p.id].error,
            )
            for p in probes
        ]
        units.append(
            UnitPlan(
                name=member.name,
                source=member.source,
                revision=member.revision,
                weights=weights,
                footprint=footprint,
                resources=resources,
                probes=rows,
                submit=any(not r.stored for r in rows),
                tokens=_sum([r.tokens for r in rows]),
                tokens_to_run=_sum([r.tokens for r in rows if not r.stored]),
            )
        )
    running = [u for u in units if u.submit]
    peaks = [u.footprint.peak_bytes for u in running if u.footprint.peak_bytes is not None]
    return ScanPlan(
        family=family.name,
        executor=executor,
        gpu_memory=gpu_memory,
        device_map=device_map,
        probes=[p.id for p in probes],
        units=units,
        units_total=len(units),
        units_to_run=len(running),
        tokens_total=_sum([u.tokens for u in units]),
        tokens_to_run=_sum([u.tokens_to_run for u in running]),
        peak_bytes_max=max(peaks, default=None),
        distinct_tokenizers=counter.distinct,
    )
