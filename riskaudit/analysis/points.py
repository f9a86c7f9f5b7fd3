"""Metric series for the scaling analysis: from a CSV of external results, or from an in-memory scan.

The CSV (``riskaudit analyze POINTS.csv``) has one row per (family, member, metric)::

    family,member,params,tokens,metric,value[,flops,n,ci_low,ci_high,baseline,kind,companion,direction,probe]

* ``params``, ``tokens``, ``flops``: numbers, optionally with a K/M/B/T suffix ("70M", "300B"); ``tokens``
  may be empty or NA (unknown); ``flops`` overrides 6·params·tokens (Kaplan et al. 2020).
* ``value``: the metric; empty/NA/nan = not measured for that member.
* ``n``: items behind a proportion (the analysis then draws binomial resamples); ``ci_low``/``ci_high``:
  a 95% CI (normal resamples with sd = width / 3.92). Without either there are no resamples: slope CIs
  come from the OLS standard error and abruptness cannot be tested.
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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import cast, get_args

import numpy as np
from pydantic import BaseModel

from riskaudit.analysis.metric import Direction, MetricKind, MetricResult
from riskaudit.analysis.scaling import MetricSeries, NoiseEstimate
from riskaudit.errors import RiskauditError
from riskaudit.inputs.quantities import parse_quantity

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "MemberPoint",
    "read_points_csv",
    "series_from_scan",
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
)
_NA = frozenset({"", "na", "n/a", "nan", "none", "null"})
_DIRECTIONS: tuple[str, ...] = get_args(Direction)
_KINDS: tuple[str, ...] = get_args(MetricKind)
STEP_RE = re.compile(r"^step(\d+)$")


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


@dataclass(frozen=True)
class _Attrs:
    """Per-metric columns: must agree on every row of the metric."""

    kind: MetricKind
    direction: Direction
    baseline: float
    companion: str | None
    probe: str | None


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
    n_raw = _text(rec, "n", required=False)
    n: int | None = None
    if n_raw is not None and n_raw.lower() not in _NA:
        try:
            n = int(n_raw)
        except ValueError:
            raise _RowError("n", f"{n_raw!r} is not a whole number of items") from None
        if n < 1:
            raise _RowError("n", f"{n_raw!r} must be ≥ 1")
        if value is not None and not 0.0 <= value <= 1.0:
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


# --------------------------------------------------------------------------------------------------
# From a scan


class MemberPoint(BaseModel):
    """A scanned member (or checkpoint) placed on the scale axes."""

    name: str
    params: float | None = None
    tokens: float | None = None  # training tokens seen (at this checkpoint)
    flops: float | None = None  # 6·N·D on the family's basis
    checkpoint_of: str | None = None  # the base member when this is one of its checkpoints (revisions)
    step: int | None = None
    replicate_of: str | None = None  # the size group when members are seed replicates of one size


ProbeMetrics = Mapping[str, Sequence[MetricResult]]  # probe id → its metric results (one member)
ProbeReplicates = Mapping[str, Mapping[str, Sequence[float | None]]]  # probe id → metric name → replicates


def series_from_scan(
    family: str,
    members: Sequence[MemberPoint | tuple[str, float | None, float | None, float | None]],
    metrics: Sequence[ProbeMetrics],
    replicates: Sequence[ProbeReplicates] | None = None,
) -> list[MetricSeries]:
    """One series per (probe, metric) across members, plus one per (probe, metric, checkpointed member).

    ``members[i]`` (a MemberPoint, or a plain ``(name, params, tokens, flops)`` tuple), ``metrics[i]`` and
    ``replicates[i]`` describe the same member (a failed member: empty mappings).
    Members axis: one point per base member — the checkpoint with the most tokens when it has several.
    Checkpoints axis: every base member with two or more checkpoints gets its own series
    (``axis="checkpoints"``). Replicates (``ProbeResult.replicates``) are used when every member with a value
    has them with the same length; otherwise the analysis falls back to parametric resamples from the CIs.
    """
    points = [
        m if isinstance(m, MemberPoint) else MemberPoint(name=m[0], params=m[1], tokens=m[2], flops=m[3])
        for m in members
    ]
    if len(metrics) != len(points) or (replicates is not None and len(replicates) != len(points)):
        raise ValueError("members, metrics and replicates must have one entry per member")
    reps: Sequence[ProbeReplicates] = replicates if replicates is not None else [{} for _ in points]
    ids: dict[tuple[str, str], MetricResult] = {}
    for per_member in metrics:
        for probe, results in per_member.items():
            for r in results:
                ids.setdefault((probe, r.name), r)

    groups: dict[str, list[int]] = {}
    for i, m in enumerate(points):
        groups.setdefault(m.checkpoint_of or m.name, []).append(i)
    finals = [max(ix, key=lambda i: (points[i].tokens or 0.0, i)) for ix in groups.values()]
    layouts: list[tuple[list[int], str | None]] = []
    if len(finals) >= 2 or not any(len(ix) >= 2 for ix in groups.values()):
        layouts.append((finals, None))
    layouts.extend((ix, base) for base, ix in groups.items() if len(ix) >= 2)

    out: list[MetricSeries] = []
    for (probe, name), proto in ids.items():
        cols = [_column(metrics[i], reps[i], probe, name) for i in range(len(points))]
        ckpt_noise = _checkpoint_noise(points, groups, cols)
        for ix, base in layouts:
            names = [points[i].name for i in ix]
            sub = [cols[i] for i in ix]
            seeds = [1] * len(ix)
            notes: list[str] = []
            estimates = list(ckpt_noise)
            if base is None:
                names, reps_at, sub, seeds, seed_noise, seed_notes = _collapse_replicates([points[i] for i in ix], sub)
                estimates += seed_noise
                notes += seed_notes
                ix = [ix[k] for k in reps_at]  # each point's scale: that of its (first) member
            values = [c.value for c in sub]
            rep_lists = [c.reps for c in sub]
            with_value = [k for k, v in enumerate(values) if v is not None]
            lengths = {len(rep_lists[k] or []) for k in with_value}
            rep_matrix: list[list[float | None]] | None = None
            if with_value and len(lengths) == 1 and 0 not in lengths:
                B = lengths.pop()
                cols_b = [rep_lists[k] if values[k] is not None else None for k in range(len(sub))]
                rep_matrix = [[None if c is None else c[b] for c in cols_b] for b in range(B)]
                if len({c.n_items for c in sub if c.value is not None}) > 1:
                    notes.append("item counts differ across members: the replicates are not truly paired")
            elif any(rep_lists[k] for k in with_value):
                notes.append("paired replicates missing for some member: resamples drawn from the CIs instead")
            discrete = proto.kind == "discrete"
            baselines = [c.baseline for c in sub]
            distinct = {b for b in baselines if b is not None}
            out.append(
                MetricSeries(
                    family=family,
                    metric=name,
                    probe=probe,
                    members=names,
                    params=[points[i].params for i in ix],
                    tokens=[points[i].tokens for i in ix],
                    flops=[points[i].flops for i in ix],
                    values=values,
                    ci_low=[c.ci_low for c in sub],
                    ci_high=[c.ci_high for c in sub],
                    n_items=[c.n_items for c in sub] if discrete else None,
                    replicates=rep_matrix,
                    kind=proto.kind,
                    direction=proto.direction,
                    baseline=proto.baseline,
                    baselines=baselines if len(distinct) > 1 else None,
                    n_seeds=seeds if any(k > 1 for k in seeds) else None,
                    noise_estimates=estimates,
                    companion=proto.companion,
                    axis="members" if base is None else "checkpoints",
                    checkpoint_of=base,
                    notes=notes,
                )
            )
    return out


@dataclass(frozen=True)
class _Col:
    """One member's value of one metric, with what the analysis needs about it."""

    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_items: int | None = None
    baseline: float | None = None
    reps: Sequence[float | None] | None = None

    def item_var(self) -> float | None:
        """The item-resampling variance of the value: from the replicates, else from a 95% CI."""
        if self.reps:
            vals = np.asarray([r for r in self.reps if r is not None], dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            if vals.size >= 2:
                return float(np.var(vals, ddof=1))
        if self.ci_low is not None and self.ci_high is not None:
            return ((self.ci_high - self.ci_low) / (2 * 1.959963984540054)) ** 2
        return None


def _column(per_member: ProbeMetrics, reps: ProbeReplicates, probe: str, name: str) -> _Col:
    r = _find(per_member, probe, name)
    if r is None or r.value is None:
        return _Col()
    return _Col(
        value=r.value,
        ci_low=r.ci_low,
        ci_high=r.ci_high,
        n_items=r.n_items,
        baseline=r.baseline,
        reps=reps.get(probe, {}).get(name),
    )


def _collapse_replicates(
    pts: Sequence[MemberPoint], cols: Sequence[_Col]
) -> tuple[list[str], list[int], list[_Col], list[int], list[NoiseEstimate], list[str]]:
    """Seed replicates of one size become one point: the mean value (and mean paired replicates, which are the
    paired replicates of the mean); their spread beyond item noise estimates the model-to-model noise.

    Returns per point: its name, the position in ``pts`` of the member whose scale it takes (the group's
    first), its column, its number of seeds; then the noise estimates and the notes."""
    groups: dict[str, list[int]] = {}
    for k, p in enumerate(pts):
        groups.setdefault(p.replicate_of or p.name, []).append(k)
    names: list[str] = []
    firsts: list[int] = []
    out: list[_Col] = []
    seeds: list[int] = []
    notes: list[str] = []
    ss = 0.0
    df = 0
    item_vars: list[float] = []
    for label, ks in groups.items():
        have = [k for k in ks if cols[k].value is not None]
        names.append(label)
        firsts.append(ks[0])
        if len(ks) == 1 or len(have) < 2:
            out.append(cols[ks[0]] if len(have) != 1 else cols[have[0]])
            seeds.append(1)
            continue
        vals = np.asarray([cols[k].value for k in have], dtype=np.float64)
        ss += float(((vals - vals.mean()) ** 2).sum())
        df += len(have) - 1
        item_vars += [v for v in (cols[k].item_var() for k in have) if v is not None]
        rep_cols = [cols[k].reps for k in have]
        mean_reps: list[float | None] | None = None
        if all(r for r in rep_cols) and len({len(r or []) for r in rep_cols}) == 1:
            mat = np.asarray([[math.nan if v is None else v for v in r or []] for r in rep_cols], dtype=np.float64)
            mean_reps = [None if math.isnan(v) else v for v in mat.mean(axis=0).tolist()]  # None where any is
        out.append(
            _Col(
                value=float(vals.mean()),
                n_items=cols[have[0]].n_items,
                baseline=cols[have[0]].baseline,
                reps=mean_reps,
            )
        )
        seeds.append(len(have))
        notes.append(f"{label}: mean of {len(have)} seed replicates ({', '.join(pts[k].name for k in have)})")
    estimates: list[NoiseEstimate] = []
    if df > 0:
        tau2 = max(0.0, ss / df - (float(np.mean(item_vars)) if item_vars else 0.0))
        estimates.append(
            NoiseEstimate(
                source="seed replicates",
                sd=math.sqrt(tau2),
                df=df,
                note="pooled within-size variance of the seed replicates minus their item variance",
            )
        )
    return names, firsts, out, seeds, estimates, notes


def _checkpoint_noise(
    points: Sequence[MemberPoint], groups: Mapping[str, Sequence[int]], cols: Sequence[_Col]
) -> list[NoiseEstimate]:
    """Neighbouring late checkpoints of one member (within 10% of each other in tokens seen) differ by
    model-to-model noise, not by training progress: τ² = mean(Δ²/2) − mean item variance over such pairs."""
    half_sq: list[float] = []
    item_vars: list[float] = []
    for ix in groups.values():
        ranked = sorted((i for i in ix if cols[i].value is not None), key=lambda i: points[i].tokens or 0.0)
        if len(ranked) < 2:
            continue
        last, prev = ranked[-1], ranked[-2]
        t_last, t_prev = points[last].tokens, points[prev].tokens
        if not t_last or not t_prev or t_prev < 0.9 * t_last:
            continue
        v_last, v_prev = cols[last].value, cols[prev].value
        assert v_last is not None and v_prev is not None
        half_sq.append((v_last - v_prev) ** 2 / 2.0)
        item_vars += [v for v in (cols[last].item_var(), cols[prev].item_var()) if v is not None]
    if not half_sq:
        return []
    tau2 = max(0.0, float(np.mean(half_sq)) - (float(np.mean(item_vars)) if item_vars else 0.0))
    return [
        NoiseEstimate(
            source="neighbouring checkpoints",
            sd=math.sqrt(tau2),
            df=len(half_sq),
            note="the last two checkpoints of a member, within 10% of each other in tokens seen",
        )
    ]


def _find(per_member: ProbeMetrics, probe: str, name: str) -> MetricResult | None:
    return next((r for r in per_member.get(probe, ()) if r.name == name), None)
