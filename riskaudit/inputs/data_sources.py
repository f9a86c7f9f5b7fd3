"""Opening the memorization suite's ``--data`` sources: local jsonl / json / parquet / csv / text files (a file,
a directory or a glob), hub data sets through :func:`datasets.load_dataset`, and Megatron-layout indexed data
sets (local or on the hub, read by byte ranges). Which rows become documents is :mod:`riskaudit.inputs.data_sampling`.
"""

from __future__ import annotations

import codecs
import contextlib
import glob
import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from riskaudit.inputs.megatron import MegatronError, MegatronSource, read_first_sequences, shard_order
from riskaudit.inputs.memdata import FILE_FORMATS, DataError, DataOptions, Document, MemorizationData
from riskaudit.inputs.memdata import one_line as _one_line

__all__ = ["load_megatron_data", "megatron_local", "open_dataset"]

_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")


def megatron_local(source: str) -> MegatronSource | None:
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
    src = megatron_local(source) or _megatron_hub(source, revision)
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


def open_dataset(options: DataOptions, take: int | None = None) -> tuple[Any, str]:
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
