"""Warm rescan vs cold scan with the result store: ``riskaudit scan --family demo --cache-dir <tmp> -q`` twice.

The first run computes everything (cold, empty store); the second finds every result in the store (warm).
Ratio = warm time / cold time (target ≤ 5%).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "2"}
    return subprocess.run(
        [sys.executable, "-m", "riskaudit", *args], capture_output=True, text=True, env=env, check=False
    )


def main() -> None:
    ap = c.parser(__doc__ or "", repeat=1)
    ap.add_argument("--family", default="demo")
    ap.add_argument("--extra", default="", help="extra scan options, space-separated")
    args = ap.parse_args()
    help_text = _cli("scan", "--help").stdout
    if "--cache-dir" not in help_text:
        print("riskaudit scan has no --cache-dir option yet (the result store is not wired into the scan)")
        print("RESULT name=store_warm_vs_cold ratio=nan target=<=0.05 met=no skipped=no_cache_dir")
        return
    cold, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(max(1, args.repeat)):
            cache = Path(tmp) / f"cache{k}"
            out = Path(tmp) / f"report{k}.json"
            cmd = ["scan", "--family", args.family, "--cache-dir", str(cache), "-q", "--out", str(out)]
            cmd += args.extra.split()
            for times in (cold, warm):
                t0 = time.perf_counter()
                proc = _cli(*cmd)
                times.append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    print(proc.stderr.strip()[-2000:])
                    raise SystemExit(f"scan failed with exit code {proc.returncode}")
    tc, tw = sorted(cold)[len(cold) // 2], sorted(warm)[len(warm) // 2]
    ratio = tw / tc
    print(f"family={args.family} cold scan: {tc:.1f} s   warm rescan: {tw:.1f} s")
    c.result("store_warm_vs_cold", ratio, "<=0.05", ratio <= 0.05)


if __name__ == "__main__":
    main()
