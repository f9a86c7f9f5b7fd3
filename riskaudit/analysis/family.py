"""Scaling and emergence of a family: how each risk metric grows across the members, and whether it appears
abruptly. The orchestration: one :class:`~riskaudit.analysis.series.MetricSeries` (one metric's value per
member, or per checkpoint of one member, with the member's scale) becomes one
:class:`~riskaudit.analysis.results.MetricAnalysis` through

* :func:`~riskaudit.analysis.resampling.prepare_series` — members sorted along the primary axis (log10
  FLOPs, else log10 params), y oriented so that larger = riskier, resamples and the model-to-model noise;
* :func:`~riskaudit.analysis.growth.growth_fit` — growth per decade of FLOPs and of parameters;
* :func:`~riskaudit.analysis.abrupt.assess_abruptness` — the abrupt/emergence rule and the emergence pair,
  and :func:`~riskaudit.analysis.abrupt.wei_point`, the view of Wei et al. (2022);
* :func:`~riskaudit.analysis.prediction.predictability` — is the largest member predicted by the smaller ones;
* :func:`~riskaudit.analysis.verdicts.verdict` — the verdict and its reason, a discrete metric's jump judged
  against its continuous companion (Schaeffer et al. 2023).

:func:`analyze_family` pairs every discrete metric with its companion and analyses a whole family.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from riskaudit.analysis.abrupt import Abruptness, assess_abruptness, wei_point
from riskaudit.analysis.config import AnalysisConfig
from riskaudit.analysis.growth import growth_fit
from riskaudit.analysis.pair import pair_difference
from riskaudit.analysis.prediction import predictability
from riskaudit.analysis.resampling import orientation_label, prepare_series
from riskaudit.analysis.results import FamilyAnalysis, MetricAnalysis
from riskaudit.analysis.series import MetricSeries
from riskaudit.analysis.verdicts import verdict

__all__ = ["analyze_families", "analyze_family", "analyze_series"]


def _base_analysis(series: MetricSeries) -> MetricAnalysis:
    return MetricAnalysis(
        family=series.family,
        metric=series.metric,
        probe=series.probe,
        kind=series.kind,
        direction=series.direction,
        baseline=series.baseline,
        companion=series.companion,
        axis=series.axis,
        checkpoint_of=series.checkpoint_of,
        orientation=orientation_label(series.direction, False),
    )


def analyze_series(
    series: MetricSeries,
    companion: MetricSeries | MetricAnalysis | None = None,
    config: AnalysisConfig | None = None,
) -> MetricAnalysis:
    """Growth, abruptness, emergence point, verdict and predictability of one series.

    ``companion`` is the continuous companion of a discrete metric (a series, or its analysis when already
    computed); its abruptness decides between ``abrupt`` and ``abrupt (likely metric artifact)``.
    """
    cfg = config or AnalysisConfig()
    out = _base_analysis(series)
    prep = prepare_series(series, cfg)
    out.notes = prep.notes
    out.orientation = orientation_label(series.direction, prep.rate)
    n = len(prep.members)
    out.members, out.n_members, out.x_axis = prep.members, n, prep.primary
    out.resampling, out.n_resamples = prep.method, 0 if prep.reps is None else int(prep.reps.shape[0])
    if prep.primary is not None:
        out.x = [float(v) for v in prep.x[prep.primary]]
        out.y = [float(v) for v in prep.y]
    if series.baselines is not None and prep.members:
        given = [series.baselines[series.members.index(m)] for m in prep.members]
        raw_base = [series.baseline if b is None else float(b) for b in given]
        if len(set(raw_base)) > 1:
            out.baselines = raw_base
    if n < cfg.min_members or prep.primary is None:
        out.verdict = "insufficient data"
        out.verdict_reason = f"{n} analysable member(s); at least {cfg.min_members} are needed"
        out.abruptness = Abruptness(rule=cfg.thresholds.rule())
        out.difference = pair_difference(series, prep, cfg.alpha)
        return MetricAnalysis.model_validate(out.model_dump())
    if n <= 4:
        out.notes.append(f"only {n} members: abruptness and predictability have little power")
    if "flops" in prep.x:
        out.growth_flops = growth_fit("flops", prep.x["flops"], prep, cfg.alpha)
    if "params" in prep.x:
        shift = prep.x["params"] - prep.x["flops"] if "flops" in prep.x else None
        if out.growth_flops is not None and shift is not None and float(np.ptp(shift)) <= 1e-12:
            # equal tokens for every member: log10 FLOPs = log10 params + const, the same fit
            out.growth_params = out.growth_flops.model_copy(update={"axis": "params"})
        else:
            out.growth_params = growth_fit("params", prep.x["params"], prep, cfg.alpha)
    out.abruptness, out.emergence = assess_abruptness(prep, cfg.thresholds)
    wei_point(prep, out.emergence)
    out.predictability = predictability(prep, cfg)

    comp = analyze_series(companion, None, cfg) if isinstance(companion, MetricSeries) else companion
    if comp is not None:
        out.companion = comp.metric
        out.companion_abrupt = comp.abruptness.abrupt
    out.verdict, out.verdict_reason = verdict(out, comp, cfg.thresholds, cfg.alpha)
    return MetricAnalysis.model_validate(out.model_dump())  # re-validate: every float finite or None


def analyze_family(series_list: Sequence[MetricSeries], config: AnalysisConfig | None = None) -> FamilyAnalysis:
    """Analyse every series of ONE family; each discrete metric is paired with its companion by name.

    The companion is looked up among the series with the same family, axis and checkpoint member (same
    probe preferred). Results follow the input order.
    """
    cfg = config or AnalysisConfig()
    fams = list(dict.fromkeys(s.family for s in series_list))
    if len(fams) > 1:
        raise ValueError(f"analyze_family got several families ({', '.join(fams)}); use analyze_families")
    by_key: dict[tuple[str, str, str, str], list[MetricSeries]] = {}
    for s in series_list:
        by_key.setdefault(s.key, []).append(s)
    done: dict[int, MetricAnalysis] = {}
    notes: list[str] = []

    def analyse(s: MetricSeries, depth: int = 0) -> MetricAnalysis:
        if id(s) in done:
            return done[id(s)]
        comp: MetricAnalysis | None = None
        missing = ""
        if s.kind == "discrete" and s.companion and depth == 0:
            cands = by_key.get((s.family, s.axis, s.checkpoint_of or "", s.companion), [])
            cands = sorted(cands, key=lambda c: c.probe != s.probe)
            if cands:
                comp = analyse(cands[0], depth + 1)
            else:
                missing = f"companion {s.companion!r} not found among the series"
        res = analyze_series(s, comp, cfg)
        if missing:
            res.notes.append(missing)
        done[id(s)] = res
        return res

    results = [analyse(s) for s in series_list]
    return FamilyAnalysis(
        family=fams[0] if fams else "", config=cfg, rule=cfg.thresholds.rule(), metrics=results, notes=notes
    )


def analyze_families(series_list: Sequence[MetricSeries], config: AnalysisConfig | None = None) -> list[FamilyAnalysis]:
    """:func:`analyze_family` per family, in first-seen order (for files holding several families)."""
    groups: dict[str, list[MetricSeries]] = {}
    for s in series_list:
        groups.setdefault(s.family, []).append(s)
    return [analyze_family(g, config) for g in groups.values()]
