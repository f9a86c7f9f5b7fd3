"""How riskaudit writes a number as text: every table, card, page, message and verdict reason formats through here.

One function per kind of number, parameterised where outputs differ (the placeholder for a missing value,
the format spec, the largest unit suffix), so that each caller keeps its exact text:

* :func:`num` — a metric, slope or statistic with a format spec (``0.812``, ``+0.03``; ``–`` or ``?`` when
  missing);
* :func:`ci_suffix` — the `` [low, high]`` after a value, empty without a CI;
* :func:`fixed_decimals` — fixed decimals, optionally signed (the compact terminal cells);
* :func:`human_count` — parameters, tokens and FLOPs with a unit suffix (``70.4M``, ``300B``, ``2.1Z``);
* :func:`sci` — FLOPs in a short scientific form (``2.5e19``).

Pure functions of their arguments; no I/O.
"""

from __future__ import annotations

import math

__all__ = ["COUNT_UNITS", "ci_suffix", "fixed_decimals", "human_count", "num", "sci"]

# (divisor, suffix) from the largest: zetta (FLOPs) down to thousands
COUNT_UNITS: tuple[tuple[float, str], ...] = (
    (1e21, "Z"),
    (1e18, "E"),
    (1e15, "P"),
    (1e12, "T"),
    (1e9, "B"),
    (1e6, "M"),
    (1e3, "K"),
)


def num(v: float | None, spec: str = ".3g", *, missing: str = "–", finite: bool = False) -> str:
    """``v`` formatted with ``spec``; ``missing`` when it is None (and, with ``finite``, when it is inf or NaN)."""
    if v is None or (finite and not math.isfinite(v)):
        return missing
    return format(v, spec)


def ci_suffix(
    low: float | None,
    high: float | None,
    spec: str = ".3g",
    *,
    missing: str = "–",
    finite: bool = False,
    sep: str = ", ",
) -> str:
    """`` [low, high]`` (each as :func:`num` writes it), or ``""`` when either bound is None."""
    if low is None or high is None:
        return ""
    return f" [{num(low, spec, missing=missing, finite=finite)}{sep}{num(high, spec, missing=missing, finite=finite)}]"


def fixed_decimals(v: float, decimals: int, signed: bool = False) -> str:
    """``v`` with ``decimals`` decimals, and a sign on every number when ``signed`` (``+0.81``)."""
    return format(v, f"{'+' if signed else ''}.{decimals}f")


def human_count(x: float | None, largest: str = "Z") -> str:
    """``70.4M``, ``300B``, ``2.1Z`` (FLOPs), using unit suffixes up to ``largest`` (``"T"``: ``1.5e+03T``
    rather than ``1.5P``); ``?`` when unknown."""
    if x is None:
        return "?"
    units = COUNT_UNITS[[s for _, s in COUNT_UNITS].index(largest) :]
    for div, suffix in units:
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.0f}"


def sci(x: float | None) -> str:
    """FLOPs in a short scientific form: ``2.5e19`` (``?`` when unknown)."""
    if x is None:
        return "?"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"
