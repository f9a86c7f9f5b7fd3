"""Re-analysing a saved report: exactly the stored analysis when its replicates file is there.

``riskaudit analyze REPORT.json`` must not give other CIs or verdicts than the analysis stored in the same
report. The scan analyses the paired bootstrap replicates it writes beside the report
(:mod:`riskaudit.analysis.replicates`), so re-running the analysis on them with the stored settings reproduces it.
Without that file (a report copied alone, or written by riskaudit < 0.2) the stored analysis is reused as
it is, and said so; only a report that has no stored analysis is re-analysed from its CIs (parametric
draws, independent across members), again said so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from riskaudit.analysis.config import AnalysisConfig
from riskaudit.analysis.family import analyze_family
from riskaudit.analysis.metric import MetricResult
from riskaudit.analysis.results import FamilyAnalysis
from riskaudit.analysis.scan_series import STEP_RE, MemberPoint, ProbeReplicates, series_from_scan
from riskaudit.analysis.series import MetricSeries
from riskaudit.reporting.report import Report, read_replicates, read_report

__all__ = ["Reanalysis", "reanalyze_report", "series_from_report"]


@dataclass(frozen=True)
class Reanalysis:
    analysis: FamilyAnalysis
    source: str  # how it was obtained, one line for the user


def reanalyze_report(path: Path, seed: int | None = None) -> Reanalysis:
    """The scaling analysis of the report at ``path`` (see the module docstring); ``seed`` overrides the
    report's analysis seed (then the stored analysis cannot be reused as it is)."""
    report = read_report(path)
    stored = report.analysis
    config = stored.config if stored is not None else AnalysisConfig(seed=report.run.seed)
    if seed is not None:
        config = config.model_copy(update={"seed": seed})
    reps = read_replicates(path, report)
    if reps is not None:
        fa = analyze_family(series_from_report(report, reps), config)
        assert report.replicates is not None
        return Reanalysis(fa, f"re-analysed from the paired bootstrap replicates in {report.replicates.path}")
    if stored is not None and (seed is None or seed == stored.config.seed):
        why = (
            f"its replicates file {report.replicates.path} is missing"
            if report.replicates is not None
            else "it has no replicates file"
        )
        return Reanalysis(stored, f"the analysis stored in the report, reused as it is ({why})")
    fa = analyze_family(series_from_report(report), config)
    return Reanalysis(
        fa,
        "re-analysed from the members' CIs (parametric draws, independent across members): the report has no "
        "replicates file, so CIs and verdicts can differ from a scan's",
    )


def series_from_report(report: Report, replicates: Mapping[str, ProbeReplicates] | None = None) -> list[MetricSeries]:
    """:func:`series_from_scan` from a :class:`~riskaudit.reporting.report.Report` (``replicates`` keyed by
    member name).

    A member named ``base@revision`` is a checkpoint of ``base``; failed members contribute no values.
    Without replicates (a report read back from disk) the analysis resamples parametrically from the CIs.
    """
    points: list[MemberPoint] = []
    per_metrics: list[dict[str, list[MetricResult]]] = []
    per_reps: list[ProbeReplicates] = []
    for m in report.members:
        base, _, _ = m.name.partition("@")
        step_match = STEP_RE.match(m.revision or "")
        points.append(
            MemberPoint(
                name=m.name,
                params=None if m.params_total is None else float(m.params_total),
                tokens=m.train_tokens,
                flops=m.flops,
                checkpoint_of=base if "@" in m.name else None,
                step=int(step_match.group(1)) if step_match else None,
                replicate_of=m.replicate_of,
            )
        )
        per_metrics.append({p.probe_id: list(p.metrics) for p in m.probes} if m.status == "ok" else {})
        per_reps.append((replicates or {}).get(m.name, {}))
    return series_from_scan(report.family.name, points, per_metrics, per_reps)
