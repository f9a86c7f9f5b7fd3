"""The ``riskaudit`` command line: parse → call core → render. Thin on purpose."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from riskaudit import __version__
from riskaudit.errors import Interrupted, RiskauditError

if TYPE_CHECKING:
    from rich.table import Table

    from riskaudit.inputs.family_spec import Family
    from riskaudit.probes.base import Probe
    from riskaudit.reporting.report import Report
    from riskaudit.run.options import ScanOptions

app = typer.Typer(
    name="riskaudit",
    help="Audit occupation–gender bias and training-data memorization across a language-model family, "
    "and see how each risk grows with training compute.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is plain: "[tool.riskaudit]" stays, flags show no <bool>
)
zoo_app = typer.Typer(
    help="The built-in demo family (a tiny GPT-NeoX family trained by riskaudit).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(zoo_app, name="zoo")

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


def _version(value: bool) -> None:
    if value:
        out_console.print(f"riskaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise RiskauditError("--revisions needs at least one revision, e.g. step1000,step143000")
    return items


@app.command()
def families(
    name: Annotated[
        str | None, typer.Argument(help="Show one family's members (a built-in name or a TOML path).")
    ] = None,
    revisions: Annotated[
        str | None, typer.Option(help="Comma-separated checkpoints, e.g. step1000,step143000.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    wide: WideOption = False,
) -> None:
    """List the built-in families (members, parameters, training tokens, FLOPs = 6·N·D), or one family's members
    and checkpoints."""
    from riskaudit.inputs.families import builtin_families, load_family
    from riskaudit.reporting.render import families_table, family_table

    if name is None:
        fams = list(builtin_families().values())
        if as_json:
            out_console.print_json(data=[f.model_dump(mode="json") for f in fams])
        else:
            _print_tables(families_table(fams, _table_width(wide)), wide)
            if not any(f.name == "demo" for f in fams):
                out_console.print("demo: not built yet (run `riskaudit zoo build`)")
        return
    fam = load_family(name, _split(revisions))
    if as_json:
        out_console.print_json(data=fam.model_dump(mode="json"))
    else:
        _print_tables(family_table(fam, _table_width(wide)), wide)


@app.command()
def scan(
    family: Annotated[
        str, typer.Option("--family", "-f", help="A built-in family (see `riskaudit families`) or a family TOML file.")
    ],
    revisions: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated checkpoints to scan as a second scale "
            "axis, e.g. step1000,step143000 (pythia: tokens = step × 2,097,152)."
        ),
    ] = None,
    members: Annotated[str | None, typer.Option(help="Comma-separated subset of member names to scan.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Report path (default: reports/<family>.json); the per-item sidecar goes next to it (.items.jsonl).",
        ),
    ] = None,
    dtype: Annotated[
        str, typer.Option(help="float32 | float16 | bfloat16 | auto (bfloat16 on GPUs that support it, else float32).")
    ] = "float32",
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N | mps | auto.")] = "cpu",
    device_map: Annotated[
        str | None,
        typer.Option(
            "--device-map",
            help="auto: split each member over the GPUs, CPU RAM and disk (accelerate) when it does not fit "
            "one device; --device is not used then.",
        ),
    ] = None,
    max_memory: Annotated[
        str | None,
        typer.Option(
            "--max-memory",
            help="With --device-map auto: memory per device, e.g. 0=20GiB,1=20GiB,cpu=64GiB (the rest goes to disk).",
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=0, help="Sequences per forward pass (0 = automatic: the largest that fits).")
    ] = 32,
    seed: Annotated[int, typer.Option(help="Seed for sampling and bootstrap.")] = 0,
    occupations: Annotated[str, typer.Option(help="Occupation table: bls2015 | bls2022.")] = "bls2015",
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle", help="Allow pickled (.bin/.pt) weights. Unsafe: unpickling can run arbitrary code."
        ),
    ] = False,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Run Python code shipped in a model repository.")
    ] = False,
    keep_going: Annotated[
        bool,
        typer.Option("--keep-going", help="Record members that fail to load and go on (default: stop at the first)."),
    ] = False,
    add_bos: Annotated[
        str,
        typer.Option(
            "--add-bos",
            help="Start every model input with BOS: yes | no | auto (auto: as the tokenizer does by default, "
            "always for Gemma; a family TOML's add_bos applies under auto).",
        ),
    ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    plots: Annotated[
        bool, typer.Option("--plots", help="Also write one PNG per risk metric next to the report.")
    ] = False,
    html: Annotated[
        bool, typer.Option("--html", help="Also write the self-contained HTML page next to the report (<report>.html).")
    ] = False,
    data: Annotated[
        str | None,
        typer.Option(
            help="Memorization data: a hub dataset id or local jsonl / parquet / csv "
            "/ text files (default: the family's declared training data, e.g. pythia's, the demo's)."
        ),
    ] = None,
    data_config: Annotated[str | None, typer.Option(help="Hub dataset configuration.")] = None,
    data_split: Annotated[str, typer.Option(help="Dataset split (slicing allowed, e.g. train[:5000]).")] = "train",
    data_column: Annotated[str | None, typer.Option(help="Text or token-id column.")] = None,
    data_dup_column: Annotated[str | None, typer.Option(help="Column: times each document occurs in training.")] = None,
    data_label_column: Annotated[
        str | None, typer.Option(help="Column: 1 = trained on (member), 0 = held out.")
    ] = None,
    data_revision: Annotated[str | None, typer.Option(help="Hub dataset revision.")] = None,
    prefix_len: Annotated[
        int | None, typer.Option(min=1, help="Extraction prefix tokens (default 32; Biderman et al. 2023).")
    ] = None,
    suffix_len: Annotated[int | None, typer.Option(min=1, help="Extraction suffix tokens (default 32).")] = None,
    canaries: Annotated[
        Path | None,
        typer.Option(
            "--canaries",
            help="Your canaries (JSONL: id, prefix, secret, duplicates, format such as ' {digits:10}'); "
            "replaces the family's own. See docs/memorization.md.",
        ),
    ] = None,
    exposure_candidates: Annotated[
        int | None,
        typer.Option(
            "--exposure-candidates", min=3, help="Candidates sampled per canary for the skew-normal exposure estimate."
        ),
    ] = None,
    no_memorization: Annotated[
        bool, typer.Option("--no-memorization", help="Skip the memorization suite (no training data is loaded).")
    ] = False,
    probe_dir: ProbeDirOption = None,
    include_text: Annotated[
        bool,
        typer.Option(
            "--include-text",
            help="Put extracted training text in the per-item records (default: hashes, lengths and positions only).",
        ),
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Directory of the result store (default: the user cache dir, or $RISKAUDIT_CACHE_DIR); "
            "units already computed for the same weights, dtype, probe and options are reused.",
            show_default=False,
        ),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Compute everything; neither read nor write the result store.")
    ] = False,
    probe_ids: Annotated[
        str | None,
        typer.Option("--probes", help="Comma-separated subset of probe ids to run (see `riskaudit probes list`)."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            help="A smoke run: the first N items of each probe (bias probes: N occupations; memorization: N "
            "documents, N held-out, N canaries per duplication count). Recorded in the report; `check` refuses "
            "it unless the policy sets allow_limited = true.",
        ),
    ] = None,
    wide: WideOption = False,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="Where units run: local (one member after another here) | ray (one Ray task per member and "
            "revision, over a Ray cluster's CPUs and GPUs; pip install 'riskaudit[ray]').",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --executor ray: the cluster, 'auto' (the one started on this machine with `ray start`) or "
            "HOST:PORT (default: start a local Ray for this scan).",
            show_default=False,
        ),
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print the plan and exit, loading no model: each unit's estimated memory, the resources its "
            "task requests, the probes already in the result store, and the forward-pass tokens to run.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --plan: print the plan as JSON.")] = False,
    gpu_memory: Annotated[
        float | None,
        typer.Option(
            "--gpu-memory",
            min=0.001,
            help="GiB of one GPU, for the resources each task requests (default: the local CUDA device's; "
            "none: CPU tasks).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Audit every member of a family and write a JSON report."""
    from riskaudit.inputs.families import load_family
    from riskaudit.inputs.memdata import DataOptions
    from riskaudit.models import ADD_BOS_CHOICES, LoadOptions
    from riskaudit.models.devices import check_placement_options, parse_max_memory
    from riskaudit.reporting.render import LineProgress, ScanProgress
    from riskaudit.reporting.report import write_report
    from riskaudit.run.options import ProbeOptions, ScanOptions, UnitCounter
    from riskaudit.run.probe_subset import limit_probe, select_probes
    from riskaudit.run.scan import build_probes, scan_family, scan_notes
    from riskaudit.run.store import ResultStore, store_path

    memory_limits = None if max_memory is None else parse_max_memory(max_memory)
    check_placement_options(dtype, device_map, memory_limits)
    if add_bos not in ADD_BOS_CHOICES:
        raise RiskauditError(f"unknown --add-bos {add_bos!r}: expected one of {', '.join(ADD_BOS_CHOICES)}")
    if occupations not in ("bls2015", "bls2022"):
        raise RiskauditError(f"unknown --occupations {occupations!r}: expected bls2015 or bls2022")
    if executor not in ("local", "ray"):
        raise RiskauditError(f"unknown --executor {executor!r}: expected local or ray")
    if ray_address is not None and executor != "ray":
        raise RiskauditError("--ray-address needs --executor ray")
    if executor == "ray" and not plan:
        from riskaudit.run.ray_executor import import_ray

        import_ray()  # not installed: one line saying how, before anything is loaded (a plan needs no Ray)
    fam = load_family(family, _split(revisions))
    if members is not None:
        fam = fam.select([m for m in members.split(",") if m.strip()])
    out_path = out if out is not None else Path("reports") / f"{fam.name}.json"
    _check_outputs(out_path, plots, html)
    options = ScanOptions(
        load=LoadOptions(
            dtype=dtype,
            device=device,
            device_map=device_map,
            max_memory=memory_limits,
            batch_size=batch_size,
            allow_pickle=allow_pickle,
            trust_remote_code=trust_remote_code,
            add_bos=add_bos,
        ),
        seed=seed,
        occupations=occupations,
        keep_going=keep_going,
        command=" ".join(["riskaudit", *sys.argv[1:]]),
        limit=limit,
    )
    data_options = None
    if data is not None:
        data_options = DataOptions(
            source=data,
            config=data_config,
            split=data_split,
            column=data_column,
            dup_column=data_dup_column,
            label_column=data_label_column,
            revision=data_revision,
        )
    probe_options = ProbeOptions(
        occupations=options.occupations,
        probe_dirs=[str(d) for d in probe_dir or []],
        data=data_options,
        prefix_len=prefix_len,
        suffix_len=suffix_len,
        include_text=include_text,
        canaries=None if canaries is None else str(canaries),
        exposure_candidates=exposure_candidates,
        memorization=not no_memorization,
    )
    probes = build_probes(fam, probe_options)
    options = options.model_copy(update={"notes": scan_notes(probes, probe_options)})
    if probe_ids is not None:
        probes = select_probes(probes, probe_ids.split(","))
    if limit is not None:
        probes = [limit_probe(p, limit) for p in probes]
    if no_cache and cache_dir is not None:
        raise RiskauditError("--no-cache and --cache-dir cannot be used together")
    if gpu_memory is not None and device == "cpu":
        raise RiskauditError("--gpu-memory sizes GPU tasks: add --device auto (or cuda) to use GPUs")
    if plan or as_json:
        if not plan:
            raise RiskauditError("--json needs --plan (a scan writes its JSON report to --out)")
        store_file = None if no_cache else store_path(cache_dir)
        _print_plan(fam, probes, options, store_file, gpu_memory, as_json, wide, executor)
        return
    counter = UnitCounter()
    # a terminal gets live bars; a log (CI, a pipe) gets one plain line per finished step
    progress: LineProgress | None = None
    if not quiet:
        progress = ScanProgress(err_console, len(fam.members)) if err_console.is_terminal else LineProgress(err_console)
    try:
        with contextlib.ExitStack() as stack:
            store = None if no_cache else stack.enter_context(ResultStore(store_path(cache_dir)))
            runner = None
            if executor == "ray":
                from riskaudit.run.placement import GIB
                from riskaudit.run.ray_executor import RayExecutor

                gpu_bytes = None if gpu_memory is None else int(gpu_memory * GIB)
                runner = stack.enter_context(RayExecutor(ray_address, gpu_memory=gpu_bytes))
            if progress is not None:
                stack.enter_context(progress)
            report, rows, reps = scan_family(
                fam, options, probes=probes, events=progress, store=store, counter=counter, executor=runner
            )
        t_write = time.perf_counter()
        report = write_report(report, out_path, rows, reps)
        if progress is not None:
            progress.step_done("report", time.perf_counter() - t_write, f"written to {out_path}")
    except KeyboardInterrupt:
        if no_cache:
            msg = "interrupted: nothing was saved (--no-cache) and no report was written; rerun to start over"
        else:
            msg = (
                f"interrupted: {counter.stored} unit(s) saved in the result store at {store_path(cache_dir)} "
                "and no report was written; rerun the same command to resume"
            )
        raise Interrupted(msg) from None
    _print_report(report, detail=False, wide=wide)
    for note in options.notes:  # after the work: an error stays the only line on stderr
        err_console.print(f"note: {note}", markup=False, highlight=False)
    if plots:
        from riskaudit.reporting.plots import plot_report
        from riskaudit.reporting.render import headline_keys

        plot_dir = _plot_dir(out_path)
        t_plots = time.perf_counter()
        paths = plot_report(report, plot_dir, breakdowns=False, only=None if wide else headline_keys(report))
        if progress is not None:
            progress.step_done("plots", time.perf_counter() - t_plots, f"{len(paths)} PNGs")
        out_console.print(f"{len(paths)} plots in {plot_dir}", markup=False, highlight=False)
    if html:
        t_html = time.perf_counter()
        page = _write_html(out_path, None, None)
        if progress is not None:
            progress.step_done("html", time.perf_counter() - t_html, f"written to {page}")
        out_console.print(f"HTML report: {page}", markup=False, highlight=False)
    side = report.sidecar.path if report.sidecar else "-"
    out_console.print(f"report: {out_path}  (per-item records: {side})")
    if any(m.status != "ok" for m in report.members):
        raise typer.Exit(1)


