"""The result store: a SQLite cache of (member × probe) units, so a rescan never redoes the same work.

A *unit* is one probe run on one model: the raw :class:`~riskaudit.probes.base.ProbeResult` (metrics,
per-item records, notes and the paired bootstrap replicates) before any family-level finalization. A unit
is stored under a :class:`UnitKey` that names everything its numbers depend on:

* ``model_id`` and ``revision``: the member's source (hub id or local directory) and revision;
* ``weights_hash``: what was actually loaded (:func:`weights_fingerprint`): a hash of a local directory's
  weight, config and tokenizer files, or the commit a hub revision resolves to in the local HF cache;
* ``dtype``;
* ``probe_id`` and ``probe_hash``: the probe and the sha256 of its canonical definition (templates,
  occupations, data fingerprint, settings);
* ``unit_options_hash`` (:func:`unit_options_hash`): the seed, the device type, the context-length cap,
  ``trust_remote_code`` and a fingerprint of riskaudit's own source code.

The primary key is the sha256 of the canonical JSON of all seven fields, and a lookup also compares every
key column, so a result can only be served to the exact (model, weights, dtype, probe, options) that
produced it; unlike a cache keyed by request alone, one model's answers can never reach another model.
See ``docs/store.md`` for the design and its trade-offs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import sqlite3
import sys
import time
import zlib
from array import array
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riskaudit import __version__
from riskaudit.errors import ModelLoadError, RiskauditError
from riskaudit.models.base import LoadOptions
from riskaudit.models.devices import compute_device_type
from riskaudit.probes.base import ProbeResult

__all__ = [
    "CACHE_DIR_ENV",
    "SCHEMA_VERSION",
    "STORE_FILENAME",
    "ModelInfo",
    "ModelKey",
    "ResultStore",
    "StoreStats",
    "UnitKey",
    "code_fingerprint",
    "default_cache_dir",
    "default_store_path",
    "is_pinned",
    "store_path",
    "unit_options_hash",
    "weights_fingerprint",
]

SCHEMA_VERSION = 1
STORE_FILENAME = "results.sqlite"
CACHE_DIR_ENV = "RISKAUDIT_CACHE_DIR"  # overrides the platform cache directory (the CLI's --cache-dir wins)
# Bump when the payload format or the meaning of a stored result changes without a code change that
# code_fingerprint() would see (it already covers every .py file of the package).
RESULT_FORMAT = 1
_BUSY_TIMEOUT_MS = 60_000  # wait this long for another process's write transaction before giving up
_COMPRESS_LEVEL = 6
_HASH_CHUNK = 8 * 1024 * 1024

# Files of a local model directory that determine what is loaded (top level only, as transformers loads).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")
_NOT_LOADED_PREFIXES = ("optimizer", "scheduler", "rng_state", "training_args")  # trainer checkpoint state
_MODEL_FILES = frozenset(
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS units (
    unit_id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    revision TEXT,
    weights_hash TEXT NOT NULL,
    dtype TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    probe_hash TEXT NOT NULL,
    unit_options_hash TEXT NOT NULL,
    n_records INTEGER NOT NULL,
    payload BLOB NOT NULL,
    seconds REAL,
    created_utc TEXT NOT NULL,
    riskaudit_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS units_by_model ON units (model_id, revision, weights_hash);
CREATE INDEX IF NOT EXISTS units_by_probe ON units (probe_id, probe_hash);
CREATE TABLE IF NOT EXISTS models (
    model_key TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    revision TEXT,
    weights_hash TEXT NOT NULL,
    info_json TEXT NOT NULL,
    created_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    product_key TEXT PRIMARY KEY,
    payload BLOB NOT NULL,
    created_utc TEXT NOT NULL,
    riskaudit_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    hashed_utc TEXT NOT NULL
);
"""
_TABLES = frozenset({"schema_version", "units", "models", "products", "file_hashes"})


