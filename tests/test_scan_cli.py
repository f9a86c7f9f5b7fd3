"""End-to-end: families listing, scans of a user TOML family saved on disk, errors, the report format."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from conftest import Scanned, assert_one_line_error, copy_report, run_cli, run_cli_here
from tiny import build_tiny_model, write_tiny_family

from riskaudit.errors import RiskauditError
from riskaudit.reporting.report import read_report

REQUIRED_FAMILIES = [
    "pythia",
    "pythia-deduped",
    "gpt2",
    "gpt-neo",
    "opt",
    "cerebras-gpt",
    "olmo",
    "smollm2",
    "qwen2.5",
    "demo",
]


def test_families_lists_every_required_family() -> None:
    proc = run_cli_here("families", "--json")
    assert proc.returncode == 0, proc.stderr
    names = {f["name"] for f in json.loads(proc.stdout)}
    assert set(REQUIRED_FAMILIES) <= names


def test_families_pythia_revisions_give_tokens_seen() -> None:
    proc = run_cli_here("families", "pythia", "--revisions", "step1000,step143000", "--json")
    assert proc.returncode == 0, proc.stderr
    fam = json.loads(proc.stdout)
    m = {x["name"]: x for x in fam["members"]}
    assert m["70m@step1000"]["train_tokens"] == 1000 * 2_097_152
    assert m["70m@step143000"]["train_tokens"] == 143000 * 2_097_152


def test_scan_user_family_saved_on_disk(tiny_family_scan: Scanned) -> None:
    # scan --family TOML --out OUT --quiet --seed 3 (with its own result store), run once for the session
    proc, out = tiny_family_scan.proc, tiny_family_scan.out
    assert proc.returncode == 0, proc.stderr
    # --quiet: the one-line summary and the report path, no table (issue 23 item 5)
    assert proc.stdout.splitlines()[0].startswith("tiny: 2 members scanned") and "BLS r" not in proc.stdout
    assert proc.stdout.splitlines()[1].startswith(f"report: {out}") and len(proc.stdout.splitlines()) == 2
    assert "memorization not audited: no training data" in proc.stderr  # no declared data, no --data
    report = read_report(out)
    assert "memorization not audited: no training data" in report.notes
    assert report.schema_version.startswith("1.")
    assert [m.name for m in report.members] == ["small", "large"]
    for m, tokens in zip(report.members, (1000, 2000), strict=True):
        assert m.status == "ok" and m.params_counted
        assert m.params_total is not None and m.params_total > 0
        assert m.flops == pytest.approx(6 * m.params_total * tokens)
        names = {x.name for x in m.probes[0].metrics}
        assert {"stereotype_correlation_pearson", "stereotype_agreement", "male_default", "gap_magnitude"} <= names
        for x in m.probes[0].metrics:
            for v in (x.value, x.ci_low, x.ci_high):
                assert v is None or math.isfinite(v)
    assert report.members[0].params_total < report.members[1].params_total  # type: ignore[operator]
    assert report.run.seed == 3 and report.run.torch_version and report.run.started_utc.endswith("Z")
    assert report.sidecar is not None
    assert [p.probe_id for p in report.members[0].probes][:2] == [
        "occupation_gender_pronoun",
        "occupation_gender_coreference",
    ]
    n_items = sum(p.n_records for p in report.members[0].probes)
    assert report.sidecar.rows == 2 * n_items
    rows = (out.parent / report.sidecar.path).read_text().splitlines()
    assert len(rows) == report.sidecar.rows
    assert json.loads(rows[0])["member"] == "small"


def test_scan_results_do_not_depend_on_batch_size(tmp_path: Path) -> None:
    toml = write_tiny_family(tmp_path)
    reports = []
    for bs in ("1", "16"):
        out = tmp_path / f"r{bs}.json"
        # the first probe's metrics are compared: only that probe is scanned
        args = ["--batch-size", bs, "--members", "large", "--probes", "occupation_gender_pronoun"]
        proc = run_cli_here("scan", "--family", str(toml), "--out", str(out), "-q", *args)
        assert proc.returncode == 0, proc.stderr
        reports.append(read_report(out))
    a, b = (r.members[0].probes[0].metrics for r in reports)
    for x, y in zip(a, b, strict=True):
        assert x.name == y.name
        if x.value is not None:
            assert y.value == pytest.approx(x.value, abs=1e-4)


def test_pythia_without_hub_is_one_line_naming_the_model(tmp_path: Path) -> None:
    proc = run_cli(
        "scan",
        "--family",
        "pythia",
        "--no-memorization",  # else it stops earlier, at pythia's training data (tests/test_memorization_family.py)
        "--out",
        str(tmp_path / "p.json"),
        env={"HF_HOME": str(tmp_path / "hf")},
        timeout=120,
    )
    assert_one_line_error(proc, "EleutherAI/pythia-14m")
    assert "local path" in proc.stderr
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scan", "--family", "no-such-family"], "no-such-family"),
        (["scan", "--family", "pythia", "--revisions", "step999"], "step999"),
        (["scan", "--family", "pythia", "--dtype", "float8"], "float8"),
        (["scan", "--family", "pythia", "--occupations", "bls1999"], "bls1999"),
        (["scan", "--family", "pythia", "--members", "nope"], "nope"),
        (["families", "missing.toml"], "missing.toml"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    assert_one_line_error(run_cli_here(*args), needle)


def test_unwritable_output_is_refused_before_work(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        proc = run_cli_here("scan", "--family", "pythia", "--out", str(ro / "x.json"))
        if proc.returncode == 2 and "not writable" in proc.stderr:
            assert_one_line_error(proc, "not writable")
        else:  # running as root: permission bits do not stop writes, so test a directory path instead
            assert_one_line_error(run_cli_here("scan", "--family", "pythia", "--out", str(tmp_path)), "directory")
    finally:
        ro.chmod(0o700)


def test_report_read_refuses_tampering(tmp_path: Path, tiny_family_scan: Scanned) -> None:
    out = copy_report(tiny_family_scan.out, tmp_path)  # a scan's report and the files beside it
    good = out.read_text()
    data = json.loads(good)

    def refused(text: str, needle: str) -> None:
        out.write_text(text)
        with pytest.raises(RiskauditError, match=needle):
            read_report(out)

    refused(good.replace('"value": ', '"value": NaN, "x": ', 1), "strict-JSON")
    refused(json.dumps({**data, "schema_version": "2.0.0"}), "newer")
    missing = dict(data)
    del missing["family"]
    refused(json.dumps(missing), "family")
    out.write_text(good)
    side = out.parent / data["sidecar"]["path"]
    side.write_text(side.read_text() + "\n")
    with pytest.raises(RiskauditError, match="sha256"):
        read_report(out)


def test_rescan_is_served_by_the_store_and_changed_weights_recompute(
    tmp_path: Path, tiny_family_scan: Scanned
) -> None:
    # the first scan is the session's: the same command, --seed 3, into a store of its own (copied here)
    toml = tiny_family_scan.toml
    cache = tmp_path / "cache"
    shutil.copytree(tiny_family_scan.cache, cache)
    outs = [copy_report(tiny_family_scan.out, tmp_path), *(tmp_path / f"r{i}.json" for i in range(1, 4))]

    def scan(i: int, *extra: str) -> None:
        args = ["--out", str(outs[i]), "-q", "--seed", "3", "--cache-dir", str(cache), *extra]
        proc = run_cli_here("scan", "--family", str(toml), *args)
        assert proc.returncode == 0, proc.stderr

    scan(1)
    cold, warm = read_report(outs[0]), read_report(outs[1])
    assert all(m.load_seconds > 0 for m in cold.members)
    assert all(m.load_seconds == 0 for m in warm.members)  # nothing loaded: every unit came from the store
    for a, b in zip(cold.members, warm.members, strict=True):
        assert [p.metrics for p in a.probes] == [p.metrics for p in b.probes]
    assert (tmp_path / outs[0].name.replace(".json", ".items.jsonl")).read_bytes() == (
        tmp_path / outs[1].name.replace(".json", ".items.jsonl")
    ).read_bytes()
    # from here one probe is enough: a unit is one (member, probe) pair and its key is built the same for every probe
    one = ("--probes", "occupation_gender_pronoun")
    scan(2, "--dtype", "bfloat16", *one)  # another dtype is another unit
    assert all(m.load_seconds > 0 for m in read_report(outs[2]).members)
    # new weights at the same path are recomputed, the untouched member is still served from the store
    models = toml.parent / "models"
    build_tiny_model(models, seed=7, hidden=16, layers=1, heads=2, name="small")
    try:
        scan(3, *one)
    finally:  # the session's family again, as write_tiny_family builds it
        build_tiny_model(models, seed=1, hidden=16, layers=1, heads=2, name="small")
    new = read_report(outs[3])
    assert new.members[0].load_seconds > 0 and new.members[1].load_seconds == 0
