"""``scan --executor ray`` on a real two-node Ray cluster started on this machine over loopback.

The cluster (:func:`riskaudit.run.ray_local.local_cluster`) is two ``ray start --block`` processes (a head and
a worker node, one CPU each), each in its own process group, killed with the group when the module's tests
end. Token authentication is off for this loopback cluster (RAY_AUTH_MODE=disabled on every process of it);
see docs/scale-out.md for real clusters.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli, run_cli_here

from riskaudit.reporting.report import Report, read_report
from riskaudit.run.ray_local import BOUND_S, RAY_ENV, LocalCluster, free_port, local_cluster, wait_for

# Under pytest-xdist (--dist loadgroup) every test of this module runs in one worker: the module's cluster is
# started once, and no two Ray runtimes of these tests overlap.
pytestmark = pytest.mark.xdist_group("ray")


def _need_ray() -> None:
    pytest.importorskip("ray", reason="the Ray extra is not installed (pip install 'riskaudit[ray]'); CI installs it")


SCAN = [
    "scan",
    "--family",
    "demo",
    "--probes",
    "occupation_gender_pronoun,memorization",  # memorization: family-level finalization (reference ratio)
    "--limit",
    "8",
    "--seed",
    "5",
    "--members",  # the three smallest: enough units for both nodes, a retry and a resume, a third of the time
    "demo-50k,demo-150k,demo-400k",
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    _need_ray()
    with local_cluster(2) as c:
        yield c


@pytest.fixture(scope="module")
def local_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """The same scan run locally (in this process: the reference numbers, not the process, are what count)."""
    out = tmp_path_factory.mktemp("local") / "r.json"
    proc = run_cli_here(*SCAN, "--out", str(out), "-q", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    return read_report(out)


def _same_results(a: Report, b: Report) -> None:
    """Metrics, analysis and sidecar equal; what ran where and how long it took may differ."""
    assert [m.name for m in a.members] == [m.name for m in b.members]
    for ma, mb in zip(a.members, b.members, strict=True):
        assert ma.status == mb.status == "ok"
        assert [p.metrics for p in ma.probes] == [p.metrics for p in mb.probes], ma.name
        assert (ma.params_total, ma.flops) == (mb.params_total, mb.flops)
    assert a.analysis == b.analysis
    assert a.sidecar is not None and b.sidecar is not None
    assert (a.sidecar.rows, a.sidecar.sha256) == (b.sidecar.rows, b.sidecar.sha256)
    assert a.replicates is not None and b.replicates is not None and a.replicates.sha256 == b.replicates.sha256


def _unit_pids() -> set[int]:
    """Worker processes running a unit right now (Ray titles them ray::<task name>)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return {int(line.split(None, 1)[0]) for line in out.splitlines() if "ray::riskaudit:" in line}