# --------------------------------------------------------------------------------------------------
# Keys


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class ModelKey(BaseModel):
    """What identifies a loaded model, independent of dtype and probes (for :class:`ModelInfo`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(min_length=1)
    revision: str | None = None
    weights_hash: str = Field(min_length=1)

    def digest(self) -> str:
        """sha256 hex of the canonical JSON of every field."""
        return hashlib.sha256(("riskaudit.model/1\n" + _canonical(self.model_dump())).encode()).hexdigest()


class UnitKey(BaseModel):
    """Everything one (member × probe) result depends on; two keys are the same unit iff all fields match."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(min_length=1)  # the member's source: hub id or local directory
    revision: str | None = None
    weights_hash: str = Field(min_length=1)  # weights_fingerprint(source, revision)
    dtype: str = Field(min_length=1)
    probe_id: str = Field(min_length=1)
    probe_hash: str = Field(min_length=1)  # probe.content_hash()
    unit_options_hash: str = Field(min_length=1)  # unit_options_hash(load, seed)

    def digest(self) -> str:
        """sha256 hex of the canonical JSON of every field (the unit's primary key)."""
        return hashlib.sha256(("riskaudit.unit/1\n" + _canonical(self.model_dump())).encode()).hexdigest()

    @property
    def model(self) -> ModelKey:
        return ModelKey(model_id=self.model_id, revision=self.revision, weights_hash=self.weights_hash)


class ModelInfo(BaseModel):
    """Facts about a model counted at load time, so a fully cached member need not be loaded at all."""

    params_total: int
    params_nonembedding: int


class StoreStats(BaseModel):
    path: str
    schema_version: int
    size_bytes: int  # database file plus its WAL
    n_units: int
    n_models: int  # distinct (model_id, revision, weights_hash) among the units
    n_probes: int  # distinct (probe_id, probe_hash) among the units
    n_records: int
    n_fingerprints: int  # cached file hashes of local weights
    units_by_probe: dict[str, int] = {}
    oldest_utc: str | None = None
    newest_utc: str | None = None


# --------------------------------------------------------------------------------------------------
# Locations and fingerprints


def default_cache_dir() -> Path:
    """``$RISKAUDIT_CACHE_DIR`` if set, else the platform's user cache dir for riskaudit."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("riskaudit"))


def store_path(cache_dir: Path | str | None = None) -> Path:
    """The store file inside ``cache_dir`` (the CLI's ``--cache-dir``), or inside the default cache dir."""
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / STORE_FILENAME


def default_store_path() -> Path:
    """``<user cache dir>/riskaudit/results.sqlite`` (see :func:`default_cache_dir`)."""
    return store_path(None)


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over the names and contents of riskaudit's own ``.py`` files: results computed by different
    code are different results (a scoring fix invalidates the store without anyone bumping a version)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256(f"riskaudit {__version__} format {RESULT_FORMAT}\n".encode())
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).as_posix()
        if "__pycache__" in rel:
            continue
        data = f.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def unit_options_hash(load: LoadOptions, seed: int, extra: Mapping[str, Any] | None = None) -> str:
    """Hash of the run options a unit's numbers depend on, other than the model, dtype and probe.

    Included: the seed, the kind of device the model computes on, ``max_length``, ``trust_remote_code`` and
    :func:`code_fingerprint` (plus ``extra``, JSON-serializable). Excluded: the batch size (every ModelHandle
    method is documented as independent of batching), the device index, ``allow_pickle`` (which only permits a
    load) and ``device_map`` / ``max_memory``: a model split by accelerate computes the same layers with the
    same kernels as on one device of that kind (tested: equal log-likelihoods), so a split scan and a
    single-device scan share their units.
    """
    payload = {
        "format": RESULT_FORMAT,
        "code": code_fingerprint(),
        "seed": seed,
        "device": compute_device_type(load),
        "max_length": load.max_length,
        "trust_remote_code": load.trust_remote_code,
        "extra": dict(extra or {}),
    }
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def _model_files(directory: Path) -> list[Path]:
    files: list[Path] = []
    for p in directory.iterdir():
        name = p.name
        if not p.is_file():
            continue
        if name.endswith(_WEIGHT_SUFFIXES):
            if not name.startswith(_NOT_LOADED_PREFIXES):
                files.append(p)
        elif name in _MODEL_FILES or name.endswith(".index.json") or name.endswith(".py"):
            files.append(p)
    return sorted(files, key=lambda p: p.name)


def _sha256_file(path: Path) -> str:
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
    store: ResultStore | None = None,
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
        hasher: Callable[[Path], str] = store.file_sha256 if store is not None else _sha256_file
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


# --------------------------------------------------------------------------------------------------
# Payload


