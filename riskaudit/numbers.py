"""How riskaudit writes a number as text: every table, card, page, message and verdict reason formats through here.

**The one format for a measured number** (a metric, a growth, a statistic, with or without its CI) is
:func:`estimate` / :func:`value_text`, shared by the terminal, the HTML page and the model card:

* *digits by the metric's scale*: the last digit shown is the third significant digit of the CI's width
  (:data:`SIG_DIGITS`), or, without a CI (or with one of zero width), the third significant digit of the largest
  magnitude — never more than :data:`MAX_SIG` significant digits of it (float noise in a tiny CI);
* *the CI in the value's format*: the value and both bounds share their decimals, or their exponent in the
  scientific form used when the largest magnitude is below 1e-3 or from 1e6 up (``3.56e-5 [1.20e-5, 6.01e-5]``;
  exponents written as :func:`sci` writes them, no ``+`` and no leading zero);
* *consistent signs*: ``-`` on every negative number, and with ``signed`` (growths, differences) ``+`` on every
  positive one, the CI's bounds included; zero carries no sign;
* *exact zero is* ``0``; a number that only rounds to zero keeps its decimals (``0.000``).

``0.410 [0.341, 0.486]``, ``+3.56e-5 [+1.20e-5, +6.01e-5]``, ``0 [1.06e-14, 1.06e-14]``, ``123``.

The older helpers stay for the texts that are not measured numbers, or whose callers have not moved yet,
parameterised where outputs differ (the placeholder for a missing value, the format spec, the largest unit
suffix):

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
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "COUNT_UNITS",
    "MAX_SIG",
    "SIG_DIGITS",
    "NumberFormat",
    "ci_suffix",
    "estimate",
    "fixed_decimals",
    "human_count",
    "num",
    "scale_format",
    "sci",
    "value_text",
]

SIG_DIGITS = 3  # significant digits of the scale (the CI's width, else the largest magnitude)
MAX_SIG = 6  # at most this many significant digits of the largest magnitude
FIXED_RANGE = (1e-3, 1e6)  # fixed point for largest magnitudes in [low, high); scientific outside

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


def _exponent(x: float) -> int:
    """The decimal exponent of ``x != 0`` (``3.56e-05`` → -5), read from its own repr so 1e-3 is exactly -3."""
    return int(f"{abs(x):e}".split("e")[1])


@dataclass(frozen=True)
class NumberFormat:
    """How every number of one estimate is written: ``decimals`` after the point (of the mantissa when
    ``exponent`` is set), a ``+`` on positive numbers when ``plus``."""

    decimals: int
    exponent: int | None = None
    plus: bool = False

    def __call__(self, v: float | None, missing: str = "–") -> str:
        """``v`` in this format; ``missing`` when it is None, inf or NaN; ``0`` when it is exactly zero."""
        if v is None or not math.isfinite(v):
            return missing
        if v == 0:
            return "0"
        if self.exponent is None:
            body = f"{abs(v):.{self.decimals}f}"
        else:
            body = f"{abs(v) / 10.0**self.exponent:.{self.decimals}f}e{self.exponent}"
        mantissa = body.split("e")[0]
        if mantissa.strip("0.") == "":  # rounds to zero: no sign
            return body
        return ("-" if v < 0 else "+" if self.plus else "") + body


def scale_format(values: Iterable[float | None], width: float | None = None, *, signed: bool = False) -> NumberFormat:
    """The format for ``values`` that belong together (a value and its CI; a prediction, its interval and the
    observation): the last digit at the :data:`SIG_DIGITS`-th significant digit of ``width`` (a CI's width)
    when it is positive, else of the largest magnitude, and at most :data:`MAX_SIG` significant digits of the
    largest magnitude; fixed point when the largest magnitude lies in :data:`FIXED_RANGE`, else one shared
    exponent (the largest magnitude's)."""
    mags = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not mags:
        return NumberFormat(0, None, signed)
    top = _exponent(max(mags))
    if width is not None and math.isfinite(width) and width > 0:
        last = max(_exponent(width) - (SIG_DIGITS - 1), top - (MAX_SIG - 1))
    else:
        last = top - (SIG_DIGITS - 1)
    low, high = FIXED_RANGE
    if low <= max(mags) < high:
        return NumberFormat(max(0, -last), None, signed)
    decimals = max(0, top - last)
    if round(max(mags) / 10.0**top, decimals) >= 10:  # 9.996e-5 at 2 decimals: 1.000e-4, not 10.00e-5
        top, decimals = top + 1, decimals + 1  # the same last digit
    return NumberFormat(decimals, top, signed)


def estimate(
    value: float | None,
    low: float | None = None,
    high: float | None = None,
    *,
    signed: bool = False,
    missing: str = "–",
    sep: str = ", ",
) -> str:
    """A measured number and its CI in the one format: ``0.410 [0.341, 0.486]`` (``missing`` for no value;
    just the value when a bound is missing; a non-finite bound as ``missing``)."""
    if value is None or not math.isfinite(value):
        return missing
    if low is None or high is None:
        return value_text(value, signed=signed, missing=missing)
    width = high - low if math.isfinite(low) and math.isfinite(high) else None
    fmt = scale_format((value, low, high), width, signed=signed)
    return f"{fmt(value, missing)} [{fmt(low, missing)}{sep}{fmt(high, missing)}]"


def value_text(v: float | None, *, signed: bool = False, missing: str = "–") -> str:
    """A measured number without a CI in the one format: :data:`SIG_DIGITS` significant digits (``0.410``,
    ``123``, ``1.00e-14``, ``0``)."""
    return scale_format((v,), signed=signed)(v, missing)
