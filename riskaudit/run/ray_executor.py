"""``scan --executor ray``: each (member, revision) is one Ray task, placed by Ray on a node with the CPUs,
GPUs (or GPU fraction) and memory that member needs.

The driver (the ``riskaudit scan`` process) connects to a cluster (``--ray-address``) or starts a local
Ray, ships the probes once through Ray's object store, submits every unit that is not already in the result
store, and takes the outcomes as they finish (``ray.wait``). A task whose worker process dies is retried by
Ray (``max_retries``); a member that cannot be loaded comes back as a failure and is not retried. Workers
never touch the result store: only the driver writes it (:func:`riskaudit.run.scan.scan_family`).

Ray is an optional extra (``pip install 'riskaudit[ray]'``); nothing here imports it at module level.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from riskaudit.errors import ModelLoadError, RiskauditError
from riskaudit.inputs.family_spec import ModelSpec
from riskaudit.models import LoadOptions
from riskaudit.probes.base import Probe
from riskaudit.reporting.report import ExecutionInfo, UnitPlacement
from riskaudit.run.executor import UnitFailure
from riskaudit.run.placement import TaskResources, estimate_footprint, task_resources
from riskaudit.run.token_count import TokenCounter, workload_shapes
from riskaudit.run.units import UnitOutcome, UnitRequest, compute_unit, member_load_options
from riskaudit.run.weights import is_pinned, weights_fingerprint

if TYPE_CHECKING:
    from riskaudit.run.executor import IndexedSink
    from riskaudit.run.options import ScanEvents, ScanOptions

INSTALL_HINT = "pip install 'riskaudit[ray]'"
DEFAULT_MAX_RETRIES = 3


def import_ray() -> ModuleType:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RiskauditError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


PROGRESS_EVERY_S = 0.5  # a worker reports a probe's progress at most this often (and when a probe ends)


def _progress_sender(queue: Any, index: int) -> Callable[[str, int, int], None]:
    """A probe-progress callback that puts (member index, probe id, done, total) on the driver's queue, at most
    every PROGRESS_EVERY_S per unit and always at a probe's last item; a full or lost queue drops the update."""
    last = [0.0]

    def send(probe_id: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = now
        with contextlib.suppress(Exception):  # progress is best effort: it never fails a unit
            queue.put_nowait((index, probe_id, done, total))

    return send


def _run_unit(
    request: UnitRequest, probes: Sequence[Probe], load: LoadOptions, seed: int, progress: Any = None
) -> UnitOutcome | UnitFailure:
    """The body of one Ray task (on a worker): compute the unit; a member that cannot be loaded is a failure
    value, not an exception, so Ray does not retry it."""
    import ray

    ctx = ray.get_runtime_context()
    util: Any = ray.util
    gpus = [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])]
    where = UnitPlacement(
        executor="ray",
        node_id=ctx.get_node_id(),
        node_ip=str(util.get_node_ip_address()),
        hostname=socket.gethostname(),
        pid=os.getpid(),
        gpu_ids=gpus,
    )
    device = "cuda" if gpus else "cpu"  # Ray set CUDA_VISIBLE_DEVICES to the task's GPUs
    # a fingerprint the driver could not pin (a hub model not in its cache) is taken where the model loads
    fingerprinter = None if is_pinned(request.expected_fingerprint) else _fingerprint
    try:
        return compute_unit(
            request.member,
            probes,
            load.model_copy(update={"device": device}),
            seed,
            skip=request.skip,
            expected_fingerprint=request.expected_fingerprint,
            fingerprint=fingerprinter,
            progress=None if progress is None else _progress_sender(progress, request.index),
            placement=where,
        )
    except ModelLoadError as exc:
        return UnitFailure(error=str(exc))


def _fingerprint(source: str, revision: str | None) -> str:
    return weights_fingerprint(source, revision)


def _gpu_of_cluster(ray: Any) -> tuple[int, bool]:
    """One of the cluster's GPUs, read by a one-GPU task: its memory in bytes, and whether it computes in
    bfloat16 natively (compute capability 8.0 or newer, as :func:`riskaudit.models.devices.resolve_dtype`)."""

    def read() -> tuple[int, bool]:
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory), torch.cuda.get_device_capability(0)[0] >= 8

    memory, bf16 = ray.get(ray.remote(num_gpus=1, max_retries=0)(read).remote())
    return int(memory), bool(bf16)


