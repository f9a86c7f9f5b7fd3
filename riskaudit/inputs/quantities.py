"""Messy numbers: the leading number of strings such as "0.49B", "~180B (corpus size; ...)", "2.22E+09 Pile"
or "NA (not disclosed)", as the families table and family TOML files write them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["ParsedQuantity", "parse_quantity"]


@dataclass(frozen=True)
class ParsedQuantity:
    """A number read from a messy string: value (None for NA), approximate flag, the original text."""

    value: float | None
    approximate: bool
    raw: str
    remark: str  # whatever followed the number, stripped ("(UNVERIFIED)", "Pile (20 tok/param)")

    @property
    def is_bare(self) -> bool:
        """True when the string was just a number (nothing worth keeping in notes)."""
        return not self.approximate and not self.remark and self.value is not None

    def as_int(self) -> int | None:
        """The value rounded to an integer (parameter counts)."""
        return None if self.value is None else round(self.value)


_SUFFIXES: dict[str, int] = {
    "k": 10**3,
    "thousand": 10**3,
    "m": 10**6,
    "million": 10**6,
    "b": 10**9,
    "g": 10**9,
    "billion": 10**9,
    "t": 10**12,
    "trillion": 10**12,
}
_NUMBER_RE = re.compile(
    r"""^\s*(?P<approx>[~≈])?\s*
    (?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)
    (?P<exp>[eE][+-]?\d+)?
    (?:(?P<word>\s*(?:thousand|million|billion|trillion))\b|(?P<letter>[KkMmBbGgTt])(?![A-Za-z]))?
    (?P<rest>.*)$""",
    re.VERBOSE | re.DOTALL | re.IGNORECASE,
)
_NA_RE = re.compile(r"^\s*(?:(?:n/?a|nan|none|null|unknown|-|—|\?)(?![A-Za-z0-9])|$)", re.IGNORECASE)


def parse_quantity(text: str) -> ParsedQuantity:
    """Read the leading number of ``text`` ("0.49B", "2.22E+09 Pile", "~180B (...)", "NA (...)").

    A K/M/B/T suffix (or thousand/million/billion/trillion) scales the number, thousands separators
    are allowed, "~" marks it approximate, and NA/N/A/unknown/empty gives ``value=None``. Raises
    ValueError when the text neither starts with a number nor says NA.
    """
    match = _NUMBER_RE.match(text)
    if match is None:
        if _NA_RE.match(text):
            rest = _NA_RE.sub("", text, count=1).strip()
            return ParsedQuantity(value=None, approximate=False, raw=text, remark=rest)
        raise ValueError(f"no leading number in {text!r}")
    try:
        value = Decimal(match["num"].replace(",", "") + (match["exp"] or ""))
    except InvalidOperation as exc:  # pragma: no cover - the regex only admits valid decimals
        raise ValueError(f"bad number in {text!r}") from exc
    suffix = (match["word"] or match["letter"] or "").strip().lower()
    if suffix:
        value *= _SUFFIXES[suffix]
    return ParsedQuantity(value=float(value), approximate=bool(match["approx"]), raw=text, remark=match["rest"].strip())
