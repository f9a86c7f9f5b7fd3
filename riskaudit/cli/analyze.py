"""``riskaudit analyze``: the scaling analysis of a CSV of results from any harness, of a directory of
lm-evaluation-harness results files, or of a riskaudit report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from riskaudit.cli.common import WideOption, err_console, print_tables, table_width
from riskaudit.errors import RiskauditError


def analyze(
    points: Annotated[
        Path,
        typer.Argument(
            help="A CSV of results from any harness (columns: family, member, "
            "params, tokens, metric, value; optional flops, n, ci_low, ci_high, "
            "baseline, kind, companion, direction, probe), a directory of "
            "lm-evaluation-harness results JSON files (read recursively; one model or "
            "checkpoint per file), or a riskaudit report JSON."
        ),
    ],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON: per (family, metric) slope per decade of FLOPs "
            "with CI, abrupt + statistics, emergence pair, verdict, surprise.",
        ),
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed for the resamples (default: 0 for a CSV; a report's own analysis seed)."),
    ] = None,
    detail: Annotated[
        bool, typer.Option("--detail", help="Also show breakdown metrics (per template, stratum).")
    ] = False,
    wide: WideOption = False,
    tasks: Annotated[
        str | None,
        typer.Option(
            "--tasks",
            help="lm-evaluation-harness directory only: the tasks to analyse, comma-separated shell patterns "
            "(crows_pairs_english*,winogender_*); default every task.",
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            metavar="SUBDIR=MODEL",
            help="lm-evaluation-harness directory only: SUBDIR=MODEL, the model (hub id) whose results are the "
            "files under SUBDIR that name none (GPT-NeoX evaluation dumps); repeatable.",
        ),
    ] = None,
    family: Annotated[
        str | None,
        typer.Option(
            "--family",
            metavar="NAME|FILE.toml",
            help="lm-evaluation-harness directory only: a family TOML (or a built-in family such as demo) giving "
            "params and tokens of models that are not in the built-in table (matched by each member's source = "
            "the model name).",
        ),
    ] = None,
) -> None:
    """Growth per decade of compute, abrupt-risk flags, metric-artifact verdicts and surprises for results
    produced by riskaudit or by any other harness. A riskaudit report is re-analysed from the paired
    replicates saved beside it, which reproduces its stored analysis exactly."""
    import json

    from riskaudit.analysis.config import AnalysisConfig
    from riskaudit.analysis.family import analyze_families
    from riskaudit.analysis.points import read_points_csv
    from riskaudit.reporting.reanalysis import reanalyze_report
    from riskaudit.reporting.render_analysis import analysis_json, analysis_tables

    if not points.exists():
        raise RiskauditError(f"{points}: no such file")
    if (tasks is not None or family is not None or model) and not points.is_dir():
        raise RiskauditError("--tasks, --model and --family apply to a directory of lm-evaluation-harness results only")
    if points.is_dir():
        from riskaudit.analysis.lm_eval_series import lm_eval_series
        from riskaudit.inputs.families import load_family

        patterns = [t.strip() for t in tasks.split(",") if t.strip()] if tasks is not None else None
        fams = [load_family(family)] if family is not None else []
        assign: dict[str, str] = {}
        for item in model or []:
            sub, sep, name = item.partition("=")
            if not sep or not sub.strip() or not name.strip():
                raise RiskauditError(
                    f"--model {item!r}: expected SUBDIR=MODEL, e.g. 410M=EleutherAI/pythia-410m-deduped"
                )
            assign[sub.strip()] = name.strip()
        series, notes = lm_eval_series(points, fams, patterns, assign=assign)
        for note in notes:
            err_console.print(f"{points}: {note}", markup=False, highlight=False, soft_wrap=True)
        fas = analyze_families(series, AnalysisConfig(seed=seed or 0))
    elif points.suffix.lower() == ".json":
        again = reanalyze_report(points, seed)
        err_console.print(f"{points}: {again.source}", markup=False, highlight=False, soft_wrap=True)
        fas = [again.analysis]
    else:
        fas = analyze_families(read_points_csv(points), AnalysisConfig(seed=seed or 0))
    if as_json:
        sys.stdout.write(json.dumps(analysis_json(fas), allow_nan=False, indent=1) + "\n")
        return
    for fa in fas:
        print_tables(analysis_tables(fa, detail=detail or wide, width=table_width(wide)), wide)
