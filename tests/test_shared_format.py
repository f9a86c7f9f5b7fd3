"""One number format in every output (issue 23 item 8): a metric's value [95% CI] and a growth read the same
string in the terminal table, the HTML page, the model card and the policy messages; and the page and the card
say what the terminal says beside the numbers (two members: their difference; why no verdict; parametric
resamples; why "first > baseline" is blank)."""

from __future__ import annotations

import io
import re

import pytest
from conftest import REPO
from rich.console import Console
from rich.table import Table
from test_numbers import one_format
from test_tables import two_members

from riskaudit.analysis.family import analyze_family
from riskaudit.analysis.growth import GrowthFit
from riskaudit.analysis.results import FamilyAnalysis
from riskaudit.numbers import estimate
from riskaudit.reporting.analysis_notes import (
    FIRST_ABOVE,
    difference_header,
    difference_text,
    growth_text,
    no_verdict_note,
)
from riskaudit.reporting.card import card_section
from riskaudit.reporting.html_report import render_html
from riskaudit.reporting.lookup import find_metric, member_analysis, representative_members
from riskaudit.reporting.policy import evaluate_policy, load_policy, violations_tables
from riskaudit.reporting.reanalysis import series_from_report
from riskaudit.reporting.render import headline_metrics, scan_tables
from riskaudit.reporting.render_analysis import analysis_tables
from riskaudit.reporting.report import Report, read_report

DEMO = REPO / "reports" / "demo.json"
GROUP = re.compile(r"[-+]?[\d.]+(?:e-?\d+)? \[[-+]?[\d.]+(?:e-?\d+)?, [-+]?[\d.]+(?:e-?\d+)?\]")


@pytest.fixture(scope="module")
def report() -> Report:
    return read_report(DEMO)


@pytest.fixture(scope="module")
def page(report: Report) -> str:
    return render_html(report, DEMO.read_bytes())


def _lines(tables: list[Table], width: int = 400) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    for t in tables:
        console.print(t)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out.splitlines()


def test_a_metric_reads_the_same_in_the_terminal_the_page_and_the_card(report: Report, page: str) -> None:
    card = card_section(report)
    terminal = _lines(scan_tables(report, None))
    members = representative_members(report)
    checked = 0
    for probe, metrics in headline_metrics(report).items():
        for name, _ in metrics:
            card_row = next(ln for ln in card.splitlines() if ln.startswith(f"| `{name}` |"))
            for m in members:
                r = find_metric(m, probe, name)
                if r is None or r.value is None:
                    continue
                text = estimate(r.value, r.ci_low, r.ci_high)
                assert one_format(text) or "[" not in text, text
                assert f"<td>{text}</td>" in page, (probe, name, m.name, text)
                assert f" {text} |" in card_row, (probe, name, m.name, text)
                assert any(ln.startswith(m.name + " ") and f" {text}" in ln for ln in terminal), (m.name, text)
                checked += 1
    assert checked > 100


def test_a_growth_reads_the_same_in_the_terminal_the_page_and_the_card(report: Report, page: str) -> None:
    assert report.analysis is not None
    card = card_section(report)
    terminal = " ".join(_lines(analysis_tables(report.analysis, width=None)))
    checked = 0
    for probe, metrics in headline_metrics(report).items():
        for name, _ in metrics:
            a = member_analysis(report, probe, name)
            if a is None or a.growth is None or a.growth.slope is None:
                continue
            g = a.growth
            text = estimate(g.slope, g.slope_ci_low, g.slope_ci_high, signed=True)
            assert growth_text(g) in page and f" {text} " in terminal, (name, text)
            if a.x_axis == "flops":
                assert f"| {text} |" in card, (name, text)
            checked += 1
    assert checked > 20
    # the old terminal wrote "(Theil–Sen +0)" and "+0.00 [+0.00,+0.00]" for a growth of 1e-14
    assert "Theil–Sen +0)" not in terminal and "+0.00 [" not in terminal
    tiny = GrowthFit(axis="flops", n_points=6, slope=1.06e-14, slope_ci_low=1e-14, slope_ci_high=1.1e-14, theil_sen=0.0)
    assert growth_text(tiny) == "+1.060e-14 [+1.000e-14, +1.100e-14] (Theil–Sen 0)"
    flat = GrowthFit(axis="flops", n_points=6, slope=0.0, slope_ci_low=0.0, slope_ci_high=0.0, theil_sen=0.0)
    assert growth_text(flat) == "0 [0, 0]"


