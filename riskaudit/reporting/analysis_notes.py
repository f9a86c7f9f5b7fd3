"""What a scaling analysis needs said beside its numbers, worded once for the terminal, the HTML page and the
model card: why a series has no verdict (too few members) and, for two members, their difference with its CI;
when the resamples behind the CIs were parametric; why "first > baseline" is blank.

Plain strings from the analysis results (numbers through :mod:`riskaudit.numbers`); no rich, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from riskaudit.analysis.growth import GrowthFit
from riskaudit.analysis.pair import PairDifference
from riskaudit.analysis.results import MetricAnalysis
from riskaudit.numbers import estimate, scale_format

__all__ = [
    "CI_SAYS",
    "FIRST_ABOVE",
    "SHORT",
    "WEI_BLANKS",
    "difference_header",
    "difference_notes",
    "difference_text",
    "first_above",
    "first_above_note",
    "growth_text",
    "no_verdict_note",
    "resampling_notes",
]

SHORT = "insufficient data"  # the verdict of a series with fewer than min_members analysable members

FIRST_ABOVE = (
    "first > baseline: the first member whose 95% CI lies above the metric's baseline (its no-risk value) "
    "while every smaller member's CI contains it (Wei et al. 2022)"
)

# Why "first > baseline" is blank: the note of the rule (analysis.abrupt.wei_point) → the cell, its legend.
WEI_BLANKS = (
    ("no member's CI clears", "– none", "no member's CI lies above the baseline"),
    ("already clearly above", "– smallest", "already above the baseline at the smallest member"),
    ("a smaller member's CI lies below", "– below", "a smaller member's CI lies below the baseline"),
    ("member CIs unknown", "– no CIs", "the members' CIs are unknown"),
)

# How the CI of a two-member difference was made (PairDifference.ci_method → what to say).
CI_SAYS = {
    "paired bootstrap": "paired bootstrap over items (both members scored on the same resampled items)",
    "normal from CI": "parametric: normal draws from each member's CI, independent across the two (no paired "
    "replicates; wider than a paired CI)",
    "binomial": "parametric: binomial draws from each member's item count, independent across the two",
    "binomial + normal from CI": "parametric draws from each member's item count or CI, independent across the two",
}


def first_above(a: MetricAnalysis) -> tuple[str, str | None]:
    """The "first > baseline" cell and, when it is blank for a reason, that reason's legend (``– none: no
    member's CI lies above the baseline``)."""
    em = a.emergence
    if em.wei_member:
        return em.wei_member, None
    for prefix, cell, legend in WEI_BLANKS:
        if em.wei_note.startswith(prefix):
            return cell, f"{cell}: {legend}"
    return "–", None


def first_above_note(series: Sequence[MetricAnalysis]) -> str:
    """:data:`FIRST_ABOVE` followed by the legend of every blank reason among ``series``."""
    blanks = dict.fromkeys(why for a in series for why in [first_above(a)[1]] if why is not None)
    return FIRST_ABOVE + "".join(f"; {b}" for b in blanks)


def resampling_notes(series: Sequence[MetricAnalysis]) -> list[str]:
    """What must be said about the resamples behind the CIs when they are not the scan's paired ones."""
    judged = [a for a in series if a.verdict != SHORT]
    parametric = sorted({a.resampling for a in judged if a.resampling not in ("paired bootstrap", "none")})
    k = sum(a.resampling in parametric for a in judged)
    notes = []
    if k:
        notes.append(
            f"resamples are parametric ({', '.join(parametric)}) for {k} of {len(judged)} series: independent "
            "draws per member (from its CI or item count), not paired bootstrap replicates (none were given), so "
            "CIs, steps and verdicts are conservative and can differ from a scan's"
        )
    none = sum(a.resampling == "none" for a in judged)
    if none:
        notes.append(f"no resamples for {none} series (no replicates, CIs or item counts): slope CIs from OLS alone")
    return notes


def no_verdict_note(need: int) -> str:
    """Why a series has no verdict."""
    return (
        f"no verdict: growth, a step or a verdict needs at least {need} analysable members (scanned, with a value "
        "and a scale)"
    )


def difference_header(d: PairDifference) -> str:
    """``demo-150k − demo-50k``: the larger member minus the smaller."""
    return f"{d.larger} − {d.smaller}"


def difference_text(d: PairDifference | None, sep: str = ", ") -> str:
    """The two-member difference and its 95% CI in the one number format (``+0.0120 [+0.0031, +0.0209]``)."""
    if d is None:
        return "–"
    return estimate(d.value, d.ci_low, d.ci_high, signed=True, sep=sep)


def difference_notes(
    diffs: Sequence[PairDifference], header: str = "larger − smaller", axis: str = "training FLOPs"
) -> list[str]:
    """What a difference column means, how its CIs were made and how many exclude 0."""
    if not diffs:
        return []
    methods = sorted({d.ci_method for d in diffs if d.ci_method != "none"})
    sure = sum(d.excludes_zero is True for d in diffs)
    return [
        f"{header}: the member with more {axis} minus the other, in the metric's own units",
        "95% CI: " + "; ".join(CI_SAYS.get(m, m) for m in methods) if methods else "no CI (no resamples)",
        f"the CI excludes 0 for {sure} of {len(diffs)} series",
        "the difference between two training runs of one size (seed) is not in the CI: two members cannot "
        "measure it",
    ]


def growth_text(g: GrowthFit | None, sep: str = ", ", unit: str = "", robust_sep: str = " ") -> str:
    """Growth per decade and its 95% CI in the one number format; the Theil–Sen slope, when it disagrees, in
    the same format (``+0.0142 [-0.0266, +0.0443] (Theil–Sen +0.0510)``), ``unit`` (a mark) between the two;
    ``–`` without a slope."""
    if g is None or g.slope is None:
        return "–"
    text = estimate(g.slope, g.slope_ci_low, g.slope_ci_high, signed=True, sep=sep) + unit
    if g.theil_sen_disagrees():
        lo, hi = g.slope_ci_low, g.slope_ci_high
        width = hi - lo if lo is not None and hi is not None else None
        text += f"{robust_sep}(Theil–Sen {scale_format((g.slope, lo, hi), width, signed=True)(g.theil_sen)})"
    return text
