"""Data for the memorization suite: what the audited models were (and were not) trained on.

Two sources:

* ``--data``: anything :func:`datasets.load_dataset` opens — a hub id (with ``--data-config``,
  ``--data-split``) or local jsonl / json / parquet / csv / text files (a file, a directory, or a glob).
  The ``--data-column`` holds text or pre-tokenized ids (a list of ints); optional columns give each
  document's duplication count in the training data and a member / non-member label.
* the demo family's shipped ground truth (:func:`demo_memorization_data`): a seeded sample of its training
  stories, its planted canaries (Carlini et al. 2019) and held-out stories never trained on.

Sampling is seeded: each group (members, non-members) is put in a seeded random order, and the probe
takes the first documents that are long enough for its prefix + suffix, counting those it skips.
Every problem is a one-line :class:`~riskaudit.errors.RiskauditError`. Nothing here prints.
"""

from __future__ import annotations

import codecs
import contextlib
import glob
import gzip
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from riskaudit.errors import RiskauditError
from riskaudit.inputs.canaries import PlantedCanary, canaries_fingerprint, load_canaries
from riskaudit.inputs.megatron import MegatronError, MegatronSource, read_first_sequences, shard_order
from riskaudit.inputs.training_data import DEMO_DATASET, TrainingData
from riskaudit.resources import demo_dir

__all__ = [
    "FILE_FORMATS",
    "IDS_COLUMNS",
    "TEXT_COLUMNS",
    "DataError",
    "DataOptions",
    "Document",
    "MemorizationData",
    "demo_memorization_data",
    "load_memorization_data",
    "load_training_data",
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
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")
_MEMBER_TRUE = {"1", "true", "yes", "member", "in", "train"}
_MEMBER_FALSE = {"0", "false", "no", "nonmember", "non-member", "non_member", "out", "heldout", "held-out"}


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


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _shuffled(items: Sequence[Any], seed: int, salt: int) -> list[Any]:
    order = np.random.default_rng([seed, salt]).permutation(len(items))
    return [items[int(i)] for i in order]


# ------------------------------------------------------------------------------------------------ demo


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


# ------------------------------------------------------------------------------------------- --data


def _megatron_local(source: str) -> MegatronSource | None:
    """A local directory (or ``…/document`` stem) holding a Megatron index and its token file(s)."""
    p = Path(source).expanduser()
    stem = "document"
    if not p.is_dir() and p.with_suffix(".idx").is_file():
        p, stem = p.parent, p.name
    idx = p / f"{stem}.idx"
    if not p.is_dir() or not idx.is_file():
        return None
    names = sorted(str(f) for f in p.iterdir() if f.suffix == ".bin")
    shards = shard_order(names, stem)
    if not shards:
        raise DataError(f"data {source!r} has {idx.name} but no {stem}.bin or {stem}-00000-of-000NN.bin shards")
    return MegatronSource(str(idx), tuple(shards), lambda f: open(f, "rb"), lambda f: Path(f).stat().st_size)


def _megatron_hub(repo: str, revision: str | None) -> MegatronSource:
    """A hub data set in the Megatron layout, read by byte ranges (nothing is downloaded whole)."""
    from huggingface_hub import HfFileSystem

    from riskaudit.models.hf import _env_offline, _hub_reachable

    if _env_offline() or not _hub_reachable():
        raise DataError(f"cannot load dataset {repo!r}: no network access to the Hugging Face Hub")
    fs = HfFileSystem()
    root = f"datasets/{repo}" + (f"@{revision}" if revision else "")
    try:
        names = [str(x) for x in fs.ls(root, detail=False)]
    except Exception as exc:
        raise DataError(f"cannot load dataset {repo!r}: {_one_line(exc)}") from None
    shards = shard_order(names)
    if f"{root}/document.idx" not in names or not shards:
        raise DataError(f"cannot load dataset {repo!r}: no document.idx and document*.bin (Megatron layout)")
    return MegatronSource(f"{root}/document.idx", tuple(shards), lambda f: fs.open(f, "rb"), lambda f: int(fs.size(f)))


def load_megatron_data(source: str, n: int, revision: str | None = None) -> MemorizationData:
    """The first ``n`` training sequences of a Megatron-layout data set (local directory or hub id), token
    ids as stored, each document's index its training position."""
    src = _megatron_local(source) or _megatron_hub(source, revision)
    try:
        seqs, count = read_first_sequences(src, n)
    except MegatronError as exc:
        raise DataError(str(exc)) from None
    except OSError as exc:
        raise DataError(f"cannot read data {source!r}: {_one_line(exc)}") from None
    docs = tuple(Document(index=i, ids=tuple(s), member=True) for i, s in enumerate(seqs))
    h = hashlib.sha256(json.dumps([source, revision, count]).encode())
    for d in docs:
        h.update(d.sha256().encode())
    return MemorizationData(
        name=source,
        documents=docs,
        fingerprint=h.hexdigest(),
        notes=(
            f"data {source}: Megatron indexed data set of {count} sequences; the first {len(docs)} read, token ids "
            "as stored, scored from their first token (packed sequences: no boundary token before them)",
        ),
        packed=True,
    )


def _local_files(source: str) -> list[Path] | None:
    """The files a local source names (file, directory, glob), or None when it is not local."""
    p = Path(source).expanduser()
    if any(ch in source for ch in "*?["):
        return sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and _format_of(f) is not None)
    if source.startswith(("/", "./", "../", "~")) or source.endswith(tuple(FILE_FORMATS)):
        raise DataError(f"cannot open data {source!r}: no such file or directory")
    return None


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    for c in _COMPRESSED:
        name = name.removesuffix(c)
    return FILE_FORMATS.get(Path(name).suffix)


