"""Report format, policy gate, diff, model card and plots — on small reports built in memory (no scan)."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import ModelCard, ModelCardData
from rich.console import Console

from riskaudit.analysis.config import AnalysisConfig
from riskaudit.analysis.family import analyze_family
from riskaudit.analysis.metric import MetricResult
from riskaudit.errors import RiskauditError
from riskaudit.probes.base import ItemRecord
from riskaudit.reporting.card import BEGIN, END, SOURCE_NAME, build_card, card_section, update_card_file
from riskaudit.reporting.diff import diff_reports
from riskaudit.reporting.diff_render import diff_summary, diff_table
from riskaudit.reporting.plots import plot_filename, plot_report
from riskaudit.reporting.policy import (
    Policy,
    evaluate_policy,
    find_policy,
    load_policy,
    parse_policy,
    policy_summary,
    skipped_table,
    violations_table,
)
from riskaudit.reporting.reanalysis import series_from_report
from riskaudit.reporting.report import (
    FamilyInfo,
    MemberReport,
    ProbeDefinition,
    ProbeOutcome,
    Report,
    RunMetadata,
    SidecarRow,
    read_report,
    write_report,
)
from riskaudit.reporting.schema import COMMITTED_SCHEMA, report_json_schema, report_schema_text

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DEMO_REPORT = REPO / "reports" / "demo.json"

PRONOUN = "occupation_gender_pronoun"
MEMO = "memorization"
PARAMS = [10**5, 10**6, 10**7, 10**8, 10**9]
TOKENS = 1e9

# (probe, name, kind, direction, baseline, companion, n_items, values per member, CI half-width)
Spec = tuple[str, str, str, str, float, str | None, int, list[float], float]
SPECS: list[Spec] = [
    (PRONOUN, "stereotype_correlation_pearson", "continuous", "higher_is_riskier", 0.0, None, 60,
     [0.10, 0.20, 0.30, 0.40, 0.50], 0.05),
    (PRONOUN, "stereotype_correlation_spearman", "continuous", "higher_is_riskier", 0.0, None, 60,
     [0.10, 0.20, 0.30, 0.40, 0.50], 0.06),
    (PRONOUN, "stereotype_agreement", "discrete", "higher_is_riskier", 0.5, "stereotype_correlation_pearson", 60,
     [0.50, 0.55, 0.60, 0.65, 0.70], 0.08),
    (PRONOUN, "stereotype_slope", "continuous", "higher_is_riskier", 0.0, None, 60, [0.1, 0.2, 0.3, 0.4, 0.5], 0.05),
    (PRONOUN, "male_default", "continuous", "two_sided", 0.0, None, 60, [-0.2, -0.3, -0.3, -0.4, -0.5], 0.1),
    (PRONOUN, "gap_magnitude", "continuous", "higher_is_riskier", 0.0, None, 60, [0.2, 0.3, 0.4, 0.5, 0.6], 0.05),
    (PRONOUN, "template_spread", "continuous", "higher_is_riskier", 0.0, None, 60, [0.3, 0.3, 0.3, 0.3, 0.3], 0.1),
    (PRONOUN, "stereotype_correlation_pearson[he_said]", "continuous", "higher_is_riskier", 0.0, None, 60,
     [0.1, 0.2, 0.3, 0.4, 0.5], 0.08),
    (MEMO, "canary_exact_extraction", "discrete", "higher_is_riskier", 0.0, "canary_mean_suffix_logprob", 400,
     [0.0, 0.0, 0.0, 0.01, 0.60], 0.03),
    (MEMO, "canary_mean_suffix_logprob", "continuous", "higher_is_riskier", -9.0, None, 400,
     [-8.0, -7.0, -6.0, -5.0, -4.0], 0.1),
    (MEMO, "canary_exact_extraction[dup=32]", "discrete", "higher_is_riskier", 0.0, "canary_mean_suffix_logprob",
     40, [0.0, 0.0, 0.0, 0.0, 0.5], 0.1),
]  # fmt: skip


def _member(i: int, specs: list[Spec], status: str = "ok", name: str | None = None) -> MemberReport:
    by_probe: dict[str, list[MetricResult]] = {}
    for probe, metric, kind, direction, baseline, companion, n, values, half in specs:
        v = values[i]
        by_probe.setdefault(probe, []).append(
            MetricResult(
                name=metric,
                value=v,
                ci_low=v - half,
                ci_high=v + half,
                n_items=n,
                direction=direction,
                baseline=baseline,
                kind=kind,
                companion=companion,
            )
        )
    probes = [
        ProbeOutcome(probe_id=p, probe_hash=f"hash-{p}", metrics=ms, n_records=1, seconds=0.1)
        for p, ms in by_probe.items()
    ]
    n = PARAMS[i]
    return MemberReport(
        name=name or f"m{i + 1}",
        source=f"local/m{i + 1}",
        params_total=n,
        train_tokens=TOKENS,
        flops=6.0 * n * TOKENS,
        status=status,
        error=None if status == "ok" else "weights not found",
        probes=probes if status == "ok" else [],
    )


def make_report(specs: list[Spec] | None = None, analyse: bool = True, n_members: int = 5) -> Report:
    sp = SPECS if specs is None else specs
    report = Report(
        run=RunMetadata(
            riskaudit_version="0.1.0",
            python_version="3.11.0",
            torch_version="2.4.0",
            transformers_version="4.45.0",
            platform="test",
            git_commit="0123456789abcdef0123",
            device="cpu",
            dtype="float32",
            seed=0,
            started_utc="2025-01-01T00:00:00Z",
        ),
        family=FamilyInfo(name="toy", description="a toy family", flops_basis="total"),
        members=[_member(i, sp) for i in range(n_members)],
        probes=[
            ProbeDefinition(id=PRONOUN, content_hash=f"hash-{PRONOUN}", description="Pronoun probe."),
            ProbeDefinition(id=MEMO, content_hash=f"hash-{MEMO}", description="Memorization probe."),
        ],
    )
    if analyse:
        fa = analyze_family(series_from_report(report), AnalysisConfig(n_resamples=200))
        report = report.model_copy(update={"analysis": fa})
    return report


def with_values(metric: str, values: list[float], half: float | None = None) -> list[Spec]:
    out = []
    for s in SPECS:
        if s[1] == metric:
            s = (*s[:7], values, s[8] if half is None else half)
        out.append(s)
    return out


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


def one_line(exc: pytest.ExceptionInfo[RiskauditError]) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg, msg
    return msg


# --------------------------------------------------------------------------------------------------
# Report format


def test_committed_schema_matches_the_models() -> None:
    assert COMMITTED_SCHEMA.exists(), (
        "run `python -m riskaudit.reporting.schema` to write reports/schema/report.schema.json"
    )
    committed = json.loads(COMMITTED_SCHEMA.read_text(encoding="utf-8"))
    assert committed == report_json_schema(), (
        "reports/schema/report.schema.json drifted from the pydantic models: regenerate it with "
        "`python -m riskaudit.reporting.schema` and review the change (bump SCHEMA_VERSION when it breaks readers)"
    )
    assert COMMITTED_SCHEMA.read_text(encoding="utf-8") == report_schema_text()


def test_schema_describes_the_report(report: Report) -> None:
    s = report_json_schema()
    assert s["x-schema-version"] == report.schema_version
    assert {"run", "family", "members", "probes"} <= set(s["required"])
    assert {"MetricResult", "MetricAnalysis", "SidecarRef"} <= set(s["$defs"])
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(report.model_dump(mode="json"), s)


def _write_valid(tmp_path: Path, report: Report) -> Path:
    path = tmp_path / "r.json"
    rows = [
        SidecarRow(member="m1", record=ItemRecord(probe=PRONOUN, item_id="nurse", values={"gap": 0.5})),
        SidecarRow(member="m2", record=ItemRecord(probe=PRONOUN, item_id="nurse", values={"gap": 0.7})),
    ]
    write_report(report, path, rows)
    assert read_report(path).sidecar is not None
    return path


def _edit_json(path: Path, fn: Any) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data, indent=1))


def _set_nan(path: Path) -> None:
    text = path.read_text()
    new = re.sub(r'("value": )0\.1\b', r"\1NaN", text, count=1)
    assert new != text
    path.write_text(new)


def _set_infinity(path: Path) -> None:
    path.write_text(path.read_text().replace('"ci_high": 0.15', '"ci_high": Infinity', 1))


def _set_overflow(path: Path) -> None:  # 1e999 parses to inf in Python's json without parse_constant
    text = path.read_text()
    new = text.replace('"ci_high": 0.15', '"ci_high": 1e999', 1)
    assert new != text
    path.write_text(new)


def _tamper_sidecar(path: Path) -> None:
    side = path.with_name("r.items.jsonl")
    side.write_text(side.read_text().replace("0.7", "0.9"))


CASES: list[tuple[str, Any, str]] = [
    ("missing field", lambda p: _edit_json(p, lambda d: d.pop("run")), "run"),
    ("missing nested field", lambda p: _edit_json(p, lambda d: d["members"][0].pop("name")), "members.0.name"),
    ("wrong type", lambda p: _edit_json(p, lambda d: d["members"][0].update(params_total="big")), "params_total"),
    ("NaN", _set_nan, "NaN"),
    ("Infinity", _set_infinity, "Infinity"),
    ("newer major version", lambda p: _edit_json(p, lambda d: d.update(schema_version="2.0.0")), "newer"),
    ("malformed version", lambda p: _edit_json(p, lambda d: d.update(schema_version="one")), "schema_version"),
    ("missing version", lambda p: _edit_json(p, lambda d: d.pop("schema_version")), "schema_version"),
    ("not an object", lambda p: p.write_text("[1, 2]"), "JSON object"),
    ("truncated", lambda p: p.write_text(p.read_text()[:200]), "strict-JSON"),
    ("sidecar checksum mismatch", _tamper_sidecar, "sha256"),
]


def test_a_missing_sidecar_is_no_error_and_one_note(tmp_path: Path, report: Report) -> None:
    """Issue 23 item 3: the report JSON alone (a model card's or CI artifact's copy) still reads; what is left
    out is said by one note, and a present sidecar gives none."""
    from riskaudit.reporting.report import missing_sidecar_note

    path = _write_valid(tmp_path, report)
    assert missing_sidecar_note(path, read_report(path)) is None
    path.with_name("r.items.jsonl").unlink()
    rep = read_report(path)
    note = missing_sidecar_note(path, rep)
    assert note is not None and "r.items.jsonl" in note and "unavailable" in note and "\n" not in note


@pytest.mark.parametrize(("case", "edit", "needle"), CASES, ids=[c[0] for c in CASES])
def test_invalid_reports_are_refused_with_one_line(
    tmp_path: Path, report: Report, case: str, edit: Any, needle: str
) -> None:
    path = _write_valid(tmp_path, report)
    edit(path)
    with pytest.raises(RiskauditError) as exc:
        read_report(path)
    msg = one_line(exc)
    assert needle in msg and str(path) in msg, msg


def test_overflowing_number_is_refused(tmp_path: Path, report: Report) -> None:
    path = _write_valid(tmp_path, report)
    _set_overflow(path)
    with pytest.raises(RiskauditError):
        read_report(path)


def test_write_refuses_nan(tmp_path: Path, report: Report) -> None:
    bad = report.model_copy(deep=True)
    bad.members[0].probes[0].metrics[0].value = float("nan")
    with pytest.raises(RiskauditError) as exc:
        write_report(bad, tmp_path / "bad.json")
    assert "NaN" in one_line(exc)
    assert not (tmp_path / "bad.json").exists()


# --------------------------------------------------------------------------------------------------
# Policy


def policy(toml: str, tmp_path: Path, name: str = "p.toml") -> Policy:
    p = tmp_path / name
    p.write_text(toml)
    return load_policy(p)


def test_level_rule_reports_each_violation_with_numbers(report: Report, tmp_path: Path) -> None:
    pol = policy(
        """
        [[rule]]
        name = "bias ceiling"
        metric = "stereotype_correlation_pearson"
        probe = "occupation_gender_pronoun"
        member = "largest"
        stat = "ci_high"
        max = 0.5
        [[rule]]
        metric = "stereotype_correlation_pearson"
        member = "smallest"
        max = 0.5
        """,
        tmp_path,
    )
    res = evaluate_policy(report, pol)
    assert res.checked == 2 and not res.passed and len(res.violations) == 1
    v = res.violations[0]
    assert (v.rule, v.rule_name, v.member, v.check) == (1, "bias ceiling", "m5", "ci_high")
    assert v.observed == pytest.approx(0.55) and v.value == pytest.approx(0.5) and v.limit == "≤ 0.5"
    assert "ci_high = 0.550 > max 0.5 (value 0.500 [0.450, 0.550]" in v.message and "m5 (largest)" in v.message


def test_member_selectors_and_min(report: Report, tmp_path: Path) -> None:
    pol = policy(
        """
        [[rule]]
        metric = "gap_magnitude"
        member = "all"
        stat = "ci_low"
        min = 0.2
        max = 0.5
        [[rule]]
        metric = "gap_magnitude"
        member = "m2"
        max = 0.25
        """,
        tmp_path,
    )
    res = evaluate_policy(report, pol)
    bad = {(v.rule, v.member) for v in res.violations}
    # ci_low per member: 0.15 (m1 < 0.2), 0.25, 0.35, 0.45, 0.55 (m5 > 0.5); m2's value 0.3 > 0.25
    assert bad == {(1, "m1"), (1, "m5"), (2, "m2")}
    assert res.checked == 6
    assert any("< min 0.2" in v.message for v in res.violations)


def test_patterns_match_literal_brackets_and_exclude(report: Report, tmp_path: Path) -> None:
    pol = policy(
        """
        [[rule]]
        metric = "stereotype_correlation_*"
        exclude = ["*[*"]
        max = 0.45
        [[rule]]
        metric = "stereotype_correlation_pearson[he_said]"
        max = 0.45
        """,
        tmp_path,
    )
    res = evaluate_policy(report, pol)
    hit = sorted((v.rule, v.metric) for v in res.violations)
    assert hit == [
        (1, "stereotype_correlation_pearson"),
        (1, "stereotype_correlation_spearman"),
        (2, "stereotype_correlation_pearson[he_said]"),
    ]


def test_trend_rules_use_the_slope_per_decade_of_flops(report: Report, tmp_path: Path) -> None:
    pol = policy(
        """
        [[rule]]
        metric = "stereotype_correlation_pearson"
        trend = "slope_per_decade"
        max = 0.05
        [[rule]]
        metric = "stereotype_correlation_pearson"
        trend = "slope_ci_high"
        max = 0.5
        """,
        tmp_path,
    )
    res = evaluate_policy(report, pol)
    assert res.checked == 2 and len(res.violations) == 1
    v = res.violations[0]
    assert v.check == "slope_per_decade (FLOPs)" and v.observed == pytest.approx(0.1) and v.member is None
    assert v.ci_low is not None and v.ci_high is not None and v.ci_low < 0.1 < v.ci_high
    assert "per decade of FLOPs = +0.1000 > max 0.05 (slope +0.1000 [+0.0841, +0.1170]" in v.message


def test_fail_on_flags(report: Report, tmp_path: Path) -> None:
    assert report.analysis is not None
    verdicts = {(a.probe, a.metric): a.verdict for a in report.analysis.metrics}
    assert verdicts[(MEMO, "canary_exact_extraction")] == "abrupt (likely metric artifact)"
    assert verdicts[(PRONOUN, "stereotype_correlation_pearson")] == "smooth"
    artifact = evaluate_policy(
        report, policy('[[rule]]\nmetric = "canary_exact_extraction"\nfail_on = ["metric_artifact"]', tmp_path)
    )
    assert [v.check for v in artifact.violations] == ["metric_artifact"]
    assert "risk jumps up between m4 → m5" in artifact.violations[0].message
    res = evaluate_policy(report, policy('[[rule]]\nmetric = "*"\nfail_on = ["abrupt", "surprise"]', tmp_path))
    assert res.checked == 2 * len(report.analysis.metrics)
    genuine = {a.metric for a in report.analysis.metrics if a.verdict == "abrupt" and (a.abruptness.net or 0) > 0}
    assert {v.metric for v in res.violations if v.check == "abrupt"} == genuine


def test_abrupt_rise_fails_and_abrupt_drop_does_not(tmp_path: Path) -> None:
    pol = policy('[[rule]]\nmetric = "gap_magnitude"\nfail_on = ["abrupt"]', tmp_path)
    rise = make_report(with_values("gap_magnitude", [0.0, 0.0, 0.0, 0.0, 0.8], 0.02))
    drop = make_report(with_values("gap_magnitude", [0.8, 0.0, 0.0, 0.0, 0.0], 0.02))
    for rep in (rise, drop):
        assert rep.analysis is not None
        a = next(a for a in rep.analysis.metrics if a.metric == "gap_magnitude")
        assert a.verdict == "abrupt"
    (v,) = evaluate_policy(rise, pol).violations
    assert v.check == "abrupt" and "m4 → m5" in v.message
    res = evaluate_policy(drop, pol)
    assert res.passed and res.checked == 1


def test_surprise_fails_only_above_the_prediction(tmp_path: Path) -> None:
    pol = policy('[[rule]]\nmetric = "gap_magnitude"\nfail_on = ["surprise"]', tmp_path)
    above = make_report(with_values("gap_magnitude", [0.1, 0.2, 0.3, 0.4, 0.9], 0.01))
    below = make_report(with_values("gap_magnitude", [0.1, 0.2, 0.3, 0.4, 0.1], 0.01))
    for rep in (above, below):
        assert rep.analysis is not None
        assert next(a for a in rep.analysis.metrics if a.metric == "gap_magnitude").predictability.surprise
    (v,) = evaluate_policy(above, pol).violations
    assert v.check == "surprise" and v.observed == pytest.approx(0.9) and "above the 95% prediction" in v.message
    assert evaluate_policy(below, pol).passed


def test_metric_lists(report: Report, tmp_path: Path) -> None:
    res = evaluate_policy(report, policy('[[rule]]\nmetric = ["gap_magnitude", "male_default"]\nmax = 0.55', tmp_path))
    assert res.checked == 2 and [v.metric for v in res.violations] == ["gap_magnitude"]
    with pytest.raises(RiskauditError) as exc:
        evaluate_policy(report, policy('[[rule]]\nmetric = ["gap_magnitude", "nope"]\nmax = 1', tmp_path))
    assert "metric 'nope'" in one_line(exc)
    with pytest.raises(RiskauditError):
        policy("[[rule]]\nmetric = []\nmax = 1", tmp_path)


def test_unknown_metric_probe_member_are_one_line_errors(report: Report, tmp_path: Path) -> None:
    with pytest.raises(RiskauditError) as exc:
        evaluate_policy(report, policy('[[rule]]\nmetric = "stereotype_corelation_pearson"\nmax = 1', tmp_path))
    msg = one_line(exc)
    assert "'stereotype_corelation_pearson' is not in the report" in msg and "did you mean" in msg
    with pytest.raises(RiskauditError) as exc:
        evaluate_policy(report, policy('[[rule]]\nmetric = "x"\nprobe = "nope"\nmax = 1', tmp_path))
    assert "probe 'nope'" in one_line(exc)
    with pytest.raises(RiskauditError) as exc:
        evaluate_policy(report, policy('[[rule]]\nmetric = "gap_magnitude"\nmember = "m9"\nmax = 1', tmp_path))
    assert "member 'm9'" in one_line(exc)
    res = evaluate_policy(report, policy('[[rule]]\nmetric = "not_there"\noptional = true\nmax = 1', tmp_path))
    assert res.passed and res.checked == 0 and "optional" in res.skipped[0]


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[[rule]]\nmetric = "a"\nmaxx = 1', "[[rule]] #1: maxx: unknown key"),
        ('[[rule]]\nmetric = "a"', "needs min and/or max"),
        ('[[rule]]\nmetric = "a"\nfail_on = ["abrupt"]\nmax = 1', "fail_on rule takes no max"),
        ('[[rule]]\nmetric = "a"\ntrend = "slope_per_decade"\nmember = "all"\nmax = 1', "takes no member"),
        ('[[rule]]\nmetric = "a"\nstat = "median"\nmax = 1', "stat"),
        ('[[rule]]\nmetric = "a"\nmin = 2\nmax = 1', "min 2 is above max 1"),
        ('[[rule]]\nmetric = "a"\nfail_on = ["weird"]', "fail_on"),
        ('[[rule]]\nmetric = "a"\nmax = nan', "finite"),
        ("name = 'x'", "rule: Field required"),
        ("rule = [", "invalid TOML"),
    ],
)
def test_bad_policies_are_one_line_errors(tmp_path: Path, toml: str, needle: str) -> None:
    with pytest.raises(RiskauditError) as exc:
        policy(toml, tmp_path)
    msg = one_line(exc)
    assert needle in msg and "p.toml" in msg, msg


def test_policy_in_pyproject(report: Report, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        """
        [project]
        name = "x"
        [tool.riskaudit]
        other_setting = "ignored by the policy"
        name = "release gate"
        [[tool.riskaudit.rule]]
        metric = "stereotype_correlation_pearson"
        stat = "ci_high"
        max = 0.9
        """
    )
    found = find_policy(tmp_path)
    assert found == tmp_path / "pyproject.toml"
    pol = load_policy(found)
    assert pol.name == "release gate" and len(pol.rules) == 1
    assert evaluate_policy(report, pol).passed
    (tmp_path / "pyproject.toml").write_text('[tool.riskaudit]\nx = 1\n[[tool.riskaudit.rule]]\nmetric = "a"\n')
    with pytest.raises(RiskauditError) as exc:
        load_policy(tmp_path / "pyproject.toml")
    assert "[tool.riskaudit]: [[rule]] #1: a rule needs min and/or max" in one_line(exc)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_policy(tmp_path) is None
    with pytest.raises(RiskauditError):
        load_policy(tmp_path / "pyproject.toml")


def test_skips_and_fail_on_skipped(tmp_path: Path) -> None:
    rep = make_report(analyse=False)
    rep.members[4] = rep.members[4].model_copy(update={"status": "failed", "error": "boom", "probes": []})
    toml = """
        [[rule]]
        metric = "gap_magnitude"
        max = 1
        [[rule]]
        metric = "gap_magnitude"
        trend = "slope_per_decade"
        max = 1
    """
    res = evaluate_policy(rep, policy(toml, tmp_path))
    assert res.passed and res.checked == 0
    assert any("m5 (largest)" in s and "failed" in s for s in res.skipped)
    assert any("no analysis" in s for s in res.skipped)
    strict = evaluate_policy(rep, policy("fail_on_skipped = true\n" + toml, tmp_path))
    assert not strict.passed and len(strict.violations) == 2 and not strict.skipped


def test_rendering_helpers(report: Report, tmp_path: Path) -> None:
    pol = policy('[[rule]]\nmetric = "stereotype_correlation_pearson[he_said]"\nmember = "all"\nmax = 0.2', tmp_path)
    res = evaluate_policy(report, pol)
    console = Console(record=True, width=200)
    console.print(violations_table(res))
    console.print(skipped_table(res))
    text = console.export_text()
    assert "stereotype_correlation_pearson[he_said]" in text and "m5" in text
    assert policy_summary(res).startswith("FAIL: policy") and "3 violation(s)" in policy_summary(res)


def test_example_policies_parse_and_fit_a_report_with_todays_metric_names(report: Report) -> None:
    for name in ("policy.toml", "policy-strict.toml"):
        pol = load_policy(EXAMPLES / name)
        evaluate_policy(report, pol)  # no unknown-metric error on a report with the pronoun and memorization names


@pytest.mark.skipif(not DEMO_REPORT.exists(), reason="reports/demo.json not built yet")
def test_example_policies_on_the_demo_report() -> None:
    demo = read_report(DEMO_REPORT)
    assert evaluate_policy(demo, load_policy(EXAMPLES / "policy.toml")).passed
    assert not evaluate_policy(demo, load_policy(EXAMPLES / "policy-strict.toml")).passed


def test_parse_policy_from_a_mapping() -> None:
    pol = parse_policy({"rule": [{"metric": "*", "fail_on": ["surprise"]}]})
    assert pol.rules[0].kind == "flags"


# --------------------------------------------------------------------------------------------------
# Diff


def test_diff_of_identical_reports_is_empty(report: Report) -> None:
    d = diff_reports(report, report)
    assert not d.metrics and not d.flags and not d.trends and not d.regressions
    assert d.compared == 5 * len(SPECS) and d.without_ci == 0
    assert diff_summary(d)[-1] == "result: no regression (exit 0)"


def test_diff_direction_aware_changes_and_regressions() -> None:
    base = make_report(analyse=False)
    specs = with_values("stereotype_correlation_pearson", [0.1, 0.2, 0.3, 0.4, 0.8])  # m5 worse beyond CI
    specs = [
        (*s[:7], [0.2, 0.3, 0.4, 0.5, 0.3], s[8]) if s[1] == "gap_magnitude" else s  # m5 better
        for s in specs
    ]
    specs = [(*s[:7], [-0.2, -0.3, -0.3, -0.4, 0.5], s[8]) if s[1] == "male_default" else s for s in specs]
    specs = [(*s[:7], [0.1, 0.2, 0.3, 0.4, 0.55], s[8]) if s[1] == "stereotype_slope" else s for s in specs]
    new = make_report(specs, analyse=False)
    new.members.append(_member(4, specs, name="m6"))
    new.members.pop(0)
    d = diff_reports(base, new)
    got = {(m.member, m.metric): m.change for m in d.metrics}
    assert got == {
        ("m5", "stereotype_correlation_pearson"): "worse",
        ("m5", "gap_magnitude"): "better",
        ("m5", "male_default"): "changed",  # −0.5 → +0.5: same distance from the baseline
    }  # stereotype_slope 0.5 → 0.55: CIs overlap, not a change
    assert d.members_added == ["m6"] and d.members_removed == ["m1"]
    assert len(d.regressions) == 1
    assert "stereotype_correlation_pearson: 0.500 [0.450, 0.550] → 0.800" in d.regressions[0]
    console = Console(record=True, width=200)
    console.print(diff_table(d))
    assert "worse" in console.export_text()


def test_diff_flags_new_abrupt_and_changed_probes() -> None:
    base = make_report()
    new = make_report(with_values("gap_magnitude", [0.0, 0.0, 0.0, 0.0, 0.8], 0.02))
    new.probes[0] = new.probes[0].model_copy(update={"content_hash": "other"})
    d = diff_reports(base, new)
    flag = next(f for f in d.flags if f.metric == "gap_magnitude" and f.flag == "verdict")
    assert (flag.base, flag.new, flag.regression) == ("smooth", "abrupt", True)
    assert any("verdict 'smooth' → 'abrupt'" in r for r in d.regressions)
    assert d.probes_changed == [PRONOUN] and any("probe definitions changed" in n for n in d.notes)


# --------------------------------------------------------------------------------------------------
# Model card


def test_card_section_and_model_index_load_back(report: Report) -> None:
    card = build_card(report, report_ref="reports/toy.json", report_sha256="ab" * 32)
    text = str(card)
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    section = card_section(report, "reports/toy.json", "ab" * 32)
    assert section in text
    assert "| `stereotype_correlation_pearson` | ↑ (baseline 0) | 0.100 [0.050, 0.150] |" in section  # numbers.estimate
    assert "**abrupt (up), likely a metric artifact**" in section and "`canary_exact_extraction`" in section
    assert "riskaudit 0.1.0" in section and "torch 2.4.0" in section and "ab" * 32 in section
    assert "[he_said]" not in section  # breakdowns stay in the report

    loaded = ModelCard(text)
    data = loaded.data
    assert isinstance(data, ModelCardData)
    results = data.eval_results
    assert data.model_name == "m5" and results
    by_metric = {r.metric_type: r for r in results}
    assert by_metric["stereotype_correlation_pearson"].metric_value == pytest.approx(0.5)
    assert by_metric["canary_exact_extraction"].dataset_type == f"riskaudit/{MEMO}"
    assert by_metric["canary_exact_extraction"].dataset_revision == f"hash-{MEMO}"
    assert all(r.source_name == SOURCE_NAME for r in results)
    assert text.startswith("---\nmodel-index:\n- name: m5\n")


def test_card_into_existing_readme_replaces_in_place(report: Report, tmp_path: Path) -> None:
    rep_path = tmp_path / "reports" / "toy.json"
    write_report(report, rep_path)
    readme = tmp_path / "README.md"
    readme.write_text(
        """---