def _pack(values: list[float | None]) -> dict[str, Any]:
    """Bootstrap replicates as little-endian float64 bytes (base64) plus the positions of None: exact for every
    float (NaN, ±inf, -0.0 included), several times smaller and faster to read than JSON numbers."""
    arr = array("d", (math.nan if v is None else float(v) for v in values))
    if sys.byteorder == "big":
        arr.byteswap()
    return {
        "f64le": base64.b64encode(arr.tobytes()).decode("ascii"),
        "none": [i for i, v in enumerate(values) if v is None],
    }


def _unpack(packed: dict[str, Any]) -> list[float | None]:
    arr = array("d")
    arr.frombytes(base64.b64decode(packed["f64le"], validate=True))
    if sys.byteorder == "big":
        arr.byteswap()
    out: list[float | None] = list(arr.tolist())
    for i in packed["none"]:
        out[i] = None
    return out


def _encode(result: ProbeResult) -> bytes:
    """ProbeResult (including the replicates, which pydantic serialization excludes) as zlib'd JSON.

    ``json`` rather than pydantic's JSON mode: it round-trips every float exactly, NaN and ±inf included.
    """
    doc = {
        "format": RESULT_FORMAT,
        "result": result.model_dump(mode="python"),
        "replicates": {name: _pack(values) for name, values in result.replicates.items()},
    }
    return zlib.compress(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(), _COMPRESS_LEVEL)


def _decode(blob: bytes) -> ProbeResult | None:
    try:
        doc = json.loads(zlib.decompress(blob))
        if not isinstance(doc, dict) or doc.get("format") != RESULT_FORMAT:
            return None
        replicates = {str(name): _unpack(packed) for name, packed in doc["replicates"].items()}
        result = ProbeResult.model_validate(doc["result"])
    except (zlib.error, ValueError, KeyError, TypeError, IndexError, AttributeError, ValidationError):
        return None
    result.replicates = replicates  # built as list[float | None] by _unpack: no need to validate 2,000 × n floats
    return result


