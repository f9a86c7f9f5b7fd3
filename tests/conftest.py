"""Shared test helpers: run the CLI in a subprocess (real exit codes, real stderr) or in this process (the same
interface and the same view of the terminal, without paying the imports again), and session-wide fixtures that
build the tiny models and run the shared scans once per test run."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pytest

REPO = Path(__file__).resolve().parent.parent

# The interpreter's warning filters before any library changed them: what a fresh `python -m riskaudit` starts with.
_FRESH_WARNING_FILTERS = list(warnings.filters)
# torch's default generator in a fresh process is seeded with this (torch.initial_seed() of a new interpreter)
_TORCH_DEFAULT_SEED = 67280421310721
# Read once, when a library is imported: a call in this process cannot honour them (use run_cli for these).
_IMPORT_TIME_ENV = ("PYTHONPATH", "PYTHONHASHSEED", "HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "TORCH_HOME")


_UNGROUPED = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``-n N --dist loadgroup`` every test marked ``xdist_group`` must carry its group in its node id
    (``…@demo-scan``), which is how pytest-xdist keeps a group on one worker. pytest 9.2 keeps node ids where
    xdist 3.8 cannot tag them: the groups would scatter silently (the demo scan computed once per worker, the
    suite minutes longer), so such a test fails instead, saying why."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
            item.stash[_UNGROUPED] = (
                f"pytest-xdist did not tag this test with its xdist_group under pytest {pytest.__version__}, "
                "so the group is not kept on one worker: install the pytest the project pins (pip install -e '.[dev]')"
            )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _UNGROUPED in item.stash:
        pytest.fail(item.stash[_UNGROUPED], pytrace=False)


def _cli_env(env: dict[str, str] | None) -> dict[str, str]:
    # Each call gets its own empty result store unless the test passes --cache-dir / RISKAUDIT_CACHE_DIR:
    # a test must never be served results cached by another test.
    cache = tempfile.mkdtemp(prefix="riskaudit-test-cache-")
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "RISKAUDIT_CACHE_DIR": cache,
        **(env or {}),
    }


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m riskaudit ARGS`` in a new process: the real entry point, exit code and streams."""
    return subprocess.run(
        [sys.executable, "-m", "riskaudit", *args],
        capture_output=True,
        text=True,
        env=_cli_env(env),
        cwd=cwd or REPO,
        timeout=timeout,
        check=False,
    )


class _Captured(io.StringIO):
    """A text stream like a pipe's: not a terminal, UTF-8."""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _fd_captured(fd: int) -> Iterator[list[str]]:
    """What C code writes to ``fd`` (1 or 2) while inside, appended to the yielded list on exit."""
    got: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(fd)
        try:
            os.dup2(tmp.fileno(), fd)
            yield got
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            got.append(tmp.read().decode("utf-8", "replace"))


def _cli_modules() -> dict[str, Any]:
    return {k: v for k, v in sys.modules.items() if k == "riskaudit.cli" or k.startswith("riskaudit.cli.")}


@contextlib.contextmanager
def _fresh_cli() -> Iterator[Any]:
    """``riskaudit.cli`` imported anew (its consoles decide their width and colours from the streams and the
    environment as they are now, as in a new process), the modules of before put back afterwards."""
    import riskaudit

    before = _cli_modules()
    attr = riskaudit.__dict__.get("cli")
    for k in before:
        del sys.modules[k]
    riskaudit.__dict__.pop("cli", None)
    try:
        yield importlib.import_module("riskaudit.cli")
    finally:
        for k in _cli_modules():
            del sys.modules[k]
        sys.modules.update(before)
        if attr is not None:
            riskaudit.cli = attr  # type: ignore[attr-defined]
        else:
            riskaudit.__dict__.pop("cli", None)


def _stream_handlers() -> list[logging.StreamHandler[TextIO]]:
    named = logging.root.manager.loggerDict.values()
    loggers = [logging.getLogger(), *(x for x in named if isinstance(x, logging.Logger))]
    # exactly StreamHandler: file handlers and pytest's capture handlers (subclasses) are left alone
    return [h for lg in loggers for h in lg.handlers if type(h) is logging.StreamHandler]


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))


