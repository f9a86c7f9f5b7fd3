"""Peak memory of a family scan vs one member: a family scan must hold one member at a time, not the sum.

Runs ``riskaudit scan --family demo -q`` (all members) and ``riskaudit scan --family demo --members <largest>
-q`` (one member) in subprocesses and reads each one's peak RSS (``ru_maxrss`` of the finished child).
Ratio = family peak / (single-member peak) — near 1 means one member at a time; the sum of all members'
weights is printed for comparison. Target: family peak ≤ 1.1 × single-member peak.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _common as c

_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "2"}


def _peak_rss_mib(args: list[str]) -> float:
    """Peak RSS (MiB) of ``python -m riskaudit <args>``, run in a fresh child (measured via a wrapper child
    so ``RUSAGE_CHILDREN`` covers only that run)."""
    code = (
        "import resource, subprocess, sys;"
        f"p = subprocess.run([sys.executable, '-m', 'riskaudit', *{args!r}], capture_output=True, text=True);"
        "sys.stderr.write(p.stderr[-2000:]) if p.returncode else None;"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "sys.exit(p.returncode)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_ENV, check=False)
    if proc.returncode != 0:
        print(proc.stderr.strip())
        raise SystemExit(f"scan failed ({proc.returncode}): riskaudit {' '.join(args)}")
    return int(proc.stdout.split()[-1]) / 1024  # Linux: KiB


def _weights_mib(source: str) -> float:
    return sum(p.stat().st_size for p in Path(source).glob("*.safetensors")) / 2**20


def main() -> None:
    ap = c.parser(__doc__ or "", repeat=1)
    args = ap.parse_args()
    from riskaudit.inputs.families import load_family

    fam = load_family("demo")
    sizes = {m.name: _weights_mib(str(m.source)) for m in fam.members}
    help_text = subprocess.run(
        [sys.executable, "-m", "riskaudit", "scan", "--help"], capture_output=True, text=True, env=_ENV, check=False
    ).stdout
    no_cache = ["--no-cache"] if "--no-cache" in help_text else []  # measure computing, not store hits
    with tempfile.TemporaryDirectory() as tmp:
        fam_peak = min(
            _peak_rss_mib(["scan", "--family", "demo", "-q", *no_cache, "--out", str(Path(tmp) / f"fam{k}.json")])
            for k in range(max(1, args.repeat))
        )
        one_peak = min(
            _peak_rss_mib(
                [
                    "scan",
                    "--family",
                    "demo",
                    "--members",
                    args.member,
                    "-q",
                    *no_cache,
                    "--out",
                    str(Path(tmp) / f"one{k}.json"),
                ]
            )
            for k in range(max(1, args.repeat))
        )
    ratio = fam_peak / one_peak
    print(
        f"weights: largest ({args.member}) {sizes[args.member]:.1f} MiB, "
        f"all {len(sizes)} members {sum(sizes.values()):.1f} MiB"
    )
    print(f"peak RSS: family scan {fam_peak:.0f} MiB   single-member scan ({args.member}) {one_peak:.0f} MiB")
    print(
        f"family peak - single peak = {fam_peak - one_peak:.1f} MiB (sum of the other members' weights: "
        f"{sum(sizes.values()) - sizes[args.member]:.1f} MiB)"
    )
    c.result("family_vs_single_member_peak_rss", ratio, "<=1.1", ratio <= 1.1)


if __name__ == "__main__":
    main()