def _switch_to_wal(conn: sqlite3.Connection) -> Any:
    """``PRAGMA journal_mode = WAL``, retried: SQLite answers "database is locked" at once, without the busy
    timeout, while another connection is creating the same new store."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


# every field of the key must match, not only its digest
_UNIT_WHERE = (
    "WHERE unit_id = ? AND model_id = ? AND revision IS ? AND weights_hash = ? AND dtype = ? AND probe_id = ? "
    "AND probe_hash = ? AND unit_options_hash = ?"
)


def _unit_params(key: UnitKey) -> tuple[str | None, ...]:
    return (
        key.digest(),
        key.model_id,
        key.revision,
        key.weights_hash,
        key.dtype,
        key.probe_id,
        key.probe_hash,
        key.unit_options_hash,
    )


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --------------------------------------------------------------------------------------------------
# The store


class ResultStore:
    """A SQLite result store (WAL mode, one connection per store object, not shared between threads).

    Use as ``with ResultStore(path) as store: ...``. Readers never block; concurrent writers wait for one
    another (up to a minute). Every failure to open or use the file raises a one-line
    :class:`~riskaudit.errors.RiskauditError`.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._before_commit: Callable[[], None] | None = None  # test seam: runs inside put's transaction
        self._conn = self._open()

    # ---- lifecycle

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _unusable(self, why: str) -> RiskauditError:
        return RiskauditError(
            f"cannot use the result store at {self.path}: {why}; pass --cache-dir to a writable directory, "
            "or --no-cache"
        )

    def _corrupt(self, why: str) -> RiskauditError:
        return RiskauditError(
            f"result store at {self.path} is not a riskaudit store or is corrupt: {why}; delete it or pass --cache-dir"
        )

    def _translate(self, exc: sqlite3.Error) -> RiskauditError:
        name = getattr(exc, "sqlite_errorname", "")
        detail = _one_line(exc)
        if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or name.startswith("SQLITE_CORRUPT"):
            return self._corrupt(detail)
        if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
            return RiskauditError(
                f"result store at {self.path} is locked by another process ({detail}); wait for it to finish, "
                "or pass --cache-dir / --no-cache"
            )
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            return self._corrupt(detail)
        return self._unusable(detail)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise self._unusable("it is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unusable(f"cannot create {self.path.parent} ({_one_line(exc)})") from None
        if not os.access(self.path.parent, os.W_OK | os.X_OK):
            raise self._unusable(f"{self.path.parent} is not writable")
        try:
            conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            mode = _switch_to_wal(conn)
            if mode is None or str(mode[0]).lower() != "wal":
                raise self._unusable(f"cannot switch it to WAL mode (journal mode {mode and mode[0]})")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable across crashes of the process in WAL mode
            self._init_schema(conn, names)
        except sqlite3.Error as exc:
            conn.close()
            raise self._translate(exc) from None
        except RiskauditError:
            conn.close()
            raise
        return conn

    def _init_schema(self, conn: sqlite3.Connection, names: set[str]) -> None:
        stale: list[str] = []
        if names and "schema_version" not in names:
            raise self._corrupt(f"it holds other tables ({', '.join(sorted(names)[:5])})")
        if names:
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            if not isinstance(version, int):
                raise self._corrupt("its schema_version table is empty")
            if version > SCHEMA_VERSION:
                raise RiskauditError(
                    f"result store at {self.path} was written by a newer riskaudit (schema {version}, this one "
                    f"reads {SCHEMA_VERSION}); upgrade riskaudit, delete the store, or pass --cache-dir"
                )
            if version == SCHEMA_VERSION and names >= _TABLES:
                return
            if version < SCHEMA_VERSION:  # an older layout: the store is a cache, so start afresh
                stale = sorted(names & _TABLES)
        # executescript() would commit on its own; run the statements inside one explicit transaction
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in stale:
                conn.execute(f'DROP TABLE IF EXISTS "{table}"')
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or (on any error or interrupt) none of it."""
        with self._guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                if self._before_commit is not None:
                    self._before_commit()
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    # ---- units

    def get(self, key: UnitKey) -> ProbeResult | None:
        """The stored result of exactly this unit (replicates restored), or None.

        A payload that cannot be decoded (written by an incompatible format) counts as a miss; the next
        :meth:`put` replaces it.
        """
        with self._guard():
            row = self._conn.execute(f"SELECT payload FROM units {_UNIT_WHERE}", _unit_params(key)).fetchone()
        if row is None:
            return None
        result = _decode(bytes(row[0]))
        if result is None or result.probe_id != key.probe_id or result.probe_hash != key.probe_hash:
            return None
        return result

    def unit_seconds(self, key: UnitKey) -> float | None:
        """How long the stored unit took to compute when it was computed (None: not stored or not recorded)."""
        with self._guard():
            row = self._conn.execute(f"SELECT seconds FROM units {_UNIT_WHERE}", _unit_params(key)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def put(self, key: UnitKey, result: ProbeResult, seconds: float | None = None) -> None:
        """Store ``result`` under ``key`` (replacing any previous one) in one atomic transaction.

        ``seconds``: how long the unit took to compute (kept for ``stats``/inspection).
        """
        if result.probe_id != key.probe_id or result.probe_hash != key.probe_hash:
            raise ValueError(
                f"result of probe {result.probe_id} ({result.probe_hash[:12]}) stored under key for probe "
                f"{key.probe_id} ({key.probe_hash[:12]})"
            )
        blob = _encode(result)
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO units (unit_id, model_id, revision, weights_hash, dtype, probe_id, probe_hash, "
                "unit_options_hash, n_records, payload, seconds, created_utc, riskaudit_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *_unit_params(key),
                    len(result.records),
                    sqlite3.Binary(blob),
                    seconds,
                    _utc_now(),
                    __version__,
                ),
            )

    # ---- models

    def get_model_info(self, key: ModelKey) -> ModelInfo | None:
        with self._guard():
            row = self._conn.execute(
                "SELECT info_json FROM models WHERE model_key = ? AND model_id = ? AND revision IS ? "
                "AND weights_hash = ?",
                (key.digest(), key.model_id, key.revision, key.weights_hash),
            ).fetchone()
        if row is None:
            return None
        try:
            return ModelInfo.model_validate_json(row[0])
        except ValidationError:
            return None

    def put_model_info(self, key: ModelKey, info: ModelInfo) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO models (model_key, model_id, revision, weights_hash, info_json, created_utc) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key.digest(), key.model_id, key.revision, key.weights_hash, info.model_dump_json(), _utc_now()),
            )

    # ---- family products

    def has(self, key: UnitKey) -> bool:
        """Whether a result of exactly this unit is stored (without decoding it)."""
        with self._guard():
            row = self._conn.execute(f"SELECT 1 FROM units {_UNIT_WHERE}", _unit_params(key)).fetchone()
        return row is not None

    def get_product(self, key: str) -> dict[str, Any] | None:
        """The family-level product (finalized outcomes, analysis, sidecar) stored under ``key``, or None.

        ``key`` must digest every input of the product: the units of every member, the family, the probes,
        the options and the code (see :func:`riskaudit.run.scan.product_key`). Undecodable payloads are misses.
        """
        with self._guard():
            row = self._conn.execute("SELECT payload FROM products WHERE product_key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            doc = json.loads(zlib.decompress(bytes(row[0])))
        except (zlib.error, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("format") != RESULT_FORMAT:
            return None
        return doc

    def put_product(self, key: str, product: Mapping[str, Any]) -> None:
        """Store a family-level product (JSON-serializable, finite numbers only) under ``key``."""
        doc = {"format": RESULT_FORMAT, **product}
        blob = zlib.compress(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(), _COMPRESS_LEVEL)
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO products (product_key, payload, created_utc, riskaudit_version) "
                "VALUES (?, ?, ?, ?)",
                (key, sqlite3.Binary(blob), _utc_now(), __version__),
            )

    # ---- file hashes (the weights_fingerprint sidecar)

    def file_sha256(self, path: Path) -> str:
        """sha256 of a file's contents, remembered under its (resolved path, size, mtime_ns, ctime_ns, inode)."""
        real = path.resolve()
        st = real.stat()
        ident = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        with self._guard():
            row = self._conn.execute(
                "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ? AND ctime_ns = ? "
                "AND inode = ?",
                (str(real), *ident),
            ).fetchone()
        if row is not None:
            return str(row[0])
        digest = _sha256_file(real)
        after = real.stat()
        if (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino) != ident:
            return digest  # changed while being read: use this hash, remember nothing
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, ctime_ns, inode, sha256, hashed_utc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (str(real), *ident, digest, _utc_now()),
            )
        return digest

    def weights_fingerprint(self, source: str, revision: str | None, hub_cache: Path | str | None = None) -> str:
        """:func:`weights_fingerprint` with this store's file-hash cache."""
        return weights_fingerprint(source, revision, store=self, hub_cache=hub_cache)

    # ---- maintenance

    def stats(self) -> StoreStats:
        with self._guard():
            c = self._conn
            n_units, n_records, oldest, newest = c.execute(
                "SELECT count(*), coalesce(sum(n_records), 0), min(created_utc), max(created_utc) FROM units"
            ).fetchone()
            n_models = c.execute(
                "SELECT count(*) FROM (SELECT DISTINCT model_id, revision, weights_hash FROM units)"
            ).fetchone()[0]
            n_probes = c.execute("SELECT count(*) FROM (SELECT DISTINCT probe_id, probe_hash FROM units)").fetchone()[0]
            by_probe = {
                str(pid): int(n)
                for pid, n in c.execute("SELECT probe_id, count(*) FROM units GROUP BY probe_id ORDER BY probe_id")
            }
            n_fp = c.execute("SELECT count(*) FROM file_hashes").fetchone()[0]
            version = c.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        size = 0
        for suffix in ("", "-wal"):
            f = self.path.with_name(self.path.name + suffix)
            if f.exists():
                size += f.stat().st_size
        return StoreStats(
            path=str(self.path),
            schema_version=int(version),
            size_bytes=size,
            n_units=int(n_units),
            n_models=int(n_models),
            n_probes=int(n_probes),
            n_records=int(n_records),
            n_fingerprints=int(n_fp),
            units_by_probe=by_probe,
            oldest_utc=oldest,
            newest_utc=newest,
        )

    def clear(self) -> int:
        """Delete every stored unit, model fact, family product and file hash; return the number of units
        deleted."""
        with self._transaction() as conn:
            n = int(conn.execute("SELECT count(*) FROM units").fetchone()[0])
            conn.execute("DELETE FROM units")
            conn.execute("DELETE FROM models")
            conn.execute("DELETE FROM products")
            conn.execute("DELETE FROM file_hashes")
        with self._guard():
            self._conn.execute("VACUUM")
        return n
