"""Data for the memorization suite: what the audited models were (and were not) trained on — its shapes
(:class:`DataOptions`, :class:`Document`, :class:`MemorizationData`) and its one-line :class:`DataError`.

Two sources:

* ``--data``: anything :func:`datasets.load_dataset` opens — a hub id (with ``--data-config``,
  ``--data-split``) or local jsonl / json / parquet / csv / text files (a file, a directory, or a glob).
  The ``--data-column`` holds text or pre-tokenized ids (a list of ints); optional columns give each
  document's duplication count in the training data and a member / non-member label.
* the demo family's shipped ground truth
  (:func:`~riskaudit.inputs.data_sampling.demo_memorization_data`): a seeded sample of its training
  stories, its planted canaries (Carlini et al. 2019) and held-out stories never trained on.

Sources are opened by :mod:`riskaudit.inputs.data_sources` and sampled (seeded) by
:mod:`riskaudit.inputs.data_sampling`. Every problem is a one-line :class:`~riskaudit.errors.RiskauditError`.
Nothing here prints.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from riskaudit.errors import RiskauditError
from riskaudit.inputs.canaries import PlantedCanary

__all__ = [
    "FILE_FORMATS",
    "IDS_COLUMNS",
    "TEXT_COLUMNS",
    "DataError",
    "DataOptions",
    "Document",
    "MemorizationData",
    "one_line",
    "text_sha256",
]


TEXT_COLUMNS: tuple[str, ...] = ("text", "content", "document", "sentence")
IDS_COLUMNS: tuple[str, ...] = ("input_ids", "token_ids", "tokens", "ids")
# file suffix -> datasets packaged builder
FILE_FORMATS: dict[str, str] = {
    ".jsonl": "json",
    ".json": "json",
    ".ndjson": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
    ".text": "text",
    ".md": "text",
}


class DataError(RiskauditError):
    """The memorization data cannot be read or used (one line)."""


class DataOptions(BaseModel):
    """Where the memorization suite's documents come from (the CLI's ``--data*`` options)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str  # hub id, or a local file / directory / glob
    config: str | None = None  # hub dataset configuration (--data-config)
    split: str = "train"  # hub split, slicing allowed: "train[:5000]" (--data-split); local files: "train"
    column: str | None = None  # text or token-id column (--data-column); default: first of TEXT/IDS_COLUMNS
    dup_column: str | None = None  # times each document occurs in the training data
    label_column: str | None = None  # 1 / true / "member" = trained on, 0 / false / "nonmember" = not
    revision: str | None = None  # hub dataset revision
    text_unit: Literal["line", "paragraph", "document"] = "line"  # plain-text files: what one document is
    cache_dir: str | None = None  # datasets cache (default: HF_DATASETS_CACHE)
    order_column: str | None = None  # training position of each row (sampling "first"; None: row order)
    sampling: Literal["first", "uniform"] = "uniform"  # first rows of training order, or a seeded sample


@dataclass(frozen=True)
class Document:
    """One document: text or pre-tokenized ids, plus what is known about its training exposure."""

    index: int  # row index in the source (stable across runs)
    text: str | None = None
    ids: tuple[int, ...] | None = None
    duplicates: int | None = None  # times seen in training (None: unknown)
    member: bool | None = None  # trained on (None: unknown)

    def sha256(self) -> str:
        """sha256 of the text (UTF-8), or of the ids as JSON: identifies a document without revealing it."""
        if self.text is not None:
            return text_sha256(self.text)
        return hashlib.sha256(json.dumps(list(self.ids or ())).encode()).hexdigest()


@dataclass(frozen=True)
class MemorizationData:
    """Members (training text), non-members (held-out text) and planted canaries, in seeded sample order."""

    name: str
    documents: tuple[Document, ...]  # trained on: extraction and the member side of membership inference
    heldout: tuple[Document, ...] = ()  # never trained on: the non-member side; extraction baseline
    canaries: tuple[PlantedCanary, ...] = ()
    fingerprint: str = ""  # sha256 identifying the data (for the probe's content hash)
    notes: tuple[str, ...] = ()
    is_demo: bool = False
    packed: bool = False  # sequences cut from a packed token stream: scored without a boundary token first
    extra: dict[str, Any] = field(default_factory=dict)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def one_line(text: object) -> str:
    return " ".join(str(text).split())
