"""The report-side commands, end to end through the CLI (exit codes and one-line errors)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error, run_cli, run_cli_here

DEMO_REPORT = REPO / "reports" / "demo.json"


def test_report_show_rerenders_every_probe() -> None:
    proc = run_cli_here("report", "show", str(DEMO_REPORT))
    assert proc.returncode == 0, proc.stderr
    for probe in ("occupation_gender_pronoun", "occupation_gender_coreference", "memorization"):
        assert probe in proc.stdout
    assert "scaling and emergence" in proc.stdout and "demo-5.8m" in proc.stdout


def test_check_exit_codes_follow_the_policy(tmp_path: Path) -> None:
    ok = run_cli_here("check", str(DEMO_REPORT), "--policy", str(REPO / "examples" / "policy.toml"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASS" in ok.stdout
    strict = run_cli_here("check", str(DEMO_REPORT), "--policy", str(REPO / "examples" / "policy-strict.toml"))
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "FAIL" in strict.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nmetric = "no_such_metric"\nmember = "largest"\nmax = 1\n')
    assert_one_line_error(run_cli_here("check", str(DEMO_REPORT), "--policy", str(bad)), "no_such_metric")


def test_check_reads_policy_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.riskaudit]\n[[tool.riskaudit.rule]]\nmetric = "stereotype_correlation_pearson"\n'
        'probe = "occupation_gender_pronoun"\nmember = "largest"\nstat = "value"\nmax = 0.5\n'
    )
    proc = run_cli_here("check", str(DEMO_REPORT), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # largest member's r is about 0.81 > 0.5


def test_diff_of_a_report_with_itself_has_no_regression() -> None:
    proc = run_cli_here("diff", str(DEMO_REPORT), str(DEMO_REPORT), "--fail-on-regression")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_card_loads_back_with_huggingface_hub(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    proc = run_cli_here("card", str(DEMO_REPORT))
    assert proc.returncode == 0, proc.stderr
    card = ModelCard(proc.stdout)
    assert card.data.eval_results and card.data.model_name
    into = tmp_path / "README.md"
    into.write_text("# My model\n\nSome text that must survive.\n")
    assert run_cli_here("card", str(DEMO_REPORT), "--into", str(into)).returncode == 0
    once = into.read_text()
    assert run_cli_here("card", str(DEMO_REPORT), "--into", str(into)).returncode == 0
    assert into.read_text() == once and "Some text that must survive." in once
    assert ModelCard.load(into).data.eval_results


@pytest.mark.slow
def test_plot_writes_pngs(tmp_path: Path) -> None:
    # a new process: `plot` without torch loaded draws in forked workers (this process has torch: it would not)
    proc = run_cli("plot", str(DEMO_REPORT), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    pngs = list(tmp_path.glob("*.png"))
    assert len(pngs) >= 10 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_schema_matches_the_committed_copy() -> None:
    proc = run_cli_here("schema")
    assert proc.returncode == 0, proc.stderr
    committed = json.loads((REPO / "reports" / "schema" / "report.schema.json").read_text())
    assert json.loads(proc.stdout) == committed


def test_analyze_csv_json_and_malformed_rows(tmp_path: Path) -> None:
    rows = ["family,member,params,tokens,metric,value,n,kind"]
    for i, (p, v) in enumerate([(7e7, 0.10), (1.6e8, 0.11), (4.1e8, 0.12), (1e9, 0.52), (1.4e9, 0.53)]):
        rows.append(f"fam,m{i},{p},3e11,acc,{v},1000,discrete")
    good = tmp_path / "points.csv"
    good.write_text("\n".join(rows) + "\n")
    proc = run_cli_here("analyze", str(good), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    res = out["results"][0]
    assert res["metric"] == "acc" and res["abrupt"] is True and res["emergence_pair"] == ["m2", "m3"]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*rows[:3], "fam,m9,abc,3e11,acc,0.5,1000,discrete"]) + "\n")
    assert_one_line_error(run_cli_here("analyze", str(bad)), "row 4", "params")


def test_analyze_reads_a_report(demo_analyze: subprocess.CompletedProcess[str]) -> None:
    proc = demo_analyze  # analyze reports/demo.json --json
    assert proc.returncode == 0, proc.stderr
    metrics = {r["metric"] for r in json.loads(proc.stdout)["results"]}
    assert {"stereotype_correlation_pearson", "canary_exact_extraction"} <= metrics


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("id: x\nkind: pronoun\n", "x.yaml"),
        ("id: [unclosed\n", "x.yaml"),
        ("kind: nonsense\nid: y\n", "kind"),
    ],
)
def test_probes_validate_bad_file(tmp_path: Path, content: str, needle: str) -> None:
    f = tmp_path / "x.yaml"
    f.write_text(content)
    assert_one_line_error(run_cli_here("probes", "validate", str(f)), needle)


def test_probes_list_includes_probe_dir(tmp_path: Path) -> None:
    src = (REPO / "probes" / "occupation_gender.yaml").read_text()
    (tmp_path / "mine.yaml").write_text(src.replace("id: occupation_gender_pronoun", "id: my_pronoun_probe"))
    proc = run_cli_here("probes", "list", "--probe-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "my_pronoun_probe" in proc.stdout and "occupation_gender_pronoun" in proc.stdout


def test_ctrl_c_in_any_command_is_one_line_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C outside a scan (click turns it into Abort) still ends with one line and exit code 130."""
    import io
    import sys

    from rich.console import Console

    import riskaudit.cli.root as cli
    import riskaudit.inputs.families as families

    def interrupted() -> None:
        raise KeyboardInterrupt

    buf = io.StringIO()
    monkeypatch.setattr(families, "builtin_families", interrupted)
    monkeypatch.setattr(cli, "err_console", Console(file=buf, width=200))
    monkeypatch.setattr(sys, "argv", ["riskaudit", "families"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 130
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], buf.getvalue()
