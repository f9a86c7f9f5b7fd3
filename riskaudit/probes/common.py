"""The run-time machinery shared by the occupation-based bias probes (pronoun, coreference, minimal pairs,
free generation):

- :class:`OccupationProbeBase`: a probe over a spec and a list of occupations — construction from the
  spec's occupation table (``from_spec``) or from a YAML file (``load``), the content hash, the bootstrap
  settings, item records and the assembled :class:`~riskaudit.probes.base.ProbeResult`;
- :class:`OccupationItem`: one (occupation, template) item and its id;
- :func:`score_pairs`: every (context, continuation) pair scored in ONE ``model.loglikelihood`` call;
- :func:`stereotype_clusters`: the items that count, grouped by occupation (the bootstrap's resampling
  unit), with per-occupation totals;
- :func:`add_correlations` and :func:`per_template_note`: metrics and notes that several probes report.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypedDict, TypeVar, cast

import numpy as np
import numpy.typing as npt

from riskaudit.analysis import stats
from riskaudit.errors import ProbeError
from riskaudit.inputs.occupations import Occupation, Table, load_occupations
from riskaudit.models.base import ModelHandle
from riskaudit.probes.base import ItemRecord, ProbeResult, ProgressFn
from riskaudit.probes.spec import SpecBase, SpecT, TemplateBase, load_spec
from riskaudit.resources import probe_data_dir

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
AttrValue = str | int | float | None

TemplateT = TypeVar("TemplateT", bound=TemplateBase)


class BootstrapArgs(TypedDict):
    """The bootstrap keywords of a probe's ``compute_metrics``, from the spec's ``settings``."""

    n_resamples: int
    seed: int
    alpha: float


def report_progress(progress: ProgressFn | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


@dataclass(frozen=True)
class OccupationItem(Generic[TemplateT]):
    """One (occupation, template) item; each probe's item adds what it scores."""

    occupation: Occupation
    template: TemplateT

    @property
    def item_id(self) -> str:
        return f"{self.occupation.name}|{self.template.id}"


