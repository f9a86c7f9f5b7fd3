"""What ``riskaudit scan`` is asked to do, checked and assembled into what :func:`scan_family` needs.

:class:`ScanRequest` holds the command line's values as given; :func:`prepare_scan` checks them (each problem
one :class:`RiskauditError` line naming the option), loads the family and its probes, and checks that every
output can be written, all before any model loads; :func:`execute_scan` runs the prepared scan and writes its
report. The command line only parses, calls these and renders.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from pathlib import Path, PureWindowsPath
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from riskaudit.errors import Interrupted, RiskauditError
from riskaudit.inputs.benchmark_data import NotAudited
from riskaudit.inputs.families import load_family
from riskaudit.inputs.family_spec import Family
from riskaudit.inputs.memdata import DataOptions
from riskaudit.models import ADD_BOS_CHOICES, LoadOptions
from riskaudit.models.devices import check_placement_options, parse_max_memory
from riskaudit.probes.base import Probe
from riskaudit.reporting.outputs import check_writable, check_writable_dir
from riskaudit.reporting.render import LineProgress
from riskaudit.reporting.report import Report, sidecar_path_for, write_report
from riskaudit.run.options import ProbeOptions, ScanOptions, UnitCounter
from riskaudit.run.probe_subset import limit_probe, select_probes
from riskaudit.run.scan import build_probes, scan_family, scan_notes
from riskaudit.run.store import ResultStore, store_path

REPORTS_DIR = Path("reports")  # where a scan writes its report when --out is not given


class ScanRequest(BaseModel):
    """The options of one ``riskaudit scan``, as the command line gave them (see ``riskaudit scan --help``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: str
    revisions: str | None = None
    members: str | None = None
    out: Path | None = None
    dtype: str = "float32"
    device: str = "cpu"
    device_map: str | None = None
    max_memory: str | None = None
    batch_size: int = 32
    seed: int = 0
    occupations: str = "bls2015"
    allow_pickle: bool = False
    trust_remote_code: bool = False
    keep_going: bool = False
    add_bos: str = "auto"
    plots: bool = False
    html: bool = False
    data: str | None = None
    data_config: str | None = None
    data_split: str = "train"
    data_column: str | None = None
    data_dup_column: str | None = None
    data_label_column: str | None = None
    data_revision: str | None = None
    prefix_len: int | None = None
    suffix_len: int | None = None
    canaries: Path | None = None
    exposure_candidates: int | None = None
    no_memorization: bool = False
    probe_dirs: list[Path] = []
    benchmark_data: list[Path] = []
    include_text: bool = False
    cache_dir: Path | None = None
    no_cache: bool = False
    probe_ids: str | None = None
    limit: int | None = None
    executor: str = "local"
    ray_address: str | None = None
    plan: bool = False
    as_json: bool = False
    gpu_memory: float | None = None
    command: str = ""  # the command line, recorded in the report


class PreparedScan(NamedTuple):
    """A checked request: the family and probes to scan, with what, and where the results go."""

    family: Family
    probes: list[Probe]
    options: ScanOptions
    out_path: Path  # the report (--out, or reports/<family>.json)
    store_file: Path | None  # the result store; None with --no-cache
    executor: str  # local | ray
    ray_address: str | None
    gpu_memory: float | None  # GiB of one GPU (--gpu-memory)


def split_revisions(value: str | None) -> list[str] | None:
    """``--revisions step1000,step143000`` as a list (None when not given)."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise RiskauditError("--revisions needs at least one revision, e.g. step1000,step143000")
    return items


def plot_dir_for(report_path: Path) -> Path:
    """The directory of a report's plots: ``<report>_plots/`` beside it."""
    return report_path.with_name(report_path.stem + "_plots")


def default_report_path(family_name: str) -> Path:
    """``reports/<family>.json``: where a scan writes its report when --out is not given. A family name is
    anyone's TOML, so one that would put the report anywhere else ("../x", "a/b", "/abs", "C:x") is one line."""
    file_name = f"{family_name}.json"
    path = REPORTS_DIR / file_name
    if (
        any(c in family_name for c in ("/", "\\", "\0"))
        or PureWindowsPath(file_name).name != file_name  # a drive ("C:x"), on any system
        or path.parent != REPORTS_DIR
    ):
        raise RiskauditError(
            f"family name {family_name!r} cannot name the default report {REPORTS_DIR.as_posix()}/<name>.json: "
            "it must be a plain file name, without '/', '\\', a drive such as 'C:' or NUL "
            "(letters, digits, spaces, '-', '_' and '.' are fine); rename the family or pass --out PATH"
        )
    return path


def partial_run(request: ScanRequest) -> str | None:
    """What makes this scan partial (``--probes …``, ``--limit N``), or None for a full scan."""
    parts = []
    if request.probe_ids is not None:
        parts.append(f"--probes {request.probe_ids}")
    if request.limit is not None:
        parts.append(f"--limit {request.limit}")
    return " ".join(parts) or None


def _probes_label(probe_ids: str) -> str:
    """``probes-<id>+<id>`` (sorted); a long or unusual selection by a short digest of it."""
    ids = sorted({i.strip() for i in probe_ids.split(",") if i.strip()})
    label = "+".join(ids)
    if len(label) > 60 or not re.fullmatch(r"[A-Za-z0-9_+-]+", label):
        label = f"{len(ids)}-" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:8]
    return f"probes-{label}"


