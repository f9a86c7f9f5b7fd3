"""No table the product prints cuts text, at any terminal width from 72 to 200 columns.

Every table is rendered into a rich Console of that width, as the CLI prints it. Each column is then read
back from the rendered lines at the x-range rich laid it out at, and its text (whitespace, line breaks and box
characters removed) must be exactly the column's header followed by its cells, in order; the title and the
caption must appear whole in the output. This compares strings with their source: a cell cut at the right
edge (``first > bas``, ``demo-``), or a caption cut after ``per decade of trainin``, fails, ellipsis or not.
"""

from __future__ import annotations

import copy
import io
import re

import pytest
from conftest import REPO
from rich.console import Console
from rich.table import Table
from rich.text import Text

from riskaudit.analysis.family import analyze_family
from riskaudit.inputs.families import builtin_families, load_family
from riskaudit.probes.registry import list_probe_files
from riskaudit.reporting.diff import diff_reports
from riskaudit.reporting.diff_render import diff_tables
from riskaudit.reporting.policy import evaluate_policy, load_policy, skipped_table, violations_tables
from riskaudit.reporting.reanalysis import series_from_report
from riskaudit.reporting.render import families_table, family_table, headline_keys, probes_table, scan_tables
from riskaudit.reporting.render_analysis import analysis_tables
from riskaudit.reporting.report import Report, read_replicates, read_report

DEMO = REPO / "reports" / "demo.json"
WIDTHS = (72, 80, 100, 120, 160, 200)
_GONE = re.compile(r"[\s\u2500-\u257f]")  # whitespace and box-drawing characters


def _norm(text: str) -> str:
    return _GONE.sub("", text)


def _plain(x: object) -> str:
    if isinstance(x, Text):
        return x.plain
    if isinstance(x, str):  # rich renders a str as markup
        return Text.from_markup(x).plain
    return ""


def _console(width: int) -> Console:
    return Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False, force_terminal=False)


def _render(renderable: Table, width: int) -> str:
    console = _console(width)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def _column_texts(table: Table, width: int) -> list[str]:
    """Each column's text as rendered, read back from the lines at the x-range rich gave the column."""
    body = copy.copy(table)
    body.title = body.caption = None
    lines = _render(body, width).splitlines()
    console = _console(width)
    widths = table._calculate_column_widths(console, console.options.update_width(width - table._extra_width))
    x = 1 if table.box and table.show_edge else 0
    out = []
    for w in widths:
        out.append("".join(line[x : x + w] for line in lines))
        x += w + (1 if table.box else 0)
    return out


def crops(table: Table, width: int) -> list[str]:
    """What of ``table`` does not come out whole at ``width`` (empty: nothing is cut)."""
    problems = []
    text = _render(table, width)
    assert all(len(ln.rstrip()) <= width for ln in text.splitlines())
    for name, annotation in (("title", table.title), ("caption", table.caption)):
        if annotation and _norm(_plain(annotation)) not in _norm(text):
            problems.append(f"{name} {_plain(annotation)!r}")
    for column, got in zip(table.columns, _column_texts(table, width), strict=True):
        want = _plain(column.header) + "".join(_plain(c) for c in column.cells)
        if _norm(got) != _norm(want):
            problems.append(f"column {_plain(column.header)!r}: {_norm(want)!r} rendered as {_norm(got)!r}")
    return problems


@pytest.fixture(scope="module")
def demo() -> Report:
    return read_report(DEMO)


def _product_tables(report: Report, width: int) -> dict[str, list[Table]]:
    """Every table the CLI prints, as it lays them out for ``width``."""
    assert report.analysis is not None
    result = evaluate_policy(report, load_policy(REPO / "examples" / "policy-strict.toml"))
    worse = report.model_copy(deep=True)
    worse.members[-1].probes[0].metrics[0].value = 0.99
    worse.members[-1].probes[0].metrics[0].ci_low = 0.98
    worse.members[-1].probes[0].metrics[0].ci_high = 0.995
    two = report.model_copy(update={"members": [report.members[1], report.members[3]]})
    paired = analyze_family(series_from_report(two, read_replicates(DEMO, report)), report.analysis.config)
    parametric = analyze_family(series_from_report(report), report.analysis.config)
    return {
        "scan": scan_tables(report, width),
        "two members (paired)": analysis_tables(paired, only=headline_keys(report), width=width),
        "two members --detail": analysis_tables(paired, detail=True, width=width),
        "parametric re-analysis": analysis_tables(parametric, width=width),
        "analysis (report show)": analysis_tables(report.analysis, only=headline_keys(report), width=width),
        "analysis --detail": analysis_tables(report.analysis, detail=True, width=width),
        "families": families_table(list(builtin_families().values()), width),
        "family demo checkpoints": family_table(load_family("demo", ["step103", "step415", "main"]), width),
        "family opt": family_table(load_family("opt"), width),
        "probes": probes_table(list_probe_files(), width),
        "policy violations": violations_tables(result, width),
        "policy skipped": [skipped_table(result)],
        "diff": diff_tables(diff_reports(report, worse), width),
    }


# the narrowest, the usual and the piped default width in the fast tier; the others in the whole suite
@pytest.mark.parametrize(
    "width", [w if w in (72, 80, 160) else pytest.param(w, marks=pytest.mark.slow) for w in WIDTHS]
)
def test_no_table_cuts_text(demo: Report, width: int) -> None:
    for name, tables in _product_tables(demo, width).items():
        assert tables, name
        for t in tables:
            assert crops(t, width) == [], (name, width)


def test_the_check_sees_a_cut_without_an_ellipsis() -> None:
    """The comparison itself: a column rich cuts at the right edge, no ellipsis, is reported."""
    t = Table(title="t", caption="a caption long enough to need more than one line at forty columns")
    t.add_column("member", no_wrap=True, overflow="crop")
    t.add_column("first > baseline", no_wrap=True, overflow="crop", min_width=30)
    t.add_row("demo-150k-parameters", "demo-150k")
    problems = crops(t, 40)
    assert any(p.startswith("column 'member'") for p in problems), problems
    assert any(p.startswith("caption") for p in problems), problems
    whole = Table(title="t", caption="a caption long enough to need more than one line at forty columns")
    whole.add_column("member", overflow="fold")
    whole.add_column("first > baseline", overflow="fold")
    whole.add_row("demo-150k-parameters", "demo-150k")
    assert crops(whole, 40) == []


def test_scaling_table_at_80_columns_is_whole(demo: Report) -> None:
    """The two cuts of 4e53974: the header ``first > baseline`` and the caption's ``per decade of training``."""
    assert demo.analysis is not None
    tables = analysis_tables(demo.analysis, width=80)
    text = _norm("".join(_render(t, 80) for t in tables))
    assert _norm("per decade of training FLOPs (6·N·D)") in text
    assert any(_norm("first > baseline") in _norm(col) for t in tables for col in _column_texts(t, 80))
