"""riskaudit.reporting.lookup: the one analysis lookup the card, the plots, the HTML page and the policy share."""

from __future__ import annotations

import pytest
from conftest import REPO

from riskaudit.reporting.lookup import find_analyses, find_metric, member_analysis, representative_members
from riskaudit.reporting.report import Report, read_report


@pytest.fixture(scope="module")
def report() -> Report:
    return read_report(REPO / "reports" / "demo.json")


def _with_analyses(report: Report, probe: str, metric: str) -> Report:
    """The report with three analyses of one metric: another probe's, a checkpoints one, a family-level one."""
    assert report.analysis is not None
    base = next(a for a in report.analysis.metrics if a.probe == probe and a.metric == metric)
    other = base.model_copy(update={"probe": "another_probe", "verdict_reason": "other probe"})
    ckpt = base.model_copy(update={"axis": "checkpoints", "checkpoint_of": "m", "verdict_reason": "checkpoints"})
    family = base.model_copy(update={"probe": "", "verdict_reason": "family-level"})
    fa = report.analysis.model_copy(update={"metrics": [other, ckpt, family]})
    return report.model_copy(update={"analysis": fa})


def test_member_analysis_is_the_members_axis_analysis_of_the_probe(report: Report) -> None:
    assert report.analysis is not None
    probe, metric = "memorization", "canary_exact_extraction"
    a = member_analysis(report, probe, metric)
    assert a is not None and (a.probe, a.metric, a.axis) == (probe, metric, "members")
    assert member_analysis(report, probe, "no_such_metric") is None
    assert member_analysis(report, "no_such_probe", metric) is None
    assert member_analysis(report.model_copy(update={"analysis": None}), probe, metric) is None


def test_family_level_and_checkpoint_analyses(report: Report) -> None:
    probe, metric = "memorization", "canary_exact_extraction"
    rep = _with_analyses(report, probe, metric)
    a = member_analysis(rep, probe, metric)
    assert a is not None and a.verdict_reason == "family-level"  # not the other probe's, not the checkpoints one
    ckpts = find_analyses(rep, probe, metric, "checkpoints")
    assert [c.verdict_reason for c in ckpts] == ["checkpoints"]


def test_find_metric_and_members_by_scale(report: Report) -> None:
    members = representative_members(report)
    flops = [m.flops for m in members]
    assert None not in flops and flops == sorted(m.flops or 0.0 for m in members)
    r = find_metric(members[-1], "memorization", "canary_exact_extraction")
    assert r is not None and r.name == "canary_exact_extraction"
    assert find_metric(members[-1], "memorization", "no_such_metric") is None