def run_cli_here(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``riskaudit ARGS`` in this process, as :func:`run_cli` would see it: ``riskaudit.cli.main()`` with that
    argv, environment (HF_HUB_OFFLINE=1, a fresh RISKAUDIT_CACHE_DIR, OMP_NUM_THREADS → torch's threads) and
    working directory; stdout and stderr are pipes (not terminals), C-level writes to fd 1/2, log handlers and
    warnings included; an uncaught exception is a traceback on stderr and exit code 1. Everything is put back
    afterwards. ``timeout`` is accepted for the same interface (pytest-timeout bounds a test)."""
    del timeout
    bad = [k for k in env or {} if k in _IMPORT_TIME_ENV]
    if bad:
        raise ValueError(f"run_cli_here cannot apply {bad} (read at import time): use run_cli")
    full_env = _cli_env(env)
    out, err = _Captured(), _Captured()
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    saved_streams = (sys.stdout, sys.stderr)
    handlers = _stream_handlers()
    saved_handler_streams = [h.stream for h in handlers]
    torch = sys.modules.get("torch")
    hub = sys.modules.get("huggingface_hub.constants")
    saved_threads = torch.get_num_threads() if torch is not None else None
    saved_rng = torch.get_rng_state() if torch is not None else None
    saved_offline = getattr(hub, "HF_HUB_OFFLINE", None)
    code: Any = 0
    with _fd_captured(1) as c_out, _fd_captured(2) as c_err, warnings.catch_warnings():
        try:
            os.environ.clear()
            os.environ.update(full_env)
            os.chdir(cwd or REPO)
            sys.argv = [str(REPO / "riskaudit" / "__main__.py"), *args]
            sys.stdout, sys.stderr = out, err
            for h in handlers:
                h.setStream(out if h.stream in (saved_streams[0], sys.__stdout__) else err)
            warnings.filters[:] = _FRESH_WARNING_FILTERS
            warnings.showwarning = _show_warning
            if torch is not None:
                torch.set_num_threads(int(full_env.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
                torch.manual_seed(_TORCH_DEFAULT_SEED)
            if hub is not None:
                hub.HF_HUB_OFFLINE = full_env.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
            with _fresh_cli() as cli:
                try:
                    cli.main()
                except SystemExit as exc:
                    code = exc.code
                except Exception:  # as an uncaught exception ends a process: the traceback, exit code 1
                    traceback.print_exc(file=sys.stderr)
                    code = 1
        finally:
            sys.stdout, sys.stderr = saved_streams
            for h, s in zip(handlers, saved_handler_streams, strict=True):
                h.setStream(s)
            sys.argv = saved_argv
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            if torch is not None:
                torch.set_num_threads(saved_threads)
                torch.set_rng_state(saved_rng)
            if hub is not None:
                hub.HF_HUB_OFFLINE = saved_offline
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): the message on stderr, exit code 1
        err.write(f"{code}\n")
        code = 1
    stdout = out.getvalue() + "".join(c_out)
    stderr = err.getvalue() + "".join(c_err)
    return subprocess.CompletedProcess(["riskaudit", *args], code, stdout, stderr)


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


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """torch on one thread in the test process, as in the CLI runs (OMP_NUM_THREADS=1): the tiny models gain
    nothing from more, and on a busy machine the extra threads' spinning costs several times the work."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------------------------- shared scans


@dataclass(frozen=True)
class Scanned:
    """A scan run once per session: its family TOML, report path, result store and the CLI result."""

    toml: Path
    out: Path
    cache: Path
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def tiny_family_scan(tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    """``scan --seed 3`` of the two-member tiny family (every default probe), computed cold into its own store.
    Read it, copy it; never write under its directory."""
    from tiny import write_tiny_family

    root = tmp_path_factory.mktemp("tiny-family-scan")
    toml = write_tiny_family(root)
    out, cache = root / "out" / "tiny.json", root / "cache"
    proc = run_cli_here("scan", "--family", str(toml), "--out", str(out), "--quiet", "--seed", "3",
                        "--cache-dir", str(cache))
    assert proc.returncode == 0, proc.stderr
    return Scanned(toml, out, cache, proc)


@dataclass(frozen=True)
class DemoScanned:
    """The demo family's scan, run once per session: report path, result store and the CLI result (its stdout
    holds the terminal tables: the scan is not quiet)."""

    out: Path
    cache: Path
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def demo_scan(tmp_path_factory: pytest.TempPathFactory) -> DemoScanned:
    """``scan --family demo`` (every member, every default probe, seed 0, one torch thread), computed cold into
    its own store: the longest scan of the suite, shared by the tests that need a real family's report (the
    acceptance test, the out-of-memory test's ordinary run, the canary-leak test). Read it, copy it; never write
    under its directory. Under pytest-xdist its users share the ``demo-scan`` group (``--dist loadgroup``), so
    it runs in one worker only."""
    root = tmp_path_factory.mktemp("demo-scan")
    out, cache = root / "out" / "demo.json", root / "cache"
    proc = run_cli_here("scan", "--family", "demo", "--out", str(out), "--cache-dir", str(cache))
    assert proc.returncode == 0, proc.stderr
    return DemoScanned(out, cache, proc)


@pytest.fixture(scope="session")
def demo_analyze() -> subprocess.CompletedProcess[str]:
    """``riskaudit analyze reports/demo.json --json`` (re-analyses the paired replicates), run once."""
    return run_cli_here("analyze", str(REPO / "reports" / "demo.json"), "--json")


def copy_report(report: Path, into: Path) -> Path:
    """Copy a report and the files beside it that share its stem (sidecar, replicates) into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    stem = report.with_suffix("").name
    for f in report.parent.iterdir():
        if f.name == report.name or f.name.startswith(stem + "."):
            shutil.copy(f, into / f.name)
    return into / report.name
