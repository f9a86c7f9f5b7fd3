"""Rendering of the scaling analysis: a rich table per family and the ``riskaudit analyze --json`` document.

The only module of the analysis that formats for people; it never prints (the CLI does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from riskaudit.analysis.growth import GrowthFit
from riskaudit.analysis.results import FamilyAnalysis, MetricAnalysis
from riskaudit.numbers import num
from riskaudit.reporting.layout import Cell, Column, breakable, ci_cell, column_format, fit_tables

__all__ = ["ANALYSIS_JSON_KIND", "analysis_json", "analysis_table", "analysis_tables", "metric_json"]

ANALYSIS_JSON_KIND = "riskaudit.analysis"
ANALYSIS_JSON_VERSION = "1.2.0"  # 1.1.0: two-step window, trend, noise floor, baseline share; 1.2.0: difference

_VERDICT_STYLE = {
    "smooth": "green",
    "abrupt": "bold red",
    "abrupt (likely metric artifact)": "yellow",
    "step or steep rise": "magenta",
    "no consistent trend": "cyan",
    "one member differs": "cyan",
    "insufficient data": "dim",
}


def _num(v: float | None, spec: str = "+.3g") -> str:
    return num(v, spec)


def _growth_cell(g: GrowthFit | None, primary: str | None) -> str:
    if g is None or g.slope is None:
        return "–"
    unit = "" if primary == "flops" else " †"
    decimals, _ = column_format([g.slope, g.slope_ci_low, g.slope_ci_high])
    robust = "" if not g.theil_sen_disagrees() else f"\n(Theil–Sen {_num(g.theil_sen)})"  # a line of its own
    return ci_cell(g.slope, g.slope_ci_low, g.slope_ci_high, decimals, signed=True) + unit + robust


def _tau_cell(g: GrowthFit | None) -> str:
    if g is None or g.kendall_tau is None:
        return "–"
    p = "" if g.kendall_p is None else f" (p={g.kendall_p:.2g})"
    return f"{g.kendall_tau:+.2f}{p}"


def _abrupt_cell(a: MetricAnalysis) -> str:
    ab = a.abruptness
    flag = {True: "yes", False: "no", None: "?"}[ab.abrupt]
    if ab.s is None and ab.j is None:
        return flag
    if ab.window == 2:
        return f"{flag} (S2={_num(ab.s2, '.2f')}, J2={_num(ab.j2, '.1f')})"
    return f"{flag} (S={_num(ab.s, '.2f')}, J={_num(ab.j, '.1f')})"


def _emergence_cell(a: MetricAnalysis) -> str:
    em = a.emergence
    if not a.abruptness.abrupt or em.pair is None:
        return "–"
    agree = "" if em.agreement is None else f" ({em.agreement:.0%})"
    return f"{em.members_label}{agree}"


def _surprise_cell(a: MetricAnalysis) -> str:
    p = a.predictability
    if p.surprise is None:
        return "–"
    cell = "yes" if p.surprise else "no"
    if p.surprise_two_out:
        cell += " (2-out: yes)"
    return cell


def _label(a: MetricAnalysis) -> str:
    return a.metric if a.axis == "members" else f"{a.metric} @ {a.checkpoint_of} checkpoints"


def is_breakdown(metric: str) -> bool:
    """Per-template / per-stratum breakdowns are named ``metric[key]``; the terminal hides them by default."""
    return "[" in metric


_COLUMNS = (
    Column("metric", key=True, wrap=True),
    Column("n", "right"),
    Column("growth/decade [95% CI]", "right"),
    Column("Kendall τ (p)", "right"),
    Column("abrupt (S, J)"),
    Column("verdict", wrap=True),
    Column("surprise"),
    Column("emergence (agreement)", wrap=True),
    Column("first > baseline"),
)


# Why "first > baseline" is blank: the note of the rule (analysis.abrupt.wei_point) → the cell, its legend.
_WEI_BLANKS = (
    ("no member's CI clears", "– none", "no member's CI lies above the baseline"),
    ("already clearly above", "– smallest", "already above the baseline at the smallest member"),
    ("a smaller member's CI lies below", "– below", "a smaller member's CI lies below the baseline"),
    ("member CIs unknown", "– no CIs", "the members' CIs are unknown"),
)
_SHORT = "insufficient data"


def _first_above(a: MetricAnalysis) -> tuple[str, str | None]:
    """The "first > baseline" cell and, when it is blank for a reason, that reason's legend."""
    em = a.emergence
    if em.wei_member:
        return em.wei_member, None
    for prefix, cell, legend in _WEI_BLANKS:
        if em.wei_note.startswith(prefix):
            return cell, f"{cell}: {legend}"
    return "–", None


