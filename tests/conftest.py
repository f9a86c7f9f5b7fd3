"""Shared test helpers: run the CLI in a subprocess (real exit codes, real stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    # Each call gets its own empty result store unless the test passes --cache-dir / RISKAUDIT_CACHE_DIR:
    # a test must never be served results cached by another test.
    cache = tempfile.mkdtemp(prefix="riskaudit-test-cache-")
    full_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "RISKAUDIT_CACHE_DIR": cache,
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "riskaudit", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit code 2, no traceback, one non-empty line on stderr containing every needle."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture
def cli() -> object:
    return run_cli
