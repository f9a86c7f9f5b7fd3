"""Issue 22 item 10: when one step holds most of the change but the members are too far apart for ``abrupt``,
the verdict says so (``step or steep rise``, with the member pair) instead of ``smooth``; the plots draw the
monotone (isotonic) fit beside the OLS line, and fitted lines stay inside a bounded metric's range."""

from __future__ import annotations

from pathlib import Path

from riskaudit.analysis.family import analyze_series
from riskaudit.analysis.series import MetricSeries
from riskaudit.analysis.verdicts import VERDICTS
from riskaudit.reporting.plots import metric_figure
from riskaudit.reporting.report import read_report

DEMO = Path(__file__).resolve().parent.parent / "reports" / "demo.json"
MEMBERS = ["demo-50k", "demo-150k", "demo-400k", "demo-1.3m", "demo-3m", "demo-5.8m"]
PARAMS = [52944.0, 156544.0, 412224.0, 1317632.0, 3011136.0, 5787648.0]
TOKENS = 711681.0


def _series(values: list[float], sd: float = 0.05) -> MetricSeries:
    return MetricSeries(
        family="demo",
        metric="stereotype_correlation_pearson",
        members=MEMBERS,
        params=PARAMS,
        tokens=[TOKENS] * 6,
        flops=[6.0 * p * TOKENS for p in PARAMS],
        values=values,
        ci_low=[v - 1.96 * sd for v in values],
        ci_high=[v + 1.96 * sd for v in values],
    )


def test_one_step_the_spacing_cannot_resolve_is_not_smooth() -> None:
    """The demo's pronoun correlation: one step between 150K and 400K (0.42 decades of a 2.04-decade span), then
    a plateau. J = 3.6 misses its threshold 3.9 because the members are far apart: was ``smooth``."""
    a = analyze_series(_series([0.14, 0.28, 0.78, 0.78, 0.79, 0.81]))
    assert a.abruptness.abrupt is False and a.abruptness.criteria["j"] is False
    assert a.verdict == "step or steep rise", a.verdict_reason
    assert "between demo-150k and demo-400k" in a.verdict_reason and "too coarse" in a.verdict_reason
    assert "step or steep rise" in VERDICTS


def test_a_steady_rise_on_the_same_spacing_stays_smooth() -> None:
    a = analyze_series(_series([0.10 + 0.35 * (k / 5) for k in range(6)], sd=0.02))
    assert a.verdict == "smooth", a.verdict_reason


def test_plots_draw_the_monotone_fit_inside_the_metric_range() -> None:
    """The demo's canary AUC against the reference: its OLS line used to run above 1.0."""
    report = read_report(DEMO)
    fig = metric_figure(report, "memorization", "canary_mia_auc_ref_ratio")
    assert fig is not None
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if len(ln.get_ydata()) > 2]
    labels = [str(ln.get_label()) for ln in lines]
    assert "monotone fit" in labels
    assert all(0.0 <= float(v) <= 1.0 for ln in lines for v in ln.get_ydata())