def report_path_for(request: ScanRequest, family_name: str) -> Path:
    """Where the report goes: ``--out``, else ``reports/<family>.json`` for a full scan; a partial scan
    (``--probes``, ``--limit``) gets a name of its own, ``reports/<family>.probes-<ids>.limit-<N>.json``, so
    that it never replaces the full report."""
    if request.out is not None:
        return request.out
    full = default_report_path(family_name)
    parts = [] if request.probe_ids is None else [_probes_label(request.probe_ids)]
    if request.limit is not None:
        parts.append(f"limit-{request.limit}")
    return full.with_name(".".join([full.stem, *parts]) + ".json") if parts else full


def check_outputs(out_path: Path, plots: bool, html: bool = False) -> None:
    """Fail before any model loads when the report, its sidecar or the plot directory cannot be written."""
    check_writable(out_path, "the report (--out)")
    check_writable(sidecar_path_for(out_path), "the per-item sidecar")
    if plots:
        check_writable_dir(plot_dir_for(out_path), "the plots (--plots)")
    if html:
        from riskaudit.reporting.html_report import html_path_for

        check_writable(html_path_for(out_path), "the HTML report (--html)")


def _check_options(request: ScanRequest) -> dict[str, str] | None:
    """The checks that need nothing loaded; returns the parsed ``--max-memory``."""
    memory_limits = None if request.max_memory is None else parse_max_memory(request.max_memory)
    check_placement_options(request.dtype, request.device_map, memory_limits)
    if request.add_bos not in ADD_BOS_CHOICES:
        raise RiskauditError(f"unknown --add-bos {request.add_bos!r}: expected one of {', '.join(ADD_BOS_CHOICES)}")
    if request.occupations not in ("bls2015", "bls2022"):
        raise RiskauditError(f"unknown --occupations {request.occupations!r}: expected bls2015 or bls2022")
    for d in request.benchmark_data:
        if not d.expanduser().is_dir():
            raise RiskauditError(f"--benchmark-data {d}: no such directory (it holds the benchmarks' official files)")
    if request.executor not in ("local", "ray"):
        raise RiskauditError(f"unknown --executor {request.executor!r}: expected local or ray")
    if request.ray_address is not None and request.executor != "ray":
        raise RiskauditError("--ray-address needs --executor ray")
    if request.executor == "ray" and not request.plan:
        from riskaudit.run.ray_executor import import_ray

        import_ray()  # not installed: one line saying how, before anything is loaded (a plan needs no Ray)
    return memory_limits


def _scan_options(request: ScanRequest, memory_limits: dict[str, str] | None) -> ScanOptions:
    load = LoadOptions(
        dtype=request.dtype,
        device=request.device,
        device_map=request.device_map,
        max_memory=memory_limits,
        batch_size=request.batch_size,
        allow_pickle=request.allow_pickle,
        trust_remote_code=request.trust_remote_code,
        add_bos=request.add_bos,
    )
    return ScanOptions(
        load=load,
        seed=request.seed,
        occupations=request.occupations,
        keep_going=request.keep_going,
        command=request.command,
        limit=request.limit,
    )