def _shown(
    fa: FamilyAnalysis, detail: bool, only: Collection[tuple[str, str]] | None
) -> tuple[list[MetricAnalysis], int]:
    """The series the tables show (breakdowns only with ``detail``; ``only`` the listed ones) and how many
    are left to the JSON report."""
    shown = [
        a
        for a in fa.metrics
        if detail or not (is_breakdown(a.metric) or (only is not None and (a.probe or "", a.metric) not in only))
    ]
    return shown, len(fa.metrics) - len(shown)


def _resampling_notes(shown: Sequence[MetricAnalysis]) -> list[str]:
    """What the terminal must say about the resamples behind the CIs when they are not the scan's paired ones."""
    judged = [a for a in shown if a.verdict != _SHORT]
    parametric = sorted({a.resampling for a in judged if a.resampling not in ("paired bootstrap", "none")})
    k = sum(a.resampling in parametric for a in judged)
    notes = []
    if k:
        notes.append(
            f"resamples are parametric ({', '.join(parametric)}) for {k} of {len(judged)} series: independent "
            "draws per member (from its CI or item count), not paired bootstrap replicates (none were given), so "
            "CIs, steps and verdicts are conservative and can differ from a scan's"
        )
    none = sum(a.resampling == "none" for a in judged)
    if none:
        notes.append(f"no resamples for {none} series (no replicates, CIs or item counts): slope CIs from OLS alone")
    return notes


def _analysis_rows(
    fa: FamilyAnalysis, shown: Sequence[MetricAnalysis], narrow: bool = False
) -> tuple[list[list[Cell]], list[str]]:
    """The table's rows (a bold probe row above each probe's metrics) and its caption parts; ``narrow``: metric
    names may wrap before a breakdown key."""
    rows: list[list[Cell]] = []
    uses_params = False
    blanks: dict[str, None] = {}
    current_probe: str | None = None
    for a in shown:
        if a.probe and a.probe != current_probe:
            rows.append([Text(a.probe, style="bold"), *([""] * (len(_COLUMNS) - 1))])
        current_probe = a.probe
        uses_params = uses_params or a.x_axis == "params"
        first, why = _first_above(a)
        if why is not None:
            blanks[why] = None
        rows.append(  # Text cells: metric and member names are data, never rich markup ("pearson[t0]")
            [
                Text(breakable(_label(a)) if narrow else _label(a)),
                str(a.n_members),
                _growth_cell(a.growth, a.x_axis),
                _tau_cell(a.growth),
                _abrupt_cell(a),
                Text(a.verdict, style=_VERDICT_STYLE.get(a.verdict, "")),
                _surprise_cell(a),
                Text(_emergence_cell(a)),
                Text(first),
            ]
        )
    caption = [
        *_resampling_notes(shown),
        "growth in oriented units (larger = riskier) per decade of training FLOPs (6·N·D)",
        "S: largest step's share of the total change, J: S over the step's share of the log-FLOPs range",
        "first > baseline: the first member whose 95% CI lies above the metric's baseline (its no-risk value) "
        "while every smaller member's CI contains it (Wei et al. 2022)" + "".join(f"; {b}" for b in blanks),
    ]
    short = sum(a.verdict == _SHORT for a in shown)
    if short:
        caption.append(
            f"{_SHORT} ({short} series): fewer than {fa.config.min_members} analysable members, see the next table"
        )
    caption.append(fa.rule)
    if uses_params:
        caption.append("† FLOPs unknown: per decade of parameters")
    return rows, caption


def _difference_cell(a: MetricAnalysis) -> str:
    d = a.difference
    if d is None:
        return "–"
    decimals, _ = column_format([d.value, d.ci_low, d.ci_high])
    return ci_cell(d.value, d.ci_low, d.ci_high, decimals, signed=True)


_CI_SAYS = {
    "paired bootstrap": "paired bootstrap over items (both members scored on the same resampled items)",
    "normal from CI": "parametric: normal draws from each member's CI, independent across the two (no paired "
    "replicates; wider than a paired CI)",
    "binomial": "parametric: binomial draws from each member's item count, independent across the two",
    "binomial + normal from CI": "parametric draws from each member's item count or CI, independent across the two",
}


