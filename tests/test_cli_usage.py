"""Every usage error of every command: one line on stderr, exit code 2 (never 1, which CI reads as "violated")."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import REPO, assert_one_line_error, run_cli

import riskaudit.cli as cli


def _leaves(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in sorted(subs.items()):
            yield from _leaves(sub, (*path, name))
    else:
        yield path, cmd


COMMANDS = list(_leaves(typer.main.get_command(cli.app)))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["riskaudit", *argv])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    code = info.value.code
    return (code if isinstance(code, int) else 1), err


def _assert_usage(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    code, err = _run(argv, capsys, monkeypatch)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and "Traceback" not in err, (argv, err)
    assert lines[0].startswith("error: riskaudit"), lines[0]
    return lines[0]


def _required_args(cmd: Any) -> list[str]:
    """Plausible values for the required parameters (so that only the parameter under test is wrong)."""
    args: list[str] = []
    for p in cmd.params:
        if not p.required:
            continue
        if p.param_type_name == "argument":
            args.append("x.json")
        else:
            args += [p.opts[0], "demo"]
    return args


def _is_int(p: Any) -> bool:
    """An integer parameter, in typer's bundled parameter classes (``type_descriptor``) or click's (``type``)."""
    descriptor = getattr(p, "type_descriptor", None)
    if descriptor is not None:
        return "int" in str(getattr(descriptor, "annotation", ""))
    return "int" in str(getattr(getattr(p, "type", None), "name", ""))


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert sum(_is_int(p) for _, c in COMMANDS for p in c.params) >= 6  # seeds, sizes and lengths are found
    assert {"scan", "check", "diff", "families", "report show", "probes list", "zoo build", "plot"} <= names


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_usage_error_is_one_line_exit_2(
    path: tuple[str, ...], cmd: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = [*path, *_required_args(cmd)]
    # a misspelt option
    line = _assert_usage([*base, "--no-such-option"], capsys, monkeypatch)
    assert "--no-such-option" in line and "--help" in line
    # a missing argument: every required parameter left out, then an option with its value left out
    if any(p.required for p in cmd.params):
        line = _assert_usage(list(path), capsys, monkeypatch)
        assert "Missing" in line, line
    valued = [p for p in cmd.params if p.param_type_name == "option" and not getattr(p, "is_flag", False)]
    for p in valued:
        line = _assert_usage([*base, p.opts[0]], capsys, monkeypatch)
        assert p.opts[0] in line, line
    # an out-of-range value: every integer option gets a non-number, and one below its minimum
    for p in valued:
        if not _is_int(p):
            continue
        line = _assert_usage([*base, p.opts[0], "abc"], capsys, monkeypatch)
        assert p.opts[0] in line, line
        low = getattr(p, "min", None)
        if low is None:
            low = getattr(getattr(p, "type", None), "min", None)
        if low is not None:
            line = _assert_usage([*base, p.opts[0], str(low - 1)], capsys, monkeypatch)
            assert p.opts[0] in line, line


def test_bad_option_values_of_scan_are_range_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for opt, bad in (("--batch-size", "-1"), ("--prefix-len", "0"), ("--suffix-len", "0"), ("--limit", "0")):
        line = _assert_usage(["scan", "--family", "demo", opt, bad], capsys, monkeypatch)
        assert opt in line


def test_unknown_command_and_bare_groups(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert "scan" in _assert_usage(["scna"], capsys, monkeypatch)
    for argv in ([], ["report"], ["probes"], ["zoo"]):
        monkeypatch.setattr(sys, "argv", ["riskaudit", *argv])
        with pytest.raises(SystemExit) as info:
            cli.main()
        out, err = capsys.readouterr()
        assert info.value.code == 2
        assert "Usage:" in out  # the help, on stdout
        assert len([ln for ln in err.splitlines() if ln.strip()]) == 1 and "missing command" in err


def test_gate_commands_never_exit_1_on_a_typo() -> None:
    """In a real process: a misspelt --policy or --fail-on-regression is a usage error (2), not a verdict (1)."""
    demo = str(REPO / "reports" / "demo.json")
    assert_one_line_error(run_cli("check", demo, "--polcy", "p.toml"), "--polcy")
    assert_one_line_error(run_cli("diff", demo, demo, "--fail-on-regresion"), "--fail-on-regresion")


OLD_TYPER = os.environ.get("RISKAUDIT_TEST_OLD_TYPER", "")  # e.g. pip install --target DIR typer==0.15.4 click==8.1.8


@pytest.mark.skipif(not OLD_TYPER or not Path(OLD_TYPER).is_dir(), reason="set RISKAUDIT_TEST_OLD_TYPER=DIR")
def test_older_typer_with_click_also_gives_exit_2() -> None:
    env = {"PYTHONPATH": OLD_TYPER + os.pathsep + os.environ.get("PYTHONPATH", "")}
    assert_one_line_error(run_cli("check", "x.json", "--polcy", "p", env=env), "--polcy")
    assert_one_line_error(run_cli("scan", "--family", "demo", "--batch-size", "-1", env=env), "--batch-size")


def test_help_keeps_brackets_and_shows_no_bool_metavar() -> None:
    proc = run_cli("check", "--help", env={"COLUMNS": "100"})
    assert proc.returncode == 0
    assert "[tool.riskaudit]" in proc.stdout
    assert "<bool>" not in run_cli("scan", "--help").stdout