class RayExecutor:
    """Units as Ray tasks. Use as a context manager: it connects on enter and disconnects on exit (a local Ray
    it started is shut down with it)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        gpu_memory: int | None = None,
        num_cpus: int | None = None,
    ) -> None:
        self.address = address
        self.max_retries = max_retries
        self.gpu_memory = gpu_memory
        self.num_cpus = num_cpus  # a local Ray's CPUs (None: all)
        self._ray: Any = None
        self._nodes = 1
        self._gpu_info: tuple[int, bool] | None = None  # (bytes, bfloat16) of the cluster's GPUs

    def __enter__(self) -> RayExecutor:
        ray = import_ray()
        if self.address is not None:
            check_reachable(self.address)
        kwargs: dict[str, Any] = {
            "log_to_driver": False,
            "logging_level": logging.ERROR,
            "configure_logging": True,
        }
        try:
            if self.address is None:
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a local Ray"
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RiskauditError(f"cannot start or reach Ray ({where}): {msg}") from None
        self._ray = ray
        self._nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ray is not None:
            self._ray.shutdown()
            self._ray = None

    @property
    def info(self) -> ExecutionInfo:
        return ExecutionInfo(
            executor="ray", address=self.address, cluster_nodes=self._nodes, max_retries=self.max_retries
        )

    def _uses_gpu(self, load: LoadOptions) -> bool:
        """Units run on the cluster's GPUs unless --device cpu (or the cluster has none)."""
        use_gpu = load.device != "cpu" and float(self._ray.cluster_resources().get("GPU", 0)) > 0
        if load.device.startswith("cuda") and not use_gpu:
            raise RiskauditError(f"--device {load.device} was asked for, but the Ray cluster has no GPUs")
        return use_gpu

    def _gpu(self) -> tuple[int, bool]:
        if self._gpu_info is None:
            memory, bf16 = _gpu_of_cluster(self._ray)
            self._gpu_info = (self.gpu_memory or memory, bf16)
        return self._gpu_info

    def resolve_load(self, load: LoadOptions) -> LoadOptions:
        """``--device auto`` and ``--dtype auto`` resolved for the cluster's workers, not for this machine
        (the driver may have no GPU): the result store's keys hold what the workers compute in."""
        use_gpu = self._uses_gpu(load)
        update: dict[str, str] = {"device": "cuda" if use_gpu else "cpu"}
        if load.dtype == "auto":
            update["dtype"] = "bfloat16" if use_gpu and self._gpu()[1] else "float32"
        return load.model_copy(update=update)

    def resources(
        self, member: ModelSpec, load: LoadOptions, counter: TokenCounter | None = None
    ) -> TaskResources:
        """What one unit of ``member`` asks Ray for: GPUs when the scan uses a device other than the CPU and the
        cluster has GPUs (a fraction of one when the member fits a share of its memory, whole GPUs for a
        --device-map split), else one CPU and the member's estimated memory, for the forward passes its probes
        make (counted by ``counter``, as ``scan --plan`` counts them)."""
        use_gpu = self._uses_gpu(load)
        gpu_memory = self._gpu()[0] if use_gpu else None
        member_load = member_load_options(load, member)
        shapes = None if counter is None else workload_shapes(counter.count(member, member_load))
        footprint = estimate_footprint(member, member_load, use_gpu=use_gpu, shapes=shapes)
        return task_resources(footprint, gpu_memory, device_map=load.device_map is not None)

    def run(
        self,
        requests: Sequence[UnitRequest],
        probes: Sequence[Probe],
        options: ScanOptions,
        events: ScanEvents,
        total: int,
        on_result: IndexedSink,
    ) -> Iterator[tuple[UnitRequest, UnitOutcome | UnitFailure]]:
        ray = self._ray
        if ray is None:
            raise RuntimeError("RayExecutor used outside its context")
        if not requests:
            return
        from ray.util.queue import Queue

        task = ray.remote(_run_unit)
        shared = ray.put(list(probes))
        # workers' probe progress comes back through a queue actor that holds no CPU
        progress = Queue(maxsize=10_000, actor_options={"num_cpus": 0})
        members = {r.index: r.member for r in requests}
        pending: dict[Any, UnitRequest] = {}
        try:
            counter = TokenCounter(probes)
            needs = {r.index: self.resources(r.member, options.load, counter) for r in requests}
            nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
            for request in requests:
                why = unschedulable(needs[request.index], nodes)
                if why:
                    raise RiskauditError(f"{request.member.name}: no node of the Ray cluster can run its unit: {why}")
            for request in requests:
                need = needs[request.index]
                ref = task.options(
                    num_cpus=need.num_cpus,
                    num_gpus=need.num_gpus,
                    memory=need.memory,
                    max_retries=self.max_retries,
                    retry_exceptions=False,
                    name=f"riskaudit:{request.member.name}",
                ).remote(request, shared, options.load, options.seed, progress)
                pending[ref] = request
                events.member_start(request.index, total, request.member)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=PROGRESS_EVERY_S)
                _forward_progress(progress, members, events)
                if not done:
                    continue
                ref = done[0]
                request = pending.pop(ref)
                yield request, self._outcome(ray, ref, request)
        finally:
            for ref in pending:  # interrupted: nothing else will take these results
                ray.cancel(ref, force=True)
            with contextlib.suppress(Exception):
                progress.shutdown()

    def _outcome(self, ray: Any, ref: Any, request: UnitRequest) -> UnitOutcome | UnitFailure:
        from ray import exceptions as rex

        try:
            value = ray.get(ref)
        except rex.RayTaskError as exc:  # the probe code raised: a bug or bad input, not a lost worker
            cause: BaseException = exc.cause or exc
            if isinstance(cause, RiskauditError):
                raise type(cause)(str(cause)) from None
            raise RiskauditError(f"{request.member.name}: the unit failed on its Ray worker: {_line(cause)}") from None
        except rex.RayError as exc:  # the worker died more often than Ray retries, or the task cannot run
            return UnitFailure(
                error=f"{request.member.name}: its Ray task failed after {self.max_retries} retries: {_line(exc)}"
            )
        if not isinstance(value, UnitOutcome | UnitFailure):
            raise RiskauditError(f"{request.member.name}: unexpected result from its Ray task")
        return value


