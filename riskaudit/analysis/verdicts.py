"""The verdict of one metric series — its words and the reason written into the report.

A series that is not abrupt is ``smooth`` only when its trend is **consistent**: it survives leaving out any
one member (issue 25). Any of

* the OLS growth keeps its sign and a CI excluding 0 with every single member left out (x and the member's
  column of the resamples dropped, the CI recomputed the same way; :class:`~riskaudit.analysis.growth.LeaveOneOut`);
* the Theil–Sen slope (Sen 1968; breakdown point 29%, so one member cannot carry it) agrees with OLS within a
  factor of :data:`ROBUST_FACTOR` and its own CI excludes 0;
* Kendall τ is significant, and stays significant in the same direction with any one member left out, and so
  does the net change (|last − first| ≥ ``net_sd``·its sd, the abrupt rule's net criterion) when resamples
  are known.

When the full series shows a trend (Kendall τ, the OLS CI, or the isotonic net/trend criteria) that rests on a
single member — leaving it out takes the growth CI to 0, the other members show no trend, and that member
lies clearly off their mean — the verdict is ``one member differs`` and the reason names the member;
otherwise ``no consistent trend``.

A consistent trend whose change is mostly one step (S ≥ ``s_p05``, the step's rise ≥ ``step_sd`` times its
sd, at least :data:`STEEP` times as steep as the average) but whose members lie too far apart for J to reach
its threshold is ``step or steep rise``, with the member pair in the reason: the spacing cannot tell a step
from a steep rise between those two members, and "smooth" would read as "no step".
"""

from __future__ import annotations

from typing import Literal, Protocol

from riskaudit.analysis.abrupt import NET_SD, Abruptness, AbruptThresholds, EmergencePoint
from riskaudit.analysis.growth import GrowthFit
from riskaudit.analysis.metric import MetricKind
from riskaudit.numbers import num

__all__ = ["ROBUST_FACTOR", "STEEP", "VERDICTS", "Verdict", "consistent_trend", "verdict"]

Verdict = Literal[
    "smooth",
    "abrupt",
    "abrupt (likely metric artifact)",
    "step or steep rise",
    "one member differs",
    "no consistent trend",
    "insufficient data",
]
VERDICTS: tuple[str, ...] = (
    "smooth",
    "abrupt",
    "abrupt (likely metric artifact)",
    "step or steep rise",
    "one member differs",
    "no consistent trend",
    "insufficient data",
)
ROBUST_FACTOR = 2.0  # Theil–Sen within this factor of the OLS slope counts as agreeing with it
STEEP = 2.0  # a step at least this many times as steep as the average (J ≥ STEEP) that J's threshold misses


class Analysed(Protocol):
    """What a verdict reads of an analysed series (a :class:`~riskaudit.analysis.results.MetricAnalysis`)."""

    metric: str
    kind: MetricKind
    members: list[str]
    x: list[float]
    abruptness: Abruptness
    emergence: EmergencePoint

    @property
    def growth(self) -> GrowthFit | None: ...


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return num(v, spec, missing="?")


def consistent_trend(g: GrowthFit | None, alpha: float, net_sd: float = NET_SD) -> str | None:
    """The evidence of a trend that survives leaving out any one member (the module docstring), in words;
    None when there is none."""
    if g is None or g.slope is None:
        return None
    if g.loo is not None and g.loo.holds:
        return f"the growth CI excludes 0 with any one of the {g.n_points} members left out"
    ts, lo, hi = g.theil_sen, g.theil_sen_ci_low, g.theil_sen_ci_high
    ts_ci_ok = lo is not None and hi is not None and (lo > 0 or hi < 0)
    if ts is not None and ts_ci_ok and ts * g.slope > 0 and not g.theil_sen_disagrees(ROBUST_FACTOR):
        return f"the Theil–Sen slope {ts:+.3g} agrees with OLS and its CI excludes 0"
    tau_loo = g.kendall_p_loo is not None and g.kendall_p_loo < alpha
    net_loo = g.net_z_loo is None or g.net_z_loo >= net_sd
    if g.kendall_p is not None and g.kendall_p < alpha and tau_loo and net_loo:
        tau = _fmt(g.kendall_tau, "+.2f")
        return f"Kendall τ {tau} (p {g.kendall_p:.2g}) stays significant with any one member left out"
    return None


