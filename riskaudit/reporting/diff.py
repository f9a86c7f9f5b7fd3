"""What changed between two reports: members, metrics beyond their CIs, trends and flags. Never prints.

A metric changed *significantly* when the 95% CIs of the two reports do not overlap. Worse/better follow the
metric's direction on its oriented interval (larger = riskier: y, −y, or |y − baseline| for two-sided
metrics, as in :mod:`riskaudit.analysis.resampling`), so a two-sided metric that flips sign without growing is
``changed``, not worse. A **regression** is a risk that got significantly worse: a metric or a growth slope
beyond its CI, a verdict that became ``abrupt``, or a new ``surprise``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, computed_field
from rich.table import Table
from rich.text import Text

from riskaudit.analysis.metric import Direction, MetricResult
from riskaudit.analysis.results import MetricAnalysis
from riskaudit.numbers import ci_suffix, num
from riskaudit.reporting.report import MemberReport, Report

__all__ = ["FlagChange", "MetricChange", "ReportDiff", "TrendChange", "diff_reports", "diff_summary", "diff_table"]

Change = Literal["worse", "better", "changed"]
Interval = tuple[float, float]


class MetricChange(BaseModel):
    """One (member, probe, metric) whose CIs do not overlap between the reports."""

    member: str
    probe: str
    metric: str
    direction: Direction
    change: Change
    base_value: float | None
    base_ci_low: float | None
    base_ci_high: float | None
    new_value: float | None
    new_ci_low: float | None
    new_ci_high: float | None
    delta: float | None
    regression: bool


class TrendChange(BaseModel):
    """A growth slope per decade of FLOPs whose CIs do not overlap (oriented units: larger = riskier)."""

    probe: str
    metric: str
    axis: str = "members"
    checkpoint_of: str | None = None
    base_slope: float
    base_ci_low: float
    base_ci_high: float
    new_slope: float
    new_ci_low: float
    new_ci_high: float
    change: Change
    regression: bool


class FlagChange(BaseModel):
    """A verdict or surprise flag that differs between the reports."""

    probe: str
    metric: str
    axis: str = "members"
    checkpoint_of: str | None = None
    flag: Literal["verdict", "surprise", "surprise_two_out"]
    base: str | None
    new: str | None
    regression: bool


class ReportDiff(BaseModel):
    """The differences between a base and a new report."""

    base_family: str
    new_family: str
    members_added: list[str] = []
    members_removed: list[str] = []
    members_newly_failed: list[str] = []
    metrics_added: list[str] = []  # "probe/metric"
    metrics_removed: list[str] = []
    probes_changed: list[str] = []  # same probe id, different content hash: not like-for-like
    compared: int = 0  # (member, probe, metric) pairs with a value in both
    without_ci: int = 0  # of those, pairs that cannot be tested (a CI missing)
    metrics: list[MetricChange] = []
    trends: list[TrendChange] = []
    flags: list[FlagChange] = []
    notes: list[str] = []
    regressions: list[str] = []  # one line per risk that got significantly worse

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_regression(self) -> bool:
        return bool(self.regressions)


def _cell(v: float | None, lo: float | None, hi: float | None) -> str:
    return num(v, missing="?") + ci_suffix(lo, hi, missing="?")


def _oriented(lo: float, hi: float, direction: Direction, baseline: float) -> Interval:
    """The CI in oriented units (larger = riskier); a two-sided CI containing the baseline starts at 0."""
    if direction == "higher_is_riskier":
        return lo, hi
    if direction == "lower_is_riskier":
        return -hi, -lo
    a, b = abs(lo - baseline), abs(hi - baseline)
    return (0.0 if lo <= baseline <= hi else min(a, b)), max(a, b)


def _compare(base: MetricResult, new: MetricResult) -> Change | None:
    """worse/better/changed when the CIs do not overlap, None when they do."""
    assert base.ci_low is not None and base.ci_high is not None and new.ci_low is not None and new.ci_high is not None
    if not (new.ci_low > base.ci_high or new.ci_high < base.ci_low):
        return None
    bo = _oriented(base.ci_low, base.ci_high, new.direction, new.baseline)
    no = _oriented(new.ci_low, new.ci_high, new.direction, new.baseline)
    if no[0] > bo[1]:
        return "worse"
    if no[1] < bo[0]:
        return "better"
    return "changed"


def _metrics(m: MemberReport) -> dict[tuple[str, str], MetricResult]:
    return {(p.probe_id, r.name): r for p in m.probes for r in p.metrics}


def _akey(a: MetricAnalysis) -> tuple[str, str, str, str]:
    return (a.probe, a.metric, a.axis, a.checkpoint_of or "")


def _where(a: MetricAnalysis) -> str:
    return f" ({a.checkpoint_of} checkpoints)" if a.checkpoint_of else ""


def diff_reports(base: Report, new: Report) -> ReportDiff:
    """Compare two reports member by member (matched by name) and analysis by analysis."""
    d = ReportDiff(base_family=base.family.name, new_family=new.family.name)
    if base.family.name != new.family.name:
        d.notes.append(f"different families: {base.family.name} → {new.family.name}")
    if base.schema_version != new.schema_version:
        d.notes.append(f"schema {base.schema_version} → {new.schema_version}")
    bm = {m.name: m for m in base.members}
    nm = {m.name: m for m in new.members}
    d.members_added = [n for n in nm if n not in bm]
    d.members_removed = [n for n in bm if n not in nm]
    d.members_newly_failed = [n for n in nm if n in bm and bm[n].status == "ok" and nm[n].status != "ok"]
    if d.members_newly_failed:
        d.notes.append(f"failed in the new report (not compared): {', '.join(d.members_newly_failed)}")

    bh = {p.id: p.content_hash for p in base.probes}
    d.probes_changed = [p.id for p in new.probes if p.id in bh and bh[p.id] != p.content_hash]
    if d.probes_changed:
        d.notes.append(
            f"probe definitions changed ({', '.join(d.probes_changed)}): their metrics are not measured on the "
            "same items"
        )

    bkeys = {k for m in base.members for k in _metrics(m)}
    nkeys = {k for m in new.members for k in _metrics(m)}
    d.metrics_added = [f"{p}/{n}" for p, n in sorted(nkeys - bkeys)]
    d.metrics_removed = [f"{p}/{n}" for p, n in sorted(bkeys - nkeys)]

    for name, newm in nm.items():
        oldm = bm.get(name)
        if oldm is None or oldm.status != "ok" or newm.status != "ok":
            continue
        old_metrics = _metrics(oldm)
        for key, r in _metrics(newm).items():
            o = old_metrics.get(key)
            if o is None or o.value is None or r.value is None:
                continue
            d.compared += 1
            if None in (o.ci_low, o.ci_high, r.ci_low, r.ci_high):
                d.without_ci += 1
                continue
            change = _compare(o, r)
            if change is None:
                continue
            mc = MetricChange(
                member=name,
                probe=key[0],
                metric=key[1],
                direction=r.direction,
                change=change,
                base_value=o.value,
                base_ci_low=o.ci_low,
                base_ci_high=o.ci_high,
                new_value=r.value,
                new_ci_low=r.ci_low,
                new_ci_high=r.ci_high,
                delta=r.value - o.value,
                regression=change == "worse",
            )
            d.metrics.append(mc)
            if mc.regression:
                d.regressions.append(
                    f"{name} {key[0]}/{key[1]}: {_cell(o.value, o.ci_low, o.ci_high)} → "
                    f"{_cell(r.value, r.ci_low, r.ci_high)} (worse beyond the 95% CIs; {r.direction.replace('_', ' ')})"
                )
    if d.without_ci:
        d.notes.append(f"{d.without_ci} of {d.compared} metric pairs have no CI and were not tested")
    _diff_analysis(base, new, d)
    return d


def _diff_analysis(base: Report, new: Report, d: ReportDiff) -> None:
    if base.analysis is None or new.analysis is None:
        if (base.analysis is None) != (new.analysis is None):
            d.notes.append("only one report has an analysis: trends and flags not compared")
        return
    old = {_akey(a): a for a in base.analysis.metrics}
    for a in new.analysis.metrics:
        o = old.get(_akey(a))
        if o is None:
            continue
        label = f"{a.probe}/{a.metric}" if a.probe else a.metric
        g0, g1 = o.growth_flops, a.growth_flops
        if (
            g0 is not None
            and g1 is not None
            and g0.slope is not None
            and g1.slope is not None
            and g0.slope_ci_low is not None
            and g0.slope_ci_high is not None
            and g1.slope_ci_low is not None
            and g1.slope_ci_high is not None
            and (g1.slope_ci_low > g0.slope_ci_high or g1.slope_ci_high < g0.slope_ci_low)
        ):
            change: Change = "worse" if g1.slope_ci_low > g0.slope_ci_high else "better"
            d.trends.append(
                TrendChange(
                    probe=a.probe,
                    metric=a.metric,
                    axis=a.axis,
                    checkpoint_of=a.checkpoint_of,
                    base_slope=g0.slope,
                    base_ci_low=g0.slope_ci_low,
                    base_ci_high=g0.slope_ci_high,
                    new_slope=g1.slope,
                    new_ci_low=g1.slope_ci_low,
                    new_ci_high=g1.slope_ci_high,
                    change=change,
                    regression=change == "worse",
                )
            )
            if change == "worse":
                d.regressions.append(
                    f"{label}{_where(a)}: growth per decade of FLOPs "
                    f"{_cell(g0.slope, g0.slope_ci_low, g0.slope_ci_high)} → "
                    f"{_cell(g1.slope, g1.slope_ci_low, g1.slope_ci_high)} (steeper beyond the 95% CIs)"
                )
        if o.verdict != a.verdict:
            reg = a.verdict == "abrupt" and (a.abruptness.net or 0.0) > 0  # an abrupt drop in risk is no regression
            d.flags.append(
                FlagChange(
                    probe=a.probe,
                    metric=a.metric,
                    axis=a.axis,
                    checkpoint_of=a.checkpoint_of,
                    flag="verdict",
                    base=o.verdict,
                    new=a.verdict,
                    regression=reg,
                )
            )
            if reg:
                pair = " → ".join(a.emergence.pair or [])
                d.regressions.append(f"{label}{_where(a)}: verdict {o.verdict!r} → 'abrupt' (step {pair})")
        for flag in ("surprise", "surprise_two_out"):
            b0 = getattr(o.predictability, flag)
            b1 = getattr(a.predictability, flag)
            if b0 != b1:
                reg = b1 is True and _above(a, 1 if flag == "surprise" else 2)
                d.flags.append(
                    FlagChange(
                        probe=a.probe,
                        metric=a.metric,
                        axis=a.axis,
                        checkpoint_of=a.checkpoint_of,
                        flag=flag,
                        base=None if b0 is None else str(b0).lower(),
                        new=None if b1 is None else str(b1).lower(),
                        regression=reg,
                    )
                )
                if reg:
                    d.regressions.append(f"{label}{_where(a)}: new {flag} (riskier than the smaller members predict)")


def _above(a: MetricAnalysis, held: int) -> bool:
    """A held-out member lies above every fit's prediction interval (riskier than predicted)."""
    by_member: dict[str, list[bool]] = {}
    for q in a.predictability.predictions:
        if q.held_out == held:
            by_member.setdefault(q.member, []).append(q.outside and q.observed > q.pi_high)
    return any(all(v) for v in by_member.values())


