"""Issue 22 item 6: the default report path reports/<name>.json is built from the family TOML's ``name``; a name
that would put it outside reports/ ("../x", "a/b", an absolute path) is one line and exit 2, before anything is
loaded, while --out still writes wherever the user says."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import riskaudit.cli as cli
from riskaudit.errors import RiskauditError
from riskaudit.run.request import default_report_path

SCAN = ["scan", "--plan", "--no-cache", "--no-memorization"]


def _family(tmp_path: Path, name: str) -> Path:
    toml = tmp_path / "fam.toml"
    member = '[[members]]\nname = "small"\nsource = "./models/small"\ntokens = 1000\n'
    toml.write_text(f"name = {json.dumps(name)}\n{member}")
    return toml


def _main(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["riskaudit", *argv])
    with pytest.raises(SystemExit) as info:
        cli.main()
    code = info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


@pytest.mark.parametrize("name", ["../x", "../../etc/x", "a/b", "/tmp/riskaudit-abs", "a\\b", "C:x"])
def test_a_name_that_leaves_reports_is_one_line_exit_2(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _main([*SCAN, "--family", str(_family(tmp_path, name))], capsys, monkeypatch)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert f"family name {name!r}" in lines[0] and "--out" in lines[0], lines[0]
    assert "plain file name" in lines[0], lines[0]  # says what is allowed
    assert not (tmp_path / "reports").exists()


def test_out_writes_anywhere_the_user_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "elsewhere" / "r.json"
    code, err = _main([*SCAN, "--family", str(_family(tmp_path, "../x")), "--out", str(out)], capsys, monkeypatch)
    assert code == 0, err


@pytest.mark.parametrize("name", ["pythia", "my family", "gpt-neo_2.7b", "..", "...x", "qwen2.5"])
def test_plain_names_stay_in_reports(name: str) -> None:
    path = default_report_path(name)
    assert path.parent == Path("reports") and path.name == f"{name}.json"


def test_nul_is_refused() -> None:
    with pytest.raises(RiskauditError, match="plain file name"):
        default_report_path("a\0b")