def _probe_options(request: ScanRequest, options: ScanOptions) -> ProbeOptions:
    data_options = None
    if request.data is not None:
        data_options = DataOptions(
            source=request.data,
            config=request.data_config,
            split=request.data_split,
            column=request.data_column,
            dup_column=request.data_dup_column,
            label_column=request.data_label_column,
            revision=request.data_revision,
        )
    return ProbeOptions(
        occupations=options.occupations,
        probe_dirs=[str(d) for d in request.probe_dirs],
        data=data_options,
        prefix_len=request.prefix_len,
        suffix_len=request.suffix_len,
        include_text=request.include_text,
        canaries=None if request.canaries is None else str(request.canaries),
        exposure_candidates=request.exposure_candidates,
        memorization=not request.no_memorization,
        benchmark_data=[str(d) for d in request.benchmark_data],
    )


def prepare_scan(request: ScanRequest) -> PreparedScan:
    """Check the request, load the family and its probes, check the outputs: everything before a model loads."""
    memory_limits = _check_options(request)
    fam = load_family(request.family, split_revisions(request.revisions))
    if request.members is not None:
        fam = fam.select([m for m in request.members.split(",") if m.strip()])
    out_path = report_path_for(request, fam.name)
    check_outputs(out_path, request.plots, request.html)
    options = _scan_options(request, memory_limits)
    probe_options = _probe_options(request, options)
    not_audited: list[NotAudited] = []
    probes = build_probes(fam, probe_options, not_audited)
    if request.probe_ids is not None:
        ids = [i.strip() for i in request.probe_ids.split(",") if i.strip()]
        skipped = {n.probe for n in not_audited}
        not_audited = [n for n in not_audited if n.probe in ids]
        runnable = [i for i in ids if i not in skipped]
        if ids and not runnable:
            raise RiskauditError(f"--probes: nothing to scan: {not_audited[0].message}")
        probes = select_probes(probes, runnable or ids)
    notes = [*scan_notes(probes, probe_options), *(n.message for n in not_audited)]
    options = options.model_copy(update={"notes": notes, "not_audited": not_audited})
    if request.limit is not None:
        probes = [limit_probe(p, request.limit) for p in probes]
    if request.no_cache and request.cache_dir is not None:
        raise RiskauditError("--no-cache and --cache-dir cannot be used together")
    if request.gpu_memory is not None and request.device == "cpu":
        raise RiskauditError("--gpu-memory sizes GPU tasks: add --device auto (or cuda) to use GPUs")
    if request.as_json and not request.plan:
        raise RiskauditError("--json needs --plan (a scan writes its JSON report to --out)")
    store_file = None if request.no_cache else store_path(request.cache_dir)
    return PreparedScan(
        fam, probes, options, out_path, store_file, request.executor, request.ray_address, request.gpu_memory
    )


def execute_scan(job: PreparedScan, progress: LineProgress | None) -> Report:
    """Scan every member (served from the result store where it can be), analyse, and write the report.

    Ctrl-C: :class:`Interrupted`, saying what the result store kept (the report is not written).
    """
    counter = UnitCounter()
    try:
        with contextlib.ExitStack() as stack:
            store = None if job.store_file is None else stack.enter_context(ResultStore(job.store_file))
            runner = None
            if job.executor == "ray":
                from riskaudit.run.placement import GIB
                from riskaudit.run.ray_executor import RayExecutor

                gpu_bytes = None if job.gpu_memory is None else int(job.gpu_memory * GIB)
                runner = stack.enter_context(RayExecutor(job.ray_address, gpu_memory=gpu_bytes))
            if progress is not None:
                stack.enter_context(progress)
            report, rows, reps = scan_family(
                job.family,
                job.options,
                probes=job.probes,
                events=progress,
                store=store,
                counter=counter,
                executor=runner,
            )
        t_write = time.perf_counter()
        report = write_report(report, job.out_path, rows, reps)
        if progress is not None:
            progress.step_done("report", time.perf_counter() - t_write, f"written to {job.out_path}")
    except KeyboardInterrupt:
        if job.store_file is None:
            msg = "interrupted: nothing was saved (--no-cache) and no report was written; rerun to start over"
        else:
            msg = (
                f"interrupted: {counter.stored} unit(s) saved in the result store at {job.store_file} "
                "and no report was written; rerun the same command to resume"
            )
        raise Interrupted(msg) from None
    return report
