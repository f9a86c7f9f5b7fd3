"""Wall time of a demo-family scan: the local executor vs Ray with two workers, and Ray's fixed overhead.

Three timings, each a whole `riskaudit scan` process with an empty result store (--no-cache):

* local: ``scan --family demo`` (one member after another, torch on --threads threads);
* ray: the same with ``--executor ray`` on a Ray cluster of two one-CPU workers (``--cluster two-nodes``: a
  head and a worker node started here over loopback by riskaudit.run.ray_local, as tests/test_ray_executor.py
  does; ``local``: the
  Ray that the scan starts itself, one worker per CPU);
* overhead: the same pair for a scan whose units are nearly empty (one member, one probe, --limit 1), so the
  difference is what Ray costs on top of the work: connecting, shipping the probes, starting a worker
  process and importing torch and transformers in it.

The scans' metrics are compared (max |Δ|: equal but for float rounding, since the local scan's torch uses
--threads threads and each one-CPU Ray task one); the script ends with one RESULT line. On a lent GPU
machine pass ``--family FAMILY.toml`` with Pythia-shaped members (benchmarks/make_model.py) and
``--device cuda``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from riskaudit.run.ray_local import RAY_ENV, local_cluster


def timed_scan(args: list[str], out: Path, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    cmd = [sys.executable, "-m", "riskaudit", "scan", *args, "--out", str(out), "-q", "--no-cache"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, json.loads(out.read_text())


def metrics(doc: dict[str, object]) -> object:
    members = doc["members"]
    assert isinstance(members, list)
    return [[p["metrics"] for p in m["probes"]] for m in members]


def _numbers(obj: object) -> list[float]:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return []
    if isinstance(obj, int | float):
        return [float(obj)]
    if isinstance(obj, dict):
        return [x for k in sorted(obj) for x in _numbers(obj[k])]
    if isinstance(obj, list):
        return [x for v in obj for x in _numbers(v)]
    return []


def max_diff(a: object, b: object) -> float:
    """Largest |Δ| between two reports' metric values (inf when their shapes differ)."""
    xa, xb = _numbers(a), _numbers(b)
    if len(xa) != len(xb):
        return float("inf")
    diffs = [abs(x - y) for x, y in zip(xa, xb, strict=True) if x == x and y == y]  # NaN: no value on both
    return max(diffs, default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", default="demo")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the local scan (OMP_NUM_THREADS)")
    ap.add_argument("--cluster", choices=["two-nodes", "local"], default="two-nodes")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-full", action="store_true", help="only the fixed-overhead pair")
    a = ap.parse_args()
    base = {**os.environ, **RAY_ENV, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    local_env = {**base, "OMP_NUM_THREADS": str(a.threads)}
    common = ["--family", a.family, "--device", a.device]
    tiny = [*common, "--members", "demo-50k", "--probes", "occupation_gender_pronoun", "--limit", "1"]
    if a.family != "demo":
        tiny = [*common, "--probes", "occupation_gender_pronoun", "--limit", "1"]
    with tempfile.TemporaryDirectory(prefix="riskaudit-bench-ray-") as tmp_s:
        tmp = Path(tmp_s)
        ray_args = ["--executor", "ray"]
        with contextlib.ExitStack() as stack:
            if a.cluster == "two-nodes":
                cluster = stack.enter_context(local_cluster(2, env=base, tmp=tmp, timeout=120))
                ray_args += ["--ray-address", cluster.address]
            rows = []
            pairs = [("fixed overhead (1 member, 1 probe, --limit 1)", tiny)]
            if not a.skip_full:
                pairs.append((f"family {a.family}, all probes", common))
            for label, args in pairs:
                t_local, d_local = timed_scan(args, tmp / "local.json", local_env)
                t_ray, d_ray = timed_scan([*args, *ray_args], tmp / "ray.json", base)
                rows.append((label, t_local, t_ray, max_diff(metrics(d_local), metrics(d_ray))))
    workers = "2 one-CPU nodes on loopback" if a.cluster == "two-nodes" else "a local Ray, one worker per CPU"
    print(f"cores: {os.cpu_count()}, local torch threads: {a.threads}, Ray: {workers}")
    print(f"{'scan':<48} {'local s':>9} {'ray s':>9} {'ray/local':>10}  max |Δ metric|")
    for label, tl, tr, diff in rows:
        print(f"{label:<48} {tl:>9.1f} {tr:>9.1f} {tr / tl:>10.2f}  {diff:.2e}")
    overhead = rows[0][2] - rows[0][1]
    print(f"Ray's fixed overhead (ray - local, near-empty scan): {overhead:.1f} s")
    ratio = rows[-1][2] / rows[-1][1]
    ok = all(r[3] <= 1e-4 for r in rows)  # thread counts differ (local --threads, Ray 1 per task): rounding only
    print(f"RESULT name=ray_vs_local ratio={ratio:.2f} target=metrics_within_1e-4 met={'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
