"""What a member's weights are: the files of a model directory that determine what is loaded, and the
fingerprint a result-store key carries for them (a content hash, a resolved hub commit, or a revision name).

See ``docs/store.md`` ("Weights fingerprints").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from riskaudit.errors import ModelLoadError

__all__ = ["MODEL_FILES", "FileHasher", "is_pinned", "sha256_file", "weights_fingerprint"]

_HASH_CHUNK = 8 * 1024 * 1024

# Files of a local model directory that determine what is loaded (top level only, as transformers loads).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")
_NOT_LOADED_PREFIXES = ("optimizer", "scheduler", "rng_state", "training_args")  # trainer checkpoint state
MODEL_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "tokenizer.model",
        "spiece.model",
    }
)


class FileHasher(Protocol):
    """Something that hashes a file's contents, e.g. a :class:`~riskaudit.run.store.ResultStore`, which
    remembers each hash under the file's identity."""

    def file_sha256(self, path: Path) -> str: ...


def _model_files(directory: Path) -> list[Path]:
    files: list[Path] = []
    for p in directory.iterdir():
        name = p.name
        if not p.is_file():
            continue
        if name.endswith(_WEIGHT_SUFFIXES):
            if not name.startswith(_NOT_LOADED_PREFIXES):
                files.append(p)
        elif name in MODEL_FILES or name.endswith(".index.json") or name.endswith(".py"):
            files.append(p)
    return sorted(files, key=lambda p: p.name)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _local_fingerprint(directory: Path, cached: Callable[[Path], str]) -> str:
    h = hashlib.sha256(b"riskaudit.local-weights/1\n")
    for f in _model_files(directory):
        size = f.stat().st_size
        h.update(f"{f.name}\0{size}\0{cached(f)}\n".encode())
    return "sha256:" + h.hexdigest()


def _hub_commit(repo_id: str, revision: str | None, hub_cache: Path | str | None) -> str | None:
    """The commit ``revision`` resolves to in the local HF cache (the snapshot folder's name), or None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=hub_cache, revision=revision)
    except Exception:  # an invalid repo id or revision string: not in the cache
        return None
    if not isinstance(found, str):
        return None
    commit = Path(found).parent.name
    if len(commit) == 40 and all(c in "0123456789abcdef" for c in commit):
        return commit
    return None


def weights_fingerprint(
    source: str,
    revision: str | None,
    *,
    store: FileHasher | None = None,
    hub_cache: Path | str | None = None,
) -> str:
    """What a member's weights are, as a short string for :class:`UnitKey`.

    * a local directory: ``sha256:<hex>`` over the names, sizes and contents of its weight files
      (``*.safetensors``, ``*.bin``, ``*.pt``, ...), config, generation config, tokenizer files, shard
      indexes and ``*.py`` files. With a ``store``, each file's hash is remembered under its
      (path, size, mtime_ns, ctime_ns, inode), so a rescan stats the files instead of rereading them.
    * a hub id: ``hf:<id>@<commit>`` with the commit the revision resolves to in the local HF cache
      (``hub_cache``, default the HF cache); not cached: ``hub:<id>@<revision or main>``, which trusts the
      revision name (a branch can move; see docs/store.md).
    * a local path that does not exist: ``missing:<path>`` (the load will fail with its own message).
    """
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            return f"missing:{path.resolve()}"
        hasher: Callable[[Path], str] = store.file_sha256 if store is not None else sha256_file
        try:
            return _local_fingerprint(path.resolve(), hasher)
        except OSError as exc:
            raise ModelLoadError(
                f"cannot load model '{source}': cannot read its files to fingerprint the weights ({_one_line(exc)})"
            ) from None
    if source.startswith(("/", ".", "~")) or source.count("/") > 1 or "\\" in source:
        return f"missing:{path}"
    commit = _hub_commit(source, revision, hub_cache)
    if commit is not None:
        return f"hf:{source}@{commit}"
    return f"hub:{source}@{revision or 'main'}"


def is_pinned(fingerprint: str) -> bool:
    """Whether a fingerprint names fixed weights, so results may be stored under it: a content hash, a
    resolved hub commit, or a hub revision that is itself a full commit hash. Not pinned: a branch or tag
    name that was not resolved (it can move) and a missing path."""
    if fingerprint.startswith(("sha256:", "hf:")):
        return True
    if fingerprint.startswith("hub:"):
        rev = fingerprint.rsplit("@", 1)[-1]
        return len(rev) == 40 and all(c in "0123456789abcdef" for c in rev)
    return False


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