def _forward_progress(queue: Any, members: dict[int, ModelSpec], events: ScanEvents) -> None:
    """Hand the workers' queued probe progress to the driver's progress display."""
    try:
        updates = queue.get_nowait_batch(queue.qsize())
    except Exception:  # the queue actor is gone (a lost node): progress is best effort
        return
    for index, probe_id, done, total in updates:
        events.probe_progress(members[index], probe_id, done, total)


def unschedulable(need: TaskResources, nodes: Sequence[dict[str, float]]) -> str:
    """Why no node (its total resources, as ``ray.nodes()`` gives them) can ever run a task asking for ``need``
    ("" when one can): Ray would keep such a task pending for ever."""
    asks = {"CPU": need.num_cpus, "GPU": need.num_gpus, "memory": float(need.memory or 0)}
    for node in nodes:
        if all(float(node.get(k, 0.0)) >= v for k, v in asks.items() if v > 0):
            return ""
    best = {k: max((float(n.get(k, 0.0)) for n in nodes), default=0.0) for k in asks}
    short = [k for k, v in asks.items() if v > best[k]]
    if not short:
        return "it needs " + _describe(asks) + ", which no single node has (largest: " + _describe(best) + ")"
    return "it needs " + _describe({k: asks[k] for k in short}) + "; the largest node has " + _describe(
        {k: best[k] for k in short}
    )


def _describe(res: dict[str, float]) -> str:
    parts = []
    for k, v in res.items():
        if k == "memory":
            parts.append(f"{v / 2**30:.1f} GiB of memory")
        elif v > 0 or k in ("CPU", "GPU"):
            parts.append(f"{v:g} {k}")
    return ", ".join(parts)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A HOST:PORT cluster address must accept a connection (Ray itself would retry for minutes)."""
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RiskauditError(f"bad --ray-address {address!r}: expected auto or HOST:PORT (the head's GCS port)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RiskauditError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}; start its head with "
            f"`ray start --head --port={port}` or check the address"
        ) from None


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
