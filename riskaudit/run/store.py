"""The result store: a SQLite cache of (member × probe) units, so a rescan never redoes the same work.

A *unit* is one probe run on one model: the raw :class:`~riskaudit.probes.base.ProbeResult` (metrics,
per-item records, notes and the paired bootstrap replicates) before any family-level finalization. A unit
is stored under a :class:`UnitKey` that names everything its numbers depend on:

* ``model_id`` and ``revision``: the member's source (hub id or local directory) and revision;
* ``weights_hash``: what was actually loaded (:func:`~riskaudit.run.weights.weights_fingerprint`): a hash of
  a local directory's weight, config and tokenizer files, or the commit a hub revision resolves to in the
  local HF cache;
* ``dtype``;
* ``probe_id`` and ``probe_hash``: the probe and the sha256 of its canonical definition (templates,
  occupations, data fingerprint, settings);
* ``unit_options_hash`` (:func:`~riskaudit.run.unit_key.unit_options_hash`): the seed, the device type, the
  context-length cap, ``trust_remote_code`` and a fingerprint of riskaudit's own source code.

The primary key is the sha256 of the canonical JSON of all seven fields, and a lookup also compares every
key column, so a result can only be served to the exact (model, weights, dtype, probe, options) that
produced it; unlike a cache keyed by request alone, one model's answers can never reach another model.
See ``docs/store.md`` for the design and its trade-offs. The keys live in :mod:`riskaudit.run.unit_key`, the
weights fingerprints in :mod:`riskaudit.run.weights`, the payload format in :mod:`riskaudit.run.store_payload`
and the file's schema in :mod:`riskaudit.run.store_db`.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ValidationError

from riskaudit import __version__
from riskaudit.probes.base import ProbeResult
from riskaudit.resources import CACHE_DIR_ENV, default_cache_dir
from riskaudit.run import weights
from riskaudit.run.store_db import open_connection, translate
from riskaudit.run.store_payload import compress_json, decode_result, encode_result
from riskaudit.run.unit_key import RESULT_FORMAT, ModelInfo, ModelKey, UnitKey

__all__ = [
    "CACHE_DIR_ENV",
    "STORE_FILENAME",
    "ResultStore",
    "StoreStats",
    "default_cache_dir",
    "default_store_path",
    "store_path",
]

STORE_FILENAME = "results.sqlite"


# --------------------------------------------------------------------------------------------------
# Locations and statistics


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


def store_path(cache_dir: Path | str | None = None) -> Path:
    """The store file inside ``cache_dir`` (the CLI's ``--cache-dir``), or inside the default cache dir."""
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / STORE_FILENAME


def default_store_path() -> Path:
    """``<user cache dir>/riskaudit/results.sqlite`` (see :func:`default_cache_dir`)."""
    return store_path(None)


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
        self._conn = open_connection(self.path)

    # ---- lifecycle

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise translate(self.path, exc) from None

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
        result = decode_result(bytes(row[0]))
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
        blob = encode_result(result)
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
        blob = compress_json(doc)
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
        digest = weights.sha256_file(real)  # looked up at call time (tests count the calls)
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
        """:func:`~riskaudit.run.weights.weights_fingerprint` with this store's file-hash cache."""
        return weights.weights_fingerprint(source, revision, store=self, hub_cache=hub_cache)

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
