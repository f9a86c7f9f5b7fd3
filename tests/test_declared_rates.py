"""Rates are declared, never guessed (issue 22, item 1): a metric is analysed as a proportion (logit slope,
logit prediction fit, 1 − y orientation) only when its result, or the CSV, says it is one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from riskaudit.analysis import stats
from riskaudit.analysis.family import analyze_family
from riskaudit.analysis.metric import MetricResult
from riskaudit.analysis.points import read_points_csv
from riskaudit.analysis.results import MetricAnalysis
from riskaudit.analysis.scan_series import MemberPoint, series_from_scan
from riskaudit.errors import RiskauditError

PARAMS = [10.0 ** (7 + 0.5 * i) for i in range(6)]
MEMBERS = [MemberPoint(name=f"m{i}", params=p, tokens=3e11, flops=6 * 3e11 * p) for i, p in enumerate(PARAMS)]
VALUES = [0.02, 0.05, 0.08, 0.12, 0.15, 0.19]  # |p − 0.5| of a preference share: in [0, 1], not a proportion


def _result(value: float, **extra: Any) -> MetricResult:
    return MetricResult(
        name="deviation",
        value=value,
        ci_low=value - 0.03,
        ci_high=value + 0.03,
        n_items=60,
        direction="higher_is_riskier",
        baseline=0.0,
        kind="discrete",
        companion="margin",
        **extra,
    )


def _analyse(**extra: Any) -> MetricAnalysis:
    metrics = [{"probe": [_result(v, **extra)]} for v in VALUES]
    (series,) = series_from_scan("fam", MEMBERS, metrics)
    (a,) = analyze_family([series]).metrics
    return a


def _is_rate(a: MetricAnalysis) -> bool:
    g = a.growth_flops
    assert g is not None and g.slope is not None
    logit_fits = [p for p in a.predictability.predictions if p.scale == "logit"]
    assert (g.logit_slope is not None) == bool(logit_fits)
    return g.logit_slope is not None


def test_a_declared_non_proportion_in_unit_range_is_not_a_rate() -> None:
    assert not _is_rate(_analyse(proportion=False))


def test_a_declared_proportion_is_a_rate_whatever_its_kind() -> None:
    assert _is_rate(_analyse(proportion=True))
    plain = {"kind": "continuous", "companion": None}
    metrics = [{"probe": [_result(v, proportion=True).model_copy(update=plain)]} for v in VALUES]
    (series,) = series_from_scan("fam", MEMBERS, metrics)
    assert series.rate is True


def test_results_written_before_the_field_fall_back_to_the_old_rule() -> None:
    legacy = _result(0.1).model_dump()
    legacy.pop("proportion", None)
    assert MetricResult.model_validate(legacy).proportion is None
    assert _is_rate(_analyse())  # undeclared (an older report): discrete in [0, 1] is a rate, as before


def test_the_collector_declares_every_metric() -> None:
    col = stats.MetricCollector(100)
    common: dict[str, Any] = {"n_items": 10, "direction": "higher_is_riskier", "baseline": 0.0, "description": ""}
    col.add("share", 0.3, np.full(100, 0.3), proportion=True, **common)
    col.add("mean", 2.0, np.full(100, 2.0), **common)
    assert [m.proportion for m in col.metrics] == [True, False]


CSV = "family,member,params,tokens,metric,value,n,kind,companion,proportion\n"


def _csv_rate(tmp_path: Path, proportion: str, n: str, kind: str = "discrete") -> bool | None:
    rows = [
        f"f,m{i},{10 ** (7 + i)},3e11,share,{v},{n},{kind},{'cont' if kind == 'discrete' else ''},{proportion}\n"
        f"f,m{i},{10 ** (7 + i)},3e11,cont,{v * 3},,continuous,,\n"
        for i, v in enumerate(VALUES)
    ]
    path = tmp_path / "points.csv"
    path.write_text(CSV + "".join(rows), encoding="utf-8")
    series = {s.metric: s for s in read_points_csv(path)}
    return series["share"].rate


def test_csv_proportion_column_declares_and_n_implies(tmp_path: Path) -> None:
    assert _csv_rate(tmp_path, "yes", "") is True  # declared, without n
    assert _csv_rate(tmp_path, "no", "100") is False  # declared not a proportion although n is given
    assert _csv_rate(tmp_path, "", "100") is True  # n given: the file says it is a proportion of n items
    assert _csv_rate(tmp_path, "", "") is False  # a discrete metric without n or proportion: not guessed


def test_csv_proportion_column_rejects_other_words(tmp_path: Path) -> None:
    with pytest.raises(RiskauditError, match=r"column 'proportion'.*yes or no"):
        _csv_rate(tmp_path, "maybe", "")
