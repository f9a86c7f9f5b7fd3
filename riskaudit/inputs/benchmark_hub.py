"""The hub fallback of the canonical benchmarks: when no directory holds a benchmark's official files, the hub
dataset lm-evaluation-harness 0.4.13 loads for it (through ``datasets``), rewritten into the official files.

Only the benchmarks whose hub dataset carries what their official files carry have one (:data:`HUB_SOURCES`):

- CrowS-Pairs: ``jannalu/crows_pairs_multilingual``, config ``english``, split ``test`` → ``crows_pairs_anonymized.csv``
  (the official index column, ``sent_more``, ``sent_less``, ``stereo_antistereo``, ``bias_type``);
- BBQ: ``oskarvanderwal/bbq``, config ``All``, split ``test`` → one ``<Category>.jsonl`` per category present,
  one official JSON object a line.

Winogender's hub dataset has no ``templates.tsv`` / ``occupations-stats.tsv`` and lm-eval loads no WinoBias
dataset, so neither has a fallback. The hub is tried only after every directory failed, never when
``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` is set or the hub is unreachable (one probe per process); then
the "not audited" reason says so. The rebuilt files are written atomically under
``<cache>/benchmarks/<benchmark>/<owner>--<name>/`` (``cache`` is :func:`riskaudit.resources.default_cache_dir`)
and read by the probe like any official file; their :class:`DataFile` carries ``source="hub:<dataset>
<config>/<split>"``. A hub dataset without a column the official file has is a one-line
:class:`BenchmarkFileError` naming the dataset and the column.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from riskaudit.inputs.benchmark_data import BenchmarkFileError, not_found, search
from riskaudit.models.hub import env_offline, hub_reachable
from riskaudit.resources import default_cache_dir

__all__ = ["HUB_SOURCES", "HubSource", "Located", "fetch_from_hub", "locate_or_hub"]


class HubSource(BaseModel):
    """A hub dataset as lm-evaluation-harness loads it: ``datasets.load_dataset(dataset, config, split=split)``."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    config: str | None = None
    split: str
    revision: str | None = None

    @property
    def label(self) -> str:
        """What a report's ``data_files[].source`` says: ``hub:<dataset> <config>/<split>[@<revision>]``."""
        at = f"@{self.revision}" if self.revision else ""
        return f"hub:{self.dataset} {self.config or 'default'}/{self.split}{at}"


class Located(BaseModel):
    """The official files of a benchmark, and where they came from (None: a directory; else the hub label)."""

    model_config = ConfigDict(frozen=True)

    paths: dict[str, Path]
    source: str | None = None


HUB_SOURCES: dict[str, HubSource] = {
    "crows_pairs": HubSource(dataset="jannalu/crows_pairs_multilingual", config="english", split="test"),
    "bbq": HubSource(dataset="oskarvanderwal/bbq", config="All", split="test"),
}

CROWS_COLUMNS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")
BBQ_COLUMNS = (
    "example_id",
    "question_index",
    "question_polarity",
    "context_condition",
    "category",
    "answer_info",
    "additional_metadata",
    "context",
    "question",
    "ans0",
    "ans1",
    "ans2",
    "label",
)


@functools.cache
def _reachable() -> bool:
    """:func:`~riskaudit.models.hub.hub_reachable`, probed once per process."""
    return hub_reachable()


def unavailable(source: HubSource) -> str | None:
    """Why the hub dataset cannot be tried now (offline, unreachable), or None when it can."""
    if env_offline():
        return f"hub dataset {source.dataset} not reachable (offline: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE set)"
    if not _reachable():
        return f"hub dataset {source.dataset} not reachable (no connection to the hub)"
    return None