def _print_plan(
    fam: Family,
    probes: list[Probe],
    options: ScanOptions,
    store: Path | None,
    gib: float | None,
    as_json: bool,
    wide: bool,
    executor: str = "local",
) -> None:
    """``scan --plan``: the plan as tables (or JSON); loads no model and writes nothing."""
    from riskaudit.cli.render_plan import plan_tables
    from riskaudit.run.placement import GIB, local_gpu_memory
    from riskaudit.run.plan import plan_scan
    from riskaudit.run.store import ResultStore

    device_bytes = local_gpu_memory() if gib is None else int(gib * GIB)
    if options.load.device == "cpu":  # the units run on CPUs: the tasks request no GPU
        device_bytes = None
    with contextlib.ExitStack() as stack:  # an absent store holds nothing: do not create it
        db = None if store is None or not store.exists() else stack.enter_context(ResultStore(store))
        result = plan_scan(fam, probes, options, db, executor, device_bytes, options.load.device_map is not None)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=1) + "\n")
    else:
        _print_tables(plan_tables(result, _table_width(wide)), wide)


def _table_width(wide: bool) -> int | None:
    """The width tables are laid out for: the console's, or None (no limit) with --wide."""
    return None if wide else out_console.width


def _print_tables(tables: list[Table], wide: bool = False) -> None:
    from riskaudit.reporting.layout import table_width

    for table in tables:
        if wide:  # may be wider than the console: printed at its natural width, the terminal wraps the lines
            out_console.print(table, width=max(out_console.width, table_width(table)), crop=False)
        else:
            out_console.print(table)


