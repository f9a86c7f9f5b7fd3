"""Re-analysis without replicates resamples with the spread the data says (issue 22, item 2): a point's CI
when it has one; binomial draws from ``n`` only for a declared proportion of independent items without a CI;
never a binomial spread for a metric resampled over occupations (a correlation, a gap)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from riskaudit.analysis.config import AnalysisConfig
from riskaudit.analysis.family import analyze_series
from riskaudit.analysis.points import read_points_csv
from riskaudit.analysis.resampling import prepare_series
from riskaudit.analysis.series import MetricSeries

VALUES = [0.10, 0.14, 0.20, 0.26, 0.31, 0.38]
PARAMS = [10.0 ** (7 + 0.5 * i) for i in range(6)]
HALF = 0.08  # half-width of each point's 95% CI: far wider than a binomial spread with n = 1000


def _series(*, rate: bool, ci: bool, n: int | None = 1000) -> MetricSeries:
    return MetricSeries(
        family="f",
        metric="m",
        members=[f"m{i}" for i in range(6)],
        params=PARAMS,
        tokens=[3e11] * 6,
        flops=[6 * 3e11 * p for p in PARAMS],
        values=VALUES,
        ci_low=[v - HALF for v in VALUES] if ci else None,
        ci_high=[v + HALF for v in VALUES] if ci else None,
        n_items=[n] * 6 if n is not None else None,
        rate=rate,
    )


def _member_sd(s: MetricSeries) -> tuple[str, float | None]:
    prep = prepare_series(s, AnalysisConfig())
    sd = None if prep.raw_reps is None else float(np.std(prep.raw_reps, axis=0, ddof=1).mean())
    return prep.method, sd


def test_a_point_with_a_ci_is_resampled_from_its_ci() -> None:
    for rate in (False, True):  # a gap or correlation over occupations, and a proportion that has a CI
        method, sd = _member_sd(_series(rate=rate, ci=True))
        assert method == "normal from CI"
        assert sd is not None and abs(sd - HALF / 1.96) < 0.1 * HALF / 1.96


def test_binomial_only_for_a_declared_proportion_without_a_ci() -> None:
    method, sd = _member_sd(_series(rate=True, ci=False))
    assert method == "binomial" and sd is not None and sd < 0.02
    assert _member_sd(_series(rate=False, ci=False))[0] == "none"  # not a proportion: n says nothing of its spread
    assert analyze_series(_series(rate=False, ci=False)).resampling == "none"


def test_csv_gap_with_n_and_ci_gets_the_ci_spread(tmp_path: Path) -> None:
    rows = "".join(
        f"f,m{i},{p},3e11,gap,{v},1000,{v - HALF},{v + HALF},no\n"
        for i, (p, v) in enumerate(zip(PARAMS, VALUES, strict=True))
    )
    path = tmp_path / "points.csv"
    path.write_text("family,member,params,tokens,metric,value,n,ci_low,ci_high,proportion\n" + rows, encoding="utf-8")
    (series,) = read_points_csv(path)
    assert analyze_series(series).resampling == "normal from CI"
