"""Finding things in a report: members in scale order, the (probe, metric) keys, a member's result for a metric,
and a metric's scaling analysis. Shared by the policy gate, the terminal tables, the card, the plots and the
HTML page, so that they all pick the same member, result and analysis. Never prints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from riskaudit.analysis.metric import MetricResult
from riskaudit.analysis.results import MetricAnalysis
from riskaudit.reporting.report import MemberReport, Report

__all__ = [
    "MemberKey",
    "find_analyses",
    "find_metric",
    "member_analysis",
    "metric_keys",
    "metric_pattern",
    "representative_members",
    "sort_by_scale",
]

MemberKey = tuple[str, str]  # (probe id, metric name)


def sort_by_scale(members: Iterable[MemberReport]) -> list[MemberReport]:
    """Smallest first: by training FLOPs when every member has them, else by parameters then tokens."""
    ms = list(members)
    if all(m.flops is not None for m in ms):
        return sorted(ms, key=lambda m: (m.flops or 0.0, m.params_total or 0))
    return sorted(ms, key=lambda m: (m.params_total or m.params_nonembedding or 0, m.train_tokens or 0.0))


def representative_members(report: Report) -> list[MemberReport]:
    """One member per base model (``base@rev`` is a checkpoint of ``base``: the one with most tokens), by scale.

    Failed members are included; this mirrors the members axis of the analysis (``riskaudit.analysis.scan_series``).
    """
    groups: dict[str, list[tuple[int, MemberReport]]] = {}
    for i, m in enumerate(report.members):
        groups.setdefault(m.name.partition("@")[0], []).append((i, m))
    finals = [max(ix, key=lambda t: (t[1].train_tokens or 0.0, t[0]))[1] for ix in groups.values()]
    return sort_by_scale(finals)


def metric_keys(report: Report) -> list[MemberKey]:
    """Every (probe id, metric name) present in any member, in first-seen order."""
    seen: dict[MemberKey, None] = {}
    for m in report.members:
        for p in m.probes:
            for r in p.metrics:
                seen.setdefault((p.probe_id, r.name), None)
    return list(seen)


def find_metric(member: MemberReport, probe: str, metric: str) -> MetricResult | None:
    """The member's result for (probe, metric), or None."""
    for p in member.probes:
        if p.probe_id == probe:
            for r in p.metrics:
                if r.name == metric:
                    return r
    return None


def metric_pattern(pattern: str) -> re.Pattern[str]:
    """A metric-name pattern: ``*`` matches any text, everything else (brackets included) is literal."""
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def find_analyses(
    report: Report, probe: str, metric: str, axis: Literal["members", "checkpoints"] = "members"
) -> list[MetricAnalysis]:
    """The report's analyses of ``metric`` of ``probe`` (or family-level ones, without a probe) on ``axis``, in
    report order: at most one on the members axis, one per base model on the checkpoints axis."""
    if report.analysis is None:
        return []
    return [a for a in report.analysis.metrics if a.metric == metric and a.probe in (probe, "") and a.axis == axis]


def member_analysis(report: Report, probe: str, metric: str) -> MetricAnalysis | None:
    """The analysis of (probe, metric) across the family's members (what the card, the plots and the HTML page
    show), or None when the report has none."""
    found = find_analyses(report, probe, metric, "members")
    return found[0] if found else None
