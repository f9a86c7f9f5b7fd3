"""The audit report: pydantic models (the source of truth for the JSON format), strict write, validated read.

A report is strict JSON (no NaN/Infinity), carries ``schema_version`` and run metadata, and points at a
JSONL sidecar holding one record per scored item (path relative to the report, row count, sha256).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from riskaudit import __version__
from riskaudit.analysis.metric import MetricResult
from riskaudit.analysis.replicates import ScanReplicates, count_series, decode_replicates, replicates_path_for
from riskaudit.analysis.results import FamilyAnalysis
from riskaudit.errors import RiskauditError
from riskaudit.inputs.benchmark_data import DataFile, NotAudited
from riskaudit.models.base import BatchHalving, TokenizationInfo
from riskaudit.probes.base import ItemRecord
from riskaudit.reporting.outputs import write_together

# 1.1.0: members[].batch_halvings. 1.2.0: verdict "no consistent trend", noise floor, two-step windows, per-member
# baselines, the replicates file, the family's scale order. 1.3.0: run.execution (executor, nodes), members[].placement,
# members[].dtype / device / device_map (all additive). 1.4.0: metrics[].proportion (absent = written before it
# was declared), members[].params_declared / params_weights (declared vs counted parameters; both additive). 1.5.0:
# probes[].benchmark and probes[].data_files (a canonical benchmark's official files: name, sha256, rows) and
# not_audited (benchmarks whose data was not found; all additive)
SCHEMA_VERSION = "1.5.0"
REPORT_KIND = "riskaudit.scan"


class UnitPlacement(BaseModel):
    """Where one member's unit ran: the executor, the Ray node (id and address) and the worker process."""

    executor: str = "local"  # local | ray
    node_id: str | None = None  # Ray's node id (hex); None for the local executor
    node_ip: str | None = None
    hostname: str = ""
    pid: int = 0  # the process that computed the unit (a retried unit: the attempt that succeeded)
    gpu_ids: list[str] = []  # the GPUs Ray assigned to the task ([] on CPU)


class NodeUsage(BaseModel):
    """One node that ran units in this scan."""

    node_id: str | None = None
    node_ip: str | None = None
    hostname: str = ""
    units: list[str] = []  # the members it computed


class ExecutionInfo(BaseModel):
    """How the scan's units were run (``scan --executor``)."""

    executor: str = "local"  # local | ray
    address: str | None = None  # the Ray cluster's address (None: local, or a Ray the scan started itself)
    cluster_nodes: int = 1  # nodes alive in the cluster when the scan started
    max_retries: int = 0  # times Ray retries a unit whose worker process dies
    nodes: list[NodeUsage] = []  # the nodes that computed units (none when everything came from the store)


class RunMetadata(BaseModel):
    riskaudit_version: str
    python_version: str
    torch_version: str | None = None
    transformers_version: str | None = None
    platform: str
    git_commit: str | None = None
    device: str
    dtype: str
    seed: int
    started_utc: str
    finished_utc: str | None = None
    command: str = ""
    limit: int | None = None  # `scan --limit N`: every probe cut to its first N items (a smoke run, not a gate)
    execution: ExecutionInfo = ExecutionInfo()


class FamilyInfo(BaseModel):
    name: str
    description: str = ""
    flops_basis: str  # which N enters FLOPs = 6·N·D
    flops_formula: str = "6 * N * D (Kaplan et al. 2020); N = parameters on flops_basis, D = training tokens seen"
    # members that ran, smallest to largest (training FLOPs, else params then tokens): the order family-level
    # metrics use; the reference-model ratio divides by the reference member's loss, and the memorization
    # prediction metrics predict what the largest member extracts
    scale_order: list[str] = []
    reference_member: str | None = None
    largest_member: str | None = None


class ProbeDefinition(BaseModel):
    id: str
    content_hash: str
    description: str = ""
    benchmark: str | None = None  # a canonical benchmark's name (winogender, crows_pairs, …); None: riskaudit's own
    data_files: list[DataFile] = []  # the benchmark's official files as read (name, sha256, data rows)


class ProbeOutcome(BaseModel):
    probe_id: str
    probe_hash: str
    metrics: list[MetricResult]
    n_records: int
    notes: list[str] = []
    seconds: float