# --------------------------------------------------------------------------------------------------
# Rendering


_STYLE = {"worse": "bold red", "better": "green", "changed": "yellow"}


def diff_tables(diff: ReportDiff, width: int | None = None) -> list[Table]:
    """Every significant change (metrics, trends, flags), regressions in red, laid out for ``width`` columns
    (see :func:`riskaudit.reporting.layout.fit_tables`: the change and the metric are repeated when the table
    splits)."""
    from riskaudit.reporting.layout import Column, breakable, fit_tables

    columns = [
        Column("probe / metric", key=True, wrap=True),
        Column("member", key=True),
        Column("what", wrap=True),
        Column("base", justify="right"),
        Column("new", justify="right"),
        Column("change"),
    ]
    rows: list[list[Text | str]] = []
    for m in diff.metrics:
        rows.append(
            [
                Text(breakable(f"{m.probe}/{m.metric}")),
                Text(m.member),
                "metric",
                _cell(m.base_value, m.base_ci_low, m.base_ci_high),
                _cell(m.new_value, m.new_ci_low, m.new_ci_high),
                Text(m.change, style=_STYLE[m.change]),
            ]
        )
    for tr in diff.trends:
        rows.append(
            [
                Text(breakable(f"{tr.probe}/{tr.metric}")),
                Text(tr.checkpoint_of or "family"),
                "slope/decade",
                _cell(tr.base_slope, tr.base_ci_low, tr.base_ci_high),
                _cell(tr.new_slope, tr.new_ci_low, tr.new_ci_high),
                Text(tr.change, style=_STYLE[tr.change]),
            ]
        )
    for f in diff.flags:
        rows.append(
            [
                Text(breakable(f"{f.probe}/{f.metric}")),
                Text(f.checkpoint_of or "family"),
                f.flag,
                Text(f.base or "–"),
                Text(f.new or "–"),
                Text("worse" if f.regression else "changed", style="bold red" if f.regression else "yellow"),
            ]
        )
    return fit_tables(f"diff {diff.base_family} → {diff.new_family}", columns, rows, width)


def diff_table(diff: ReportDiff) -> Table:
    """:func:`diff_tables` as one table (no width limit)."""
    return diff_tables(diff, None)[0]


def diff_summary(diff: ReportDiff) -> list[str]:
    """Plain lines: members and metrics added/removed, counts, notes, and the regression verdict."""
    lines = []
    for label, names in (
        ("members added", diff.members_added),
        ("members removed", diff.members_removed),
        ("metrics added", diff.metrics_added),
        ("metrics removed", diff.metrics_removed),
    ):
        if names:
            shown = ", ".join(names[:10]) + (f", … ({len(names) - 10} more)" if len(names) > 10 else "")
            lines.append(f"{label}: {shown}")
    n_sig = len(diff.metrics)
    lines.append(f"{diff.compared} metric values compared, {n_sig} changed beyond their 95% CIs")
    lines.extend(f"note: {n}" for n in diff.notes)
    if diff.regressions:
        lines.append(f"{len(diff.regressions)} regression(s):")
        lines.extend(f"  {r}" for r in diff.regressions)
    else:
        lines.append("no regression")
    return lines
