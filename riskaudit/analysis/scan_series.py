"""Metric series from a scan: one :class:`~riskaudit.analysis.series.MetricSeries` per (probe, metric)
across the scanned members (:class:`MemberPoint`), seed replicates averaged into one point and checkpoints
given their own series, with the model-to-model noise that seed replicates and neighbouring checkpoints
measure."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from riskaudit.analysis.metric import MetricResult
from riskaudit.analysis.series import MetricSeries, NoiseEstimate

__all__ = ["STEP_RE", "MemberPoint", "ProbeMetrics", "ProbeReplicates", "series_from_scan"]

STEP_RE = re.compile(r"^step(\d+)$")  # a checkpoint revision named by its training step ("step143000")


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
            rate = _declared_rate(sub, proto.kind)
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
                    n_items=[c.n_items for c in sub] if rate else None,
                    replicates=rep_matrix,
                    kind=proto.kind,
                    rate=rate,
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
    proportion: bool | None = None  # MetricResult.proportion

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
        proportion=r.proportion,
    )


def _declared_rate(cols: Sequence[_Col], kind: str) -> bool:
    """Whether the metric is a proportion, as its results declare (``MetricResult.proportion``). A result
    written before riskaudit declared it (None) falls back to the rule of those versions: a discrete metric
    whose every value lies in [0, 1] is a proportion (and the analysis requires a one-sided direction)."""
    flags = [
        c.proportion if c.proportion is not None else (kind == "discrete" and 0.0 <= c.value <= 1.0)
        for c in cols
        if c.value is not None
    ]
    return bool(flags) and all(flags)

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
                proportion=cols[have[0]].proportion,
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