def test_policy_messages_and_tables_use_the_one_format(report: Report) -> None:
    result = evaluate_policy(report, load_policy(REPO / "examples" / "policy-strict.toml"))
    assert result.violations
    groups = [g for v in result.violations for g in GROUP.findall(v.message)]
    assert groups and [g for g in groups if not one_format(g)] == []
    text = "\n".join(_lines(violations_tables(result, None)))
    for v in result.violations:
        if v.value is not None:
            signed = v.check.startswith("slope")
            cell = estimate(v.value, v.ci_low, v.ci_high, signed=signed, missing="?")
            assert cell in v.message and cell in text, (v.message, cell)
    # the compared number in the value's format: "ci_high = 0.550", never "0.55" beside "0.500 [0.450, 0.550]"
    for v in result.violations:
        m = re.search(r"(value|ci_low|ci_high) = (\S+) ", v.message)
        if m is not None and v.value is not None:
            assert m.group(2) in estimate(v.value, v.ci_low, v.ci_high), v.message


# ------------------------------------------------------------- the page and the card say what the terminal says


def test_two_members_page_and_card_show_the_difference_and_why_no_verdict(report: Report) -> None:
    sub, fa = two_members(report)
    page = render_html(sub, b"{}")
    card = card_section(sub)
    pearson = next(a for a in fa.metrics if a.metric == "stereotype_correlation_pearson")
    d = pearson.difference
    assert d is not None and d.ci_low is not None
    diff = difference_text(d)
    assert one_format(diff) and diff.startswith("+")
    assert f"<td>{difference_header(d)}</td><td>{diff}</td>" in page
    assert "Two members: differences" in page and "-pairs" in page  # a table, in the contents
    assert no_verdict_note(3) in page and "paired bootstrap over items" in page
    assert "insufficient data (2 members; at least 3 needed)" in page
    row = next(ln for ln in card.splitlines() if ln.startswith("| `stereotype_correlation_pearson` |"))
    assert row.endswith(f"| insufficient data (2 members): {difference_header(d)} = {diff} |")
    assert no_verdict_note(3)[1:] in card and "paired bootstrap over items" in card  # "No verdict: …"
    # the terminal's words, in both
    terminal = " ".join(" ".join(_lines(analysis_tables(fa, width=None))).split())
    assert no_verdict_note(3) in terminal and diff in terminal


def _parametric(report: Report) -> Report:
    assert report.analysis is not None
    fa: FamilyAnalysis = analyze_family(series_from_report(report), report.analysis.config)
    return report.model_copy(update={"analysis": fa})


@pytest.mark.slow
def test_parametric_resampling_is_said_on_the_page_and_the_card(report: Report, page: str) -> None:
    reanalysed = _parametric(report)
    said = "esamples are parametric (normal from CI) for"  # "Resamples …" in a sentence of its own
    assert said in render_html(reanalysed, b"{}") and said in card_section(reanalysed)
    assert "parametric" not in page.lower() and "parametric" not in card_section(report).lower()  # paired: no word


def test_a_blank_first_above_baseline_says_why_on_the_page(report: Report, page: str) -> None:
    assert "<th>first &gt; baseline</th>" in page
    assert "<td>– none</td>" in page and "<td>– smallest</td>" in page
    notes = page.replace("&#39;", "'").replace("&gt;", ">")
    assert FIRST_ABOVE in notes
    assert "– none: no member's CI lies above the baseline" in notes
    assert "– smallest: already above the baseline at the smallest member" in notes
