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
from riskaudit.numbers import value_text
from riskaudit.reporting.analysis_notes import (
    SHORT,
    difference_header,
    difference_notes,
    difference_text,
    first_above,
    first_above_note,
    growth_text,
    no_verdict_note,
    resampling_notes,
)
from riskaudit.reporting.layout import CI_SEP, Cell, Column, breakable, fit_tables

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


def _growth_cell(g: GrowthFit | None, primary: str | None) -> str:
    """Growth [95% CI] in the one number format (the HTML page's string), the Theil–Sen slope on a line of
    its own when it disagrees."""
    return growth_text(g, CI_SEP, "" if primary == "flops" else " †", "\n")


def _tau_cell(g: GrowthFit | None) -> str:
    if g is None or g.kendall_tau is None:
        return "–"
    p = "" if g.kendall_p is None else f" (p={g.kendall_p:.2g})"
    return f"{value_text(g.kendall_tau, signed=True)}{p}"


def _abrupt_cell(a: MetricAnalysis) -> str:
    ab = a.abruptness
    flag = {True: "yes", False: "no", None: "?"}[ab.abrupt]
    if ab.s is None and ab.j is None:
        return flag
    if ab.window == 2:
        return f"{flag} (S2={value_text(ab.s2)}, J2={value_text(ab.j2)})"
    return f"{flag} (S={value_text(ab.s)}, J={value_text(ab.j)})"


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


def _analysis_rows(
    fa: FamilyAnalysis, shown: Sequence[MetricAnalysis], narrow: bool = False
) -> tuple[list[list[Cell]], list[str]]:
    """The table's rows (a bold probe row above each probe's metrics) and its caption parts; ``narrow``: metric
    names may wrap before a breakdown key."""
    rows: list[list[Cell]] = []
    uses_params = False
    current_probe: str | None = None
    for a in shown:
        if a.probe and a.probe != current_probe:
            rows.append([Text(a.probe, style="bold"), *([""] * (len(_COLUMNS) - 1))])
        current_probe = a.probe
        uses_params = uses_params or a.x_axis == "params"
        first, _ = first_above(a)
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
        *resampling_notes(shown),
        "growth in oriented units (larger = riskier) per decade of training FLOPs (6·N·D)",
        "S: largest step's share of the total change, J: S over the step's share of the log-FLOPs range",
        first_above_note(shown),
    ]
    short = sum(a.verdict == SHORT for a in shown)
    if short:
        caption.append(
            f"{SHORT} ({short} series): fewer than {fa.config.min_members} analysable members, see the next table"
        )
    caption.append(fa.rule)
    if uses_params:
        caption.append("† FLOPs unknown: per decade of parameters")
    return rows, caption


def _difference_cell(a: MetricAnalysis) -> str:
    return difference_text(a.difference, CI_SEP)


def _short_tables(fa: FamilyAnalysis, short: Sequence[MetricAnalysis], width: int | None, hidden: int) -> list[Table]:
    """The series without a verdict (fewer than ``min_members`` analysable members): why, and for two members
    the larger minus the smaller with its 95% CI. One pair of members for every series: named once, in the
    title and the header, instead of a column."""
    need = fa.config.min_members
    diffs = [a.difference for a in short if a.difference is not None]
    pairs = {(d.smaller, d.larger) for d in diffs}
    one_pair = len(diffs) == len(short) and len(pairs) == 1
    header = difference_header(diffs[0]) if one_pair else "larger − smaller"
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
    caption = [no_verdict_note(need) + ("" if one_pair else "; n: analysable members")]
    axis = "training FLOPs" if all(a.x_axis != "params" for a in short if a.difference) else "FLOPs or parameters"
    caption += difference_notes(diffs, header, axis)
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
    short = [a for a in shown if a.verdict == SHORT]
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