def _short_tables(fa: FamilyAnalysis, short: Sequence[MetricAnalysis], width: int | None, hidden: int) -> list[Table]:
    """The series without a verdict (fewer than ``min_members`` analysable members): why, and for two members
    the larger minus the smaller with its 95% CI. One pair of members for every series: named once, in the
    title and the header, instead of a column."""
    need = fa.config.min_members
    diffs = [a.difference for a in short if a.difference is not None]
    pairs = {(d.smaller, d.larger) for d in diffs}
    one_pair = len(diffs) == len(short) and len(pairs) == 1
    header = f"{diffs[0].larger} − {diffs[0].smaller}" if one_pair else "larger − smaller"
    columns = [
        Column("metric", key=True, wrap=True),
        *([] if one_pair else [Column("n", "right"), Column("members", wrap=True)]),
        Column(f"{header} [95% CI]", "right"),
    ]
    rows: list[list[Cell]] = []
    current_probe: str | None = None
    for a in short:
        if a.probe and a.probe != current_probe:
            rows.append([Text(a.probe, style="bold"), *([""] * (len(columns) - 1))])
        current_probe = a.probe
        d = a.difference
        pair = Text(f"{d.smaller} → {d.larger}") if d is not None else Text(a.verdict_reason or "–")
        label = Text(breakable(_label(a)) if width else _label(a))
        rows.append([label, _difference_cell(a)] if one_pair else [label, str(a.n_members), pair, _difference_cell(a)])
    caption = [
        f"no verdict: growth, a step or a verdict needs at least {need} analysable members (scanned, with a value "
        "and a scale)" + ("" if one_pair else "; n: analysable members"),
    ]
    if diffs:
        axis = "training FLOPs" if all(a.x_axis != "params" for a in short if a.difference) else "FLOPs or parameters"
        methods = sorted({d.ci_method for d in diffs if d.ci_method != "none"})
        sure = sum(d.excludes_zero is True for d in diffs)
        caption += [
            f"{header}: the member with more {axis} minus the other, in the metric's own units",
            "95% CI: " + "; ".join(_CI_SAYS.get(m, m) for m in methods) if methods else "no CI (no resamples)",
            f"the CI excludes 0 for {sure} of {len(diffs)} series",
            "the difference between two training runs of one size (seed) is not in the CI: two members cannot "
            "measure it",
        ]
    if hidden:
        caption.append(f"{hidden} more metrics (breakdowns per template / stratum, companions) in the JSON report")
    if one_pair:
        title = f"{fa.family}: {header}, two members (no scaling verdict: it needs {need})"
    else:
        title = f"{fa.family}: {len(short)} series without a scaling verdict (fewer than {need} members)"
    return fit_tables(title, columns, rows, width, "; ".join(caption))


def analysis_tables(
    fa: FamilyAnalysis,
    detail: bool = False,
    only: Collection[tuple[str, str]] | None = None,
    width: int | None = None,
) -> list[Table]:
    """Per metric: growth per decade [95% CI], Kendall τ, abrupt (S, J), emergence pair, verdict, surprise;
    split into parts that fit ``width`` (None: one table). Series with too few members for a verdict follow
    in a table of their own that says why, with the difference of two members and its CI; when no series
    has a verdict, that table is the only one.

    Rows are grouped by probe; breakdown metrics (``name[key]``) appear only with ``detail``; ``only`` keeps
    the listed (probe, metric) pairs (the headline metrics), unless ``detail``.
    """
    shown, hidden = _shown(fa, detail, only)
    short = [a for a in shown if a.verdict == _SHORT]
    if shown and len(short) == len(shown):
        return _short_tables(fa, short, width, hidden)
    rows, caption = _analysis_rows(fa, shown, narrow=width is not None)
    if hidden:
        caption.append(f"{hidden} more metrics (breakdowns per template / stratum, companions) in the JSON report")
    columns: list[Column] = list(_COLUMNS)
    counts = Counter(a.n_members for a in shown)
    usual = counts.most_common(1)[0][0] if counts else 0
    others = [a for a in shown if a.n_members != usual]
    if width is not None and len(others) <= 4:  # the member count said once instead of a column
        columns.pop(1)
        rows = [[r[0], *r[2:]] for r in rows]
        but = ", ".join(f"{_label(a)}: {a.n_members}" for a in others)
        caption.insert(0, f"n = {usual} analysable members" + (f" ({but})" if but else ""))
    tables = fit_tables(f"{fa.family}: scaling and emergence", columns, rows, width, "; ".join(caption))
    return tables + (_short_tables(fa, short, width, 0) if short else [])


