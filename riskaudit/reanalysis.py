"""Re-analysing a saved report: exactly the stored analysis when its replicates file is there.

``riskaudit analyze REPORT.json`` must not give other CIs or verdicts than the analysis stored in the same
report. The scan analyses the paired bootstrap replicates it writes beside the report
(:mod:`riskaudit.replicates`), so re-running the analysis on them with the stored settings reproduces it.
Without that file (a report copied alone, or written by riskaudit < 0.2) the stored analysis is reused as
it is, and said so; only a report that has no stored analysis is re-analysed from its CIs (parametric
draws, independent across members), again said so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from riskaudit.points import series_from_report
from riskaudit.report import read_replicates, read_report
from riskaudit.scaling import AnalysisConfig, FamilyAnalysis, analyze_family

__all__ = ["Reanalysis", "reanalyze_report"]


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
