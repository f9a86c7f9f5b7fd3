"""What every command shares: the consoles, the options several commands take, and table printing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from riskaudit.errors import RiskauditError

if TYPE_CHECKING:
    from rich.table import Table

    from riskaudit.reporting.report import Report

# Piped output (logs, CI) gets a wide fixed width instead of rich's 80-column fallback.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
out_console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)


ProbeDirOption = Annotated[
    list[Path] | None,
    typer.Option("--probe-dir", help="A directory of your own probe YAML files (repeatable).", show_default=False),
]


WideOption = Annotated[
    bool,
    typer.Option(
        "--wide",
        help="Every metric and every column in one table per probe, however wide (lines may wrap); "
        "default: the headline metrics, laid out to fit the terminal.",
    ),
]


def table_width(wide: bool) -> int | None:
    """The width tables are laid out for: the console's, or None (no limit) with --wide."""
    return None if wide else out_console.width


def print_tables(tables: list[Table], wide: bool = False) -> None:
    from riskaudit.reporting.layout import table_width as natural_width

    for table in tables:
        if wide:  # may be wider than the console: printed at its natural width, the terminal wraps the lines
            out_console.print(table, width=max(out_console.width, natural_width(table)), crop=False)
        else:
            out_console.print(table)


def print_report(report: Report, detail: bool, wide: bool = False) -> None:
    """The scan tables (one per probe) and the scaling analysis of the headline metrics."""
    from riskaudit.reporting.render import headline_keys, scan_tables
    from riskaudit.reporting.render_analysis import analysis_tables

    print_tables(scan_tables(report, table_width(wide), wide=wide), wide)
    if report.analysis is not None:
        only = None if wide else headline_keys(report)
        print_tables(analysis_tables(report.analysis, detail=detail or wide, only=only, width=table_width(wide)), wide)


def write_html(report_path: Path, out: Path | None, policy_path: Path | None) -> Path:
    """Render the HTML page of the report at ``report_path`` (checked against a policy when given)."""
    from riskaudit.reporting.html_report import html_path_for, render_html
    from riskaudit.reporting.outputs import atomic_write_bytes, check_writable
    from riskaudit.reporting.policy import evaluate_policy, load_policy
    from riskaudit.reporting.report import read_report

    page = out if out is not None else html_path_for(report_path)
    check_writable(page, "the HTML report")
    rep = read_report(report_path)
    result = None if policy_path is None else evaluate_policy(rep, load_policy(policy_path))
    try:
        data = report_path.read_bytes()
    except OSError as exc:
        raise RiskauditError(f"cannot read report {report_path}: {exc.strerror or exc}") from exc
    text = render_html(rep, data, result, None if policy_path is None else str(policy_path))
    atomic_write_bytes(page, text.encode("utf-8"))
    return page