def _print_report(report: Report, detail: bool, wide: bool = False) -> None:
    """The scan tables (one per probe) and the scaling analysis of the headline metrics."""
    from riskaudit.reporting.render import headline_keys, scan_tables
    from riskaudit.reporting.render_analysis import analysis_tables

    _print_tables(scan_tables(report, _table_width(wide), wide=wide), wide)
    if report.analysis is not None:
        only = None if wide else headline_keys(report)
        _print_tables(
            analysis_tables(report.analysis, detail=detail or wide, only=only, width=_table_width(wide)), wide
        )


def _check_outputs(out_path: Path, plots: bool, html: bool = False) -> None:
    """Fail before any model loads when the report, its sidecar or the plot directory cannot be written."""
    from riskaudit.reporting.outputs import check_writable, check_writable_dir
    from riskaudit.reporting.report import sidecar_path_for

    check_writable(out_path, "the report (--out)")
    check_writable(sidecar_path_for(out_path), "the per-item sidecar")
    if plots:
        check_writable_dir(_plot_dir(out_path), "the plots (--plots)")
    if html:
        from riskaudit.reporting.html_report import html_path_for

        check_writable(html_path_for(out_path), "the HTML report (--html)")


def _write_html(report_path: Path, out: Path | None, policy_path: Path | None) -> Path:
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


