"""scan --probes / --limit, line progress in logs, "from store" with the original compute times, the limited
report refused by check, checkpoints as names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error, run_cli
from tiny import write_tiny_family

from riskaudit.reporting.report import read_report

PRONOUN = "occupation_gender_pronoun"


@pytest.mark.slow  # two tiny scans and two checks in subprocesses: about 35 s on 2 shared cores
def test_probes_limit_progress_store_and_check(tmp_path: Path) -> None:
    toml = write_tiny_family(tmp_path)
    out = tmp_path / "r.json"
    cache = tmp_path / "cache"
    args = ["scan", "-f", str(toml), "-o", str(out), "--probes", PRONOUN, "--limit", "5", "--cache-dir", str(cache)]
    cold = run_cli(*args, env={"COLUMNS": "80"})
    assert cold.returncode == 0, cold.stderr
    report = read_report(out)
    assert report.run.limit == 5
    assert [p.id for p in report.probes] == [PRONOUN]
    assert all(p.n_records == 5 * 8 for m in report.members for p in m.probes)  # 5 occupations x 8 templates
    assert "smoke run (--limit 5)" in cold.stdout
    # stderr is not a terminal here: one plain line per finished step, the analysis and the report included
    lines = cold.stderr.splitlines()
    steps = ["[1/2] small", "[2/2] large", "analysis", "report", "note"]  # the note: no training data declared
    assert [ln.split(":")[0] for ln in lines] == steps, lines
    assert "from store" not in cold.stderr

    warm = run_cli(*args)
    assert warm.returncode == 0, warm.stderr
    assert "[1/2] small: ok (from store, computed in" in warm.stderr
    again = read_report(out)
    assert [p.seconds for m in again.members for p in m.probes] == [p.seconds for m in report.members for p in m.probes]
    assert all(p.seconds > 0 for m in again.members for p in m.probes)

    # a smoke run is not an audit: check refuses it unless the policy allows it
    policy = tmp_path / "p.toml"
    policy.write_text(f'[[rule]]\nmetric = "stereotype_correlation_pearson"\nprobe = "{PRONOUN}"\nmax = 2\n')
    assert_one_line_error(run_cli("check", str(out), "--policy", str(policy)), "--limit 5", "allow_limited")
    policy.write_text("allow_limited = true\n" + policy.read_text())
    assert run_cli("check", str(out), "--policy", str(policy)).returncode == 0


def test_unknown_probe_id_is_one_line(tmp_path: Path) -> None:
    proc = run_cli("scan", "-f", "demo", "-o", str(tmp_path / "r.json"), "--probes", "pronoun")
    assert_one_line_error(proc, "'pronoun'", PRONOUN)


def test_checkpoint_members_by_base_name() -> None:
    proc = run_cli("families", "demo", "--revisions", "step103,main", "--json")
    assert proc.returncode == 0, proc.stderr
    names = [m["name"] for m in json.loads(proc.stdout)["members"]]
    assert names[-2:] == ["demo-5.8m@step103", "demo-5.8m"]
    listed = run_cli("families", "demo", env={"COLUMNS": "120"})
    assert "checkpoints: step103, step207, step415" in listed.stdout


def test_families_json_and_opt_flops_marked_approximate() -> None:
    proc = run_cli("families", env={"COLUMNS": "120"})
    assert proc.returncode == 0
    opt = next(ln for ln in proc.stdout.splitlines() if ln.startswith("opt "))
    assert "~" in opt
    assert (REPO / "README.md").read_text().count("opt") >= 1


def test_limit_cuts_items_and_changes_every_store_key() -> None:
    from collections import Counter

    from riskaudit.inputs.families import load_family
    from riskaudit.run.probe_subset import limit_probe, select_probes
    from riskaudit.run.scan import ProbeOptions, build_probes

    probes = build_probes(load_family("demo"), ProbeOptions())  # the demo family declares its training data
    pronoun, mem = select_probes(probes, [PRONOUN, "memorization"])
    small = limit_probe(pronoun, 4)
    assert len(small.occupations) == 4 and len(pronoun.occupations) > 4  # type: ignore[attr-defined]
    assert small.content_hash() not in (pronoun.content_hash(), limit_probe(pronoun, 5).content_hash())
    cut = limit_probe(mem, 2)
    per_dup = Counter(c.duplicates for c in cut.data.canaries)  # type: ignore[attr-defined]
    assert per_dup and max(per_dup.values()) == 2
    assert set(per_dup) == {c.duplicates for c in mem.data.canaries}  # type: ignore[attr-defined]
    assert cut.config.n_documents == 2 and cut.content_hash() != mem.content_hash()  # type: ignore[attr-defined]
    # a limit at or above the item counts still gets keys of its own
    assert limit_probe(mem, 10**6).content_hash() != mem.content_hash()
