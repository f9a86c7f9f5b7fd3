"""The canonical benchmarks' data through the scan: located under --benchmark-data or a YAML's data:, "not
audited" said once when absent, sha256 and rows in the report, one-line errors, and store keys that follow the
files' content."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import Scanned, assert_one_line_error, run_cli_here

from riskaudit.inputs.benchmark_data import BenchmarkDataMissing, NotAudited, locate, read_table
from riskaudit.probes import registry
from riskaudit.reporting.report import read_report

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


def test_locate_under_a_root_or_its_benchmark_dir(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(FIXTURES / "crows_pairs" / "crows_pairs_anonymized.csv", flat)
    for root, where in ((FIXTURES, FIXTURES / "crows_pairs"), (flat, flat)):
        found = locate("p", "crows_pairs", ["crows_pairs_anonymized.csv"], explicit=None, roots=[root], how_to="x")
        assert found["crows_pairs_anonymized.csv"] == where / "crows_pairs_anonymized.csv"
    with pytest.raises(BenchmarkDataMissing) as err:
        locate("p", "winogender", ["all_sentences.tsv"], explicit=None, roots=[flat], how_to="Get it there.")
    msg = err.value.not_audited.message
    assert msg.startswith("winogender not audited: data not found (all_sentences.tsv; looked in ")
    assert str(flat / "winogender") in msg and msg.endswith("Get it there.")


def test_read_table_one_line_errors(tmp_path: Path) -> None:
    f = tmp_path / "t.tsv"
    f.write_text("a\tb\n1\t2\n3\n")
    with pytest.raises(Exception, match=r"t.tsv: line 3: 1 fields, the header has 2"):
        read_table(f, delimiter="\t", required=("a",))


def test_benchmarks_load_from_a_yaml_data_dir_and_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no hub fallback (tests/test_benchmark_hub.py)
    d = tmp_path / "probes"
    d.mkdir()
    (d / "my_crows.yaml").write_text(
        "id: my_crows\nkind: crows_pairs\nversion: 1\ndescription: mine\ndata: ../data\n"
    )
    shutil.copytree(FIXTURES / "crows_pairs", tmp_path / "data")
    found, missing = registry.load_benchmark_probes([d], [])
    assert [p.id for p in found] == ["my_crows"]  # its data: dir, relative to the YAML
    assert {n.probe for n in missing} == {"crows_pairs", "winogender", "winobias", "bbq"}  # the built-in ones, no root given
    found, missing = registry.load_benchmark_probes([d], [FIXTURES])
    assert sorted(p.id for p in found) == ["bbq", "crows_pairs", "my_crows", "winobias", "winogender"] and not missing
    info = registry.validate_probe_file(d / "my_crows.yaml")
    assert info.handled and info.kind == "crows_pairs"


def test_not_audited_is_said_once_and_recorded(tiny_family_scan: Scanned) -> None:
    """The default scan has no --benchmark-data: each benchmark is one note (not one per member)."""
    err = tiny_family_scan.proc.stderr
    for bench in ("crows_pairs", "winogender", "winobias", "bbq"):
        assert err.count(f"{bench} not audited: data not found") == 1, err
    report = read_report(tiny_family_scan.out)
    assert {n.benchmark for n in report.not_audited} == {"crows_pairs", "winogender", "winobias", "bbq"}
    assert not any(p.benchmark for p in report.probes)


def test_malformed_file_is_one_line_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data" / "crows_pairs"
    shutil.copytree(FIXTURES / "crows_pairs", data)
    csv = data / "crows_pairs_anonymized.csv"
    lines = csv.read_text().splitlines()
    lines[3] = lines[3].replace(",stereo,", ",maybe,")
    csv.write_text("\n".join(lines) + "\n")
    proc = run_cli_here(
        "scan", "--family", "demo", "--benchmark-data", str(tmp_path / "data"), "--probes", "crows_pairs",
        "--out", str(tmp_path / "r.json"), "--no-cache",
    )  # fmt: skip
    assert_one_line_error(proc, str(csv), "line 4", "maybe")


def test_asking_for_a_benchmark_without_data_is_one_line(tmp_path: Path) -> None:
    proc = run_cli_here("scan", "--family", "demo", "--probes", "winogender", "--out", str(tmp_path / "r.json"))
    assert_one_line_error(proc, "--probes", "winogender not audited: data not found")
    missing = tmp_path / "nowhere"
    proc = run_cli_here("scan", "--family", "demo", "--benchmark-data", str(missing), "--out", str(tmp_path / "r.json"))
    assert_one_line_error(proc, "--benchmark-data", str(missing), "no such directory")


@pytest.mark.slow
def test_scan_records_files_and_store_keys_follow_content(tmp_path: Path) -> None:
    """A tiny-family scan with the fixtures: every member gets both benchmarks with CIs and the scaling analysis,
    the report records each file's sha256 and rows, and an edited file is recomputed while a moved one is not."""
    from tiny import write_tiny_family

    toml = write_tiny_family(tmp_path)
    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data)
    cache = tmp_path / "cache"

    def scan(out: str) -> tuple[object, str]:
        proc = run_cli_here(
            "scan", "--family", str(toml), "--benchmark-data", str(data), "--probes", "crows_pairs,winogender",
            "--no-memorization", "--cache-dir", str(cache), "--out", str(tmp_path / out), "--seed", "1",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return read_report(tmp_path / out), proc.stderr

    report, err = scan("a.json")
    assert "not audited" not in err
    files = {(f.benchmark, f.name): f for p in report.probes for f in p.data_files}  # type: ignore[attr-defined]
    csv = data / "crows_pairs" / "crows_pairs_anonymized.csv"
    assert files[("crows_pairs", "crows_pairs_anonymized.csv")].sha256 == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert files[("crows_pairs", "crows_pairs_anonymized.csv")].rows == 10
    assert files[("winogender", "all_sentences.tsv")].rows == 36
    for m in report.members:  # type: ignore[attr-defined]
        got = {p.probe_id: {x.name: x for x in p.metrics} for p in m.probes}
        assert got["crows_pairs"]["crows_pairs_english.pct_stereotype"].ci_low is not None
        assert "winogender_bls.resolution_r" in got["winogender"]
    analysed = {(a.probe, a.metric) for a in report.analysis.metrics}  # type: ignore[attr-defined]
    assert ("crows_pairs", "crows_pairs_english_gender.pct_stereotype") in analysed
    assert ("winogender", "winogender_gotcha.acc") in analysed
    raw = json.loads((tmp_path / "a.json").read_text())
    assert raw["schema_version"] >= "1.5.0" and raw["not_audited"] == []
    # unchanged files: served from the store; an edited file: its probe is recomputed
    _, err = scan("b.json")
    assert err.count("from store") == 2, err
    csv.write_text(csv.read_text().replace("morning shift", "night shift"))
    report_c, err = scan("c.json")
    assert "from store" not in err, err
    new = {f.name: f.sha256 for p in report_c.probes for f in p.data_files}  # type: ignore[attr-defined]
    assert new["crows_pairs_anonymized.csv"] != files[("crows_pairs", "crows_pairs_anonymized.csv")].sha256
    # a policy on the benchmark's metric, named as the report names it
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[[rule]]\nmetric = "crows_pairs_english.pct_stereotype"\nprobe = "crows_pairs"\nmember = "all"\nmax = 1.0\n'
        '[[rule]]\nmetric = "winogender_all.acc"\nmember = "largest"\nmin = 0.99\n'
    )
    proc = run_cli_here("check", str(tmp_path / "c.json"), "--policy", str(policy))
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the second rule: a random tiny model is no 0.99
    assert "winogender_all.acc" in proc.stdout + proc.stderr
    proc = run_cli_here("diff", str(tmp_path / "a.json"), str(tmp_path / "c.json"))
    assert proc.returncode == 0 and "crows_pairs" in proc.stdout, proc.stdout + proc.stderr
    proc = run_cli_here("card", str(tmp_path / "c.json"))
    assert proc.returncode == 0 and "CrowS-Pairs" in proc.stdout and "Winogender" in proc.stdout, proc.stdout
    page = tmp_path / "c.html"
    proc = run_cli_here("report", "html", str(tmp_path / "c.json"), "--out", str(page))
    assert proc.returncode == 0, proc.stderr
    html = page.read_text()
    assert "crows_pairs_english_gender.pct_stereotype" in html and "winogender_bls.resolution_r" in html


