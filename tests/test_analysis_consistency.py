"""One analysis: `riskaudit analyze REPORT.json` reproduces the analysis stored in the report (same CIs, same
verdicts), because the scan analyses exactly the paired replicates it writes beside the report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli_here
from tiny import build_tiny_model

from riskaudit.analysis.replicates import decode_replicates, encode_replicates
from riskaudit.inputs.families import load_family
from riskaudit.models import LoadOptions
from riskaudit.reporting.reanalysis import reanalyze_report
from riskaudit.reporting.report import read_report, write_report
from riskaudit.run.scan import ProbeOptions, ScanOptions, build_probes, scan_family

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "reports" / "demo.json"


def _key(a: object) -> tuple[str, str, str, str]:
    return (a.probe, a.metric, a.axis, a.checkpoint_of or "")  # type: ignore[attr-defined]


def test_replicates_round_trip_is_exact_and_deterministic() -> None:
    reps = {"m": {"p": {"a": [0.1, None, 0.3], "b": [1.0, 2.0]}}, "n": {"p": {"a": [0.25, 0.5, None]}}}
    data = encode_replicates(reps)
    assert data == encode_replicates(reps)  # byte-identical: no timestamps in the archive
    back = decode_replicates(data)
    assert back["m"]["p"]["a"][1] is None and back["m"]["p"]["b"] == [1.0, 2.0]
    assert back["m"]["p"]["a"][0] == pytest.approx(0.1, rel=1e-7)  # float32
    assert decode_replicates(encode_replicates(back)) == back  # float32 values survive a second round trip


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("consistency")
    body = 'name = "tiny3"\n'
    for i, (hidden, layers) in enumerate(((16, 1), (24, 1), (32, 2))):
        build_tiny_model(root, seed=i, hidden=hidden, layers=layers, heads=2, name=f"m{i}")
        body += f'[[members]]\nname = "m{i}"\nsource = "{root / f"m{i}"}"\ntokens = {10**6 * (i + 1)}\n'
    (root / "fam.toml").write_text(body)
    family = load_family(str(root / "fam.toml"))
    probes = build_probes(family.name, ProbeOptions())[:2]  # pronoun and coreference: seconds
    out = scan_family(family, ScanOptions(load=LoadOptions(batch_size=16), seed=3), probes=probes)
    path = root / "report.json"
    write_report(out.report, path, out.sidecar, out.replicates)
    return path


@pytest.mark.slow
def test_analyze_reproduces_the_stored_analysis(scanned: Path) -> None:
    stored = read_report(scanned).analysis
    assert stored is not None and stored.config.seed == 3
    again = reanalyze_report(scanned)
    assert "replicates" in again.source
    assert again.analysis == stored  # every CI, statistic and verdict


@pytest.mark.slow
def test_without_the_replicates_file_the_stored_analysis_is_reused(scanned: Path, tmp_path: Path) -> None:
    for name in (scanned.name, scanned.with_suffix("").name + ".items.jsonl"):
        shutil.copy(scanned.with_name(name), tmp_path / name)
    again = reanalyze_report(tmp_path / scanned.name)
    assert again.analysis == read_report(scanned).analysis and "reused" in again.source
    # a tampered replicates file is refused, one line
    rep = scanned.with_name(read_report(scanned).replicates.path)  # type: ignore[union-attr]
    shutil.copy(rep, tmp_path / rep.name)
    (tmp_path / rep.name).write_bytes(rep.read_bytes()[:-10] + b"0123456789")
    assert_one_line_error(run_cli_here("analyze", str(tmp_path / scanned.name)), "do not match their sha256")


def test_demo_report_analyze_gives_the_stored_verdicts_and_cis(demo_analyze: subprocess.CompletedProcess[str]) -> None:
    """The shipped demo report: `riskaudit analyze reports/demo.json --json` = its stored analysis."""
    proc = demo_analyze  # analyze reports/demo.json --json, run once for the session
    assert proc.returncode == 0, proc.stderr
    assert "re-analysed from the paired bootstrap replicates" in proc.stderr
    doc = json.loads(proc.stdout)
    stored = read_report(DEMO).analysis
    assert stored is not None
    by_key = {(r["probe"], r["metric"], r["axis"], r.get("checkpoint_of") or ""): r for r in doc["results"]}
    assert len(by_key) == len(stored.metrics)
    for a in stored.metrics:
        r = by_key[_key(a)]
        assert r["verdict"] == a.verdict, _key(a)
        g = a.growth_flops
        if g is not None and g.slope is not None:
            got = r["slope_per_decade_flops"]
            # equal up to float rounding: a slope of 0 has CI ends of ~1e-15 whose last digit depends on the
            # BLAS build's summation order
            want = (g.slope_ci_low, g.slope_ci_high)
            assert (got["ci_low"], got["ci_high"]) == pytest.approx(want, rel=1e-9, abs=1e-12), _key(a)


def test_demo_report_flags_no_near_chance_bias_metric_abrupt() -> None:
    stored = read_report(DEMO).analysis
    assert stored is not None
    near_chance = [
        a
        for a in stored.metrics
        if a.probe in ("occupation_gender_coreference", "occupation_gender_minimal_pairs")
        or a.metric in ("male_default", "gap_magnitude")
    ]
    assert len(near_chance) >= 10
    flagged = [a.metric for a in near_chance if a.verdict.startswith("abrupt")]
    assert flagged == []
