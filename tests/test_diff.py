"""``riskaudit diff`` as a CI gate: float noise is no change, None and false flags are the same, members added
are listed and never a regression, ``--fail-on-regression`` exits 1 exactly on a risk beyond both CIs in its
risky direction or a newly raised abrupt/surprise flag, ``--json`` and 80 columns. Copies of the committed demo
report, mutated in this process and written without their sidecar (the JSON alone must do)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_cli_here

from riskaudit.analysis.family import analyze_family
from riskaudit.reporting.diff import GATE_RULE, diff_reports, equal_within, tolerance
from riskaudit.reporting.reanalysis import series_from_report
from riskaudit.reporting.report import Report, read_replicates, read_report

DEMO = REPO / "reports" / "demo.json"
PEARSON = ("occupation_gender_pronoun", "stereotype_correlation_pearson")


@pytest.fixture(scope="module")
def demo() -> Report:
    return read_report(DEMO)


def _write(tmp_path: Path, name: str, report: Report) -> str:
    path = tmp_path / name
    path.write_text(report.model_dump_json(), encoding="utf-8")
    return str(path)


def _gate(tmp_path: Path, base: Report, new: Report, *extra: str, columns: int = 200) -> tuple[int, str]:
    proc = run_cli_here(
        "diff",
        _write(tmp_path, "base.json", base),
        _write(tmp_path, "new.json", new),
        "--fail-on-regression",
        *extra,
        env={"COLUMNS": str(columns)},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def _set(report: Report, member: int, key: tuple[str, str], value: float, low: float, high: float) -> None:
    probe = next(p for p in report.members[member].probes if p.probe_id == key[0])
    r = next(r for r in probe.metrics if r.name == key[1])
    r.value, r.ci_low, r.ci_high = value, low, high


def test_tolerance_follows_scale_and_ci_width() -> None:
    assert tolerance([6.02, 6.02], [0.0]) == pytest.approx(6.02e-9)
    assert tolerance([0.5, 0.4, 0.6], [0.2]) == pytest.approx(2e-4)
    assert equal_within(1.06e-14, 1.11e-14, tolerance([6.0, 1.1e-14])) and not equal_within(0.5, 0.51, 2e-4)
    assert equal_within(None, None, 0.0) and not equal_within(None, 0.0, 1.0)


def test_float_noise_is_unchanged(demo: Report, tmp_path: Path) -> None:
    """Every number moved by 1e-14: nothing listed (4e53974 listed degenerate CIs [6.02, 6.02] and the
    ``growth 0 [1.06e-14, 1.06e-14]`` slopes as beyond their CIs, regressions included)."""
    noisy = demo.model_copy(deep=True)
    degenerate = 0
    for m in noisy.members:
        for p in m.probes:
            for r in p.metrics:
                if r.ci_low is not None and r.ci_low == r.ci_high:
                    degenerate += 1
                r.value = None if r.value is None else r.value + 1e-14
                r.ci_low = None if r.ci_low is None else r.ci_low + 1e-14
                r.ci_high = None if r.ci_high is None else r.ci_high + 2e-14
    assert noisy.analysis is not None
    for a in noisy.analysis.metrics:
        g = a.growth_flops
        if g is not None and g.slope is not None and g.slope_ci_low is not None and g.slope_ci_high is not None:
            g.slope, g.slope_ci_low, g.slope_ci_high = g.slope + 3e-14, g.slope_ci_low + 1e-14, g.slope_ci_high + 3e-14
    assert degenerate  # the case that tripped the old comparison is in the demo report
    d = diff_reports(demo, noisy)
    assert d.metrics == [] and d.trends == [] and d.flags == [] and d.regressions == []
    assert d.unchanged == d.compared > 900 and d.beyond_ci == 0
    rc, out = _gate(tmp_path, demo, noisy)
    assert rc == 0 and "result: no regression" in out and "diff demo" in out
    every = diff_reports(demo, noisy, everything=True)
    assert len(every.metrics) == every.compared and {m.change for m in every.metrics} == {"unchanged"}


def test_none_and_false_flags_are_the_same(demo: Report) -> None:
    base = demo.model_copy(deep=True)
    assert base.analysis is not None
    n = 0
    for a in base.analysis.metrics:
        if a.predictability.surprise_two_out is False:
            a.predictability.surprise_two_out = None
            n += 1
    assert n > 100
    d = diff_reports(base, demo)
    assert not [f for f in d.flags if f.flag == "surprise_two_out"] and not d.regressions


@pytest.fixture(scope="module")
def five(demo: Report) -> Report:
    """The demo family without its largest member, analysed again (as a scan of five members would be)."""
    assert demo.analysis is not None
    base = demo.model_copy(update={"members": demo.members[:-1]}, deep=True)
    analysis = analyze_family(series_from_report(base, read_replicates(DEMO, demo)), demo.analysis.config)
    return base.model_copy(update={"analysis": analysis})


def test_a_member_added_is_listed_not_a_regression(demo: Report, five: Report, tmp_path: Path) -> None:
    rc, out = _gate(tmp_path, five, demo)
    assert rc == 0, out
    assert "members added (not compared, not a regression): demo-5.8m" in out
    assert "result: no regression (exit 0)" in out and GATE_RULE.split(";")[0][:40] in out.replace("\n", " ")
    d = diff_reports(five, demo)
    assert d.members_added == ["demo-5.8m"] and not d.regressions
    assert not any(f.base in (None, "none") or f.new in (None, "none") for f in d.flags)


def test_risky_direction_beyond_both_cis_fails_the_gate(demo: Report, tmp_path: Path) -> None:
    worse = demo.model_copy(deep=True)
    _set(worse, -1, PEARSON, 0.99, 0.98, 0.995)  # higher is riskier; the base is 0.81 [0.71, 0.88]
    rc, out = _gate(tmp_path, demo, worse)
    assert rc == 1, out
    assert "1 regression(s)" in out and "demo-5.8m occupation_gender_pronoun/stereotype_correlation_pearson" in out
    assert "beyond both 95% CIs (higher is riskier)" in out


def test_safe_direction_or_within_the_cis_passes_the_gate(demo: Report, tmp_path: Path) -> None:
    better = demo.model_copy(deep=True)
    _set(better, -1, PEARSON, 0.2, 0.1, 0.3)  # lower than the base's CI: better
    _set(better, -2, PEARSON, 0.8, 0.7, 0.88)  # moved within the CIs: not listed
    d = diff_reports(demo, better)
    assert [(m.member, m.change) for m in d.metrics] == [("demo-5.8m", "better")] and d.within_ci == 1
    rc, out = _gate(tmp_path, demo, better)
    assert rc == 0 and "better" in out and "result: no regression" in out, out


def test_new_abrupt_flag_fails_the_gate(demo: Report, tmp_path: Path) -> None:
    new = demo.model_copy(deep=True)
    assert new.analysis is not None
    a = next(a for a in new.analysis.metrics if a.verdict == "smooth" and (a.abruptness.net or 0) > 0)
    a.verdict = "abrupt"
    rc, out = _gate(tmp_path, demo, new)
    assert rc == 1, out
    assert f"{a.probe}/{a.metric}: verdict 'smooth' → 'abrupt'" in out.replace("\n", "")
    cleared = diff_reports(new, demo)  # the other way round: a flag cleared is listed, no regression
    assert cleared.flags and not cleared.regressions


def test_json_is_the_same_content(demo: Report, tmp_path: Path) -> None:
    worse = demo.model_copy(deep=True)
    _set(worse, -1, PEARSON, 0.99, 0.98, 0.995)
    proc = run_cli_here("diff", _write(tmp_path, "a.json", demo), _write(tmp_path, "b.json", worse), "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["has_regression"] is True and got["rule"] == GATE_RULE and len(got["regressions"]) == 1
    assert got["metrics"][0]["change"] == "worse" and got["metrics"][0]["member"] == "demo-5.8m"


def test_80_columns_one_member_change_is_short(demo: Report, five: Report, tmp_path: Path) -> None:
    worse = demo.model_copy(deep=True)
    _set(worse, -1, PEARSON, 0.99, 0.98, 0.995)
    _set(worse, -1, ("memorization", "canary_exact_extraction"), 0.9, 0.85, 0.95)
    rc, out = _gate(tmp_path, demo, worse, columns=80)
    assert rc == 1, out
    lines = out.splitlines()
    assert max(len(ln) for ln in lines) <= 80, max(lines, key=len)
    assert len(lines) <= 40, out  # 4e53974: four tables of about 300 rows each
    assert "stereotype_correlation_pearson" in out and "canary_exact_extraction" in out
    assert "demo-5.8m · occupation_gender_pronoun" in out and "demo-5.8m · memorization" in out
    rc, out = _gate(tmp_path, five, worse, columns=80)  # a member added too: every line still fits
    assert rc == 0 and max(len(ln) for ln in out.splitlines()) <= 80, out  # the worse member is the new one
