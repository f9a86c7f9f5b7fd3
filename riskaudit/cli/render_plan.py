"""Terminal tables of a scan plan (``scan --plan``): one row per unit, one row per probe."""

from __future__ import annotations

from fractions import Fraction

from rich.table import Table
from rich.text import Text

from riskaudit.numbers import human_count
from riskaudit.reporting.layout import Cell, Column, fit_tables
from riskaudit.run.placement import GPU_SHARES, TaskResources
from riskaudit.run.plan import ScanPlan, UnitPlan


def human_bytes(n: int | None) -> str:
    """``512 MiB``, ``1.5 GiB``, ``2.0 TiB``; ``?`` when unknown."""
    if n is None:
        return "?"
    for shift, suffix in ((40, "TiB"), (30, "GiB")):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {suffix}"
    return f"{max(1, round(n / (1 << 20)))} MiB" if n > 0 else "0 MiB"


def request_cell(r: TaskResources) -> str:
    """``1 CPU, 99 MiB``, ``2/16 GPU``, ``2 GPUs``."""
    if r.num_gpus <= 0:
        return f"{r.num_cpus:g} CPU" + (f", {human_bytes(r.memory)}" if r.memory is not None else "")
    if r.num_gpus < 1:
        share = Fraction(r.num_gpus).limit_denominator(GPU_SHARES)
        return f"{round(share * GPU_SHARES)}/{GPU_SHARES} GPU"
    n = int(r.num_gpus)
    return f"{n} GPU" + ("s" if n > 1 else "")


def _tokens(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def plan_summary(plan: ScanPlan) -> str:
    """The plan in one sentence; when nothing has to run it says so (no "largest peak ?")."""
    if plan.units_to_run == 0:
        units = "the one unit is" if plan.units_total == 1 else f"all {plan.units_total} units are"
        done = "" if plan.tokens_total is None else f" ({plan.tokens_total:,} forward-pass tokens already computed)"
        return f"Nothing to run: {units} served from the result store{done}."
    device = "CPU tasks" if plan.gpu_memory is None else f"GPUs of {human_bytes(plan.gpu_memory)}"
    peak = "unknown" if plan.peak_bytes_max is None else human_bytes(plan.peak_bytes_max)
    return (
        f"{plan.units_to_run} of {plan.units_total} units to run ({plan.executor} executor, {device}); "
        f"{_tokens(plan.tokens_to_run)} forward-pass tokens to run of {_tokens(plan.tokens_total)}; largest peak "
        f"{peak}."
    )


def _legend(plan: ScanPlan) -> str:
    """The marks and columns explained; a mark only when some row shows it."""
    marks = "params*: counted from the config; " if any(_counted(u) for u in plan.units) else ""
    return (
        f"{marks}peak: weights + one batch's activations; stored: probes already in the result store; "
        "tokens: forward-pass tokens to run."
    )


def _counted(unit: UnitPlan) -> bool:
    return unit.footprint.params_source == "config"


def plan_tables(plan: ScanPlan, width: int | None = None) -> list[Table]:
    """The units table (memory, request, stored probes, tokens left) and the per-probe token table."""
    n_probes = len(plan.probes)
    unit_cols = (
        Column("unit", key=True),
        Column("params", "right"),
        Column("dtype"),
        Column("weights", "right"),
        Column("peak", "right"),
        Column("request", "right"),
        Column("stored", "right"),
        Column("run"),
        Column("tokens", "right"),
    )
    unit_rows: list[list[Cell]] = [
        [
            Text(u.name),
            human_count(u.footprint.params_total) + ("*" if _counted(u) else ""),
            u.footprint.dtype,
            human_bytes(u.footprint.weight_bytes),
            human_bytes(u.footprint.peak_bytes),
            request_cell(u.resources),
            f"{sum(p.stored for p in u.probes)}/{n_probes}",
            "yes" if u.submit else "no",
            _tokens(u.tokens_to_run) if u.submit else "–",
        ]
        for u in plan.units
    ]
    reasons: dict[str, list[str]] = {}  # why something is unknown -> the units
    for u in plan.units:
        errors = {p.error for p in u.probes if p.error}
        whole = {u.footprint.note} | (errors if len(errors) == 1 and all(p.error for p in u.probes) else set())
        parts = whole | {f"{p.probe_id}: {p.error}" for p in u.probes if p.error and p.error not in whole}
        for reason in sorted(r for r in parts if r):
            reasons.setdefault(reason, []).append(u.name)
    unknown = "".join(f" ?: {r} ({', '.join(names)})." for r, names in reasons.items())
    caption = f"{plan_summary(plan)} " + _legend(plan) + unknown
    probe_cols = (
        Column("probe", key=True),
        Column("tokens", "right"),
        Column("inputs", "right"),
        Column("units", "right"),
        Column("total", "right"),
    )
    probe_rows: list[list[Cell]] = []
    for pid in plan.probes:
        cells = [p for u in plan.units for p in u.probes if p.probe_id == pid]
        known = sorted({c.tokens for c in cells if c.tokens is not None})
        seqs = sorted({c.sequences for c in cells if c.tokens is not None})
        todo = [c for c in cells if not c.stored]
        left = None if any(c.tokens is None for c in todo) else sum(c.tokens or 0 for c in todo)
        per_unit = "?" if not known else _tokens(known[0]) if len(known) == 1 else f"{known[0]:,}–{known[-1]:,}"
        inputs = "?" if not seqs else f"{seqs[0]:,}" if len(seqs) == 1 else f"{seqs[0]:,}–{seqs[-1]:,}"
        probe_rows.append([Text(pid), per_unit, inputs, str(len(todo)), _tokens(left)])
    probe_caption = (
        "tokens / inputs: forward-pass tokens and model inputs of the probe on one unit (padding not counted); "
        f"units: units that run it; total: their tokens. Counted with the members' own tokenizers "
        f"({plan.distinct_tokenizers} distinct) and no model"
    )
    return [
        *fit_tables(f"Scan plan: {plan.family}", unit_cols, unit_rows, width, caption),
        *fit_tables("Forward-pass tokens per probe", probe_cols, probe_rows, width, probe_caption),
    ]