def _plot_dir(report_path: Path) -> Path:
    return report_path.with_name(report_path.stem + "_plots")


@app.command()
def analyze(
    points: Annotated[
        Path,
        typer.Argument(
            help="A CSV of results from any harness (columns: family, member, "
            "params, tokens, metric, value; optional flops, n, ci_low, ci_high, "
            "baseline, kind, companion, direction, probe), or a riskaudit report JSON."
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
) -> None:
    """Growth per decade of compute, abrupt-risk flags, metric-artifact verdicts and surprises for results
    produced by riskaudit or by any other harness. A riskaudit report is re-analysed from the paired
    replicates saved beside it, which reproduces its stored analysis exactly."""
    import json

    from riskaudit.analysis.points import read_points_csv
    from riskaudit.analysis.scaling import AnalysisConfig, analyze_families
    from riskaudit.reporting.reanalysis import reanalyze_report
    from riskaudit.reporting.render_analysis import analysis_json, analysis_tables

    if not points.exists():
        raise RiskauditError(f"{points}: no such file")
    if points.suffix.lower() == ".json":
        again = reanalyze_report(points, seed)
        err_console.print(f"{points}: {again.source}", markup=False, highlight=False)
        fas = [again.analysis]
    else:
        fas = analyze_families(read_points_csv(points), AnalysisConfig(seed=seed or 0))
    if as_json:
        sys.stdout.write(json.dumps(analysis_json(fas), allow_nan=False, indent=1) + "\n")
        return
    for fa in fas:
        _print_tables(analysis_tables(fa, detail=detail or wide, width=_table_width(wide)), wide)


report_app = typer.Typer(help="Saved reports.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(report_app, name="report")


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
    from riskaudit.reporting.report import read_report

    rep = read_report(report)
    if as_json:
        sys.stdout.write(rep.model_dump_json(indent=1) + "\n")
        return
    _print_report(rep, detail=detail, wide=wide)


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
    page = _write_html(report, out, policy)
    out_console.print(f"HTML report: {page}", markup=False, highlight=False)


@app.command()
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


@app.command()
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
    from riskaudit.reporting.report import read_report

    path = policy if policy is not None else find_policy()
    if path is None:
        raise RiskauditError("no policy: pass --policy POLICY.toml or add [[tool.riskaudit.rule]] to ./pyproject.toml")
    pol = load_policy(path)
    result = evaluate_policy(read_report(report), pol)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=1) + "\n")
    else:
        if result.violations:
            _print_tables(violations_tables(result, _table_width(wide)), wide)
        if result.skipped:
            out_console.print(skipped_table(result))
        out_console.print(policy_summary(result, str(path)), markup=False, highlight=False)
    raise typer.Exit(0 if result.passed else 1)


@app.command()
def diff(
    base: Annotated[Path, typer.Argument(help="The base report.")],
    new: Annotated[Path, typer.Argument(help="The new report.")],
    fail_on_regression: Annotated[
        bool, typer.Option("--fail-on-regression", help="Exit 1 when a risk got significantly worse.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
) -> None:
    """What changed between two reports: members, metrics beyond their 95% CIs, trends and flags."""
    from riskaudit.reporting.diff import diff_reports, diff_summary, diff_tables
    from riskaudit.reporting.report import read_report

    d = diff_reports(read_report(base), read_report(new))
    if as_json:
        sys.stdout.write(d.model_dump_json(indent=1) + "\n")
    else:
        if d.metrics or d.trends or d.flags:
            _print_tables(diff_tables(d, _table_width(False)))
        for line in diff_summary(d):
            out_console.print(line, markup=False, highlight=False)
    if fail_on_regression and d.regressions:
        raise typer.Exit(1)


@app.command()
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
    from riskaudit.reporting.report import read_report

    rep = read_report(report)
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


@app.command()
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
    from riskaudit.reporting.report import read_report

    rep = read_report(report)
    out_dir = out if out is not None else _plot_dir(report)
    check_writable_dir(out_dir, "the plots")
    t0 = time.perf_counter()
    only = None if every or breakdowns else headline_keys(rep)
    paths = plot_report(rep, out_dir, breakdowns=breakdowns, only=only)
    out_console.print(
        f"{len(paths)} plots in {out_dir} ({time.perf_counter() - t0:.1f} s)", markup=False, highlight=False
    )


@zoo_app.command("build")
def zoo_build(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Where to build (default: the package's riskaudit/zoo/demo, which `--family demo` reads).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the corpus, tokenizer order and initialisation.")] = 1234,
) -> None:
    """Re-create the demo family from a seed: corpus, tokenizer, 6 members and checkpoints (~15 min on 2 cores).

    Interrupted builds resume: finished members are kept.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from riskaudit.reporting.render import human_count
    from riskaudit.resources import demo_dir
    from riskaudit.zoo.build import BuildConfig, build_demo

    target = out or demo_dir()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err_console,
    )
    tasks: dict[str, TaskID] = {}

    def on_event(kind: str, data: dict[str, object]) -> None:
        name = str(data.get("name", ""))
        if kind == "corpus":
            err_console.print(f"corpus: {data['documents']} training documents, {data['canaries']} canaries")
        elif kind == "tokenizer":
            err_console.print(f"tokenizer: vocabulary {data['vocab']}, {data['tokens']} training tokens")
        elif kind == "member_skipped":
            err_console.print(f"{name}: already built, kept")
        elif kind == "member_start":
            tasks[name] = progress.add_task(name, total=int(str(data["steps"])), info="")
        elif kind == "step":
            progress.update(
                tasks[name],
                completed=int(str(data["step"])),
                info=f"loss {float(str(data['loss'])):.3f}",
            )
        elif kind == "member_done":
            bias = data["bias"]
            r = bias["pearson"] if isinstance(bias, dict) else float("nan")
            err_console.print(
                f"{name}: {human_count(float(str(data['params'])))} params, "
                f"{float(str(data['seconds'])):.0f} s, pronoun–BLS r = {r:.2f}"
            )

    with progress:
        manifest = build_demo(target, BuildConfig(seed=seed), on_event=on_event)
    out_console.print(
        f"demo family written to {target} ({len(manifest.members)} members, {manifest.build_seconds:.0f} s)"
    )


probes_app = typer.Typer(
    help="Probe definitions (data in probes/ and in your --probe-dir directories).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(probes_app, name="probes")


@probes_app.command("list")
def probes_list(
    probe_dir: ProbeDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    wide: WideOption = False,
) -> None:
    """List the probe definitions: built-in first, then those in --probe-dir."""
    from riskaudit.probes.registry import list_probe_files
    from riskaudit.reporting.render import probes_table

    infos = list_probe_files(probe_dir or [])
    if as_json:
        out_console.print_json(data=[i.model_dump(mode="json") for i in infos])
        return
    _print_tables(probes_table(infos, _table_width(wide)), wide)


@probes_app.command("validate")
def probes_validate(
    path: Annotated[
        Path | None,
        typer.Argument(help="A probe YAML file, or a directory of them (default: every known probe file)."),
    ] = None,
    probe_dir: ProbeDirOption = None,
) -> None:
    """Validate probe files; a malformed file ends in one line naming the file, the field and the problem."""
    from riskaudit.probes.registry import ProbeInfo, list_probe_files, validate_probe_file

    infos: list[ProbeInfo]
    if path is None:
        infos = list_probe_files(probe_dir or [])
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise RiskauditError(f"{path}: a directory with no probe files (*.yaml, *.yml)")
        infos = [validate_probe_file(f) for f in files]
    else:
        infos = [validate_probe_file(path)]
    for info in infos:
        if not info.handled:
            raise RiskauditError(f"{info.path}: kind: unknown probe kind {info.kind!r}")
        out_console.print(f"ok  {info.id} ({info.kind})  {info.path}", markup=False, highlight=False)


def _usage_error_types() -> tuple[type[Exception], ...]:
    """The ClickException classes this typer raises: click's own (typer < 0.22 depends on click) and/or the
    copy typer bundles as ``typer._click`` (typer ≥ 0.22). Catching only one of them lets the other through
    as a traceback with exit code 1, which a CI gate reads as "policy violated"."""
    import importlib

    found: list[type[Exception]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            cls = importlib.import_module(module).ClickException
        except (ImportError, AttributeError):
            continue
        if isinstance(cls, type) and issubclass(cls, Exception):
            found.append(cls)
    return tuple(found)


def _usage_line(exc: Exception) -> str:
    """A click/typer usage error as one line: the command, the problem, where to look for help."""
    ctx = getattr(exc, "ctx", None)
    path = str(getattr(ctx, "command_path", "") or "riskaudit")
    fmt = getattr(exc, "format_message", None)
    message = str(fmt()) if callable(fmt) else str(exc)
    message = " ".join(message.split()) or type(exc).__name__
    return f"{path}: {message} (see `{path} --help`)"


def _refuse_bare_group(args: list[str]) -> None:
    """``riskaudit`` or ``riskaudit report`` without a command: the group's help on stdout, one line on stderr,
    exit 2 (click < 8.2 would exit 0 after the help, click ≥ 8.2 raises; the same for every version here)."""
    from riskaudit.reporting.render import print_error

    group = typer.main.get_command(app)
    path = ["riskaudit"]
    for arg in args:
        sub = getattr(group, "commands", {}).get(arg)
        if sub is None:
            return
        group = sub
        path.append(arg)
    if not getattr(group, "commands", None):
        return
    with group.context_class(group, info_name=" ".join(path)) as ctx:
        out_console.print(group.get_help(ctx), markup=False, highlight=False)
    name = " ".join(path)
    print_error(err_console, f"{name}: missing command (listed above; see `{name} --help`)")
    sys.exit(2)


def main() -> None:
    """Console entry point: every RiskauditError and every usage error is one line on stderr and exit code 2."""
    from riskaudit.reporting.render import print_error

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # DEMO-FAMILY-NOTES: avoids 5-10x slowdowns on shared cores
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    usage_errors = _usage_error_types()
    _refuse_bare_group(sys.argv[1:])
    try:
        rc = app(standalone_mode=False, prog_name="riskaudit")
    except RiskauditError as exc:
        print_error(err_console, str(exc))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        rc = 130
    except usage_errors as exc:
        code = getattr(exc, "exit_code", 2)
        print_error(err_console, _usage_line(exc))
        # a usage error is bad input (2); any other click error keeps a non-zero code that is not 1 ("violated")
        sys.exit(2 if code in (1, 2) else int(code))
    if rc == 130:  # typer turns Ctrl-C in a command into exit code 130 without a word
        print_error(err_console, "interrupted; nothing half-written was kept (every output is written atomically)")
    sys.exit(rc if isinstance(rc, int) else 0)