def test_family_toml_benchmark_data(tmp_path: Path) -> None:
    """A family TOML's `benchmark_data` (relative to the TOML) is searched after --benchmark-data; a directory
    that does not exist is one FamilyError naming the file and the directory."""
    from riskaudit.errors import FamilyError
    from riskaudit.inputs.family_toml import load_family_toml
    from riskaudit.run.options import ProbeOptions
    from riskaudit.run.scan import build_probes

    shutil.copytree(FIXTURES / "crows_pairs", tmp_path / "bench" / "crows_pairs")
    member = '[[members]]\nname = "a"\nsource = "./a"\nparams = 1000\ntokens = 1e6\n'
    toml = tmp_path / "fam.toml"
    toml.write_text('name = "f"\nbenchmark_data = ["bench"]\n' + member)
    fam = load_family_toml(toml)
    assert fam.benchmark_data == [str((tmp_path / "bench").resolve())]
    missing: list[NotAudited] = []
    probes = build_probes(fam, ProbeOptions(occupations="bls2015", memorization=False), missing)
    assert "crows_pairs" in {p.id for p in probes}
    assert {n.benchmark for n in missing} == {"winogender", "winobias", "bbq"}
    # the command line's directory is searched first
    shutil.copytree(FIXTURES / "winogender", tmp_path / "cli" / "winogender")
    missing = []
    options = ProbeOptions(occupations="bls2015", memorization=False, benchmark_data=[str(tmp_path / "cli")])
    probes = build_probes(fam, options, missing)
    assert {"crows_pairs", "winogender"} <= {p.id for p in probes}
    toml.write_text('name = "f"\nbenchmark_data = ["nowhere"]\n' + member)
    with pytest.raises(FamilyError, match=r"fam.toml: benchmark_data: nowhere: no such directory"):
        load_family_toml(toml)
