"""Plots a person can read: no text under 9 pt, nothing outside the figure, rounded numbers, a fast default set."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO
from matplotlib.figure import Figure
from matplotlib.text import Text

from riskaudit.reporting import plots
from riskaudit.reporting.plots import metric_figure, plot_report
from riskaudit.reporting.render import headline_keys
from riskaudit.reporting.report import Report, read_report


@pytest.fixture(scope="module")
def report() -> Report:
    return read_report(REPO / "reports" / "demo.json")


def _texts(report: Report, probe: str, metric: str) -> list[Text]:
    fig = metric_figure(report, probe, metric)
    assert fig is not None
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box = fig.bbox
    shown = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    for t in shown:
        assert t.get_fontsize() >= 9, (t.get_text(), t.get_fontsize())
        ext = t.get_window_extent(renderer)
        inside = ext.x0 >= box.x0 - 1 and ext.x1 <= box.x1 + 1 and ext.y0 >= box.y0 - 1 and ext.y1 <= box.y1 + 1
        assert inside, (t.get_text(), ext, box)
    return shown


@pytest.mark.parametrize(
    ("probe", "metric"),
    [
        ("memorization", "canary_exact_extraction"),  # two panels (discrete + continuous companion)
        ("occupation_gender_free_generation", "generation_correlation_pearson"),  # abrupt step, first > baseline
    ],
)
def test_text_is_readable_and_inside_the_figure(report: Report, probe: str, metric: str) -> None:
    texts = [t.get_text() for t in _texts(report, probe, metric)]
    assert report.members[-1].name in texts  # the largest member is named (and, above, not clipped)
    baselines = [t for t in texts if t.startswith("baseline ")]
    assert baselines and all(len(t.split()[1]) <= 6 for t in baselines), baselines  # "-6.62", not "-6.62109"


def test_default_plots_are_the_headline_metrics(
    report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``only`` draws the requested figures and nothing else (where the speed of the default set comes from),
    each in one pass without a layout engine; no wall-clock assertion, which would test the machine."""
    keys = headline_keys(report)
    few = [
        ("occupation_gender_pronoun", "stereotype_correlation_pearson"),
        ("memorization", "canary_exposure_skewnorm"),
    ]
    drawn: list[tuple[str, str]] = []
    engines: list[object] = []

    def spy(rep: Report, probe: str, metric: str) -> Figure | None:
        drawn.append((probe, metric))
        fig = metric_figure(rep, probe, metric)
        engines.append(None if fig is None else fig.get_layout_engine())
        return fig

    monkeypatch.setattr(plots, "metric_figure", spy)
    paths = plot_report(report, tmp_path, breakdowns=False, only=few)
    assert [p.name for p in paths] == [
        "occupation_gender_pronoun__stereotype_correlation_pearson.png",
        "memorization__canary_exposure_skewnorm.png",
    ]
    assert sorted(drawn) == sorted(few)  # in report order; no other metric's figure was built
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    assert engines == [None, None]  # fixed margins: no constrained layout (which draws every figure twice)
    assert set(few) <= keys