class MemberReport(BaseModel):
    name: str
    source: str
    revision: str | None = None
    params_total: int | None = None
    params_nonembedding: int | None = None
    params_counted: bool = False  # params were counted from the loaded weights
    # both set only when the family's declared total and the loaded weights' count differ by more than 1%:
    params_declared: int | None = None  # the total the family table or TOML declares
    params_weights: int | None = None  # the total counted from the loaded weights
    train_tokens: float | None = None
    flops: float | None = None
    replicate_of: str | None = None  # seed replicates of one size share this label (the analysis averages them)
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    load_seconds: float = 0.0
    probes: list[ProbeOutcome] = []
    batch_halvings: list[BatchHalving] = []  # out-of-memory retries with half the batch (this run's work only)
    tokenization: TokenizationInfo | None = None  # BOS convention and boundary fallbacks (None: not loaded this run)
    placement: UnitPlacement | None = None  # where its unit ran (None: served from the result store, or failed)
    dtype: str | None = None  # the dtype its units were computed in (--dtype auto resolved)
    device: str | None = None  # the kind of device they were computed on: cpu | cuda | mps
    device_map: dict[str, int] | None = None  # --device-map auto: parameters per device this run (GPU index, cpu, disk)


class SidecarRef(BaseModel):
    path: str  # relative to the report file
    rows: int
    sha256: str


class Report(BaseModel):
    schema_version: str = SCHEMA_VERSION
    kind: str = REPORT_KIND
    run: RunMetadata
    family: FamilyInfo
    members: list[MemberReport]
    probes: list[ProbeDefinition]
    sidecar: SidecarRef | None = None
    replicates: SidecarRef | None = None  # paired bootstrap replicates (.npz; rows = metric series × member)
    analysis: FamilyAnalysis | None = None  # growth, abruptness, emergence, verdicts (riskaudit.analysis.family)
    not_audited: list[NotAudited] = []  # benchmarks skipped because their official data was not found
    notes: list[str] = []


class SidecarRow(BaseModel):
    member: str
    record: ItemRecord


def git_commit() -> str | None:
    """The commit of the riskaudit checkout, when it runs from one."""
    here = Path(__file__).resolve().parent.parent
    if not (here / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _version(dist: str) -> str | None:
    """An installed distribution's version, read from its metadata (importing torch costs seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def run_metadata(device: str, dtype: str, seed: int, command: str = "") -> RunMetadata:
    return RunMetadata(
        riskaudit_version=__version__,
        python_version=sys.version.split()[0],
        torch_version=_version("torch"),
        transformers_version=_version("transformers"),
        platform=platform.platform(),
        git_commit=git_commit(),
        device=device,
        dtype=dtype,
        seed=seed,
        started_utc=utc_now(),
        command=command,
    )


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sidecar_path_for(report_path: Path) -> Path:
    name = report_path.name[:-5] if report_path.name.endswith(".json") else report_path.name
    return report_path.with_name(name + ".items.jsonl")


def encode_sidecar(rows: Iterable[SidecarRow]) -> bytes:
    """The sidecar file's bytes: one JSON object per line, keys sorted (deterministic)."""
    try:
        lines = [json.dumps(r.model_dump(mode="json"), allow_nan=False, sort_keys=True) for r in rows]
    except ValueError as exc:
        raise RiskauditError(f"refusing to write the sidecar: an item record holds a NaN or Infinity ({exc})") from exc
    return ("\n".join(lines) + ("\n" if lines else "")).encode()


def write_report(
    report: Report,
    path: Path,
    rows: Iterable[SidecarRow] | bytes | None = None,
    replicates: bytes | None = None,
) -> Report:
    """Write the sidecar (when rows, or their :func:`encode_sidecar` bytes, are given), the replicates file
    (when given: :func:`riskaudit.analysis.replicates.encode_replicates` bytes) and the report as one: all are staged in
    temporary files first, and a failure leaves none changed nor any temporary file behind (see
    :func:`riskaudit.reporting.outputs.write_together`); returns the written report."""
    files: list[tuple[Path, bytes]] = []
    if replicates is not None:
        rep_path = path.with_name(replicates_path_for(path.name))
        n_series = count_series(replicates)
        files.append((rep_path, replicates))
        ref = SidecarRef(path=rep_path.name, rows=n_series, sha256=hashlib.sha256(replicates).hexdigest())
        report = report.model_copy(update={"replicates": ref})
    if rows is not None:
        side = sidecar_path_for(path)
        data = rows if isinstance(rows, bytes) else encode_sidecar(rows)
        n_rows = data.count(b"\n")
        files.append((side, data))
        report = report.model_copy(
            update={"sidecar": SidecarRef(path=side.name, rows=n_rows, sha256=hashlib.sha256(data).hexdigest())}
        )
    try:
        text = json.dumps(report.model_dump(mode="json"), allow_nan=False, indent=1)
    except ValueError as exc:  # NaN or Infinity slipped into a metric
        raise RiskauditError(f"refusing to write {path}: the report holds a NaN or Infinity ({exc})") from exc
    files.append((path, text.encode() + b"\n"))
    write_together(files)
    return report


def _reject_constant(token: str) -> float:
    raise ValueError(f"non-standard JSON number {token}")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):  # e.g. 1e999 overflows to inf without passing through parse_constant
        raise ValueError(f"number {token} is not finite")
    return value


