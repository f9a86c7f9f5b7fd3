"""Commands on saved reports: ``report show``, ``report html``, ``schema``, ``check``, ``diff``, ``card``, ``plot``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from riskaudit.cli.common import (
    WideOption,
    err_console,
    out_console,
    print_report,
    print_tables,
    table_width,
    write_html,
)
from riskaudit.errors import RiskauditError

if TYPE_CHECKING:
    from riskaudit.reporting.report import Report


def load_report(path: Path) -> Report:
    """Read a report for a command; when its per-item sidecar is absent, say once (stderr) what that leaves
    out and go on with the JSON alone."""
    from riskaudit.reporting.report import missing_sidecar_note, read_report

    rep = read_report(path)
    note = missing_sidecar_note(path, rep)
    if note is not None:
        err_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    return rep


report_app = typer.Typer(help="Saved reports.", no_args_is_help=True, rich_markup_mode=None)


@report_app.command("show")
def report_show(
    report: Annotated[Path, typer.Argument(help="A riskaudit report JSON.")],
    detail: Annotated[bool, typer.Option("--detail", help="Analysis of every metric, breakdowns included.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report itself (validated, sidecar checked) as JSON.")
    ] = False,
    wide: WideOption = False,
) -> None:
    """Re-render the terminal tables of a saved report."""
    rep = load_report(report)
    if as_json:
        sys.stdout.write(rep.model_dump_json(indent=1) + "\n")
        return
    print_report(rep, detail=detail, wide=wide)


@report_app.command("html")
def report_html(
    report: Annotated[Path, typer.Argument(help="A riskaudit report JSON.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The page to write (default: <report>.html).")] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Also check the report against this policy and show the result.")
    ] = None,
) -> None:
    """One self-contained HTML page (inline CSS and plots, no JavaScript, no network): verdicts first, then
    each probe's tables, plots and analysis, then the run metadata and the report's sha256."""
    load_report(report)  # checked first, and a missing sidecar said once
    page = write_html(report, out, policy)
    out_console.print(f"HTML report: {page}", markup=False, highlight=False)


def schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the schema to this file.")] = None,
) -> None:
    """Print the JSON Schema of the report format."""
    from riskaudit.reporting.outputs import atomic_write_bytes
    from riskaudit.reporting.schema import report_schema_text

    if out is None:
        sys.stdout.write(report_schema_text())
    else:
        atomic_write_bytes(out, report_schema_text().encode("utf-8"))


def check(
    report: Annotated[Path, typer.Argument(help="A riskaudit report JSON.")],
    policy: Annotated[
        Path | None, typer.Option("--policy", "-p", help="Policy TOML (default: [tool.riskaudit] in ./pyproject.toml).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    wide: WideOption = False,
) -> None:
    """Gate a release: exit 0 when the report passes the policy, 1 on a violation, 2 on unusable input."""
    from riskaudit.reporting.policy import (
        evaluate_policy,
        find_policy,
        load_policy,
        policy_summary,
        skipped_table,
        violations_tables,
    )

    path = policy if policy is not None else find_policy()
    if path is None:
        raise RiskauditError("no policy: pass --policy POLICY.toml or add [[tool.riskaudit.rule]] to ./pyproject.toml")
    pol = load_policy(path)
    result = evaluate_policy(load_report(report), pol)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=1) + "\n")
    else:
        if result.violations:
            print_tables(violations_tables(result, table_width(wide)), wide)
        if result.skipped:
            out_console.print(skipped_table(result))
        out_console.print(policy_summary(result, str(path)), markup=False, highlight=False)
    raise typer.Exit(0 if result.passed else 1)


def diff(
    base: Annotated[Path, typer.Argument(help="The base report.")],
    new: Annotated[Path, typer.Argument(help="The new report.")],
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression",
            help="Exit 1 when a metric of a member in both reports moved beyond both 95% CIs in its risky "
            "direction, or a metric in both analyses newly became abrupt (risk up) or surprising; else 0.",
        ),
    ] = False,
    every: Annotated[
        bool, typer.Option("--all", help="Also list the metrics that moved within their CIs and the unchanged.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON (the same content).")] = False,
    wide: WideOption = False,
) -> None:
    """What changed between two reports: members added or removed, metrics beyond their 95% CIs, slopes and
    flags, grouped by member and probe; the gate rule and its result last. Values equal within float precision
    (max(1e-9·scale, 1e-3·CI width)) are unchanged."""
    from riskaudit.reporting.diff import diff_reports
    from riskaudit.reporting.diff_render import diff_head, diff_summary, diff_tables

    d = diff_reports(load_report(base), load_report(new), everything=every)
    if as_json:
        sys.stdout.write(d.model_dump_json(indent=1) + "\n")
    else:
        for line in diff_head(d):
            out_console.print(line, markup=False, highlight=False)
        for table in diff_tables(d, table_width(wide)):
            out_console.print()  # a blank line before each table: the groups stand apart in a CI log
            print_tables([table], wide)
        out_console.print()
        for line in diff_summary(d):
            out_console.print(line, markup=False, highlight=False)
    if fail_on_regression and d.regressions:
        raise typer.Exit(1)


def card(
    report: Annotated[Path, typer.Argument(help="A riskaudit report JSON.")],
    into: Annotated[Path | None, typer.Option("--into", help="Update this model card (README.md) in place.")] = None,
    member: Annotated[str | None, typer.Option(help="Member for the model-index results (default: largest).")] = None,
    model_name: Annotated[
        str | None, typer.Option(help="model-index name (default: the card's, else the member).")
    ] = None,
    report_url: Annotated[str | None, typer.Option(help="Public URL of the report, linked from the card.")] = None,
) -> None:
    """A model-card section (summary, flags, method, versions) with Hugging Face model-index metadata."""
    from riskaudit.reporting.card import build_card, file_sha256, update_card_file

    rep = load_report(report)
    if into is not None:
        update_card_file(into, rep, report, member=member, model_name=model_name, source_url=report_url)
        out_console.print(f"updated {into}", markup=False, highlight=False)
        return
    from riskaudit.reporting.html_report import html_path_for

    page = html_path_for(report)
    html_ref = page.name if page.exists() else None  # the page beside the report (riskaudit report html)
    built = build_card(
        rep, None, report.as_posix(), file_sha256(report), member, model_name, None, report_url, html_ref
    )
    sys.stdout.write(str(built))


def plot(
    report: Annotated[Path, typer.Argument(help="A riskaudit report JSON.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Directory (default: <report>_plots/ beside it).")
    ] = None,
    breakdowns: Annotated[bool, typer.Option(help="Also plot per-template / per-duplication metrics.")] = False,
    every: Annotated[
        bool,
        typer.Option("--all", help="Every metric (default: the headline metrics of the terminal tables)."),
    ] = False,
) -> None:
    """One PNG per headline risk metric: metric vs training FLOPs, CIs, trend, emergence point, companion."""
    from riskaudit.reporting.outputs import check_writable_dir
    from riskaudit.reporting.plots import plot_report
    from riskaudit.reporting.render import headline_keys
    from riskaudit.run.request import plot_dir_for

    rep = load_report(report)
    out_dir = out if out is not None else plot_dir_for(report)
    check_writable_dir(out_dir, "the plots")
    t0 = time.perf_counter()
    only = None if every or breakdowns else headline_keys(rep)
    paths = plot_report(rep, out_dir, breakdowns=breakdowns, only=only)
    out_console.print(
        f"{len(paths)} plots in {out_dir} ({time.perf_counter() - t0:.1f} s)", markup=False, highlight=False
    )
