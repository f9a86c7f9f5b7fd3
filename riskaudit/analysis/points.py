"""Metric series for the scaling analysis from a CSV of external results.

The CSV (``riskaudit analyze POINTS.csv``) has one row per (family, member, metric)::

    family,member,params,tokens,metric,value[,flops,n,ci_low,ci_high,baseline,kind,companion,direction,probe,proportion]

* ``params``, ``tokens``, ``flops``: numbers, optionally with a K/M/B/T suffix ("70M", "300B"); ``tokens``
  may be empty or NA (unknown); ``flops`` overrides 6·params·tokens (Kaplan et al. 2020).
* ``value``: the metric; empty/NA/nan = not measured for that member.
* ``n``: items behind a proportion (without a CI the analysis then draws binomial resamples);
  ``ci_low``/``ci_high``: a 95% CI (normal resamples with sd = width / 3.92; a CI wins over ``n``). Without
  either there are no resamples: slope CIs come from the OLS standard error and abruptness cannot be tested.
* ``proportion`` (``yes``/``no``, also ``true``/``false``/``1``/``0``): whether the metric is a plain
  proportion of independent items, analysed as a rate (logit slope and logit prediction fit). Empty: a
  metric is a proportion when the file gives its ``n``; never inferred from the values or the kind.
* ``baseline`` (default 0), ``kind`` (``discrete``/``continuous``; default ``discrete`` when a companion is
  named, else ``continuous``), ``companion`` (a continuous metric of the same family in the file),
  ``direction`` (``higher_is_riskier`` default, ``lower_is_riskier``, ``two_sided``), ``probe`` (a label).

Rows are numbered as lines of the file (the header is row 1). Any problem raises
:class:`~riskaudit.errors.RiskauditError` with one line: ``FILE: row R, column 'C': what is wrong``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import cast, get_args

from riskaudit.analysis.metric import Direction, MetricKind
from riskaudit.analysis.series import MetricSeries
from riskaudit.errors import RiskauditError
from riskaudit.inputs.quantities import parse_quantity

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "read_points_csv",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("family", "member", "params", "tokens", "metric", "value")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "flops",
    "n",
    "ci_low",
    "ci_high",
    "baseline",
    "kind",
    "companion",
    "direction",
    "probe",
    "proportion",
)
_NA = frozenset({"", "na", "n/a", "nan", "none", "null"})
_DIRECTIONS: tuple[str, ...] = get_args(Direction)
_KINDS: tuple[str, ...] = get_args(MetricKind)


# --------------------------------------------------------------------------------------------------
# CSV


class _RowError(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _number(column: str, text: str, *, allow_na: bool = False) -> float | None:
    """A finite float (NA-like text → None when allowed)."""
    t = text.strip()
    if t.lower() in _NA:
        if allow_na:
            return None
        raise _RowError(column, "is empty" if not t else f"{t!r} is required here, not a missing value")
    try:
        v = float(t)
    except ValueError:
        raise _RowError(column, f"{t!r} is not a number") from None
    if not math.isfinite(v):
        raise _RowError(column, f"{t!r} is not a finite number")
    return v


def _quantity(column: str, text: str, *, allow_na: bool, minimum: float, strict: bool) -> float | None:
    """A scale number: plain, scientific or with a K/M/B/T suffix; must be ≥ (or >, when strict) minimum."""
    t = text.strip()
    if t.lower() in _NA:
        if allow_na:
            return None
        raise _RowError(column, "is empty" if not t else f"{t!r} is required here, not a missing value")
    try:
        v: float | None = float(t)
    except ValueError:
        try:
            q = parse_quantity(t)
        except ValueError:
            raise _RowError(column, f"{t!r} is not a number") from None
        if q.value is None or q.remark:
            raise _RowError(column, f"{t!r} is not a number") from None
        v = q.value
    assert v is not None
    if not math.isfinite(v):
        raise _RowError(column, f"{t!r} is not a finite number")
    if v < minimum or (strict and v == minimum):
        raise _RowError(column, f"{t!r} must be {'>' if strict else '≥'} {minimum:g}")
    return v


_YES = frozenset({"yes", "true", "1"})
_NO = frozenset({"no", "false", "0"})


def _yes_no(column: str, text: str) -> bool | None:
    """``yes``/``true``/``1`` → True, ``no``/``false``/``0`` → False, empty → None."""
    t = text.strip().lower()
    if not t:
        return None
    if t in _YES or t in _NO:
        return t in _YES
    raise _RowError(column, f"{text.strip()!r} must be yes or no")

@dataclass(frozen=True)
class _Attrs:
    """Per-metric columns: must agree on every row of the metric."""

    kind: MetricKind
    direction: Direction
    baseline: float
    companion: str | None
    probe: str | None
    proportion: bool | None  # None: not given (a proportion when n is given)


@dataclass
class _MetricRows:
    family: str
    metric: str
    attrs: _Attrs
    attr_rows: dict[str, int]  # column → the row it was first given
    members: list[str] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    n: list[int | None] = field(default_factory=list)
    ci_low: list[float | None] = field(default_factory=list)
    ci_high: list[float | None] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def read_points_csv(path: str | Path) -> list[MetricSeries]:
    """Read external results into one :class:`MetricSeries` per (family, metric), in file order.

    Raises RiskauditError (one line: file, row, column) on any malformed input.
    """
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RiskauditError(f"{label}: no such file") from None
    except UnicodeDecodeError:
        raise RiskauditError(f"{label}: not a UTF-8 text file") from None
    except OSError as exc:
        raise RiskauditError(f"{label}: cannot read: {exc.strerror or exc}") from None

    def fail(row: int, column: str | None, message: str) -> RiskauditError:
        where = f"row {row}" + (f", column '{column}'" if column is not None else "")
        return RiskauditError(f"{label}: {where}: {message}")

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_raw = next(reader, None)
    except csv.Error as exc:
        raise fail(1, None, f"not valid CSV ({exc})") from None
    if header_raw is None or not any(h.strip() for h in header_raw):
        raise fail(1, None, f"empty file: expected a header with the columns {', '.join(REQUIRED_COLUMNS)}")
    header = [h.strip().lower() for h in header_raw]
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    for i, h in enumerate(header):
        if h not in known:
            shown = h or f"#{i + 1} (no name)"
            raise fail(1, shown, f"unknown column; expected {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
        if h in header[:i]:
            raise fail(1, h, "appears twice in the header")
    for req in REQUIRED_COLUMNS:
        if req not in header:
            raise fail(1, req, "required column is missing from the header")

    metrics: dict[tuple[str, str], _MetricRows] = {}
    scale: dict[tuple[str, str], tuple[dict[str, float | None], int]] = {}
    n_rows = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise fail(reader.line_num, None, f"not valid CSV ({exc})") from None
        row = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise fail(row, f"#{len(header) + 1}", f"extra field beyond the header's {len(header)} columns")
        if len(cells) < len(header):
            raise fail(row, header[len(cells)], f"missing: the row has {len(cells)} of {len(header)} fields")
        rec = dict(zip(header, cells, strict=True))
        n_rows += 1
        try:
            _read_row(rec, row, metrics, scale)
        except _RowError as exc:
            raise fail(row, exc.column, exc.message) from None
    if n_rows == 0:
        raise fail(1, None, "no data rows after the header")

    # companions: a continuous metric of the same family
    for (fam, _), mr in metrics.items():
        comp = mr.attrs.companion
        if comp is None:
            continue
        crow = mr.attr_rows["companion"]
        target = metrics.get((fam, comp))
        if target is None:
            raise fail(crow, "companion", f"{comp!r} is not a metric of family {fam!r} in this file")
        if target.attrs.kind != "continuous":
            raise fail(crow, "companion", f"{comp!r} must be a continuous metric (it is discrete)")
        if mr.attrs.kind != "discrete":
            raise fail(crow, "kind", "only a discrete metric has a continuous companion")

    out: list[MetricSeries] = []
    for (fam, metric), mr in metrics.items():
        params, tokens, flops, notes = [], [], [], []
        computed = 0
        for m in mr.members:
            sc = scale[(fam, m)][0]
            params.append(sc["params"])
            tokens.append(sc["tokens"])
            fl = sc["flops"]
            if fl is None and sc["params"] is not None and sc["tokens"] is not None:
                fl = 6.0 * sc["params"] * sc["tokens"]
                computed += 1
            flops.append(fl)
        if computed:
            notes.append(f"FLOPs = 6·params·tokens (Kaplan et al. 2020) for {computed} of {len(mr.members)} members")
        has_n = any(v is not None for v in mr.n)
        has_ci = any(v is not None for v in mr.ci_low)
        out.append(
            MetricSeries(
                family=fam,
                metric=metric,
                probe=mr.attrs.probe or "",
                members=mr.members,
                params=params,
                tokens=tokens,
                flops=flops,
                values=mr.values,
                ci_low=mr.ci_low if has_ci else None,
                ci_high=mr.ci_high if has_ci else None,
                n_items=mr.n if has_n else None,
                kind=mr.attrs.kind,
                rate=mr.attrs.proportion if mr.attrs.proportion is not None else has_n,
                direction=mr.attrs.direction,
                baseline=mr.attrs.baseline,
                companion=mr.attrs.companion,
                notes=notes,
            )
        )
    return out


def _text(rec: Mapping[str, str], column: str, *, required: bool) -> str | None:
    t = rec.get(column, "").strip()
    if not t:
        if required:
            raise _RowError(column, "is empty")
        return None
    return t


def _read_row(
    rec: Mapping[str, str],
    row: int,
    metrics: dict[tuple[str, str], _MetricRows],
    scale: dict[tuple[str, str], tuple[dict[str, float | None], int]],
) -> None:
    fam = _text(rec, "family", required=True)
    member = _text(rec, "member", required=True)
    metric = _text(rec, "metric", required=True)
    assert fam is not None and member is not None and metric is not None
    sc: dict[str, float | None] = {
        "params": _quantity("params", rec["params"], allow_na=False, minimum=0.0, strict=True),
        "tokens": _quantity("tokens", rec["tokens"], allow_na=True, minimum=0.0, strict=False),
        "flops": _quantity("flops", rec.get("flops", ""), allow_na=True, minimum=0.0, strict=True),
    }
    value = _number("value", rec["value"], allow_na=True)
    proportion = _yes_no("proportion", rec.get("proportion", ""))
    if proportion and value is not None and not 0.0 <= value <= 1.0:
        raise _RowError("value", f"{value:g} is not a proportion in [0, 1], but the proportion column says it is one")
    n_raw = _text(rec, "n", required=False)
    n: int | None = None
    if n_raw is not None and n_raw.lower() not in _NA:
        try:
            n = int(n_raw)
        except ValueError:
            raise _RowError("n", f"{n_raw!r} is not a whole number of items") from None
        if n < 1:
            raise _RowError("n", f"{n_raw!r} must be ≥ 1")
        if proportion is None and value is not None and not 0.0 <= value <= 1.0:
            raise _RowError("value", f"{value:g} is not a proportion in [0, 1], but n is given")
    lo = _number("ci_low", rec.get("ci_low", ""), allow_na=True)
    hi = _number("ci_high", rec.get("ci_high", ""), allow_na=True)
    if (lo is None) != (hi is None) and value is not None:
        raise _RowError("ci_high" if hi is None else "ci_low", "ci_low and ci_high go together: one is missing")
    if lo is not None and hi is not None and lo > hi:
        raise _RowError("ci_low", f"{lo:g} is above ci_high {hi:g}")
    companion = _text(rec, "companion", required=False)
    kind_t = (_text(rec, "kind", required=False) or ("discrete" if companion else "continuous")).lower()
    if kind_t not in _KINDS:
        raise _RowError("kind", f"{kind_t!r} is not one of {', '.join(_KINDS)}")
    dir_t = (_text(rec, "direction", required=False) or "higher_is_riskier").lower()
    if dir_t not in _DIRECTIONS:
        raise _RowError("direction", f"{dir_t!r} is not one of {', '.join(_DIRECTIONS)}")
    baseline = _number("baseline", rec.get("baseline", ""), allow_na=True)
    attrs = _Attrs(
        kind=cast(MetricKind, kind_t),
        direction=cast(Direction, dir_t),
        baseline=0.0 if baseline is None else baseline,
        companion=companion,
        probe=_text(rec, "probe", required=False),
        proportion=proportion,
    )

    prev = scale.get((fam, member))
    if prev is None:
        scale[(fam, member)] = (sc, row)
    else:
        for col in ("params", "tokens", "flops"):
            if prev[0][col] != sc[col]:
                raise _RowError(
                    col,
                    f"{rec.get(col, '').strip() or 'empty'!s} differs from the {col} of member {member!r} "
                    f"given at row {prev[1]}",
                )
    mr = metrics.get((fam, metric))
    if mr is None:
        rows = {f.name: row for f in fields(_Attrs)}
        mr = _MetricRows(family=fam, metric=metric, attrs=attrs, attr_rows=rows)
        metrics[(fam, metric)] = mr
    else:
        for f in fields(_Attrs):
            new, old = getattr(attrs, f.name), getattr(mr.attrs, f.name)
            if new != old:
                raise _RowError(
                    f.name,
                    f"{new if new is not None else 'empty'} differs from {old if old is not None else 'empty'} "
                    f"given for metric {metric!r} at row {mr.attr_rows[f.name]}",
                )
    if member in mr.rows:
        raise _RowError("member", f"{member!r} already has a value of {metric!r} at row {mr.rows[member]}")
    mr.rows[member] = row
    mr.members.append(member)
    mr.values.append(value)
    mr.n.append(n)
    mr.ci_low.append(lo)
    mr.ci_high.append(hi)
