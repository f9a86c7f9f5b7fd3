"""Which documents the memorization suite reads, in what order: the demo family's own ground truth, a family's
declared training data, or a ``--data`` source's rows (text or token ids, duplication counts, member labels).

Sampling is seeded: each group (members, non-members) is put in a seeded random order, and the probe
takes the first documents that are long enough for its prefix + suffix, counting those it skips. With
``sampling = "first"`` the first rows of training order are read instead.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from riskaudit.inputs.canaries import PlantedCanary, canaries_fingerprint, load_canaries
from riskaudit.inputs.data_sources import load_megatron_data, megatron_local, open_dataset
from riskaudit.inputs.memdata import IDS_COLUMNS, TEXT_COLUMNS, DataError, DataOptions, Document, MemorizationData
from riskaudit.inputs.memdata import one_line as _one_line
from riskaudit.inputs.training_data import DEMO_DATASET, TrainingData
from riskaudit.resources import demo_dir

__all__ = ["demo_memorization_data", "load_memorization_data", "load_training_data"]

_MEMBER_TRUE = {"1", "true", "yes", "member", "in", "train"}
_MEMBER_FALSE = {"0", "false", "no", "nonmember", "non-member", "non_member", "out", "heldout", "held-out"}


def _shuffled(items: Sequence[Any], seed: int, salt: int) -> list[Any]:
    order = np.random.default_rng([seed, salt]).permutation(len(items))
    return [items[int(i)] for i in order]


def _read_gz_json(path: Path) -> Any:
    try:
        return json.loads(gzip.decompress(path.read_bytes()))
    except FileNotFoundError:
        raise DataError(
            f"the demo family's ground truth {path.name} is missing; rebuild it with `riskaudit zoo build`"
        ) from None
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read the demo family's {path.name}: {_one_line(exc)}") from None


def demo_memorization_data(
    seed: int = 0, directory: Path | None = None, canaries: tuple[PlantedCanary, ...] | None = None
) -> MemorizationData:
    """The demo family's own data: training stories, planted canaries and held-out stories.

    Documents are the distinct non-canary training stories (each with its count in the training stream as
    ``duplicates``) and the held-out stories, each group in a seeded random order; the canaries (default:
    the shipped ``canaries.jsonl``) keep their own prefix / secret split.
    """
    d = directory or demo_dir()
    truth_path, train_path = d / "ground_truth.json.gz", d / "train_documents.json.gz"
    truth = _read_gz_json(truth_path)
    train = _read_gz_json(train_path)
    try:
        planted = {str(c["prefix"]) + str(c["secret"]) for c in truth["canaries"]}
        heldout_texts = [str(t) for t in truth["heldout_documents"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"the demo family's ground_truth.json.gz is malformed: {_one_line(exc)}") from None
    if canaries is None:
        canaries = load_canaries(d / "canaries.jsonl")
    if not isinstance(train, list) or not train:
        raise DataError("the demo family's train_documents.json.gz holds no documents")
    counts = Counter(str(t) for t in train)
    first_seen: dict[str, int] = {}
    for i, t in enumerate(train):
        first_seen.setdefault(str(t), i)
    docs = [
        Document(index=first_seen[t], text=t, duplicates=n, member=True) for t, n in counts.items() if t not in planted
    ]
    held = [Document(index=i, text=t, duplicates=0, member=False) for i, t in enumerate(heldout_texts)]
    h = hashlib.sha256()
    for p in (truth_path, train_path):
        h.update(hashlib.sha256(p.read_bytes()).digest())
    h.update(canaries_fingerprint(canaries).encode())
    return MemorizationData(
        name="demo",
        documents=tuple(_shuffled(docs, seed, 1)),
        heldout=tuple(_shuffled(held, seed, 2)),
        canaries=tuple(canaries),
        fingerprint=h.hexdigest(),
        notes=(
            f"demo data: {len(docs)} distinct training stories (planted canary copies excluded), "
            f"{len(held)} held-out stories, {len(canaries)} canaries",
        ),
        is_demo=True,
    )


def load_training_data(
    decl: TrainingData, seed: int = 0, n_documents: int = 1000, limit: int | None = None
) -> MemorizationData:
    """A family's declared training data: its ``n_documents`` sampled sequences (``first``: the first
    k·batch_size of training order; ``uniform``: a seeded sample, at most ``limit`` read) and its canaries."""
    canaries = load_canaries(decl.canaries) if decl.canaries else None
    if decl.dataset == DEMO_DATASET:
        return demo_memorization_data(seed=seed, canaries=canaries)
    first = decl.sampling == "first"
    n_first = n_documents
    if first and decl.batch_size:
        n_first = -(-n_documents // decl.batch_size) * decl.batch_size
    options = DataOptions(
        source=decl.dataset,
        config=decl.config,
        split=decl.split,
        column=decl.column,
        dup_column=decl.dup_column,
        label_column=decl.label_column,
        revision=decl.revision,
        order_column=decl.order_column,
        sampling=decl.sampling,
    )
    if decl.layout == "megatron":
        if not first:
            raise DataError(f"training data {decl.dataset!r}: the megatron layout is read in training order only")
        data = load_megatron_data(decl.dataset, n_first, revision=decl.revision)
    else:
        data = load_memorization_data(options, seed=seed, limit=n_first if first else limit)
    notes = [*data.notes, "training data declared by the family: " + decl.sampling_note(len(data.documents))]
    if decl.reference:
        notes.append(f"training data reference: {decl.reference}")
    return MemorizationData(
        name=data.name,
        documents=data.documents,
        heldout=data.heldout,
        canaries=canaries or (),
        fingerprint=hashlib.sha256(
            (data.fingerprint + (canaries_fingerprint(canaries) if canaries else "")).encode()
        ).hexdigest(),
        notes=tuple(notes),
        packed=decl.packed or data.packed,
    )



def _pick_column(names: Sequence[str], wanted: str | None, what: str, defaults: Sequence[str]) -> str | None:
    if wanted is not None:
        if wanted not in names:
            raise DataError(f"the data has no {what} column {wanted!r}; columns: {', '.join(names)}")
        return wanted
    return next((c for c in defaults if c in names), None)


def _as_ids(value: Any, row: int, column: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(v) for v in value)
        if any(isinstance(v, float) and not float(v).is_integer() for v in value):
            raise ValueError
    except (TypeError, ValueError):
        raise DataError(f"row {row} of column {column!r} is not a list of token ids") from None
    if any(i < 0 for i in ids):
        raise DataError(f"row {row} of column {column!r} has a negative token id")
    return ids


def _as_dup(value: Any, row: int, column: str) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
        if float(value) != n or n < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise DataError(f"row {row} of the duplication column {column!r} is not a count >= 0: {value!r}") from None
    return n


def _as_member(value: Any, row: int, column: str) -> bool | None:
    if value is None:
        return None
    s = str(value).strip().lower()
    if isinstance(value, bool):
        return value
    if s in _MEMBER_TRUE:
        return True
    if s in _MEMBER_FALSE:
        return False
    raise DataError(
        f"row {row} of the label column {column!r} must be 1/true/member or 0/false/nonmember, got {value!r}"
    )


def load_memorization_data(options: DataOptions, seed: int = 0, limit: int | None = None) -> MemorizationData:
    """Open ``options.source`` and return its documents in seeded random order.

    Members are the rows labelled members (every row when there is no label column); non-members the rows
    labelled non-members. ``limit`` caps how many of each group are read (in sample order).
    """
    if megatron_local(options.source) is not None:
        return load_megatron_data(options.source, limit or 1000, options.revision)
    ds, fingerprint = open_dataset(options, limit if options.sampling == "first" else None)
    n_rows = len(ds)
    if n_rows == 0:
        raise DataError(f"data {options.source!r} is empty (no rows)")
    names = list(ds.column_names)
    column = _pick_column(names, options.column, "text", (*TEXT_COLUMNS, *IDS_COLUMNS))
    if column is None:
        raise DataError(f"cannot tell which column holds the text; pass --data-column (columns: {', '.join(names)})")
    dup_col = _pick_column(names, options.dup_column, "duplication", ())
    label_col = _pick_column(names, options.label_column, "label", ())

    labels: list[bool | None] = (
        [_as_member(v, i, label_col) for i, v in enumerate(ds[label_col])] if label_col else [None] * n_rows
    )
    member_rows = [i for i in range(n_rows) if labels[i] is not False]
    nonmember_rows = [i for i in range(n_rows) if labels[i] is False]
    positions: list[int] = list(range(n_rows))
    if options.sampling == "first":
        order_col = _pick_column(names, options.order_column, "order", ())
        if order_col is not None:
            positions = [_as_dup(v, i, order_col) or 0 for i, v in enumerate(ds[order_col])]
        member_rows = sorted(member_rows, key=lambda i: positions[i])[:limit]
        nonmember_rows = sorted(nonmember_rows, key=lambda i: positions[i])[:limit]
    else:
        member_rows = _shuffled(member_rows, seed, 1)[:limit]
        nonmember_rows = _shuffled(nonmember_rows, seed, 2)[:limit]

    def read(rows: list[int]) -> list[Document]:
        if not rows:
            return []
        sub = ds.select(rows)
        values = sub[column]
        dups = sub[dup_col] if dup_col else [None] * len(rows)
        out: list[Document] = []
        for row, value, dup in zip(rows, values, dups, strict=True):
            member = labels[row]
            n_dup = _as_dup(dup, row, str(dup_col)) if dup_col else None
            pos = positions[row]
            if value is None:
                out.append(Document(index=pos, text="", duplicates=n_dup, member=member))
            elif isinstance(value, str):
                out.append(Document(index=pos, text=value, duplicates=n_dup, member=member))
            elif isinstance(value, (list, tuple, np.ndarray)):
                out.append(Document(index=pos, ids=_as_ids(value, row, column), duplicates=n_dup, member=member))
            else:
                raise DataError(f"column {column!r} holds {type(value).__name__}, expected text or a list of token ids")
        return out

    members, nonmembers = read(member_rows), read(nonmember_rows)
    sampled = (
        "the first rows of training order" + (f" (by {options.order_column!r})" if options.order_column else "")
        if options.sampling == "first"
        else f"a seeded uniform sample (seed {seed})"
    )
    notes = [
        f"data {os.path.basename(options.source.rstrip('/')) or options.source}: {n_rows} rows, column {column!r}, "
        f"{sampled}"
        + (f", duplication counts from {dup_col!r}" if dup_col else "")
        + (f", member labels from {label_col!r}" if label_col else "")
    ]
    if not label_col:
        notes.append(
            "no member/non-member labels: every document is treated as training data, so membership inference "
            "is not run (give a label column with non-members to run it)"
        )
    elif not members:
        raise DataError(f"data {options.source!r} has no rows labelled as members (trained on)")
    h = hashlib.sha256(fingerprint.encode())
    h.update(options.model_dump_json(exclude={"cache_dir"}).encode())
    return MemorizationData(
        name=options.source,
        documents=tuple(members),
        heldout=tuple(nonmembers),
        fingerprint=h.hexdigest(),
        notes=tuple(notes),
    )