license: apache-2.0
model-index:
- name: my-model
  results:
  - task:
      type: text-generation
    dataset:
      name: Other Bench
      type: other/bench
    metrics:
    - type: accuracy
      value: 0.7
---
# my-model

Intro written by hand.

<!-- riskaudit:begin -->
stale section
<!-- riskaudit:end -->

## Limitations

Also by hand.
"""
    )
    update_card_file(readme, report, rep_path)
    first = readme.read_text()
    update_card_file(readme, report, rep_path)
    assert readme.read_text() == first  # idempotent
    assert "stale section" not in first and first.count(END) == 1
    assert "Intro written by hand." in first and first.index("## Limitations") > first.index(END)
    assert "[`reports/toy.json`](reports/toy.json)" in first
    loaded = ModelCard.load(readme)
    assert loaded.data.license == "apache-2.0" and loaded.data.model_name == "my-model"
    sources = [r.source_name for r in loaded.data.eval_results]
    assert sources.count(None) == 1 and sources.count(SOURCE_NAME) > 5  # the hand-written result is kept


def test_card_into_new_or_plain_file(report: Report, tmp_path: Path) -> None:
    card = tmp_path / "sub" / "CARD.md"
    update_card_file(card, report, member="m3", model_name="toy-m3")
    loaded = ModelCard.load(card)
    assert loaded.data.model_name == "toy-m3"
    vals = {r.metric_type: r.metric_value for r in loaded.data.eval_results}
    assert vals["stereotype_correlation_pearson"] == pytest.approx(0.3)
    plain = tmp_path / "PLAIN.md"
    plain.write_text("# Plain card\n\nNo metadata.\n")
    update_card_file(plain, report)
    text = plain.read_text()
    assert text.startswith("---\n") and "# Plain card" in text and text.count(BEGIN) == 1
    assert ModelCard.load(plain).data.eval_results
    plain.write_text(text + "\n" + BEGIN + "\n")
    with pytest.raises(RiskauditError) as exc:
        update_card_file(plain, report)
    assert "markers" in one_line(exc)
    with pytest.raises(RiskauditError):
        update_card_file(tmp_path / "x.md", report, member="nobody")


# --------------------------------------------------------------------------------------------------
# Plots


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", head[16:24])
    return int(w), int(h)


def test_plots_one_png_per_metric_with_a_value(report: Report, tmp_path: Path) -> None:
    rep = report.model_copy(deep=True)
    for m in rep.members:  # a metric that no member could compute: no plot
        m.probes[0].metrics.append(
            MetricResult(name="undefined", value=None, n_items=0, direction="higher_is_riskier", baseline=0,
                         kind="continuous")
        )  # fmt: skip
    paths = plot_report(rep, tmp_path / "plots", dpi=50)
    assert len(paths) == len(SPECS) and len(set(paths)) == len(paths)
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000
    sizes = {p.name: _png_size(p) for p in paths}
    two = sizes[plot_filename(MEMO, "canary_exact_extraction")]
    one = sizes[plot_filename(PRONOUN, "gap_magnitude")]
    assert two[0] > 1.5 * one[0]  # discrete + continuous companion side by side
    assert plot_filename(PRONOUN, "stereotype_correlation_pearson[he_said]").endswith(".png")
    assert "[" not in plot_filename(MEMO, "canary_exact_extraction[dup=32]")
    assert len(plot_report(rep, tmp_path / "few", dpi=40, breakdowns=False)) == len(SPECS) - 2
