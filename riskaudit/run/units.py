"""One unit of scan work: load one (member, revision), run its probes, free it.

The same function runs in the scanning process (``--executor local``) and inside a Ray task
(``--executor ray``, :mod:`riskaudit.run.executor`): it reads nothing but its arguments and never touches the
result store, so that only the driver writes it. What it returns (:class:`UnitOutcome`) is plain data.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence

from pydantic import BaseModel

from riskaudit.inputs.family_spec import ModelSpec
from riskaudit.models import BatchHalving, LoadOptions, ModelHandle, Placement, TokenizationInfo, load_model
from riskaudit.probes.base import Probe, ProbeResult
from riskaudit.reporting.report import UnitPlacement

ProbeProgress = Callable[[str, int, int], None]  # (probe id, items done, items total)
UnitResultSink = Callable[[str, ProbeResult, float, str], None]  # (probe id, result, seconds, fingerprint)
Fingerprinter = Callable[[str, str | None], str]  # (source, revision) -> weights fingerprint


class UnitOutcome(BaseModel):
    """What computing one unit produced, before any family-level finalization."""

    results: dict[str, ProbeResult] = {}  # the probes that ran (not those taken from the store)
    seconds: dict[str, float] = {}
    params_total: int
    params_nonembedding: int
    load_seconds: float
    halvings: list[BatchHalving] = []
    fingerprint: str = ""  # of the weights that were loaded ("" when not asked)
    placement: UnitPlacement = UnitPlacement()
    loaded: Placement | None = None  # the dtype, device and device map the model was loaded with


def member_load_options(load: LoadOptions, member: ModelSpec) -> LoadOptions:
    """The load options of one member: the family TOML's ``add_bos`` applies unless --add-bos says yes or no."""
    if load.add_bos == "auto" and member.add_bos is not None:
        return load.model_copy(update={"add_bos": member.add_bos})
    return load


def local_placement(executor: str = "local") -> UnitPlacement:
    return UnitPlacement(executor=executor, hostname=socket.gethostname(), pid=os.getpid())


def compute_unit(
    member: ModelSpec,
    probes: Sequence[Probe],
    load: LoadOptions,
    seed: int,
    *,
    skip: Iterable[str] = (),
    expected_fingerprint: str = "",
    fingerprint: Fingerprinter | None = None,
    on_result: UnitResultSink | None = None,
    progress: ProbeProgress | None = None,
    placement: UnitPlacement | None = None,
) -> UnitOutcome:
    """Load ``member`` and run every probe not in ``skip`` on it, in order.

    ``skip`` lists probes whose results the caller already holds for the weights ``expected_fingerprint``
    names; when ``fingerprint`` is given and the loaded weights fingerprint differently (a hub branch that
    moved, a model first downloaded by this load), nothing is skipped. ``on_result`` sees each result as soon
    as its probe returns (the local executor stores it then, so an interrupted scan keeps it).
    Raises :class:`~riskaudit.errors.ModelLoadError` when the member cannot be loaded.
    """
    t0 = time.perf_counter()
    skipped = set(skip)
    results: dict[str, ProbeResult] = {}
    seconds: dict[str, float] = {}
    halvings: list[BatchHalving] = []
    fp = expected_fingerprint
    with load_model(member.source, member.revision, member_load_options(load, member), name=member.name) as model:
        load_s = time.perf_counter() - t0
        import torch  # only here: a scan served from the store never imports it

        torch.manual_seed(seed)
        if fingerprint is not None:
            fp = fingerprint(member.source, member.revision)
            if fp != expected_fingerprint:  # not the weights looked up: trust nothing cached
                skipped.clear()
        for probe in probes:
            if probe.id in skipped:
                continue
            tp = time.perf_counter()

            def on_progress(done: int, total: int, _pid: str = probe.id) -> None:
                if progress is not None:
                    progress(_pid, done, total)

            before, tok_before = len(model.batch_halvings), model.tokenization
            result = with_tokenization(probe.run(model, progress=on_progress), tok_before, model)
            results[probe.id] = result
            halvings.extend(h.model_copy(update={"probe_id": probe.id}) for h in model.batch_halvings[before:])
            seconds[probe.id] = round(time.perf_counter() - tp, 3)
            if on_result is not None:
                on_result(probe.id, result, seconds[probe.id], fp)
        return UnitOutcome(
            results=results,
            seconds=seconds,
            params_total=model.n_params_total,
            params_nonembedding=model.n_params_nonembedding,
            load_seconds=round(load_s, 3),
            halvings=halvings,
            fingerprint=fp,
            placement=placement or local_placement(),
            loaded=model.placement,
        )


def with_tokenization(result: ProbeResult, before: TokenizationInfo, model: ModelHandle) -> ProbeResult:
    """The probe's result with the model's tokenization convention and this probe's pair counts, plus a note
    when some pairs needed the boundary fallback (stored with the result, so a cached unit keeps them)."""
    after = model.tokenization
    n, total = after.boundary_fallbacks - before.boundary_fallbacks, after.pairs - before.pairs
    notes = result.notes
    if n > 0:
        notes = [
            *notes,
            f"tokenization: in {n} of {total} (context, continuation) pairs the context's tokens were not a prefix "
            "of the joint tokens; those continuations were encoded on their own",
        ]
    info = after.model_copy(update={"pairs": total, "boundary_fallbacks": n})
    return result.model_copy(update={"notes": notes, "tokenization": info})


class UnitRequest(BaseModel):
    """One (member, revision) to compute: its index in the family, and the probes the store already holds for
    the weights ``expected_fingerprint`` names (``skip``)."""

    index: int
    member: ModelSpec
    skip: list[str] = []
    expected_fingerprint: str = ""
