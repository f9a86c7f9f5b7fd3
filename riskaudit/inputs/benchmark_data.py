"""Where a canonical benchmark's official files are found, what the report records of them, and how they are
read line by line with one-line errors.

riskaudit never ships another project's sentences: Winogender, WinoBias, CrowS-Pairs and BBQ are read at run
time from the files their authors publish, under their official names. A benchmark probe looks for them in

1. the directory its probe YAML names (``data: DIR``), else
2. each ``--benchmark-data`` root, as ``ROOT/<benchmark>/<file>`` or ``ROOT/<file>``.

Files not found are **not an error**: :func:`locate` raises :class:`BenchmarkDataMissing`, which the scan turns
into a :class:`NotAudited` line ("winogender not audited: data not found (…how to provide it)"). A file that is
found but malformed is an error: :class:`BenchmarkFileError`, one line naming the file and the line, exit 2.
Every file used is recorded as a :class:`DataFile` (official name, sha256, data rows) in the report.
CrowS-Pairs and BBQ fall back to the hub dataset lm-evaluation-harness loads when no directory holds their files
(:mod:`riskaudit.inputs.benchmark_hub`); their DataFile then says so in ``source``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from riskaudit.errors import RiskauditError

__all__ = [
    "BenchmarkDataMissing",
    "BenchmarkFileError",
    "DataFile",
    "NotAudited",
    "data_file",
    "locate",
    "not_found",
    "read_lines",
    "read_table",
    "search",
    "sha256_file",
]


class BenchmarkFileError(RiskauditError):
    """A benchmark data file exists but cannot be used: one line naming the file and the line, exit 2."""


class DataFile(BaseModel):
    """One official data file a benchmark probe read: its official name, content hash and data rows."""

    model_config = ConfigDict(frozen=True)

    benchmark: str  # "winogender", "winobias", "crows_pairs", "bbq"
    name: str  # official file name, relative to the benchmark's directory (never an absolute path)
    sha256: str
    rows: int  # data rows (a table's header not counted; a text file's non-blank lines)
    # where the rows came from when not from the official file itself: "hub:<dataset> <config>/<split>" for a
    # file rebuilt from the hub dataset lm-evaluation-harness loads (riskaudit.inputs.benchmark_hub)
    source: str | None = None


class NotAudited(BaseModel):
    """A benchmark that did not run because its data was not found; said once in the terminal and the report."""

    model_config = ConfigDict(frozen=True)

    probe: str  # the probe id
    benchmark: str
    reason: str  # "data not found (looked in …; …how to provide it)"

    @property
    def message(self) -> str:
        return f"{self.benchmark} not audited: {self.reason}"


class BenchmarkDataMissing(Exception):
    """Raised by a benchmark probe's loader when its files are not found; carries the :class:`NotAudited`."""

    def __init__(self, not_audited: NotAudited) -> None:
        super().__init__(not_audited.message)
        self.not_audited = not_audited


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_file(benchmark: str, name: str, path: Path, rows: int, source: str | None = None) -> DataFile:
    return DataFile(benchmark=benchmark, name=name, sha256=sha256_file(path), rows=rows, source=source)


def locate(
    probe: str,
    benchmark: str,
    names: Sequence[str],
    *,
    explicit: Path | None,
    roots: Sequence[Path],
    how_to: str,
) -> dict[str, Path]:
    """The path of each official file in ``names`` (relative names such as ``"anti_stereotyped_type1.txt.dev"``).

    With ``explicit`` (the probe YAML's ``data:``) only that directory is searched; otherwise each root as
    ``root/<benchmark>/<name>`` then ``root/<name>``. All names must be found in the same directory. Raises
    :class:`BenchmarkDataMissing` (with ``how_to``: where to get the files) when they are not.
    """
    found, looked = search(benchmark, names, explicit=explicit, roots=roots)
    if found is None:
        raise not_found(probe, benchmark, names, looked, how_to)
    return found


def search(
    benchmark: str, names: Sequence[str], *, explicit: Path | None, roots: Sequence[Path]
) -> tuple[dict[str, Path] | None, list[str]]:
    """(the path of each name, or None when no directory holds them all; the directories looked in), in
    :func:`locate`'s order."""
    candidates = [explicit] if explicit is not None else [d for r in roots for d in (r / benchmark, r)]
    looked: list[str] = []
    for d in candidates:
        d = d.expanduser()
        looked.append(str(d))
        if all((d / n).is_file() for n in names):
            return {n: d / n for n in names}, looked
    return None, looked


def not_found(
    probe: str, benchmark: str, names: Sequence[str], looked: Sequence[str], how_to: str, *also: str
) -> BenchmarkDataMissing:
    """The "data not found" of :func:`locate`; ``also`` adds what else was tried (the hub dataset)."""
    where = f"looked in {', '.join(looked)}" if looked else "no --benchmark-data directory given"
    missing = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    tried = "".join(f"; {a}" for a in also)
    return BenchmarkDataMissing(
        NotAudited(probe=probe, benchmark=benchmark, reason=f"data not found ({missing}; {where}{tried}). {how_to}")
    )


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BenchmarkFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise BenchmarkFileError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def read_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, line without its newline) for every non-blank line of a text file."""
    return [(i, line.rstrip("\r\n")) for i, line in enumerate(_text(path).splitlines(), 1) if line.strip()]


def read_table(path: Path, *, delimiter: str, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV/TSV file with a header that has ``required`` columns.

    A missing column, a row with the wrong number of fields or an empty file raises a one-line
    :class:`BenchmarkFileError` naming the file and the line. Fields may be quoted (csv module rules).
    """
    reader = csv.reader(io.StringIO(_text(path), newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise BenchmarkFileError(f"{path}: empty file (expected a header with {', '.join(required)})") from None
    except csv.Error as exc:
        raise BenchmarkFileError(f"{path}: line 1: {exc}") from None
    absent = [c for c in required if c not in header]
    if absent:
        raise BenchmarkFileError(f"{path}: line 1: missing column(s) {', '.join(absent)} (header: {', '.join(header)})")
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise BenchmarkFileError(f"{path}: line {line}: {len(fields)} fields, the header has {len(header)}")
            rows.append((line, dict(zip(header, fields, strict=True))))
    except csv.Error as exc:
        raise BenchmarkFileError(f"{path}: line {reader.line_num}: {exc}") from None
    if not rows:
        raise BenchmarkFileError(f"{path}: no data rows after the header")
    return rows