def _rows(ds: Any, source: HubSource, required: Sequence[str], labels: Sequence[str]) -> list[dict[str, Any]]:
    """The dataset's rows, ``required`` columns checked; ``labels`` columns stored as ClassLabel ints mapped
    through the feature's names."""
    columns = list(ds.column_names)
    absent = [c for c in required if c not in columns]
    if absent:
        raise BenchmarkFileError(
            f"hub dataset {source.dataset} ({source.config}/{source.split}): no column {', '.join(absent)} "
            f"(columns: {', '.join(columns)})"
        )
    names: dict[str, Callable[[int], str]] = {}
    for c in labels:
        feature = ds.features[c]
        if hasattr(feature, "int2str"):
            names[c] = feature.int2str
    rows: list[dict[str, Any]] = []
    for row in ds:
        out = {c: row[c] for c in required}
        for c, to_name in names.items():
            if isinstance(out[c], int):
                out[c] = to_name(out[c])
        rows.append(out)
    if not rows:
        raise BenchmarkFileError(f"hub dataset {source.dataset} ({source.config}/{source.split}): no rows")
    return rows


def crows_pairs_files(ds: Any, source: HubSource) -> dict[str, str]:
    """``crows_pairs_anonymized.csv`` as the official release writes it: an unnamed index column (0, 1, …)
    then the columns the probe reads."""
    rows = _rows(ds, source, CROWS_COLUMNS, ("stereo_antistereo", "bias_type"))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["", *CROWS_COLUMNS])
    for i, row in enumerate(rows):
        writer.writerow([i, *(str(row[c]) for c in CROWS_COLUMNS)])
    return {"crows_pairs_anonymized.csv": buf.getvalue()}


def bbq_files(ds: Any, source: HubSource) -> dict[str, str]:
    """``<Category>.jsonl`` for every category present: one official JSON object a line, in the hub's order."""
    rows = _rows(ds, source, BBQ_COLUMNS, ("category", "question_polarity", "context_condition"))
    lines: dict[str, list[str]] = {}
    for row in rows:
        lines.setdefault(f"{row['category']}.jsonl", []).append(json.dumps(row, ensure_ascii=False))
    return {name: "\n".join(text) + "\n" for name, text in lines.items()}


WRITERS: dict[str, Callable[[Any, HubSource], dict[str, str]]] = {
    "crows_pairs": crows_pairs_files,
    "bbq": bbq_files,
}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def fetch_from_hub(benchmark: str, names: Sequence[str], cache_dir: Path, source: HubSource) -> dict[str, Path]:
    """Load ``source`` with ``datasets.load_dataset``, write the benchmark's official files under
    ``<cache_dir>/benchmarks/<benchmark>/<owner>--<name>/`` and return the path of each of ``names``.

    Raises BenchmarkFileError (one line) when the dataset lacks a column or a wanted file, OSError when the
    dataset cannot be downloaded."""
    import datasets

    kwargs: dict[str, Any] = {"split": source.split}
    if source.revision is not None:
        kwargs["revision"] = source.revision
    ds = datasets.load_dataset(source.dataset, source.config, **kwargs)
    texts = WRITERS[benchmark](ds, source)
    absent = [n for n in names if n not in texts]
    if absent:
        raise BenchmarkFileError(
            f"hub dataset {source.dataset} ({source.config}/{source.split}): no rows for {', '.join(absent)}"
        )
    out_dir = cache_dir.expanduser() / "benchmarks" / benchmark / source.dataset.replace("/", "--")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        _write_atomic(out_dir / name, text)
    return {n: out_dir / n for n in names}


def locate_or_hub(
    probe: str,
    benchmark: str,
    names: Sequence[str],
    *,
    explicit: Path | None,
    roots: Sequence[Path],
    how_to: str,
    cache_dir: Path | None = None,
) -> Located:
    """:func:`~riskaudit.inputs.benchmark_data.locate`, then the benchmark's hub dataset (when it has one, the
    hub is reachable and not offline). Raises BenchmarkDataMissing whose reason names the hub dataset too."""
    found, looked = search(benchmark, names, explicit=explicit, roots=roots)
    if found is not None:
        return Located(paths=found)
    source = HUB_SOURCES.get(benchmark)
    if source is None:
        raise not_found(probe, benchmark, names, looked, how_to)
    why = unavailable(source)
    if why is None:
        try:
            paths = fetch_from_hub(benchmark, names, cache_dir or default_cache_dir(), source)
        except OSError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            why = f"hub dataset {source.dataset} could not be loaded ({first})"
        else:
            return Located(paths=paths, source=source.label)
    raise not_found(probe, benchmark, names, looked, how_to, why)
