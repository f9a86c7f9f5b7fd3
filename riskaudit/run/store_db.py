"""The result store's SQLite file: opening it (WAL mode, busy timeout), creating or replacing its schema, and
turning every SQLite failure into a one-line :class:`~riskaudit.errors.RiskauditError` that names the file.

:class:`~riskaudit.run.store.ResultStore` reads and writes the tables; this module owns their layout.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from riskaudit.errors import RiskauditError

__all__ = ["SCHEMA_VERSION", "corrupt", "one_line", "open_connection", "translate", "unusable"]

SCHEMA_VERSION = 1
_BUSY_TIMEOUT_MS = 60_000  # wait this long for another process's write transaction before giving up

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



def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def unusable(path: Path, why: str) -> RiskauditError:
    return RiskauditError(
        f"cannot use the result store at {path}: {why}; pass --cache-dir to a writable directory, or --no-cache"
    )


def corrupt(path: Path, why: str) -> RiskauditError:
    return RiskauditError(
        f"result store at {path} is not a riskaudit store or is corrupt: {why}; delete it or pass --cache-dir"
    )


def translate(path: Path, exc: sqlite3.Error) -> RiskauditError:
    """A one-line message for an SQLite failure on the store at ``path``."""
    name = getattr(exc, "sqlite_errorname", "")
    detail = one_line(exc)
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or name.startswith("SQLITE_CORRUPT"):
        return corrupt(path, detail)
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return RiskauditError(
            f"result store at {path} is locked by another process ({detail}); wait for it to finish, "
            "or pass --cache-dir / --no-cache"
        )
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return corrupt(path, detail)
    return unusable(path, detail)


def open_connection(path: Path) -> sqlite3.Connection:
    """A connection to the store at ``path`` in WAL mode with the current schema (created, or replaced when
    older: the store is a cache); its directory is created. Raises a one-line RiskauditError."""
    if path.is_dir():
        raise unusable(path, "it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unusable(path, f"cannot create {path.parent} ({one_line(exc)})") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise unusable(path, f"{path.parent} is not writable")
    try:
        conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise translate(path, exc) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        mode = _switch_to_wal(conn)
        if mode is None or str(mode[0]).lower() != "wal":
            raise unusable(path, f"cannot switch it to WAL mode (journal mode {mode and mode[0]})")
        conn.execute("PRAGMA synchronous = NORMAL")  # durable across crashes of the process in WAL mode
        _init_schema(path, conn, names)
    except sqlite3.Error as exc:
        conn.close()
        raise translate(path, exc) from None
    except RiskauditError:
        conn.close()
        raise
    return conn


def _init_schema(path: Path, conn: sqlite3.Connection, names: set[str]) -> None:
    stale: list[str] = []
    if names and "schema_version" not in names:
        raise corrupt(path, f"it holds other tables ({', '.join(sorted(names)[:5])})")
    if names:
        version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        if not isinstance(version, int):
            raise corrupt(path, "its schema_version table is empty")
        if version > SCHEMA_VERSION:
            raise RiskauditError(
                f"result store at {path} was written by a newer riskaudit (schema {version}, this one "
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
