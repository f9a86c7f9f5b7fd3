"""``riskaudit scan``: audit every member of a family (or print the plan), then render the report."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from riskaudit.cli.common import (
    ProbeDirOption,
    WideOption,
    err_console,
    out_console,
    print_report,
    print_tables,
    table_width,
    write_html,
)

if TYPE_CHECKING:
    from riskaudit.reporting.render import LineProgress
    from riskaudit.reporting.report import Report
    from riskaudit.run.request import PreparedScan


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
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress and no tables: print a one-line summary and the report path only."
        ),
    ] = False,
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
    benchmark_data: Annotated[
        list[Path] | None,
        typer.Option(
            "--benchmark-data",
            help="A directory of canonical benchmarks' official files, as DIR/<benchmark>/<file> or DIR/<file> "
            "(repeatable; e.g. DIR/winogender/all_sentences.tsv). Every benchmark whose files are found runs.",
            show_default=False,
        ),
    ] = None,
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
    from riskaudit.reporting.render import LineProgress, ScanProgress
    from riskaudit.run.request import ScanRequest, execute_scan, partial_run, prepare_scan

    request = ScanRequest(
        family=family, revisions=revisions, members=members, out=out, dtype=dtype, device=device,
        device_map=device_map, max_memory=max_memory, batch_size=batch_size, seed=seed, occupations=occupations,
        allow_pickle=allow_pickle, trust_remote_code=trust_remote_code, keep_going=keep_going, add_bos=add_bos,
        plots=plots, html=html, data=data, data_config=data_config, data_split=data_split, data_column=data_column,
        data_dup_column=data_dup_column, data_label_column=data_label_column, data_revision=data_revision,
        prefix_len=prefix_len, suffix_len=suffix_len, canaries=canaries, exposure_candidates=exposure_candidates,
        no_memorization=no_memorization, probe_dirs=probe_dir or [], benchmark_data=benchmark_data or [],
        include_text=include_text, cache_dir=cache_dir,
        no_cache=no_cache, probe_ids=probe_ids, limit=limit, executor=executor, ray_address=ray_address, plan=plan,
        as_json=as_json, gpu_memory=gpu_memory, command=" ".join(["riskaudit", *sys.argv[1:]]),
    )  # fmt: skip
    job = prepare_scan(request)
    if plan:
        _print_plan(job, as_json, wide)
        return
    # a terminal gets live bars; a log (CI, a pipe) gets one plain line per finished step
    progress: LineProgress | None = None
    if not quiet:
        live = err_console.is_terminal
        progress = ScanProgress(err_console, len(job.family.members)) if live else LineProgress(err_console)
    report = execute_scan(job, progress)
    if not quiet:
        print_report(report, detail=False, wide=wide)
    for note in job.options.notes:  # after the work: an error stays the only line on stderr
        err_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    if plots:
        _write_plots(report, job.out_path, wide, progress, quiet)
    if html:
        t_html = time.perf_counter()
        page = write_html(job.out_path, None, None)
        if progress is not None:
            progress.step_done("html", time.perf_counter() - t_html, f"written to {page}")
        if not quiet:
            out_console.print(f"HTML report: {page}", markup=False, highlight=False)
    if quiet:
        out_console.print(scan_summary(report), markup=False, highlight=False, soft_wrap=True)
    line = report_line(report, job, partial_run(request), request.out is None)
    out_console.print(line, markup=False, highlight=False, soft_wrap=True)
    if any(m.status != "ok" for m in report.members):
        raise typer.Exit(1)


def scan_summary(report: Report) -> str:
    """The scan in one line: members, probes, metric series by verdict, and a smoke run's limit."""
    ok = sum(m.status == "ok" for m in report.members)
    failed = len(report.members) - ok
    members = f"{ok} member{'s' * (ok != 1)} scanned" + (f", {failed} failed" if failed else "")
    head = f"{report.family.name}: {members}, {len(report.probes)} probe{'s' * (len(report.probes) != 1)}"
    if report.run.limit is not None:
        head += f" (smoke run, --limit {report.run.limit})"
    if report.analysis is None:
        return head + "; no scaling analysis"
    counts: dict[str, int] = {}
    for a in report.analysis.metrics:
        counts[a.verdict] = counts.get(a.verdict, 0) + 1
    verdicts = ", ".join(f"{v} {c}" for v, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{head}; {len(report.analysis.metrics)} metric series: {verdicts or 'none'}"


def report_line(report: Report, job: PreparedScan, partial: str | None, default_name: bool) -> str:
    """``report: PATH (per-item records: …)``; a partial run says it was kept apart from the full report."""
    from riskaudit.run.request import default_report_path

    side = report.sidecar.path if report.sidecar else "-"
    kept = ""
    if partial is not None and default_name:
        kept = f"partial run {partial}: kept apart from the full report {default_report_path(job.family.name)}; "
    return f"report: {job.out_path}  ({kept}per-item records: {side})"


def _write_plots(report: Report, out_path: Path, wide: bool, progress: LineProgress | None, quiet: bool) -> None:
    """``scan --plots``: one PNG per headline metric (every metric with --wide) beside the report."""
    from riskaudit.reporting.plots import plot_report
    from riskaudit.reporting.render import headline_keys
    from riskaudit.run.request import plot_dir_for

    plot_dir = plot_dir_for(out_path)
    t_plots = time.perf_counter()
    paths = plot_report(report, plot_dir, breakdowns=False, only=None if wide else headline_keys(report))
    if progress is not None:
        progress.step_done("plots", time.perf_counter() - t_plots, f"{len(paths)} PNGs")
    if not quiet:
        out_console.print(f"{len(paths)} plots in {plot_dir}", markup=False, highlight=False)


def _print_plan(job: PreparedScan, as_json: bool, wide: bool) -> None:
    """``scan --plan``: the plan as tables (or JSON); loads no model and writes nothing."""
    from riskaudit.cli.render_plan import plan_tables
    from riskaudit.run.placement import GIB, local_gpu_memory
    from riskaudit.run.plan import plan_scan
    from riskaudit.run.store import ResultStore

    options = job.options
    device_bytes = local_gpu_memory() if job.gpu_memory is None else int(job.gpu_memory * GIB)
    if options.load.device == "cpu":  # the units run on CPUs: the tasks request no GPU
        device_bytes = None
    store = job.store_file
    with contextlib.ExitStack() as stack:  # an absent store holds nothing: do not create it
        db = None if store is None or not store.exists() else stack.enter_context(ResultStore(store))
        result = plan_scan(
            job.family, job.probes, options, db, job.executor, device_bytes, options.load.device_map is not None
        )
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=1) + "\n")
    else:
        print_tables(plan_tables(result, table_width(wide)), wide)
