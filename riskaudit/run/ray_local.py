"""A bounded loopback Ray cluster of N nodes on this machine, for tests and benchmarks of ``--executor ray``.

:func:`local_cluster` starts one ``ray start --block`` process per node on 127.0.0.1 (the first is the head),
each in its own process group, waits until every node is alive, and on exit kills each node's whole process
group (raylet, GCS, workers) and waits for it. Every step is bounded (``timeout``). Token authentication is
off for this loopback cluster (``RAY_AUTH_MODE=disabled`` on all its processes; pass :data:`RAY_ENV` to the
drivers that connect to it too); see docs/scale-out.md for real clusters.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
BOUND_S = 90.0  # any cluster step that takes longer than this has failed


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Callable[[], bool], what: str, timeout: float = BOUND_S) -> None:
    """Poll ``pred`` every half second; TimeoutError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _ray_bin() -> str:
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else shutil.which("ray") or str(beside)


@dataclass
class LocalCluster:
    """A running loopback cluster: its address (``--ray-address``), the environment of its processes, and
    each node's ``ray start`` process (its process group holds every Ray process of the node) and log."""

    port: int
    tmp: Path
    env: dict[str, str]
    timeout: float = BOUND_S
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start_node(self, *args: str, cpus: int = 1, gpus: int = 0) -> None:
        """Start one node (``--head`` or ``--address`` among ``args``) and wait until it blocks."""
        i = len(self.procs)
        log = self.tmp / f"node{i}.log"
        cmd = [_ray_bin(), "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}"]
        cmd += [f"--num-gpus={gpus}", *args, f"--temp-dir={self.tmp / 'ray'}"]
        with log.open("wb") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.procs.append(proc)
        self.logs.append(log)
        wait_for(lambda: "--block" in log.read_text() or proc.poll() is not None, f"ray node {i}", self.timeout)
        if proc.poll() is not None:
            raise RuntimeError(f"ray node {i} exited with {proc.returncode}: {log.read_text()[-2000:]}")

    def alive_nodes(self) -> int:
        """Nodes the head reports alive (asked from a fresh driver process, so this one never imports Ray)."""
        code = (
            f"import ray, logging; ray.init(address={self.address!r}, log_to_driver=False, "
            "logging_level=logging.ERROR); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=self.env, timeout=self.timeout
        )
        return int(out.stdout.strip() or 0)

    def stop(self) -> None:
        """Kill every node's process group and wait for each ``ray start`` to exit."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=self.timeout)
        self.procs.clear()


@contextlib.contextmanager
def local_cluster(
    nodes: int = 2,
    *,
    cpus_per_node: int = 1,
    env: Mapping[str, str] | None = None,
    tmp: Path | None = None,
    timeout: float = BOUND_S,
) -> Iterator[LocalCluster]:
    """``nodes`` Ray nodes of ``cpus_per_node`` CPUs and no GPU on 127.0.0.1, alive on entry, killed on exit.

    ``env`` (default: this process's environment) gets :data:`RAY_ENV` on top; ``tmp`` holds the node logs
    and Ray's session directory (default: a temporary directory removed on exit).
    """
    if nodes < 1:
        raise ValueError(f"a cluster needs at least one node, got {nodes}")
    with contextlib.ExitStack() as stack:
        if tmp is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="riskaudit-ray-")))
        cluster = LocalCluster(port=free_port(), tmp=tmp, env={**(env or os.environ), **RAY_ENV}, timeout=timeout)
        stack.callback(cluster.stop)  # also when a node fails to start
        cluster.start_node(
            "--head", f"--port={cluster.port}", "--include-dashboard=false", "--disable-usage-stats", cpus=cpus_per_node
        )
        for _ in range(nodes - 1):
            cluster.start_node(f"--address={cluster.address}", cpus=cpus_per_node)
        wait_for(lambda: cluster.alive_nodes() == nodes, f"{nodes} alive nodes", timeout)
        yield cluster