def analysis_table(fa: FamilyAnalysis, detail: bool = False, only: Collection[tuple[str, str]] | None = None) -> Table:
    """:func:`analysis_tables` as one table with every column (the scaling table; else the one of the series
    without a verdict)."""
    return analysis_tables(fa, detail, only)[0]


def _growth_json(g: GrowthFit | None) -> dict[str, Any] | None:
    if g is None:
        return None
    return {
        "slope": g.slope,
        "ci_low": g.slope_ci_low,
        "ci_high": g.slope_ci_high,
        "ci_method": g.slope_ci_method,
        "theil_sen": g.theil_sen,
        "kendall_tau": g.kendall_tau,
        "kendall_p": g.kendall_p,
        "kendall_p_leave_one_out": g.kendall_p_loo,
        "leave_one_out": None if g.loo is None else g.loo.model_dump(mode="json"),
        "logit_slope": g.logit_slope,
        "logit_slope_ci_low": g.logit_slope_ci_low,
        "logit_slope_ci_high": g.logit_slope_ci_high,
        "note": g.note,
    }


def metric_json(a: MetricAnalysis) -> dict[str, Any]:
    """The ``--json`` entry of one (family, metric): growth, abrupt with its statistics, emergence, verdict."""
    ab = a.abruptness
    return {
        "family": a.family,
        "metric": a.metric,
        "probe": a.probe,
        "axis": a.axis,
        "checkpoint_of": a.checkpoint_of,
        "kind": a.kind,
        "direction": a.direction,
        "orientation": a.orientation,
        "x_axis": a.x_axis,
        "n_members": a.n_members,
        "members": a.members,
        "resampling": a.resampling,
        "n_resamples": a.n_resamples,
        "slope_per_decade_flops": _growth_json(a.growth_flops),
        "slope_per_decade_params": _growth_json(a.growth_params),
        "abrupt": ab.abrupt,
        "abruptness": {
            "net": ab.net,
            "net_sd": ab.net_sd,
            "S": ab.s,
            "S_p05": ab.s_p05,
            "J": ab.j,
            "J_threshold": ab.j_threshold,
            "S2": ab.s2,
            "S2_p05": ab.s2_p05,
            "J2": ab.j2,
            "J2_threshold": ab.j2_threshold,
            "window": ab.window,
            "step": ab.step,
            "step_sd": ab.step_sd,
            "total_variation": ab.total_variation,
            "monotonicity": ab.monotonicity,
            "trend_r2": ab.trend_r2,
            "baseline_share": ab.baseline_share,
            "noise_floor": ab.noise_floor.model_dump(mode="json"),
            "breakthroughness": ab.breakthroughness,
            "linearity": ab.linearity,
            "criteria": ab.criteria,
        },
        "emergence_pair": a.emergence.pair,
        "emergence_window_end": a.emergence.window_end,
        "emergence_agreement": a.emergence.agreement,
        "first_above_baseline": a.emergence.wei_member,
        "companion": a.companion,
        "companion_abrupt": a.companion_abrupt,
        "verdict": a.verdict,
        "verdict_reason": a.verdict_reason,
        "surprise": a.predictability.surprise,
        "surprise_two_out": a.predictability.surprise_two_out,
        "difference": None if a.difference is None else a.difference.model_dump(mode="json"),
        "notes": a.notes,
    }


def analysis_json(analyses: FamilyAnalysis | Sequence[FamilyAnalysis]) -> dict[str, Any]:
    """The ``riskaudit analyze --json`` document: settings, the flag rule and one entry per (family, metric).

    Strict-JSON safe (every number finite or null).
    """
    fas = [analyses] if isinstance(analyses, FamilyAnalysis) else list(analyses)
    return {
        "kind": ANALYSIS_JSON_KIND,
        "schema_version": ANALYSIS_JSON_VERSION,
        "config": fas[0].config.model_dump(mode="json") if fas else None,
        "rule": fas[0].rule if fas else None,
        "results": [metric_json(a) for fa in fas for a in fa.metrics],
    }
