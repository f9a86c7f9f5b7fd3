"""Writing output files safely: checked before any work, written atomically, no temporary file left behind.

Every file riskaudit writes (report, sidecar, plots, model card, schema) goes through :func:`atomic_write_bytes`
or :func:`write_together`: the bytes go to a temporary file beside the target, which is renamed over it; on
any failure (disk full, a directory at the path, Ctrl-C) the temporary file is removed and the target is
left as it was. :func:`check_writable` finds an unusable output path before a scan loads any model.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from riskaudit.errors import RiskauditError

__all__ = ["atomic_write_bytes", "check_writable", "check_writable_dir", "write_together"]

_counter = itertools.count()


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _existing_ancestor(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_writable_dir(directory: Path, what: str) -> None:
    """Refuse (one-line :class:`RiskauditError`) when files cannot be created in ``directory`` or the nearest
    existing directory above it (it would be created). Tries a real file: permission bits say nothing to root,
    nor about a read-only file system or a full disk's inode table."""
    if directory.exists() and not directory.is_dir():
        raise RiskauditError(f"cannot write {what} in {directory}: it is a file, not a directory")
    base = _existing_ancestor(directory)
    if not base.is_dir():
        raise RiskauditError(f"cannot write {what} at {directory}: {base} is a file, not a directory")
    try:
        fd, name = tempfile.mkstemp(prefix=".riskaudit-write-check-", dir=base)
    except OSError as exc:
        raise RiskauditError(f"cannot write {what} in {base}: {_why(exc)}") from exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


def check_writable(path: Path, what: str = "the output") -> None:
    """Refuse when ``path`` is a directory or its directory is not writable (see :func:`check_writable_dir`)."""
    if path.is_dir():
        raise RiskauditError(f"cannot write {what} to {path}: it is a directory; give a file path")
    check_writable_dir(path.parent if str(path.parent) else Path("."), what)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{next(_counter)}.tmp")


def _stage(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``path``; removed again when the write fails."""
    if path.is_dir():
        raise RiskauditError(f"cannot write {path}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def write_together(files: Sequence[tuple[Path, bytes]]) -> None:
    """Write several files as one: every file is staged before any target is replaced, and when a later
    replacement fails the earlier targets are put back as they were (restored, or removed when new).

    Raises a one-line :class:`RiskauditError` naming the file that could not be written; never leaves a
    temporary file behind.
    """
    staged: list[tuple[Path, Path]] = []  # (temporary, target)
    done: list[tuple[Path, Path | None]] = []  # (target, backup of its previous content or None)
    current = files[0][0] if files else Path(".")
    try:
        for path, data in files:
            current = path
            staged.append((_stage(path, data), path))
        for tmp, path in staged:
            current = path
            backup = None
            if path.exists() and len(staged) > 1:
                backup = _temp_name(path)
                os.replace(path, backup)
            try:
                os.replace(tmp, path)
            except BaseException:
                if backup is not None:
                    os.replace(backup, path)
                raise
            done.append((path, backup))
    except BaseException as exc:
        for path, backup in reversed(done):  # undo: the outputs stay consistent with each other
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, path)
                else:
                    path.unlink()
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(exc, OSError):
            raise RiskauditError(f"cannot write {current}: {_why(exc)}") from exc
        raise
    for _, backup in done:
        if backup is not None:
            with contextlib.suppress(OSError):
                backup.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename); one-line error, no leftovers."""
    write_together([(path, data)])
