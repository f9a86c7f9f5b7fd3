"""Every terminal table rendered at 80 and 120 columns: nothing wider than the terminal, no cell cut with an
ellipsis, every number cell whole on one line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import REPO, run_cli_here
from rich.console import Console
from rich.table import Table

from riskaudit.inputs.families import builtin_families, load_family
from riskaudit.probes.registry import list_probe_files
from riskaudit.reporting.diff import diff_reports, diff_tables
from riskaudit.reporting.layout import Column, ci_cell, column_format, fit_tables
from riskaudit.reporting.policy import evaluate_policy, load_policy, skipped_table, violations_table, violations_tables
from riskaudit.reporting.render import (
    families_table,
    family_table,
    headline_metrics,
    metric_cell,
    probes_table,
    scan_tables,
)
from riskaudit.reporting.render_analysis import analysis_tables
from riskaudit.reporting.report import Report, read_report

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
            decimals, signed = column_format([v for r in found if r is not None for v in (r.value, r.ci_low, r.ci_high)])
            for m, r in zip(report.members, found, strict=True):
                if r is None:  # a metric this member has no value of (the reference of a ratio-to-reference metric)
                    continue
                cell = metric_cell(r, decimals, signed)
                assert "[" in cell
                # the whole value [CI] cell is on the member's line
                assert any(ln.startswith(m.name + " ") and cell in ln for ln in lines), (m.name, name, cell)


def test_tables_split_at_80_and_fit_one_table_per_probe_at_160(report: Report) -> None:
    assert len(scan_tables(report, 80)) > len(scan_tables(report, 160))
    at_160 = scan_tables(report, 160)
    assert len(at_160) == len(headline_metrics(report))  # one table per probe at 160 columns
    for t in at_160:
        assert [str(c.header) for c in t.columns][:2] == ["member", "FLOPs"]


def test_wide_shows_every_metric(report: Report) -> None:
    wide = scan_tables(report, None, wide=True)
    for t, (probe_id, heads) in zip(wide, headline_metrics(report, wide=True).items(), strict=True):
        every = {r.name for m in report.members for p in m.probes if p.probe_id == probe_id for r in p.metrics}
        assert {name for name, _ in heads} == every  # breakdowns included
        assert len(t.columns) == 2 + len(every) + 2  # member, FLOPs, every metric, params, tokens


def test_compact_cells() -> None:
    assert ci_cell(0.81, 0.71, 0.88) == "0.81 [0.71,0.88]"
    assert ci_cell(None, None, None) == "–"
    assert column_format([0.004, -0.015, 0.023]) == (3, True)
    assert column_format([21.8, 16.8, 26.6]) == (1, False)
    assert column_format([0.81, 0.71]) == (2, False)


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
