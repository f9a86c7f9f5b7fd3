"""Every terminal table rendered at 80 and 120 columns: nothing wider than the terminal, no cell cut with an
ellipsis, every number cell whole on one line; and what the tables say beside the numbers: why a series has no
verdict (two members: their difference and its paired CI), when resamples were parametric, why "first >
baseline" is blank. (Text cut without an ellipsis: tests/test_no_crop.py.)"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, Scanned, run_cli_here
from rich.console import Console
from rich.table import Table
from rich.text import Text

from riskaudit.analysis.family import analyze_family
from riskaudit.analysis.results import FamilyAnalysis
from riskaudit.inputs.families import builtin_families, load_family
from riskaudit.probes.registry import list_probe_files
from riskaudit.reporting.diff import diff_reports
from riskaudit.reporting.diff_render import diff_tables
from riskaudit.reporting.layout import Column, ci_cell, fit_tables
from riskaudit.reporting.lookup import find_metric
from riskaudit.reporting.policy import evaluate_policy, load_policy, skipped_table, violations_table, violations_tables
from riskaudit.reporting.reanalysis import series_from_report
from riskaudit.reporting.render import (
    families_table,
    family_table,
    headline_keys,
    headline_metrics,
    metric_cell,
    probes_table,
    scan_tables,
)
from riskaudit.reporting.render_analysis import analysis_json, analysis_tables
from riskaudit.reporting.report import Report, read_replicates, read_report

DEMO = REPO / "reports" / "demo.json"
WIDTHS = (80, 120)


@pytest.fixture(scope="module")
def report() -> Report:
    return read_report(DEMO)


def _render(tables: list[Table], width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    for t in tables:
        console.print(t)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def _check(text: str, width: int) -> list[str]:
    lines = text.splitlines()
    assert "…" not in text, next(ln for ln in lines if "…" in ln)
    assert max(len(ln.rstrip()) for ln in lines) <= width
    return lines


def _all_tables(report: Report, width: int) -> dict[str, list[Table]]:
    assert report.analysis is not None
    policy = load_policy(REPO / "examples" / "policy-strict.toml")
    result = evaluate_policy(report, policy)
    worse = report.model_copy(deep=True)
    worse.members[-1].probes[0].metrics[0].value = 0.99
    worse.members[-1].probes[0].metrics[0].ci_low = 0.98
    worse.members[-1].probes[0].metrics[0].ci_high = 0.995
    return {
        "scan": scan_tables(report, width),
        "analysis": analysis_tables(report.analysis, width=width),
        "analysis detail": analysis_tables(report.analysis, detail=True, width=width),
        "families": families_table(list(builtin_families().values()), width),
        "family demo checkpoints": family_table(load_family("demo", ["step103", "step415", "main"]), width),
        "family opt": family_table(load_family("opt"), width),
        "probes": probes_table(list_probe_files(), width),
        "violations": [violations_table(result)],
        "violations fitted": violations_tables(result, width),
        "skipped": [skipped_table(result)],
        "diff": diff_tables(diff_reports(report, worse), width),
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_every_table_fits_without_an_ellipsis(report: Report, width: int) -> None:
    for name, tables in _all_tables(report, width).items():
        assert tables, name
        _check(_render(tables, width), width)


@pytest.mark.parametrize("width", WIDTHS)
def test_scan_cells_are_whole_and_every_headline_is_shown(report: Report, width: int) -> None:
    text = _render(scan_tables(report, width), width)
    lines = _check(text, width)
    for probe_id, heads in headline_metrics(report).items():
        for name, header in heads:
            assert header in text, (probe_id, header)
            found = [
                next((r for p in m.probes if p.probe_id == probe_id for r in p.metrics if r.name == name), None)
                for m in report.members
            ]
            assert any(r is not None for r in found), (probe_id, name)
            for m, r in zip(report.members, found, strict=True):
                if r is None:  # a metric this member has no value of (the reference of a ratio-to-reference metric)
                    continue
                cell = metric_cell(r)
                assert "[" in cell
                # the whole value [CI] cell is on the member's line
                assert any(ln.startswith(m.name + " ") and cell in ln for ln in lines), (m.name, name, cell)


def test_tables_split_at_80_and_fit_one_table_per_probe_at_180(report: Report) -> None:
    # cells carry the CI's digits (numbers.estimate), so six pronoun metrics need 180 columns side by side
    assert len(scan_tables(report, 80)) > len(scan_tables(report, 160)) > len(scan_tables(report, 180))
    at_180 = scan_tables(report, 180)
    assert len(at_180) == len(headline_metrics(report))  # one table per probe at 180 columns
    for t in at_180:
        assert [str(c.header) for c in t.columns][:2] == ["member", "FLOPs"]


def test_wide_shows_every_metric(report: Report) -> None:
    wide = scan_tables(report, None, wide=True)
    for t, (probe_id, heads) in zip(wide, headline_metrics(report, wide=True).items(), strict=True):
        every = {r.name for m in report.members for p in m.probes if p.probe_id == probe_id for r in p.metrics}
        assert {name for name, _ in heads} == every  # breakdowns included
        assert len(t.columns) == 2 + len(every) + 2  # member, FLOPs, every metric, params, tokens


def test_compact_cells() -> None:
    # the one number format (numbers.estimate): digits by the CI's width, signs only where they belong
    assert ci_cell(0.81, 0.71, 0.88) == "0.810 [0.710, 0.880]"
    assert ci_cell(None, None, None) == "–"
    assert ci_cell(0.004, -0.015, 0.023) == "0.0040 [-0.0150, 0.0230]"
    assert ci_cell(21.8, 16.8, 26.6) == "21.80 [16.80, 26.60]"
    assert ci_cell(0.0142, -0.0266, 0.0443, signed=True) == "+0.0142 [-0.0266, +0.0443]"
    assert ci_cell(3.56e-5, 1.2e-5, 6.01e-5, signed=True) == "+3.56e-5 [+1.20e-5, +6.01e-5]"
    assert ci_cell(0.0, 0.0, 0.0, signed=True) == "0 [0, 0]"
    assert ci_cell(0.5, None, None) == "0.500"


def test_key_columns_repeat_and_parts_are_balanced() -> None:
    cols = [Column("member", key=True), *(Column(f"metric {i}", "right") for i in range(5))]
    rows = [["demo-5.8m@step103", *["+0.81 [+0.71,+0.88]"] * 5]]
    tables = fit_tables("t", cols, rows, 90)  # room for the member and three metrics
    assert len(tables) == 2
    assert [len(t.columns) for t in tables] == [4, 3]  # 3 + 2 metrics, not 3 + 1 + 1
    assert all(str(t.columns[0].header) == "member" for t in tables)


def test_cli_tables_follow_columns_and_wide(tmp_path: Path) -> None:
    narrow = run_cli_here("report", "show", str(DEMO), env={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    _check(narrow.stdout, 80)
    wide = run_cli_here("report", "show", str(DEMO), "--wide", env={"COLUMNS": "80"})
    assert wide.returncode == 0 and "…" not in wide.stdout
    breakdown = next(r.name for p in read_report(DEMO).members[0].probes for r in p.metrics if "[" in r.name)
    assert breakdown in wide.stdout and breakdown not in narrow.stdout
    shown = run_cli_here("report", "show", str(DEMO), "--json")
    assert json.loads(shown.stdout)["family"]["name"] == "demo"


# ------------------------------------------------------------------ the terminal says what the report says


def two_members(report: Report, paired: bool = True) -> tuple[Report, FamilyAnalysis]:
    """The demo report cut to two members (demo-150k, demo-1.3m), analysed from the scan's paired replicates
    (or, ``paired=False``, parametrically from the members' CIs) as a scan of those two would be."""
    sub = report.model_copy(update={"members": [report.members[1], report.members[3]]})
    reps = read_replicates(DEMO, report) if paired else None
    assert report.analysis is not None
    fa = analyze_family(series_from_report(sub, reps), report.analysis.config)
    return sub.model_copy(update={"analysis": fa}), fa


def _text(tables: list[Table], width: int) -> str:
    return " ".join(_render(tables, width).split())


def test_two_members_show_their_difference_with_its_paired_ci(report: Report) -> None:
    sub, fa = two_members(report)
    small, large = sub.members[0].name, sub.members[1].name
    reps = read_replicates(DEMO, report)
    assert reps is not None
    for a in fa.metrics:
        assert a.verdict == "insufficient data" and "at least 3" in a.verdict_reason
        d = a.difference
        assert d is not None and (d.smaller, d.larger) == (small, large), a.metric
        r_small, r_large = reps[small][a.probe][a.metric], reps[large][a.probe][a.metric]
        diff = np.array(
            [y - x for x, y in zip(r_small, r_large, strict=True) if x is not None and y is not None], dtype=float
        )
        if len(diff) < len(r_small) / 2:  # undefined in most resamples: no paired CI
            continue
        assert d.ci_method == "paired bootstrap", a.metric
        v_small = find_metric(sub.members[0], a.probe, a.metric)
        v_large = find_metric(sub.members[1], a.probe, a.metric)
        assert v_small is not None and v_large is not None
        assert d.value == pytest.approx(v_large.value - v_small.value)
        assert (d.ci_low, d.ci_high) == pytest.approx(tuple(np.quantile(diff, [0.025, 0.975])))
    text = _text(analysis_tables(fa, only=headline_keys(sub), width=80), 80)
    assert f"{large} − {small} [95% CI]" in text and "no scaling verdict: it needs 3" in text
    assert "needs at least 3 analysable members" in text and "paired bootstrap over items" in text
    pearson = next(a for a in fa.metrics if a.metric == "stereotype_correlation_pearson")
    assert pearson.difference is not None and pearson.difference.excludes_zero
    d = pearson.difference
    assert ci_cell(d.value, d.ci_low, d.ci_high, signed=True) in text
    assert "insufficient data" not in text  # no table of blanks: the reason, and what the two members show
    assert analysis_json(fa)["results"][0]["difference"]["ci_method"] == "paired bootstrap"


def test_a_two_member_scan_says_why_it_has_no_verdict(tiny_family_scan: Scanned) -> None:
    shown = run_cli_here("report", "show", str(tiny_family_scan.out), env={"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "two members (no scaling verdict: it needs 3)" in text and "paired bootstrap over items" in text
    stored = read_report(tiny_family_scan.out).analysis
    assert stored is not None and all(a.difference is not None for a in stored.metrics if a.n_members == 2)


def test_parametric_resampling_is_said_in_the_table(report: Report) -> None:
    fa = analyze_family(series_from_report(report), report.analysis.config if report.analysis else None)
    assert {a.resampling for a in fa.metrics} >= {"normal from CI"}
    text = _text(analysis_tables(fa, width=80), 80)
    assert "resamples are parametric (normal from CI) for" in text and "not paired bootstrap replicates" in text
    assert report.analysis is not None  # the scan's own analysis is paired: nothing to say
    assert "parametric" not in _text(analysis_tables(report.analysis, width=80), 80)
    _, two = two_members(report, paired=False)
    assert "normal draws from each member's CI, independent across the two" in _text(analysis_tables(two, width=80), 80)


def test_a_blank_first_above_baseline_says_why(report: Report) -> None:
    assert report.analysis is not None
    tables = analysis_tables(report.analysis, detail=True, width=None)
    table = tables[0]
    header = [str(c.header) for c in table.columns]
    cells = [c.plain if isinstance(c, Text) else str(c) for c in table.columns[header.index("first > baseline")].cells]
    metrics = [c.plain if isinstance(c, Text) else str(c) for c in table.columns[0].cells]
    by_name = {a.metric: a for a in report.analysis.metrics}
    blanks = 0
    for name, cell in zip(metrics, cells, strict=True):
        a = by_name.get(name)
        if a is None:  # a probe's row
            continue
        if a.emergence.wei_member is not None:
            assert cell == a.emergence.wei_member
            continue
        blanks += 1
        assert cell != "–" and cell.startswith("– "), (name, a.emergence.wei_note)
        assert f"{cell}: " in str(table.caption)
    assert blanks > 10
    caption = " ".join(str(table.caption).split())
    assert "– none: no member's CI lies above the baseline" in caption
    assert "first > baseline: the first member whose 95% CI lies above the metric's baseline" in caption