def _one_member(g: GrowthFit | None, th: AbruptThresholds, alpha: float) -> str | None:
    """The reason of ``one member differs``, or None when the shape is not that."""
    loo = None if g is None else g.loo
    if loo is None or len(loo.breaking) != 1 or loo.offset is None:
        return None
    rest_flat = loo.rest_kendall_p is None or loo.rest_kendall_p >= alpha
    clear = loo.offset_sd is None or abs(loo.offset) >= th.net_sd * loo.offset_sd
    if not (rest_flat and clear):
        return None
    m = loo.breaking[0]
    lo, hi = loo.rest_slope_ci_low, loo.rest_slope_ci_high
    rest = f"{_fmt(loo.rest_slope, '+.3g')} per decade [{_fmt(lo, '+.3g')}, {_fmt(hi, '+.3g')}]"
    sd = "" if loo.offset_sd is None else f" (sd {loo.offset_sd:.2g})"
    return (
        f"the trend rests on {m} alone: without it the growth is {rest}, Kendall p "
        f"{_fmt(loo.rest_kendall_p)}; {m} lies {loo.offset:+.3g} off the mean of the others{sd}"
    )


def _no_trend_reason(
    ab: Abruptness, g: GrowthFit | None, tau_ok: bool, slope_ok: bool, alpha: float, th: AbruptThresholds
) -> str:
    """Why no trend counts as consistent: each kind of evidence and where it fails."""
    tau = "?" if g is None or g.kendall_tau is None else f"{g.kendall_tau:+.2f}"
    p = "?" if g is None or g.kendall_p is None else f"{g.kendall_p:.2g}"
    tau_txt = f"Kendall τ {tau} (p {p})"
    if g is not None and tau_ok:
        if g.kendall_p_loo is None or g.kendall_p_loo >= alpha:
            tau_txt += f", not significant with one member left out (p {_fmt(g.kendall_p_loo, '.2g')})"
        elif g.net_z_loo is not None and g.net_z_loo < th.net_sd:
            tau_txt += (
                f", but with one member left out the net change is {g.net_z_loo:.1f} sd of its noise "
                f"({th.net_sd:g} needed)"
            )
    if slope_ok and g is not None and g.loo is not None:
        ci = f"growth CI excludes 0 only with every member in (not without {', '.join(g.loo.breaking)})"
    else:
        ci = "growth CI includes 0"
    return (
        f"{tau_txt}; {ci}; monotonicity |net|/Σ|Δ| = {_fmt(ab.monotonicity)}, isotonic R² {_fmt(ab.trend_r2)}, "
        f"net {_fmt(ab.net, '+.3g')} (sd {_fmt(ab.net_sd, '.2g')})"
    )


def _coarse_step(a: Analysed, th: AbruptThresholds) -> str | None:
    """The reason of ``step or steep rise``, or None when the change is not one step the spacing cannot resolve."""
    ab = a.abruptness
    k = ab.k_star
    if ab.window != 1 or k is None or len(a.x) != len(a.members) or k + 1 >= len(a.x):
        return None
    if ab.s is None or ab.j is None or ab.j_threshold is None:
        return None
    if not (ab.s >= th.s_p05 and STEEP <= ab.j < ab.j_threshold and ab.criteria.get("step") is True):
        return None
    gap, span = a.x[k + 1] - a.x[k], a.x[-1] - a.x[0]
    return (
        f"most of the change is one step (S = {ab.s:.2f} of Σ|Δ|, J = {ab.j:.1f}) between {a.members[k]} and "
        f"{a.members[k + 1]}, {gap:.2f} decades apart in a {span:.2f}-decade span: too coarse to tell a step from a "
        f"steep rise (J would need {ab.j_threshold:.1f})"
    )


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
        evidence = consistent_trend(g, alpha, th.net_sd)
        if evidence is None:
            tau_ok = g is not None and g.kendall_p is not None and g.kendall_p < alpha
            trend_ok = ab.criteria.get("net") is True and ab.criteria.get("trend") is True
            slope_ok = g is not None and g.loo is not None  # the full CI excludes 0 (it includes the noise floor)
            one = _one_member(g, th, alpha) if (tau_ok or trend_ok or slope_ok) else None
            if one is not None:
                return "one member differs", one
            return "no consistent trend", "no consistent trend: " + _no_trend_reason(ab, g, tau_ok, slope_ok, alpha, th)
        coarse = _coarse_step(a, th)
        if coarse is not None:
            return "step or steep rise", f"{coarse}; {evidence}"
        return "smooth", f"not abrupt ({stats_txt}; fails: {', '.join(failed) or '—'}); {evidence}"
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
