"""Largest metric differences between two scan reports of the same family (e.g. a CPU and a GPU scan).

Prints, per probe, the largest |difference| of any metric value over every member, and the number of
metric values that differ by more than ``--tol``; ends with one RESULT line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from riskaudit.reporting.report import read_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args()
    a, b = read_report(args.base, verify_sidecar=False), read_report(args.new, verify_sidecar=False)
    worst: dict[str, tuple[float, str]] = {}
    n = over = 0
    for ma, mb in zip(a.members, b.members, strict=True):
        assert ma.name == mb.name, (ma.name, mb.name)
        for pa, pb in zip(ma.probes, mb.probes, strict=True):
            vb = {x.name: x.value for x in pb.metrics}
            for x in pa.metrics:
                y = vb.get(x.name)
                if x.value is None or y is None:
                    continue
                d = abs(x.value - y)
                n += 1
                over += d > args.tol
                if d >= worst.get(pa.probe_id, (-1.0, ""))[0]:
                    worst[pa.probe_id] = (d, f"{ma.name} {x.name}: {x.value:.6g} vs {y:.6g}")
    for pid, (d, where) in worst.items():
        print(f"{pid}: max |diff| {d:.2e} ({where})")
    print(
        f"RESULT name=report_agreement ratio={over / max(1, n):.4f} target=0 met={'yes' if over == 0 else 'no'} "
        f"values={n} over_tol={over} tol={args.tol}"
    )


if __name__ == "__main__":
    main()