def read_report(path: Path, verify_sidecar: bool = True) -> Report:
    """Read and validate a report; refuses NaN/Infinity, a newer major schema and a sidecar that does not match
    its sha256. An absent sidecar is no error (see :func:`missing_sidecar_note`): the JSON alone is a report."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RiskauditError(f"cannot read report {path}: {exc}") from exc
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as exc:
        raise RiskauditError(f"{path}: not a valid strict-JSON report ({exc})") from exc
    if not isinstance(data, dict):
        raise RiskauditError(f"{path}: a report is a JSON object")
    version = str(data.get("schema_version", ""))
    major = version.split(".")[0]
    if not major.isdigit():
        raise RiskauditError(f"{path}: missing or malformed schema_version {version!r}")
    if int(major) > int(SCHEMA_VERSION.split(".")[0]):
        raise RiskauditError(
            f"{path}: report schema {version} is newer than this riskaudit supports ({SCHEMA_VERSION}); "
            "upgrade riskaudit"
        )
    try:
        report = Report.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise RiskauditError(f"{path}: invalid report at {loc}: {err['msg']}") from exc
    if verify_sidecar and report.sidecar is not None:
        side = path.with_name(report.sidecar.path)
        try:
            digest = hashlib.sha256(side.read_bytes()).hexdigest()
        except FileNotFoundError:  # the JSON alone (a model card's or a CI artifact's copy): still a report
            return report
        except OSError as exc:
            raise RiskauditError(f"{path}: sidecar {side} cannot be read: {exc.strerror}") from exc
        if digest != report.sidecar.sha256:
            raise RiskauditError(f"{path}: sidecar {side.name} does not match its sha256 in the report")
    return report


def missing_sidecar_note(path: Path, report: Report) -> str | None:
    """One line saying what is unavailable when the report at ``path`` references a per-item sidecar that is
    not beside it (None when it is there or none is referenced): everything else reads the report JSON alone."""
    if report.sidecar is None or path.with_name(report.sidecar.path).exists():
        return None
    return (
        f"{path}: its per-item sidecar {report.sidecar.path} is not beside it: per-item records "
        f"({report.sidecar.rows} rows) are unavailable; tables, analysis, policy checks, card and HTML page use the "
        "report JSON alone"
    )


def read_replicates(path: Path, report: Report) -> ScanReplicates | None:
    """The paired replicates the report at ``path`` references; None when it references none or the file is
    absent (then a re-analysis cannot be exact); RiskauditError when the file does not match its sha256."""
    if report.replicates is None:
        return None
    rep = path.with_name(report.replicates.path)
    try:
        data = rep.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RiskauditError(f"{path}: replicates {rep} cannot be read: {exc.strerror}") from exc
    if hashlib.sha256(data).hexdigest() != report.replicates.sha256:
        raise RiskauditError(f"{path}: replicates {rep.name} do not match their sha256 in the report")
    return decode_replicates(data, str(rep))
