"""Plots of a report: one PNG per risk metric, metric vs training FLOPs across the family's members.

Each panel shows the members' values with their 95% CI bars on a log FLOPs axis (parameters when FLOPs are
unknown), the baseline, the OLS trend of the analysis and its monotone (isotonic) fit mapped back to metric
units — a straight line alone would draw a step as a steady rise — both kept inside a bounded metric's range
(a proportion or AUC in [0, 1], a correlation in [−1, 1]), the abrupt step (shaded,
only when the analysis flags it) and the first member clearly above baseline (Wei et al. 2022). A discrete
metric is drawn next to its continuous companion (two panels). Uses matplotlib's Agg canvas directly (no
pyplot, no global backend change); never prints.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import re
import sys
from collections.abc import Collection
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from riskaudit.analysis.abrupt import isotonic_fit
from riskaudit.analysis.metric import MetricResult
from riskaudit.errors import RiskauditError
from riskaudit.reporting.lookup import find_metric, member_analysis, metric_keys, representative_members
from riskaudit.reporting.outputs import atomic_write_bytes
from riskaudit.reporting.report import MemberReport, Report

__all__ = ["metric_figure", "plot_filename", "plot_metric", "plot_report"]

_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")
_SMALL = 9  # points: the smallest text on a plot (labels, ticks, legend)


def plot_filename(probe: str, metric: str) -> str:
    """``<probe>__<metric>.png``, with unsafe characters replaced and a short hash when anything was replaced."""
    safe = _SAFE.sub("_", f"{probe}__{metric}").strip("_")
    if safe != f"{probe}__{metric}":
        safe += "-" + hashlib.sha1(f"{probe}/{metric}".encode()).hexdigest()[:6]
    return safe + ".png"


def _points(report: Report, probe: str, metric: str) -> tuple[str, list[tuple[MemberReport, MetricResult]]]:
    """The x axis ("flops" or "params") and the members with a value, smallest first."""
    pts = []
    for m in representative_members(report):
        r = find_metric(m, probe, metric) if m.status == "ok" else None
        if r is not None and r.value is not None:
            pts.append((m, r))
    if pts and all(m.flops is not None and m.flops > 0 for m, _ in pts):
        return "flops", pts
    if pts and all(m.params_total is not None and m.params_total > 0 for m, _ in pts):
        return "params", pts
    return "", []


def _x(m: MemberReport, axis: str) -> float:
    v = m.flops if axis == "flops" else m.params_total
    assert v is not None  # _points checked it
    return float(v)


def _unorient(v: float, orientation: str, baseline: float, sign: float) -> float:
    """Map an oriented value (larger = riskier) back to metric units."""
    if orientation == "−y":
        return -v
    if orientation == "1 − y":
        return 1.0 - v
    if orientation.startswith("|"):
        return baseline + sign * v
    return v


_UNIT_WORDS = ("auc", "accuracy", "precision", "recall", "share", "rate", "prob", "agreement", "tpr", "extraction")


def _bounds(metric: str, proto: MetricResult, ys: list[float]) -> tuple[float, float] | None:
    """The range a fitted line must stay in: [−1, 1] for a correlation, [0, 1] for a proportion or an AUC
    (discrete, or named so, with every value in [0, 1]); None when unbounded."""
    name = metric.lower()
    if "correlation" in name or "pearson" in name or "spearman" in name:
        return (-1.0, 1.0)
    in_unit = all(0.0 <= y <= 1.0 for y in ys)
    if in_unit and (proto.kind == "discrete" or any(w in name for w in _UNIT_WORDS)):
        return (0.0, 1.0)
    return None


def _clip(vals: list[float], bounds: tuple[float, float] | None) -> list[float]:
    return vals if bounds is None else [min(bounds[1], max(bounds[0], v)) for v in vals]


def _panel(ax: Axes, report: Report, probe: str, metric: str) -> bool:
    axis, pts = _points(report, probe, metric)
    if not pts:
        ax.set_axis_off()
        ax.set_title(f"{metric}\n(no value on a scale axis)", fontsize=9)
        return False
    proto = pts[0][1]
    xs = [_x(m, axis) for m, _ in pts]
    ys = [float(r.value) for _, r in pts if r.value is not None]
    lo = [max(0.0, y - r.ci_low) if r.ci_low is not None else 0.0 for y, (_, r) in zip(ys, pts, strict=True)]
    hi = [max(0.0, r.ci_high - y) if r.ci_high is not None else 0.0 for y, (_, r) in zip(ys, pts, strict=True)]
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())  # decade ticks only: far fewer tick artists to draw
    ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", color="C0", ecolor="C0", capsize=3, label="member (95% CI)")
    # member names on a top axis at their x positions: never over the data or an error bar, never clipped
    top = ax.secondary_xaxis("top")
    top.set_xticks(xs, [m.name for m, _ in pts], rotation=40, ha="left", fontsize=_SMALL, color="0.3")
    top.xaxis.set_minor_locator(NullLocator())
    ax.margins(x=0.06, y=0.1)
    ax.axhline(proto.baseline, color="0.5", linestyle=":", linewidth=1, label=f"baseline {proto.baseline:.3g}")

    a = member_analysis(report, probe, metric)
    verdict = ""
    if a is not None:
        verdict = a.verdict
        g = a.growth
        if g is not None and g.slope is not None and a.x_axis == axis and len(a.x) >= 2 and len(a.x) == len(a.y):
            mx, my = sum(a.x) / len(a.x), sum(a.y) / len(a.y)
            mean_dev = sum(y - proto.baseline for y in ys)
            sign = 1.0 if mean_dev >= 0 else -1.0
            grid = [min(a.x) + (max(a.x) - min(a.x)) * i / 49 for i in range(50)]
            bounds = _bounds(metric, proto, ys)
            fitted = [_unorient(my + g.slope * (x - mx), a.orientation, proto.baseline, sign) for x in grid]
            line = _clip(fitted, bounds)
            ci = (
                ""
                if g.slope_ci_low is None or g.slope_ci_high is None
                else f" [{g.slope_ci_low:+.2g}, {g.slope_ci_high:+.2g}]"  # rounded: 2 significant digits
            )
            unit = "FLOPs" if axis == "flops" else "params"
            label = f"OLS trend {g.slope:+.2g}{ci} per decade of {unit} (oriented)"
            ax.plot([10**x for x in grid], line, color="C1", linewidth=1.5, label=label)
            if len(a.y) >= 3 and (a.abruptness.net or 0.0) != 0.0:
                fit, _ = isotonic_fit(np.asarray(a.y, dtype=np.float64), increasing=(a.abruptness.net or 0.0) > 0)
                mono = _clip([_unorient(float(v), a.orientation, proto.baseline, sign) for v in fit], bounds)
                ax.plot([10**x for x in a.x], mono, color="C4", linewidth=1.2, linestyle="--", label="monotone fit")
        xmap = {m.name: _x(m, axis) for m, _ in pts}
        pair = a.emergence.pair
        end = a.emergence.window_end or (pair[1] if pair else None)
        if a.abruptness.abrupt and pair and pair[0] in xmap and end in xmap:
            assert end is not None
            agree = "" if a.emergence.agreement is None else f", {a.emergence.agreement:.0%} agree"
            way = "up" if (a.abruptness.net or 0.0) > 0 else "down"
            steps = "two steps" if a.emergence.window_end else "step"
            ax.axvspan(
                xmap[pair[0]], xmap[end], color="C3", alpha=0.15, label=f"abrupt {steps} ({way} in risk{agree})"
            )
        wei = a.emergence.wei_member
        if wei and wei in xmap:
            ax.axvline(xmap[wei], color="C2", linestyle="--", linewidth=1, label=f"first CI above baseline: {wei}")
    arrow = {
        "higher_is_riskier": "↑ riskier",
        "lower_is_riskier": "↓ riskier",
        "two_sided": "riskier away from baseline",
    }
    ax.set_xlabel("training FLOPs (6·N·D)" if axis == "flops" else "parameters (FLOPs unknown)", fontsize=_SMALL)
    ax.set_ylabel(metric, fontsize=_SMALL)
    ax.tick_params(labelsize=_SMALL)
    kind = f"{proto.kind}, {arrow[proto.direction]}" + (f", verdict: {verdict}" if verdict else "")
    ax.set_title(f"{metric}\n{kind}", fontsize=_SMALL + 1)
    ax.grid(True, which="major", alpha=0.3)
    # under the axes, never over the data; a fixed place is also much faster to draw than loc="best"
    ax.legend(fontsize=_SMALL, loc="upper left", bbox_to_anchor=(0.0, -0.16), borderaxespad=0.0, frameon=False)
    return True


def metric_figure(report: Report, probe: str, metric: str) -> Figure | None:
    """The figure for (probe, metric): two panels when it is discrete with a companion in the report; None when
    no member has a value on a scale axis."""
    _, pts = _points(report, probe, metric)
    if not pts:
        return None
    proto = pts[0][1]
    comp = proto.companion if proto.kind == "discrete" else None
    if comp is not None and not _points(report, probe, comp)[1]:
        comp = None
    # fixed margins (inches) instead of constrained layout: one draw instead of two; room kept above for the
    # titles and the rotated member names, right for the last name, below for the axis label and the legend
    width, height = (12.0 if comp else 6.5), 6.0
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if comp else 1, squeeze=False)[0]
    _panel(axes[0], report, probe, metric)
    if comp:
        _panel(axes[1], report, probe, comp)
    entries = max(len(ax.get_legend_handles_labels()[1]) for ax in axes)
    fig.subplots_adjust(
        left=1.05 / width,
        right=1 - 1.3 / width,
        top=1 - 1.75 / height,
        bottom=(0.75 + 0.21 * entries) / height,
        wspace=0.35,
    )
    title = f"{report.family.name} — {probe}: {metric}" + (f" and its continuous companion {comp}" if comp else "")
    fig.suptitle(title, fontsize=_SMALL + 2)
    return fig


def plot_metric(report: Report, probe: str, metric: str, path: Path, dpi: int = 100) -> Path | None:
    """Write one PNG for (probe, metric) (see :func:`metric_figure`); None (nothing written) without values."""
    fig = metric_figure(report, probe, metric)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return path


def plot_report(
    report: Report,
    out_dir: Path,
    dpi: int = 100,
    breakdowns: bool = True,
    only: Collection[tuple[str, str]] | None = None,
) -> list[Path]:
    """One PNG per (probe, metric) with a value, in ``out_dir``; returns the paths written.

    ``breakdowns=False`` leaves out per-template / per-duplication metrics (names with ``[...]``); ``only`` keeps
    the listed (probe, metric) pairs (e.g. the headline metrics; a discrete one still gets its companion panel).
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise RiskauditError(f"--out {out_dir} is a file; give a directory for the plots")
    keys = [
        (probe, metric)
        for probe, metric in metric_keys(report)
        if (breakdowns or "[" not in metric) and (only is None or (probe, metric) in only)
    ]
    jobs = [(probe, metric, out_dir / plot_filename(probe, metric), dpi) for probe, metric in keys]
    workers = min(os.cpu_count() or 1, 4, len(jobs) // 4)
    # forked workers share the report without copying it; never after torch is loaded (its threads and a fork
    # do not mix), so `scan --plots` draws in this process
    if workers > 1 and "torch" not in sys.modules and "fork" in multiprocessing.get_all_start_methods():
        global _FORKED_REPORT
        _FORKED_REPORT = report
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                done = pool.starmap(_plot_forked, jobs, chunksize=max(1, len(jobs) // (workers * 2)))
        finally:
            _FORKED_REPORT = None
    else:
        done = [plot_metric(report, *job) for job in jobs]
    return [p for p in done if p is not None]


_FORKED_REPORT: Report | None = None


def _plot_forked(probe: str, metric: str, path: Path, dpi: int) -> Path | None:
    assert _FORKED_REPORT is not None
    return plot_metric(_FORKED_REPORT, probe, metric, path, dpi)
