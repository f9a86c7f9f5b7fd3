"""Issue 23 items 2, 3, 5 and 7, on one real smoke scan of the demo family: a partial run (--probes, --limit)
never replaces the full report and says where it went; --quiet prints the one-line summary and the report path
only; a report carries no absolute path of the machine that made it; and every reader works on the report
JSON alone, saying once what a missing sidecar leaves out."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path, PureWindowsPath
from typing import Any

import pytest
from conftest import REPO, run_cli_here

PRONOUN = "occupation_gender_pronoun"
SMOKE = ["scan", "--family", "demo", "--members", "demo-50k,demo-150k", "--probes", PRONOUN, "--limit", "2"]
PARTIAL = Path("reports") / f"demo.probes-{PRONOUN}.limit-2.json"


class Smoke:
    def __init__(self, root: Path, proc: subprocess.CompletedProcess[str], full_before: bytes) -> None:
        self.root, self.proc, self.full_before = root, proc, full_before
        found = re.search(r"^report: (\S+)", proc.stdout, re.MULTILINE)
        assert found is not None, proc.stdout
        self.report = root / found.group(1)  # the report the scan wrote, whatever its name


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Smoke:
    """``scan … --probes … --limit 2 --quiet`` without --out, in a folder whose reports/demo.json is a full
    report (the committed one, with a sidecar of its own)."""
    root = tmp_path_factory.mktemp("partial")
    (root / "reports").mkdir()
    full = root / "reports" / "demo.json"
    shutil.copy(REPO / "reports" / "demo.json", full)
    full.with_name("demo.items.jsonl").write_text("the full report's sidecar\n")
    proc = run_cli_here(*SMOKE, "--quiet", "--no-cache", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return Smoke(root, proc, (REPO / "reports" / "demo.json").read_bytes())


def test_a_partial_run_keeps_the_full_report_and_says_where_it_went(smoke: Smoke) -> None:
    reports = smoke.root / "reports"
    assert (reports / "demo.json").read_bytes() == smoke.full_before  # untouched
    assert (reports / "demo.items.jsonl").read_text() == "the full report's sidecar\n"
    assert (smoke.root / PARTIAL).is_file()
    assert (smoke.root / PARTIAL).with_name(f"demo.probes-{PRONOUN}.limit-2.items.jsonl").is_file()
    last = smoke.proc.stdout.splitlines()[-1]
    assert last.startswith(f"report: {PARTIAL}"), last
    assert "partial run --probes" in last and "--limit 2" in last and "reports/demo.json" in last, last


def test_quiet_prints_the_summary_and_the_report_path_only(smoke: Smoke) -> None:
    lines = smoke.proc.stdout.splitlines()
    assert len(lines) == 2, smoke.proc.stdout  # no table
    assert lines[0].startswith("demo: 2 members scanned, 1 probe (smoke run, --limit 2); "), lines[0]
    assert "metric series" in lines[0]
    assert lines[1].startswith("report: ")


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _absolute_paths(text: str) -> list[str]:
    """Every absolute path in a report's strings: POSIX ("/x/…" at the start or after a space, '=', ':' or
    a quote), Windows ("C:\\…") and this machine's own folders anywhere."""
    data = json.loads(text)
    found = []
    here = {str(REPO), str(Path.home()), str(REPO.parent)}
    for s in _strings(data):
        posix = re.search(r"(^|[\s=:'\"(])/[^\s/]+/", s) is not None
        windows = bool(PureWindowsPath(s.split()[0] if s.split() else "").drive)
        if posix or windows or any(h in s for h in here if len(h) > 1):
            found.append(s)
    return found


def test_a_fresh_report_carries_no_absolute_path(smoke: Smoke) -> None:
    text = smoke.report.read_text(encoding="utf-8")
    assert _absolute_paths(text) == []
    sources = [m["source"] for m in json.loads(text)["members"]]
    assert sources == ["riskaudit:zoo/demo/members/demo-50k", "riskaudit:zoo/demo/members/demo-150k"]


def test_the_absolute_path_check_sees_them() -> None:
    """The scanner above finds what the committed demo report held before issue 23 (a member's source)."""
    old = {"members": [{"source": f"{REPO}/riskaudit/zoo/demo/members/demo-50k"}], "w": "C:\\models\\x"}
    assert len(_absolute_paths(json.dumps(old))) == 2
    assert _absolute_paths(json.dumps({"command": "riskaudit scan --out r.json", "f": "6 * N * D"})) == []


@pytest.fixture(scope="module")
def json_alone(smoke: Smoke, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke report copied without its sidecar (a model card's or a CI artifact's copy)."""
    where = tmp_path_factory.mktemp("json-alone")
    shutil.copy(smoke.report, where / "r.json")
    return where / "r.json"


NOTE = "per-item records"


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "show", "{r}"],
        ["report", "show", "{r}", "--json"],
        ["card", "{r}"],
        ["report", "html", "{r}", "--out", "{d}/page.html"],
        ["plot", "{r}", "--out", "{d}/plots"],
        ["check", "{r}", "--policy", "{d}/policy.toml"],
    ],
    ids=["show", "show-json", "card", "html", "plot", "check"],
)
def test_every_reader_works_on_the_json_alone(json_alone: Path, argv: list[str]) -> None:
    d = json_alone.parent
    (d / "policy.toml").write_text(
        'allow_limited = true\n[[rule]]\nmetric = "stereotype_correlation_pearson"\nmax = 1.0\n'
    )
    args = [a.format(r=json_alone, d=d) for a in argv]
    proc = run_cli_here(*args)
    assert proc.returncode == 0, proc.stderr
    notes = [ln for ln in proc.stderr.splitlines() if NOTE in ln]
    assert len(notes) == 1, proc.stderr  # said once
    side = json.loads(json_alone.read_text())["sidecar"]["path"]
    assert side in notes[0] and "unavailable" in notes[0], notes[0]
    assert "Traceback" not in proc.stderr


def test_a_present_sidecar_is_no_note_and_a_wrong_one_still_an_error(smoke: Smoke, tmp_path: Path) -> None:
    proc = run_cli_here("report", "show", str(smoke.report))
    assert proc.returncode == 0 and NOTE not in proc.stderr, proc.stderr
    shutil.copy(smoke.report, tmp_path / "r.json")
    (tmp_path / json.loads(smoke.report.read_text())["sidecar"]["path"]).write_text("tampered\n")
    proc = run_cli_here("report", "show", str(tmp_path / "r.json"))
    assert proc.returncode == 2 and "does not match its sha256" in proc.stderr, proc.stderr