def _scan_proc(cluster: LocalCluster, out: Path, cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, **RAY_ENV, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "riskaudit", *SCAN, "--out", str(out), "--cache-dir", str(cache)]
    cmd += ["--executor", "ray", "--ray-address", cluster.address]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_two_nodes_give_the_local_report_and_a_killed_worker_is_retried(
    cluster: LocalCluster, local_report: Report, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    proc = _scan_proc(cluster, out, tmp_path / "cache")
    killed: list[int] = []
    try:
        wait_for(lambda: bool(_unit_pids()) or proc.poll() is not None, "a unit to start", timeout=300)
        time.sleep(2)  # mid-unit: loading the model or running a probe
        pids = _unit_pids()
        if pids:
            victim = min(pids)
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
        _stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert killed, "no unit was seen running"
    report = read_report(out)
    _same_results(local_report, report)
    ex = report.run.execution
    assert ex.executor == "ray" and ex.address == cluster.address and ex.cluster_nodes == 2
    assert ex.max_retries >= 1
    # both nodes ran units, and every unit says where
    assert len(ex.nodes) == 2 and all(n.units for n in ex.nodes)
    assert sorted(u for n in ex.nodes for u in n.units) == sorted(m.name for m in report.members)
    placements = [m.placement for m in report.members]
    assert all(p is not None and p.executor == "ray" and p.node_id for p in placements)
    # the killed process returned nothing: its unit was computed again by another worker process
    assert killed[0] not in {p.pid for p in placements if p is not None}
    assert " on " in stderr  # progress lines name the node


@pytest.mark.slow
def test_a_killed_driver_resumes_from_the_store(cluster: LocalCluster, local_report: Report, tmp_path: Path) -> None:
    out, cache = tmp_path / "r.json", tmp_path / "cache"
    proc = _scan_proc(cluster, out, cache)
    assert proc.stderr is not None
    try:
        first = proc.stderr.readline()  # the first finished member's line: its units are stored
        while first and not first.startswith("["):
            first = proc.stderr.readline()
        assert first.startswith("[") and ": ok (" in first, first
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=BOUND_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    again = _scan_proc(cluster, out, cache)
    _, stderr = again.communicate(timeout=900)
    assert again.returncode == 0, stderr
    assert "from store" in stderr  # what the killed driver stored was not recomputed
    report = read_report(out)
    _same_results(local_report, report)
    served = [m for m in report.members if m.placement is None]
    assert served and len(served) < len(report.members)


def test_executor_ray_without_ray_installed_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    proc = run_cli(*SCAN, "--executor", "ray", "--out", str(tmp_path / "r.json"), env={"PYTHONPATH": str(fake.parent)})
    assert_one_line_error(proc, "pip install 'riskaudit[ray]'")
    assert not (tmp_path / "r.json").exists()
    # sizing a cluster needs no Ray
    proc = run_cli(*SCAN, "--executor", "ray", "--plan", "--json", env={"PYTHONPATH": str(fake.parent)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["executor"] == "ray"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "dask"], "unknown --executor 'dask'"),
        (["--ray-address", "127.0.0.1:1"], "--ray-address needs --executor ray"),
    ],
)
def test_executor_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_cli_here(*SCAN, *args, "--out", str(tmp_path / "r.json"))
    assert_one_line_error(proc, message)


def test_unreachable_cluster_is_one_line(tmp_path: Path) -> None:
    _need_ray()
    port = free_port()  # nothing listens there
    proc = run_cli(
        *SCAN,
        "--executor",
        "ray",
        "--ray-address",
        f"127.0.0.1:{port}",
        "--out",
        str(tmp_path / "r.json"),
        env=RAY_ENV,
    )
    assert_one_line_error(proc, f"cannot reach the Ray cluster at 127.0.0.1:{port}")
    proc = run_cli(*SCAN, "--executor", "ray", "--ray-address", "nowhere", "--out", str(tmp_path / "r.json"))
    assert_one_line_error(proc, "bad --ray-address 'nowhere'")


