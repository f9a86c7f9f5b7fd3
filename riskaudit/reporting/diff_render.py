"""A :class:`~riskaudit.reporting.diff.ReportDiff` for the terminal: a head (members added/removed), one
narrow table per member and probe (and per probe for the family analysis) holding only the changed rows unless
the diff lists everything, and a tail (counts, notes, regressions, the gate rule and its result). Never prints."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text

from riskaudit.numbers import estimate, value_text
from riskaudit.reporting.diff import FlagChange, MetricChange, ReportDiff, TrendChange
from riskaudit.reporting.layout import Cell, Column, breakable, fit_tables

__all__ = ["diff_head", "diff_summary", "diff_table", "diff_tables"]

_STYLE = {
    "worse": "bold red",
    "better": "green",
    "changed": "yellow",
    "steeper": "yellow",
    "flatter": "yellow",
    "within CIs": "dim",
    "unchanged": "dim",
}
_FLAG = {"verdict": "verdict", "surprise": "surprise", "surprise_two_out": "surprise (2 out)"}


def _listed(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def diff_head(diff: ReportDiff) -> list[str]:
    """What is compared: the families, their member counts, members added, removed or newly failed."""
    lines = [
        f"diff {diff.base_family} ({len(diff.base_members)} members) → {diff.new_family} "
        f"({len(diff.new_members)} members)"
    ]
    for label, names in (
        ("members added (not compared, not a regression)", diff.members_added),
        ("members removed (not a regression)", diff.members_removed),
        ("members failed in the new report (not compared)", diff.members_newly_failed),
        ("metrics added", diff.metrics_added),
        ("metrics removed", diff.metrics_removed),
    ):
        if names:
            lines.append(f"{label}: {_listed(names)}")
    return lines


def _move(base: str, new: str) -> Text:
    return Text(f"{base}\n→ {new}")


def _change(change: str, delta: float | None = None, regression: bool = False) -> Text:
    t = Text(change, style="bold red" if regression else _STYLE.get(change, ""))
    if delta is not None:
        t.append("\n" + value_text(delta, signed=True), style="dim")
    return t


def _metric_row(m: MetricChange) -> list[Cell]:
    return [
        Text(breakable(m.metric)),
        _move(
            estimate(m.base_value, m.base_ci_low, m.base_ci_high, missing="?"),
            estimate(m.new_value, m.new_ci_low, m.new_ci_high, missing="?"),
        ),
        _change(m.change, m.delta, m.regression),
    ]


def _trend_row(t: TrendChange) -> list[Cell]:
    return [
        Text(breakable(t.metric) + "\n(slope/decade)"),
        _move(
            estimate(t.base_slope, t.base_ci_low, t.base_ci_high, signed=True),
            estimate(t.new_slope, t.new_ci_low, t.new_ci_high, signed=True),
        ),
        _change(t.change),
    ]


def _flag_row(f: FlagChange) -> list[Cell]:
    return [
        Text(breakable(f.metric) + f"\n({_FLAG[f.flag]})"),
        _move(f.base or "–", f.new or "–"),
        _change("worse" if f.regression else "changed", regression=f.regression),
    ]


def _groups(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for k in keys:
        seen.setdefault(k, None)
    return list(seen)


def diff_tables(diff: ReportDiff, width: int | None = None) -> list[Table]:
    """One table per (member, probe) with a changed metric, then one per probe of the family analysis with a
    changed slope or flag; each row: the metric, ``base → new`` (value and 95% CI) and the change with its Δ.
    Regressions in bold red. Laid out for ``width`` columns (:func:`riskaudit.reporting.layout.fit_tables`)."""
    columns = [Column("metric", key=True, wrap=True), Column("base → new"), Column("change")]
    tables: list[Table] = []
    for member, probe in _groups((m.member, m.probe) for m in diff.metrics):
        rows = [_metric_row(m) for m in diff.metrics if (m.member, m.probe) == (member, probe)]
        worse = sum(m.regression for m in diff.metrics if (m.member, m.probe) == (member, probe))
        title = f"{member} · {probe}: {len(rows)} row(s)" + (f", {worse} worse" if worse else "")
        tables += fit_tables(title, columns, rows, width)
    analysis: list[TrendChange | FlagChange] = [*diff.trends, *diff.flags]
    for where, probe in _groups((a.checkpoint_of or "family", a.probe) for a in analysis):
        rows = []
        for a in analysis:
            if (a.checkpoint_of or "family", a.probe) == (where, probe):
                rows.append(_trend_row(a) if isinstance(a, TrendChange) else _flag_row(a))
        label = "family analysis" if where == "family" else f"{where} checkpoints"
        tables += fit_tables(f"{label} · {probe or 'all probes'}: {len(rows)} row(s)", columns, rows, width)
    return tables


def diff_table(diff: ReportDiff) -> Table:
    """Every row of :func:`diff_tables` in one table (no width limit), the member and probe in the metric."""
    columns = [Column("metric", key=True, wrap=True), Column("base → new"), Column("change")]
    rows: list[list[Cell]] = []
    for m in diff.metrics:
        rows.append([Text(f"{m.member} · {m.probe}/{breakable(m.metric)}"), *_metric_row(m)[1:]])
    rows += [_trend_row(t) for t in diff.trends] + [_flag_row(f) for f in diff.flags]
    return fit_tables(f"diff {diff.base_family} → {diff.new_family}", columns, rows, None)[0]


def diff_summary(diff: ReportDiff) -> list[str]:
    """Plain lines: counts, notes, the regressions, the gate rule, and last the result."""
    lines = [
        f"{diff.compared} metric values compared: {diff.beyond_ci} beyond their 95% CIs, {diff.within_ci} within "
        f"them, {diff.unchanged} unchanged" + ("" if diff.everything else " (--all lists every row)")
    ]
    changed_flags = len(diff.flags)
    if diff.trends or changed_flags:
        lines.append(f"family analysis: {len(diff.trends)} slope(s) and {changed_flags} flag(s) listed")
    lines.extend(f"note: {n}" for n in diff.notes)
    lines.append(diff.rule)
    if diff.regressions:
        lines.append(f"result: {len(diff.regressions)} regression(s) (exit 1 with --fail-on-regression):")
        lines.extend(f"  {r}" for r in diff.regressions)
    else:
        lines.append("result: no regression (exit 0)")
    return lines
