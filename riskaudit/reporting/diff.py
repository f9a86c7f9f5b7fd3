"""What changed between two reports: members, metrics beyond their CIs, trends and flags. Never prints.

**Equal within float precision.** Two numbers ``a`` and ``b`` of one metric are equal when
``|a − b| ≤ tol = max(1e-9 · S, 1e-3 · W)``: ``S`` is the metric's scale, the largest magnitude among its numbers
(values, CI bounds, baseline) for every member and breakdown (``name[key]``) in both reports, and at least 1 for
a proportion; for a growth slope, the values of its series too, since a slope's rounding noise scales with them.
``W`` is the wider of the two CIs. A metric whose value and CI bounds are all
equal is ``unchanged``; one CI lies *beyond* the other only when the gap between them exceeds ``tol``.

**Changes.** A metric that moved beyond both 95% CIs is ``worse`` or ``better`` along its declared direction on
its oriented interval (larger = riskier: y, −y, or |y − baseline| for two-sided metrics, as in
:mod:`riskaudit.analysis.resampling`), else ``changed`` (a two-sided metric that flips sign without growing);
one that moved within its CIs is ``within CIs``. Flags: ``None`` (not computed) and ``False`` both read as
"not flagged", so only a flag that is raised or cleared is a change.

**Regression** (the gate, :data:`GATE_RULE`): exactly a metric of a member present and ``ok`` in both reports
that got worse beyond both CIs, a metric present in both analyses whose verdict newly became ``abrupt`` with
risk going up on a step between members of both reports, or a newly raised ``surprise`` / ``surprise_two_out``
with a held-out member of both reports above every fit's prediction interval. Members added or removed,
metrics added or removed, growth slopes and other verdict changes are listed and never a regression.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, computed_field

from riskaudit.analysis.metric import Direction, MetricResult
from riskaudit.analysis.results import MetricAnalysis
from riskaudit.numbers import estimate
from riskaudit.reporting.report import MemberReport, Report

__all__ = [
    "GATE_RULE",
    "FlagChange",
    "MetricChange",
    "ReportDiff",
    "TrendChange",
    "diff_reports",
    "equal_within",
    "tolerance",
]

Change = Literal["worse", "better", "changed", "within CIs", "unchanged"]
TrendMove = Literal["steeper", "flatter", "within CIs", "unchanged"]
Interval = tuple[float, float]

REL_PRECISION = 1e-9  # of the metric's scale: float noise of a sum, a mean or a fit, far below any real change
CI_FRACTION = 1e-3  # of the wider CI: a move this small is no news at the CI's resolution

GATE_RULE = (
    "gate: exit 1 when a metric of a member in both reports moved beyond both 95% CIs in its risky direction, "
    "or a metric in both analyses newly became 'abrupt' (risk up) or newly 'surprise' / 'surprise_two_out' "
    "(above its prediction), on members of both reports; else 0. Members or metrics added or removed, slopes "
    "and other flag changes are "
    f"listed, never a regression. Equal within max({REL_PRECISION:g}·scale, {CI_FRACTION:g}·CI width) = unchanged."
)


class MetricChange(BaseModel):
    """One (member, probe, metric) compared between the reports."""

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
    tolerance: float
    regression: bool


class TrendChange(BaseModel):
    """A growth slope per decade of FLOPs compared between the reports (oriented units: larger = riskier).
    Reported, never a regression: a member more or less changes a slope."""

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
    change: TrendMove
    tolerance: float
    regression: bool = False


class FlagChange(BaseModel):
    """A verdict or surprise flag that differs between the reports (None and false are the same: not flagged)."""

    probe: str
    metric: str
    axis: str = "members"
    checkpoint_of: str | None = None
    flag: Literal["verdict", "surprise", "surprise_two_out"]
    base: str | None
    new: str | None
    regression: bool


class ReportDiff(BaseModel):
    """The differences between a base and a new report (with ``everything``: unchanged rows too)."""

    base_family: str
    new_family: str
    base_members: list[str] = []
    new_members: list[str] = []
    members_added: list[str] = []
    members_removed: list[str] = []
    members_newly_failed: list[str] = []
    metrics_added: list[str] = []  # "probe/metric"
    metrics_removed: list[str] = []
    probes_changed: list[str] = []  # same probe id, different content hash: not like-for-like
    compared: int = 0  # (member, probe, metric) pairs with a value in both
    without_ci: int = 0  # of those, pairs that cannot be tested (a CI missing)
    beyond_ci: int = 0  # of those, pairs beyond their CIs (worse, better, changed)
    within_ci: int = 0  # moved, but within their CIs
    unchanged: int = 0  # equal within the tolerance
    everything: bool = False  # rows within CIs and unchanged are listed too
    metrics: list[MetricChange] = []
    trends: list[TrendChange] = []
    flags: list[FlagChange] = []
    notes: list[str] = []
    regressions: list[str] = []  # one line per risk that got significantly worse
    rule: str = GATE_RULE

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_regression(self) -> bool:
        return bool(self.regressions)


def tolerance(numbers: list[float | None], widths: list[float] | None = None) -> float:
    """``max(1e-9 · S, 1e-3 · W)``: S the largest magnitude of ``numbers``, W the largest of ``widths``."""
    scale = max((abs(v) for v in numbers if v is not None), default=0.0)
    width = max(widths or [0.0])
    return max(REL_PRECISION * scale, CI_FRACTION * width)


def equal_within(a: float | None, b: float | None, tol: float) -> bool:
    """Both missing, or both present and at most ``tol`` apart."""
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol


def _cell(v: float | None, lo: float | None, hi: float | None) -> str:
    return estimate(v, lo, hi, missing="?")


def _oriented(lo: float, hi: float, direction: Direction, baseline: float) -> Interval:
    """The CI in oriented units (larger = riskier); a two-sided CI containing the baseline starts at 0."""
    if direction == "higher_is_riskier":
        return lo, hi
    if direction == "lower_is_riskier":
        return -hi, -lo
    a, b = abs(lo - baseline), abs(hi - baseline)
    return (0.0 if lo <= baseline <= hi else min(a, b)), max(a, b)


def _beyond(b: Interval, n: Interval, tol: float) -> bool:
    return n[0] > b[1] + tol or n[1] < b[0] - tol


def _compare(base: MetricResult, new: MetricResult, tol: float) -> Change:
    """unchanged (all equal within ``tol``), within CIs, or worse/better/changed beyond both CIs."""
    if all(equal_within(a, b, tol) for a, b in _triples(base, new)):
        return "unchanged"
    if None in (base.ci_low, base.ci_high, new.ci_low, new.ci_high):
        return "within CIs"  # untestable: counted in without_ci
    assert base.ci_low is not None and base.ci_high is not None and new.ci_low is not None and new.ci_high is not None
    if not _beyond((base.ci_low, base.ci_high), (new.ci_low, new.ci_high), tol):
        return "within CIs"
    bo = _oriented(base.ci_low, base.ci_high, new.direction, new.baseline)
    no = _oriented(new.ci_low, new.ci_high, new.direction, new.baseline)
    if no[0] > bo[1] + tol:
        return "worse"
    if no[1] < bo[0] - tol:
        return "better"
    return "changed"


def _triples(a: MetricResult, b: MetricResult) -> list[tuple[float | None, float | None]]:
    return [(a.value, b.value), (a.ci_low, b.ci_low), (a.ci_high, b.ci_high)]


def _metric_tol(a: MetricResult, b: MetricResult, scale: float) -> float:
    widths = [r.ci_high - r.ci_low for r in (a, b) if r.ci_low is not None and r.ci_high is not None]
    return tolerance([a.value, a.ci_low, a.ci_high, b.value, b.ci_low, b.ci_high, scale], widths)


def _scales(*reports: Report) -> dict[str, float]:
    """Each metric's scale (its name before any ``[breakdown]``): the largest magnitude of its values, CI
    bounds and baseline over every member of ``reports``; at least 1 for a proportion."""
    out: dict[str, float] = {}
    for rep in reports:
        for m in rep.members:
            for p in m.probes:
                for r in p.metrics:
                    nums = [abs(v) for v in (r.value, r.ci_low, r.ci_high, r.baseline) if v is not None]
                    key = f"{p.probe_id}/{r.name.split('[')[0]}"
                    out[key] = max(out.get(key, 0.0), *nums, 1.0 if r.proportion else 0.0)
    return out


def _metrics(m: MemberReport) -> dict[tuple[str, str], MetricResult]:
    return {(p.probe_id, r.name): r for p in m.probes for r in p.metrics}


def _akey(a: MetricAnalysis) -> tuple[str, str, str, str]:
    return (a.probe, a.metric, a.axis, a.checkpoint_of or "")


def _where(a: MetricAnalysis) -> str:
    return f" ({a.checkpoint_of} checkpoints)" if a.checkpoint_of else ""


def _direction_words(direction: Direction) -> str:
    return {"higher_is_riskier": "higher is riskier", "lower_is_riskier": "lower is riskier"}.get(
        direction, "farther from the baseline is riskier"
    )


def diff_reports(base: Report, new: Report, everything: bool = False) -> ReportDiff:
    """Compare two reports member by member (matched by name) and analysis by analysis; ``everything`` also
    lists the rows within their CIs and the unchanged ones."""
    d = ReportDiff(base_family=base.family.name, new_family=new.family.name, everything=everything)
    if base.family.name != new.family.name:
        d.notes.append(f"different families: {base.family.name} → {new.family.name}")
    if base.schema_version != new.schema_version:
        d.notes.append(f"schema {base.schema_version} → {new.schema_version}")
    bm = {m.name: m for m in base.members}
    nm = {m.name: m for m in new.members}
    d.base_members, d.new_members = list(bm), list(nm)
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

    scales = _scales(base, new)
    for name, newm in nm.items():
        oldm = bm.get(name)
        if oldm is None or oldm.status != "ok" or newm.status != "ok":
            continue
        old_metrics = _metrics(oldm)
        for key, r in _metrics(newm).items():
            o = old_metrics.get(key)
            if o is None or o.value is None or r.value is None:
                continue
            _compare_metric(d, name, key, o, r, scales[f"{key[0]}/{key[1].split('[')[0]}"])
    if d.without_ci:
        d.notes.append(f"{d.without_ci} of {d.compared} metric pairs have no CI and were not tested")
    _diff_analysis(base, new, d, scales)
    return d


def _compare_metric(
    d: ReportDiff, member: str, key: tuple[str, str], o: MetricResult, r: MetricResult, scale: float
) -> None:
    d.compared += 1
    tol = _metric_tol(o, r, scale)
    change = _compare(o, r, tol)
    if change == "unchanged":
        d.unchanged += 1
    elif None in (o.ci_low, o.ci_high, r.ci_low, r.ci_high):
        d.without_ci += 1
    elif change == "within CIs":
        d.within_ci += 1
    else:
        d.beyond_ci += 1
    if change in ("unchanged", "within CIs") and not d.everything:
        return
    assert o.value is not None and r.value is not None
    mc = MetricChange(
        member=member,
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
        tolerance=tol,
        regression=change == "worse",
    )
    d.metrics.append(mc)
    if mc.regression:
        d.regressions.append(
            f"{member} {key[0]}/{key[1]}: {_cell(o.value, o.ci_low, o.ci_high)} → "
            f"{_cell(r.value, r.ci_low, r.ci_high)}, beyond both 95% CIs ({_direction_words(r.direction)})"
        )


def _diff_analysis(base: Report, new: Report, d: ReportDiff, scales: dict[str, float]) -> None:
    if base.analysis is None or new.analysis is None:
        if (base.analysis is None) != (new.analysis is None):
            d.notes.append("only one report has an analysis: trends and flags not compared")
        return
    both = set(d.base_members) & set(d.new_members)
    old = {_akey(a): a for a in base.analysis.metrics}
    for a in new.analysis.metrics:
        o = old.get(_akey(a))
        if o is None:
            continue
        _trend(o, a, d, scales.get(f"{a.probe}/{a.metric.split('[')[0]}", 0.0))
        _flags(o, a, d, both)


def _trend(o: MetricAnalysis, a: MetricAnalysis, d: ReportDiff, scale: float) -> None:
    g0, g1 = o.growth_flops, a.growth_flops
    if g0 is None or g1 is None or g0.slope is None or g1.slope is None:
        return
    if None in (g0.slope_ci_low, g0.slope_ci_high, g1.slope_ci_low, g1.slope_ci_high):
        return
    assert g0.slope_ci_low is not None and g0.slope_ci_high is not None
    assert g1.slope_ci_low is not None and g1.slope_ci_high is not None
    numbers: list[float | None] = [g0.slope, g0.slope_ci_low, g0.slope_ci_high, g1.slope, g1.slope_ci_low]
    numbers += [g1.slope_ci_high, scale, *o.y, *a.y]
    tol = tolerance(numbers, [g0.slope_ci_high - g0.slope_ci_low, g1.slope_ci_high - g1.slope_ci_low])
    pairs = [(g0.slope, g1.slope), (g0.slope_ci_low, g1.slope_ci_low), (g0.slope_ci_high, g1.slope_ci_high)]
    change: TrendMove
    if all(equal_within(x, y, tol) for x, y in pairs):
        change = "unchanged"
    elif g1.slope_ci_low > g0.slope_ci_high + tol:
        change = "steeper"
    elif g1.slope_ci_high < g0.slope_ci_low - tol:
        change = "flatter"
    else:
        change = "within CIs"
    if change in ("unchanged", "within CIs") and not d.everything:
        return
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
            tolerance=tol,
        )
    )


def _flags(o: MetricAnalysis, a: MetricAnalysis, d: ReportDiff, both: set[str]) -> None:
    """Verdict and surprise changes; a regression only when it rests on members of both reports (a step
    between two of them; a surprise of one of them), so a member added is never a regression."""
    label = f"{a.probe}/{a.metric}" if a.probe else a.metric
    if o.verdict != a.verdict:
        step = a.emergence.pair or []
        # an abrupt drop in risk is no regression, nor a step onto a member only the new report has
        reg = a.verdict == "abrupt" and (a.abruptness.net or 0.0) > 0 and all(m in both for m in step)
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
            d.regressions.append(f"{label}{_where(a)}: verdict {o.verdict!r} → 'abrupt', risk up (step {pair})")
    for flag in ("surprise", "surprise_two_out"):
        b0 = getattr(o.predictability, flag) is True  # None (not computed) and False: not flagged
        b1 = getattr(a.predictability, flag) is True
        if b0 == b1:
            continue
        reg = b1 and _above(a, 1 if flag == "surprise" else 2, both)
        d.flags.append(
            FlagChange(
                probe=a.probe,
                metric=a.metric,
                axis=a.axis,
                checkpoint_of=a.checkpoint_of,
                flag=flag,
                base=str(b0).lower(),
                new=str(b1).lower(),
                regression=reg,
            )
        )
        if reg:
            d.regressions.append(f"{label}{_where(a)}: new {flag} (riskier than the smaller members predict)")


def _above(a: MetricAnalysis, held: int, both: set[str]) -> bool:
    """A held-out member of both reports lies above every fit's prediction interval (riskier than predicted)."""
    by_member: dict[str, list[bool]] = {}
    for q in a.predictability.predictions:
        if q.held_out == held and q.member in both:
            by_member.setdefault(q.member, []).append(q.outside and q.observed > q.pi_high)
    return any(all(v) for v in by_member.values())
