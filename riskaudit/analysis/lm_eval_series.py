"""Metric series for the scaling analysis from a directory of lm-evaluation-harness results files.

Each file (:mod:`riskaudit.inputs.lm_eval_results`) is one model or checkpoint; the model is placed in a family
of the built-in table (or of a family TOML the user gives) and its checkpoint step scales its tokens. Every
``<task>.<metric>`` becomes one metric (probe = the task), lined up across the family's members exactly as a
scan's metrics are (:func:`~riskaudit.analysis.scan_series.series_from_scan`): one series over the members at
their final checkpoint, one per member with two or more checkpoints. A metric's stderr is its item noise: the
CI is value ± z·stderr, which the analysis turns back into normal draws with sd = stderr.

Metric attributes, decided by the metric's name (lm-evaluation-harness's own names, never by the values):
``acc``, ``acc_norm``, ``acc_mutual_info``, ``pct_stereotype``, ``em``, ``exact_match`` and ``mc1`` are means
of a 0/1 score per document, so they are declared proportions (discrete, analysed as rates);
``pct_stereotype`` has baseline 0.5 (no preference between the stereotypical and the anti-stereotypical
sentence); every metric is read as reported, higher = riskier (the points CSV's default).

WinoBias's own measure is the gap between its pro- and anti-stereotypical halves (Zhao et al. 2018; the Pythia
paper's "net bias", Biderman et al. 2023 §5): for every pair of tasks ``<stem>_pro[+prompt]`` and
``<stem>_anti[+prompt]`` a member has, a derived metric ``<stem>[+prompt].<metric>_pro_minus_anti`` = pro − anti
with stderr √(se_pro² + se_anti²) (the halves are different sentences), continuous, baseline 0.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from riskaudit.analysis import stats
from riskaudit.analysis.metric import MetricResult
from riskaudit.analysis.scan_series import MemberPoint, series_from_scan
from riskaudit.analysis.series import MetricSeries
from riskaudit.errors import RiskauditError
from riskaudit.inputs.family_spec import Family
from riskaudit.inputs.family_table import table_families
from riskaudit.inputs.lm_eval_results import LmEvalRun, LmEvalValue, read_results_dir, resolve_model

__all__ = ["PROPORTION_METRICS", "lm_eval_series"]

PROPORTION_METRICS = frozenset({"acc", "acc_norm", "acc_mutual_info", "pct_stereotype", "em", "exact_match", "mc1"})
_BASELINES = {"pct_stereotype": 0.5}
_HOW = (
    "give its params and tokens in a family TOML (--family FILE.toml, the member's source = the model name) "
    "or write the values as a points CSV"
)


def _result(v: LmEvalValue, z: float) -> MetricResult:
    base = v.metric.partition(",")[0]
    proportion = base in PROPORTION_METRICS and 0.0 <= v.value <= 1.0
    lo = hi = None
    if v.stderr is not None:
        lo, hi = v.value - z * v.stderr, v.value + z * v.stderr
    return MetricResult(
        name=v.name,
        value=v.value,
        ci_low=lo,
        ci_high=hi,
        n_items=v.n or 0,
        direction="higher_is_riskier",
        baseline=_BASELINES.get(base, 0.0),
        kind="discrete" if proportion else "continuous",
        proportion=proportion,
        description=f"lm-evaluation-harness {v.task} {v.metric}",
    )


_PRO = re.compile(r"^(?P<stem>.+)_pro(?P<prompt>\+.*)?$")


def _pro_minus_anti(per_task: dict[str, list[MetricResult]], z: float) -> None:
    """Add each ``<stem>_pro`` / ``<stem>_anti`` pair's difference (module docstring) to one member's tasks."""
    for task in sorted(per_task):
        m = _PRO.match(task)
        if m is None:
            continue
        stem, prompt = m.group("stem"), m.group("prompt") or ""
        anti_task = f"{stem}_anti{prompt}"
        anti = per_task.get(anti_task)
        if anti is None:
            continue
        derived = f"{stem}{prompt}"
        by_metric = {r.name.removeprefix(f"{anti_task}."): r for r in anti}
        out = []
        for pro in per_task[task]:
            metric = pro.name.removeprefix(f"{task}.")
            a = by_metric.get(metric)
            if a is None or pro.value is None or a.value is None:
                continue
            value = pro.value - a.value
            lo = hi = None
            if pro.ci_high is not None and a.ci_high is not None:
                se = math.hypot((pro.ci_high - pro.value) / z, (a.ci_high - a.value) / z)
                lo, hi = value - z * se, value + z * se
            out.append(
                MetricResult(
                    name=f"{derived}.{metric}_pro_minus_anti",
                    value=value,
                    ci_low=lo,
                    ci_high=hi,
                    n_items=min(pro.n_items, a.n_items),
                    direction="higher_is_riskier",
                    baseline=0.0,
                    kind="continuous",
                    proportion=False,
                    description=f"{task} {metric} minus {anti_task} {metric} (WinoBias's gap)",
                )
            )
        if out:
            per_task.setdefault(derived, []).extend(out)


def _wanted(task: str, patterns: Sequence[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(task, p) for p in patterns)


def _shots(run: LmEvalRun, task: str) -> str:
    n = run.num_fewshot.get(task)
    return "" if n is None else f", {n}-shot"


def _assigned(root: Path, assign: Mapping[str, str]) -> list[tuple[Path, str]]:
    out = []
    for sub, model in assign.items():
        where = (root / sub).resolve()
        if not where.is_dir():
            raise RiskauditError(f"--model {sub}={model}: {root / sub} is not a directory")
        out.append((where, model))
    return sorted(out, key=lambda pm: len(pm[0].parts), reverse=True)  # the deepest directory wins


def lm_eval_series(
    root: Path,
    families: Sequence[Family] = (),
    tasks: Sequence[str] | None = None,
    alpha: float = 0.05,
    assign: Mapping[str, str] | None = None,
) -> tuple[list[MetricSeries], list[str]]:
    """The series of every task × metric in the results files under ``root``, and notes for the user (files
    skipped because their model is unknown or unnamed, checkpoints whose tokens are unknown).

    ``families`` are searched before the built-in table; ``tasks`` are shell patterns (``crows_pairs_*``);
    ``assign`` maps a directory under ``root`` to the model its files evaluated when they name none (GPT-NeoX
    dumps). RiskauditError (one line) on a malformed file, on two files giving the same task for the same model
    and checkpoint, and when no file can be placed or no task matches."""
    dirs = _assigned(root, assign or {})
    runs = read_results_dir(root)
    for run in runs:
        if run.model is None:
            full = run.path.resolve()
            run.model = next((m for d, m in dirs if full.is_relative_to(d)), None)
    lookup = [*families, *table_families().values()]
    z = stats.z_quantile(alpha)
    notes: list[str] = []
    unnamed: list[Path] = []
    unknown: dict[str, list[Path]] = {}
    points: dict[str, dict[str, MemberPoint]] = {}  # family → member name → point
    metrics: dict[str, dict[str, dict[str, list[MetricResult]]]] = {}  # family → member → task → results
    origin: dict[tuple[str, str, str], LmEvalRun] = {}
    matched = False
    for run in runs:
        if run.model is None:
            unnamed.append(run.path)
            continue
        where = resolve_model(run.model, run.revision, lookup)
        if where is None:
            unknown.setdefault(run.model, []).append(run.path)
            continue
        if where.note and where.note not in notes:
            notes.append(where.note)
        fam_points = points.setdefault(where.family, {})
        fam_points.setdefault(
            where.name,
            MemberPoint(
                name=where.name,
                params=where.params,
                tokens=where.tokens,
                flops=6.0 * where.params * where.tokens if where.params and where.tokens else None,
                checkpoint_of=where.base if where.step is not None else None,
                step=where.step,
            ),
        )
        per_task = metrics.setdefault(where.family, {}).setdefault(where.name, {})
        for v in run.values:
            if not _wanted(v.task, tasks):
                continue
            matched = True
            key = (where.family, where.name, v.task)
            first = origin.setdefault(key, run)
            if first is not run:
                raise RiskauditError(
                    f"{run.path}: task {v.task!r} of {run.model}{'@' + run.revision if run.revision else ''}"
                    f"{_shots(run, v.task)} is also in {first.path}{_shots(first, v.task)}: point analyze at one "
                    "evaluation per model and checkpoint (e.g. only the zero-shot directory)"
                )
            per_task.setdefault(v.task, []).append(_result(v, z))
    if unnamed:
        notes.append(
            f"{len(unnamed)} file(s) name no model (no model_name, no pretrained= in config.model_args), "
            f"skipped: {unnamed[0]}{' …' if len(unnamed) > 1 else ''} (--model SUBDIR=MODEL names it)"
        )
    for model, paths in unknown.items():
        notes.append(f"{model} is not in the built-in families table: {len(paths)} file(s) skipped ({_HOW})")
    if not points:
        why = []
        if unnamed:
            why.append(f"{len(unnamed)} name no model (--model SUBDIR=MODEL names it)")
        if unknown:
            why.append(
                f"{sum(len(p) for p in unknown.values())} name models not in the built-in families table "
                f"(riskaudit families list): {_HOW}"
            )
        raise RiskauditError(f"{root}: none of the {len(runs)} results files can be placed: {'; '.join(why)}")
    if not matched:
        raise RiskauditError(f"{root}: no task matches --tasks {','.join(tasks or [])}")
    out: list[MetricSeries] = []
    for fam, members in points.items():
        names = sorted(members, key=lambda n: (members[n].params or float("inf"), members[n].tokens or 0.0, n))
        per_member = [metrics[fam].get(n, {}) for n in names]
        for per_task in per_member:
            _pro_minus_anti(per_task, z)
        for s in series_from_scan(fam, [members[n] for n in names], per_member):
            s.notes.append("lm-evaluation-harness results; item noise: each value's stderr (normal draws)")
            out.append(s)
    return out, notes
