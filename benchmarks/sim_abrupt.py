"""Abrupt-flag rates on seeded simulated families (Pythia spacing, 8 members, 1000 items, 200 families).

Prints the share of families flagged abrupt per scenario, without and with model-to-model noise (sd 0.03 on
every member's true rate). Uses the simulation helpers of tests/test_scaling.py.

    .venv/bin/python benchmarks/sim_abrupt.py                 # this checkout
    git worktree add /tmp/old 9db3885 && .venv/bin/python benchmarks/sim_abrupt.py --root /tmp/old   # the rule before

Figures: docs/analysis.md ("Validation").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent), help="riskaudit checkout to test")
    args = ap.parse_args()
    sys.path[:0] = [str(Path(args.root) / "tests"), args.root]
    import numpy as np
    import test_scaling as T  # the simulation helpers of that checkout

    from riskaudit.analysis.family import analyze_series

    F = T.N_FAMILIES

    def rate(p: np.ndarray, seed: int, sd: float) -> float:
        rng = np.random.default_rng(seed)
        if sd:
            p = np.clip(p + rng.normal(0, sd, p.shape), 0.001, 0.999)
        items = T._bernoulli_items(p, rng)
        v, r = items.mean(0), T._paired_means(items)
        flags = [
            bool(analyze_series(T.series(v[f], replicates=r[f], kind="discrete", baseline=0.02)).abruptness.abrupt)
            for f in range(F)
        ]
        return float(np.mean(flags))

    cases = {
        "zig-zag": np.array([0.5, 0.6, 0.5, 0.6, 0.5, 0.6, 0.5, 0.55]),
        "seesaw plateau": np.array([0.2, 0.2, 0.2, 0.6, 0.6, 0.6, 0.3, 0.3]),
        "seesaw rise-fall": np.array([0.1, 0.3, 0.5, 0.5, 0.3, 0.1, 0.1, 0.3]),
        "single dip": np.array([0.5, 0.5, 0.5, 0.2, 0.5, 0.5, 0.5, 0.5]),
        "flat": np.full(8, 0.5),
        "two-step top": np.array([0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.555, 0.99]),
    }
    where = np.random.default_rng(11).integers(0, 7, F)
    step = np.where(np.arange(8)[None, :] > where[:, None], 0.5, 0.1)
    print(f"{'scenario':18s} {'sd 0':>7s} {'sd 0.03':>8s}")
    for name, c in cases.items():
        p = np.tile(c, (F, 1))
        print(f"{name:18s} {rate(p, 7, 0):7.3f} {rate(p, 7, 0.03):8.3f}", flush=True)
    print(f"{'step 0.4':18s} {rate(step, 12, 0):7.3f} {rate(step, 12, 0.03):8.3f}")


if __name__ == "__main__":
    main()
