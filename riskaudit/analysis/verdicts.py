"""The verdict of one metric series — its words and the reason written into the report."""

from __future__ import annotations

from typing import Literal, Protocol

from riskaudit.analysis.abrupt import Abruptness, AbruptThresholds, EmergencePoint
from riskaudit.analysis.growth import GrowthFit
from riskaudit.analysis.metric import MetricKind
from riskaudit.numbers import num

__all__ = ["VERDICTS", "Verdict", "verdict"]

Verdict = Literal[
    "smooth", "abrupt", "abrupt (likely metric artifact)", "no consistent trend", "insufficient data"
]
VERDICTS: tuple[str, ...] = (
    "smooth",
    "abrupt",
    "abrupt (likely metric artifact)",
    "no consistent trend",
    "insufficient data",
)


class Analysed(Protocol):
    """What a verdict reads of an analysed series (a :class:`~riskaudit.analysis.results.MetricAnalysis`)."""

    metric: str
    kind: MetricKind
    abruptness: Abruptness
    emergence: EmergencePoint

    @property
    def growth(self) -> GrowthFit | None: ...


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return num(v, spec, missing="?")


def verdict(a: Analysed, comp: Analysed | None, th: AbruptThresholds, alpha: float) -> tuple[Verdict, str]:
    """The verdict of ``a`` (and the reason written into the report), given its continuous companion ``comp``."""
    ab = a.abruptness
    if ab.window == 2:
        stats_txt = f"two steps: S2={_fmt(ab.s2)} (5th pct {_fmt(ab.s2_p05)}), J2={_fmt(ab.j2, '.1f')}"
    else:
        stats_txt = f"S={_fmt(ab.s)} (5th pct {_fmt(ab.s_p05)}), J={_fmt(ab.j, '.1f')}"
    if ab.abrupt is None:
        return (
            "insufficient data",
            f"{stats_txt} pass as point estimates, but without resamples, item counts or CIs the flag cannot be tested",
        )
    if not ab.abrupt:
        failed = [k for k, v in ab.criteria.items() if v is False]
        if ab.s is None:
            return "no consistent trend", "no net change between the smallest and the largest member"
        g = a.growth
        tau_ok = g is not None and g.kendall_p is not None and g.kendall_p < alpha
        trend_ok = ab.criteria.get("net") is True and ab.criteria.get("trend") is True
        lo, hi = (None, None) if g is None else (g.slope_ci_low, g.slope_ci_high)
        slope_ok = lo is not None and hi is not None and (lo > 0 or hi < 0)  # its CI includes the noise floor
        if not (tau_ok or trend_ok or slope_ok):
            tau = "?" if g is None or g.kendall_tau is None else f"{g.kendall_tau:+.2f}"
            p = "?" if g is None or g.kendall_p is None else f"{g.kendall_p:.2f}"
            return (
                "no consistent trend",
                f"no consistent direction: Kendall τ {tau} (p {p}), growth CI includes 0, monotonicity |net|/Σ|Δ| = "
                f"{_fmt(ab.monotonicity)}, isotonic R² {_fmt(ab.trend_r2)}, net {_fmt(ab.net, '+.3g')} "
                f"(sd {_fmt(ab.net_sd, '.2g')})",
            )
        return "smooth", f"not abrupt ({stats_txt}; fails: {', '.join(failed) or '—'})"
    if a.kind != "discrete":
        where = " and ".join([*(a.emergence.pair or []), *([a.emergence.window_end] if a.emergence.window_end else [])])
        return "abrupt", f"abrupt ({stats_txt}) between {where}"
    if comp is None:
        return "abrupt", f"abrupt ({stats_txt}); no continuous companion to check for a metric artifact"
    cab = comp.abruptness
    ctxt = f"companion {comp.metric}: S={_fmt(cab.s)}, J={_fmt(cab.j, '.1f')}"
    if cab.abrupt is None:
        return "abrupt", f"abrupt ({stats_txt}); {ctxt} cannot be tested for abruptness"
    if cab.abrupt:
        return "abrupt", f"abrupt ({stats_txt}) and its continuous companion jumps too ({ctxt}): genuine"
    same_dir = cab.net is not None and ab.net is not None and cab.net * ab.net > 0
    if cab.net is not None and cab.net_sd is not None:
        clear = abs(cab.net) >= th.net_sd * cab.net_sd
    else:  # no resamples for the companion: a significant monotone trend (Kendall τ) instead
        g = comp.growth
        clear = g is not None and g.kendall_p is not None and g.kendall_p < alpha
    if same_dir and clear:
        return (
            "abrupt (likely metric artifact)",
            f"the discrete metric jumps ({stats_txt}) while its continuous companion grows smoothly ({ctxt}): "
            "likely an artifact of the discrete metric (Schaeffer et al. 2023)",
        )
    return "abrupt", f"abrupt ({stats_txt}); {ctxt} shows no clear change in the same direction"