def test_report_records_local_execution(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ("occupation_gender_pronoun", "--limit", "3", "--members", "demo-50k", "--out", str(out))
    proc = run_cli_here(*SCAN[:4], *args)  # in this process: the unit's pid is this one
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["run"]["execution"]["executor"] == "local"
    [node] = doc["run"]["execution"]["nodes"]
    assert node["units"] == ["demo-50k"] and node["hostname"] == socket.gethostname()
    assert doc["members"][0]["placement"]["pid"] == os.getpid()


@pytest.mark.slow
def test_a_local_ray_started_by_the_scan(tmp_path: Path) -> None:
    """No --ray-address: the scan starts its own Ray on this machine and shuts it down at the end."""
    _need_ray()
    out = tmp_path / "r.json"
    args = ["--members", "demo-50k,demo-150k", "--probes", "occupation_gender_pronoun", "--limit", "3"]
    before = _unit_pids()  # workers of the module's shared cluster (a unit a killed driver left) are not this scan's
    proc = run_cli(*SCAN[:3], *args, "--executor", "ray", "--out", str(out), env=RAY_ENV)
    assert proc.returncode == 0, proc.stderr
    local = tmp_path / "local.json"
    assert run_cli_here(*SCAN[:3], *args, "--out", str(local)).returncode == 0
    report, ref = read_report(out), read_report(local)
    ex = report.run.execution
    assert ex.executor == "ray" and ex.address is None and ex.cluster_nodes == 1
    assert all(m.placement is not None and m.placement.executor == "ray" for m in report.members)
    assert [[p.metrics for p in m.probes] for m in report.members] == [
        [p.metrics for p in m.probes] for m in ref.members
    ]
    wait_for(lambda: not (_unit_pids() - before), "the scan's own Ray workers to exit", timeout=30)


@pytest.mark.slow
def test_a_member_that_cannot_load_on_a_worker_is_a_member_failure(cluster: LocalCluster, tmp_path: Path) -> None:
    """A load error on a worker is not retried: with --keep-going the member is recorded as failed (exit 1),
    without it the scan stops with the worker's one-line reason (exit 2)."""
    from tiny import write_tiny_family

    toml = write_tiny_family(tmp_path)
    toml.write_text(toml.read_text() + '[[members]]\nname = "gone"\nsource = "./models/gone"\ntokens = 3000\n')
    args = ["scan", "--family", str(toml), "--probes", "occupation_gender_pronoun", "--limit", "3", "-q"]
    args += ["--executor", "ray", "--ray-address", cluster.address]
    out = tmp_path / "r.json"
    proc = run_cli(*args, "--keep-going", "--out", str(out), env=RAY_ENV)
    assert proc.returncode == 1, proc.stderr
    report = read_report(out)
    status = {m.name: m.status for m in report.members}
    assert status == {"small": "ok", "large": "ok", "gone": "failed"}
    gone = next(m for m in report.members if m.name == "gone")
    assert gone.error is not None and "gone" in gone.error and gone.placement is None
    proc = run_cli(*args, "--out", str(tmp_path / "r2.json"), env=RAY_ENV)
    assert_one_line_error(proc, "cannot load model")


PROGRESS_SCRIPT = """
import json, sys
from riskaudit.inputs.families import load_family
from riskaudit.run.probe_subset import limit_probe, select_probes
from riskaudit.run.ray_executor import RayExecutor
from riskaudit.run.scan import ProbeOptions, ScanOptions, build_probes, scan_family


class Events:
    def __init__(self):
        self.seen = []

    def member_start(self, index, total, member):
        pass

    def probe_progress(self, member, probe_id, done, total):
        self.seen.append([member.name, probe_id, done, total])

    def member_done(self, index, total, result, seconds, from_store=False):
        pass

    def step_done(self, step, seconds, detail=""):
        pass


fam = load_family("demo").select(["demo-50k", "demo-150k"])
probes = select_probes(build_probes(fam, ProbeOptions(memorization=False)), ["occupation_gender_coreference"])
events = Events()
with RayExecutor(sys.argv[1]) as ex:
    scan_family(fam, ScanOptions(), [limit_probe(p, 6) for p in probes], events, executor=ex)
print(json.dumps(events.seen))
"""


@pytest.mark.slow
def test_worker_probe_progress_reaches_the_driver(cluster: LocalCluster) -> None:
    env = {**os.environ, **RAY_ENV, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", PROGRESS_SCRIPT, cluster.address], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    for member in ("demo-50k", "demo-150k"):
        updates = [u for u in seen if u[0] == member]
        assert updates, seen
        assert updates[-1][1] == "occupation_gender_coreference" and updates[-1][2] == updates[-1][3] > 0


def test_a_task_no_node_can_run_is_named_before_anything_is_submitted() -> None:
    _need_ray()  # ray_executor imports no Ray at module level, but its module is the extra's
    from riskaudit.run.placement import TaskResources
    from riskaudit.run.ray_executor import unschedulable

    nodes = [{"CPU": 1.0, "memory": 8 * 2**30}, {"CPU": 8.0, "GPU": 2.0, "memory": 64 * 2**30}]
    assert unschedulable(TaskResources(num_cpus=1, memory=4 * 2**30), nodes) == ""
    assert unschedulable(TaskResources(num_cpus=1, num_gpus=0.125), nodes) == ""
    assert unschedulable(TaskResources(num_cpus=1, num_gpus=2.0, memory=32 * 2**30), nodes) == ""
    why = unschedulable(TaskResources(num_cpus=1, memory=100 * 2**30), nodes)
    assert why == "it needs 100.0 GiB of memory; the largest node has 64.0 GiB of memory"
    assert "4 GPU" in unschedulable(TaskResources(num_cpus=1, num_gpus=4.0), nodes)
    # enough of each somewhere, but not on one node
    split = [{"CPU": 1.0, "GPU": 0.0, "memory": 64 * 2**30}, {"CPU": 1.0, "GPU": 1.0, "memory": 1 * 2**30}]
    assert "no single node" in unschedulable(TaskResources(num_cpus=1, num_gpus=1.0, memory=8 * 2**30), split)
