"""Output files: refused before any work when unwritable, written atomically, no temporary file left behind."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error, run_cli

import riskaudit.reporting.outputs as outputs
from riskaudit.errors import RiskauditError
from riskaudit.reporting.outputs import atomic_write_bytes, check_writable, write_together
from riskaudit.reporting.report import read_report, sidecar_path_for, write_report

DEMO_REPORT = REPO / "reports" / "demo.json"


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith(".tmp") or "write-check" in p.name)


def test_directory_at_the_report_or_sidecar_path_is_refused_before_the_scan(tmp_path: Path) -> None:
    # the report path is a directory
    assert_one_line_error(run_cli("scan", "--family", "pythia", "--out", str(tmp_path)), "is a directory")
    # the sidecar path is a directory: found before any model is loaded (pythia is not reachable here, so a
    # late check would fail on the model instead)
    sidecar_path_for(tmp_path / "r.json").mkdir()
    proc = run_cli("scan", "--family", "pythia", "--out", str(tmp_path / "r.json"))
    assert_one_line_error(proc, "sidecar", "is a directory")
    # --plots needs a directory where a file is
    (tmp_path / "p_plots").write_text("x")
    assert_one_line_error(run_cli("scan", "-f", "pythia", "-o", str(tmp_path / "p.json"), "--plots"), "not a directory")
    assert _leftovers(tmp_path) == []


def test_write_report_with_a_directory_at_the_sidecar_path_leaves_nothing(tmp_path: Path) -> None:
    report = read_report(DEMO_REPORT)
    out = tmp_path / "r.json"
    sidecar_path_for(out).mkdir()
    with pytest.raises(RiskauditError, match="directory"):
        write_report(report, out, b'{"a": 1}\n' * 1000)
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_disk_full_while_writing_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "fsync", full)
    with pytest.raises(RiskauditError, match="No space left on device") as info:
        atomic_write_bytes(tmp_path / "x.json", b"{}" * 100_000)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_report_rename_restores_the_previous_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    side, rep = tmp_path / "r.items.jsonl", tmp_path / "r.json"
    write_together([(side, b"old side\n"), (rep, b"old report\n")])
    real_replace = os.replace
    failed: list[str] = []

    def failing(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst) == rep and not failed:  # the new report's rename fails once
            failed.append(str(src))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", failing)
    with pytest.raises(RiskauditError, match=r"cannot write .*r\.json"):
        write_together([(side, b"new side\n"), (rep, b"new report\n")])
    assert side.read_bytes() == b"old side\n"  # the old report still matches its sidecar
    assert rep.read_bytes() == b"old report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.items.jsonl", "r.json"]


def test_new_sidecar_is_removed_when_the_report_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    side, rep = tmp_path / "r.items.jsonl", tmp_path / "r.json"
    real_replace = os.replace

    def failing(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst) == rep:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", failing)
    with pytest.raises(RiskauditError):
        write_together([(side, b"side\n"), (rep, b"report\n")])
    assert list(tmp_path.iterdir()) == []  # no orphan sidecar, no temporary file


def test_read_only_directory_is_refused() -> None:
    base = Path(tempfile.mkdtemp(prefix="riskaudit-ro-"))  # not under pytest's 0700 tmp: another user reads it
    base.chmod(0o755)
    ro = base / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    code = (
        "import sys; from pathlib import Path; from riskaudit.reporting.outputs import check_writable\n"
        "from riskaudit.errors import RiskauditError\n"
        "try:\n    check_writable(Path(sys.argv[1]) / 'r.json', 'the report')\n"
        "except RiskauditError as e:\n    print(e); sys.exit(2)\n"
    )
    root = os.geteuid() == 0  # root ignores permission bits: check as an unprivileged user
    # riskaudit.reporting.outputs needs only the standard library, so any Python that user may run will do
    pythons = [sys.executable, *(p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if Path(p).exists())]
    proc = None
    try:
        for python in pythons:
            try:
                proc = subprocess.run(
                    [python, "-c", code, str(ro)],
                    capture_output=True,
                    text=True,
                    cwd=base,
                    env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)},
                    check=False,
                    user=65534 if root else None,
                    group=65534 if root else None,
                )
            except PermissionError:
                continue
            if proc.returncode in (0, 2):
                break
    finally:
        ro.chmod(0o755)
        shutil.rmtree(base)
    if proc is None or proc.returncode not in (0, 2):
        pytest.skip("no Python an unprivileged user can run here")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Permission denied" in proc.stdout and "/ro" in proc.stdout


def test_check_writable_accepts_a_new_nested_directory(tmp_path: Path) -> None:
    check_writable(tmp_path / "a" / "b" / "r.json")
    assert list(tmp_path.iterdir()) == []  # nothing created by the check