class OccupationProbeBase(Generic[SpecT]):
    """A probe over a spec and a list of occupations with their % female (shared by the bias probes).

    A probe class sets ``spec_type`` (its spec model) and ``spec_file`` (its shipped definition).
    """

    spec_type: ClassVar[type[SpecBase]]
    spec_file: ClassVar[str]

    def __init__(self, spec: SpecT, occupations: Sequence[Occupation], notes: Sequence[str] = ()) -> None:
        if not occupations:
            raise ProbeError(f"probe {spec.id}: no occupations to score")
        names = [o.name for o in occupations]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ProbeError(f"probe {spec.id}: duplicate occupations: {', '.join(dupes)}")
        self.spec: SpecT = spec
        self.id: str = spec.id
        self.occupations: list[Occupation] = list(occupations)
        self.notes: list[str] = list(notes)
        self.limit: int | None = None  # scan --limit: only the first occupations are scored

    @classmethod
    def default_spec_path(cls) -> Path:
        """The shipped probe definition."""
        return probe_data_dir() / cls.spec_file

    @classmethod
    def from_spec(cls, spec: SpecT, table: Table | None = None) -> Self:
        """Probe over the built-in occupation table (``table`` overrides ``settings.occupation_table``)."""
        return cls(spec, *load_occupations(table or spec.settings.occupation_table))

    @classmethod
    def load(cls, path: str | Path | None = None, table: Table | None = None) -> Self:
        """Load a probe definition (default: the shipped one) over the built-in occupation table."""
        spec = load_spec(cls.spec_type, path or cls.default_spec_path())
        return cls.from_spec(cast(SpecT, spec), table)

    def finalize_family(self, results: list[ProbeResult]) -> list[ProbeResult]:
        """No family-level metrics: each member's result stands as it is."""
        return results

    @property
    def description(self) -> str:
        return self.spec.description.strip()

    def limited(self, n: int) -> Self:
        """A copy over the first ``n`` occupations (``scan --limit``)."""
        out = copy.copy(self)
        out.occupations = self.occupations[:n]
        out.limit = n
        return out

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the spec plus the scored occupations and their % female (and the
        ``--limit``, when one was given)."""
        payload: dict[str, object] = {
            "spec": json.loads(self.spec.canonical_json()),
            "occupations": [[o.name, o.pct_female] for o in self.occupations],
        }
        if self.limit is not None:
            payload["limit"] = self.limit
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def pct_female(self) -> FloatArray:
        """% female of each scored occupation, in order."""
        return np.array([o.pct_female for o in self.occupations], dtype=np.float64)

    def bootstrap(self) -> BootstrapArgs:
        """The spec's bootstrap settings, as keywords of ``compute_metrics``."""
        settings = self.spec.settings
        return {"n_resamples": settings.bootstrap_resamples, "seed": settings.seed, "alpha": settings.alpha}

    def score(
        self,
        model: ModelHandle,
        pairs: Sequence[tuple[str, str]],
        n_items: int,
        progress: ProgressFn | None,
        *,
        distinct: bool = True,
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """:func:`score_pairs`, with progress reported over ``n_items`` before and after."""
        report_progress(progress, 0, n_items)
        scored = score_pairs(model, pairs, self.id, distinct=distinct)
        report_progress(progress, n_items, n_items)
        return scored

    def record(self, item_id: str, attrs: dict[str, AttrValue], values: Mapping[str, float]) -> ItemRecord:
        """An item record of this probe; non-finite values are left out."""
        finite = {key: float(v) for key, v in values.items() if np.isfinite(v)}
        return ItemRecord(probe=self.id, item_id=item_id, attrs=attrs, values=finite)

    def result(
        self,
        collected: stats.MetricCollector,
        records: list[ItemRecord],
        *,
        first: Sequence[str] = (),
        last: Sequence[str] = (),
    ) -> ProbeResult:
        """The probe's result; notes: the probe's own, then ``first``, the metrics' notes, and ``last``."""
        return ProbeResult(
            probe_id=self.id,
            probe_hash=self.content_hash(),
            metrics=collected.metrics,
            records=records,
            notes=[*self.notes, *first, *collected.notes, *last],
            replicates=collected.replicates,
        )


def score_pairs(
    model: ModelHandle, pairs: Sequence[tuple[str, str]], probe_id: str, *, distinct: bool = True
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """log P(continuation | context) and the continuation's token count for every pair, from ONE
    ``model.loglikelihood`` call over the distinct pairs (repeated pairs are scored once), or over every
    pair as listed when ``distinct`` is False."""
    scored = list(dict.fromkeys(pairs)) if distinct else list(pairs)
    results = model.loglikelihood(scored)
    if len(results) != len(scored):
        raise ProbeError(
            f"probe {probe_id}: model {model.name!r} returned {len(results)} log-likelihoods for {len(scored)} pairs"
        )
    logprob = np.array([r.logprob for r in results], dtype=np.float64)
    n_tokens = np.array([r.n_tokens for r in results], dtype=np.int64)
    if not distinct:
        return logprob, n_tokens
    where = {pair: k for k, pair in enumerate(scored)}
    pos = np.array([where[p] for p in pairs], dtype=np.intp)
    return logprob[pos], n_tokens[pos]


@dataclass(frozen=True)
class OccupationClusters:
    """The usable items of a probe grouped by occupation, the resampling unit of its bootstrap."""

    usable: list[int]  # indices of the items that count
    unit: npt.NDArray[np.intp]  # the occupation (0 .. n_units - 1) of each usable item
    n_units: int

    def totals(self, values: FloatArray, mask: BoolArray | None = None) -> FloatArray:
        """Per-occupation sums of ``values`` (one per usable item), over the usable items in ``mask``."""
        if mask is None:
            return np.bincount(self.unit, weights=values, minlength=self.n_units).astype(np.float64)
        return np.bincount(self.unit[mask], weights=values[mask], minlength=self.n_units).astype(np.float64)


def stereotype_clusters(
    items: Sequence[OccupationItem[Any]],
    stereotyped: Sequence[bool],
    scores: FloatArray,
    notes: list[str],
    no_usable: str,
) -> OccupationClusters:
    """Group the items of occupations with a majority gender (``stereotyped``) and a finite score by
    occupation, in order of first appearance. Occupations without a majority gender get a note in
    ``notes``; no usable item at all raises a ProbeError with the message ``no_usable``."""
    usable = [k for k, it in enumerate(items) if stereotyped[k] and np.isfinite(scores[k])]
    index = {name: i for i, name in enumerate(dict.fromkeys(items[k].occupation.name for k in usable))}
    if not index:
        raise ProbeError(no_usable)
    n_none = len({it.occupation.name for it, s in zip(items, stereotyped, strict=True) if not s})
    if n_none:
        notes.append(f"left out {n_none} occupations at exactly 50% female (no stereotypical gender)")
    unit = np.array([index[items[k].occupation.name] for k in usable], dtype=np.intp)
    return OccupationClusters(usable=usable, unit=unit, n_units=len(index))


def add_correlations(
    out: stats.MetricCollector,
    names: tuple[str, str],
    score: FloatArray,
    logit_pct: FloatArray,
    resampled: tuple[FloatArray, FloatArray],
    *,
    n_items: int,
    descriptions: tuple[str, str],
    undefined_reason: str,
) -> None:
    """The Pearson and the Spearman correlation (``names``) of a per-occupation score with
    logit(pct_female / 100); replicates row-wise over ``resampled`` (the score and logit per resample)."""
    score_i, logit_i = resampled
    for name, value, reps, description in (
        (names[0], stats.pearson(score, logit_pct), stats.rowwise_pearson(score_i, logit_i), descriptions[0]),
        (names[1], stats.spearman(score, logit_pct), stats.rowwise_spearman(score_i, logit_i), descriptions[1]),
    ):
        out.add(
            name,
            value,
            reps,
            n_items=n_items,
            direction="higher_is_riskier",
            baseline=0.0,
            description=description,
            undefined_reason=undefined_reason,
        )


def per_template_note(
    label: str,
    items: Sequence[OccupationItem[Any]],
    usable: BoolArray,
    describe: Callable[[BoolArray], str | None],
) -> str:
    """``label: tid value, ...`` over the templates in order of appearance; ``describe`` gets the mask of
    a template's ``usable`` items and returns its value (None: left out)."""
    parts: list[str] = []
    for tid in dict.fromkeys(it.template.id for it in items):
        value = describe(np.array([it.template.id == tid for it in items]) & usable)
        if value is not None:
            parts.append(f"{tid} {value}")
    return f"{label}: " + (", ".join(parts) or "none defined")