def _check_utf8(path: Path) -> None:
    """A text-based data file must be UTF-8: report the first bad byte's offset on one line."""
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"data file {path} is not valid UTF-8 (byte offset {offset + exc.start}); re-encode it as UTF-8"
                    ) from None
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise DataError(f"data file {path} is not valid UTF-8 (truncated at the end); re-encode it as UTF-8") from None
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {_one_line(exc)}") from None


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[Any]:
    """Import datasets with its progress bars and logging silenced (core code never prints)."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    level = datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        yield datasets
    finally:
        datasets.logging.set_verbosity(level)
        if was_enabled:
            datasets.enable_progress_bars()


def _open_dataset(options: DataOptions, take: int | None = None) -> tuple[Any, str]:
    """(a datasets.Dataset, a fingerprint of its content)."""
    files = _local_files(options.source)
    if files is not None:
        if not files:
            raise DataError(f"data {options.source!r} names no data files (jsonl, json, parquet, csv, txt)")
        formats = {f: _format_of(f) for f in files}
        unknown = [f for f, fmt in formats.items() if fmt is None]
        if unknown:
            raise DataError(
                f"cannot tell the format of data file {unknown[0]}; use .jsonl, .json, .parquet, .csv or .txt"
            )
        kinds = set(formats.values())
        if len(kinds) > 1:
            raise DataError(f"data {options.source!r} mixes file formats ({', '.join(sorted(map(str, kinds)))})")
        builder = str(kinds.pop())
        h = hashlib.sha256()
        for f in files:
            if builder != "parquet":
                _check_utf8(f)
            try:
                h.update(hashlib.sha256(f.read_bytes()).digest())
            except OSError as exc:
                raise DataError(f"cannot read data file {f}: {_one_line(exc)}") from None
        kwargs: dict[str, Any] = {"data_files": {"train": [str(f) for f in files]}, "split": "train"}
        if builder == "text":
            kwargs["sample_by"] = options.text_unit
        label = f"data {options.source!r}"
        with _quiet_datasets() as datasets:
            try:
                ds = datasets.load_dataset(builder, cache_dir=options.cache_dir, **kwargs)
            except UnicodeDecodeError as exc:
                raise DataError(f"cannot read {label}: not valid UTF-8 ({_one_line(exc)})") from None
            except Exception as exc:
                raise DataError(f"cannot read {label} as {builder}: {_one_line(exc)}") from None
        return ds, h.hexdigest()
    return _open_hub(options, take)


def _open_hub(options: DataOptions, take: int | None = None) -> tuple[Any, str]:
    """A hub data set; with ``take``, only its first ``take`` rows, streamed (a training set of a large
    model is far too big to download for a sample of its first sequences)."""
    from riskaudit.models.hf import _env_offline, _hub_reachable

    label = f"cannot load dataset {options.source!r}" + (f" ({options.config})" if options.config else "")
    if not _env_offline() and not _hub_reachable():
        raise DataError(
            f"{label}: no network access to the Hugging Face Hub; use local jsonl / parquet / csv / text files, "
            "or a pre-filled datasets cache with HF_HUB_OFFLINE=1"
        )
    with _quiet_datasets() as datasets:
        try:
            ds = datasets.load_dataset(
                options.source,
                options.config,
                split=options.split,
                revision=options.revision,
                cache_dir=options.cache_dir,
                streaming=take is not None,
            )
            if take is not None:
                ds = datasets.Dataset.from_list(list(ds.take(take)))
        except Exception as exc:
            raise DataError(f"{label}: {_one_line(exc)}") from None
    if not hasattr(ds, "column_names") or isinstance(ds.column_names, dict):
        raise DataError(f"{label}: pick one split with --data-split (got several)")
    ident = json.dumps([options.source, options.config, options.split, options.revision, take, ds._fingerprint])
    return ds, hashlib.sha256(ident.encode()).hexdigest()


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
    if _megatron_local(options.source) is not None:
        return load_megatron_data(options.source, limit or 1000, options.revision)
    ds, fingerprint = _open_dataset(options, limit if options.sampling == "first" else None)
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
