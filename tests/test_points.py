"""External results (CSV) and scan results → metric series for the scaling analysis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from riskaudit.analysis.family import analyze_families
from riskaudit.analysis.metric import MetricResult
from riskaudit.analysis.points import read_points_csv
from riskaudit.analysis.scan_series import MemberPoint, series_from_scan
from riskaudit.errors import RiskauditError
from riskaudit.reporting.reanalysis import series_from_report
from riskaudit.reporting.render_analysis import analysis_json
from riskaudit.reporting.report import FamilyInfo, MemberReport, ProbeOutcome, Report, RunMetadata

HEADER = "family,member,params,tokens,metric,value,flops,n,ci_low,ci_high,baseline,kind,companion\n"
PYTHIA = [("70m", "70M"), ("160m", "160M"), ("410m", "410M"), ("1b", "1B"), ("1.4b", "1.4B"), ("2.8b", "2.8B")]


def write(tmp_path: Path, text: str, name: str = "points.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def good_csv() -> str:
    rows = [HEADER]
    em = [0.001, 0.003, 0.01, 0.03, 0.2, 0.6]
    lp = [-0.30, -0.25, -0.20, -0.15, -0.12, -0.08]
    for (m, p), e, lpv in zip(PYTHIA, em, lp, strict=True):
        rows.append(f"pythia,{m},{p},299892736000,exact,{e},,1000,,,0,discrete,logprob\n")
        rows.append(f"pythia,{m},{p},299892736000,logprob,{lpv},,,{lpv - 0.01},{lpv + 0.01},,continuous,\n")
    # a second family: FLOPs given for one member, tokens unknown (NA) for another, one value missing
    rows.append("mine,a,1e8,1e10,bias,0.10,,,0.08,0.12,,,\n")
    rows.append("mine,b,1e9,1e10,bias,NA,,,,,,,\n")
    rows.append("mine,c,1e10,NA,bias,0.30,7e20,,0.28,0.32,,,\n")
    rows.append("mine,d,1e11,1e10,bias,0.50,,,0.47,0.53,,,\n")
    return "".join(rows)


def test_happy_path(tmp_path: Path) -> None:
    series = read_points_csv(write(tmp_path, good_csv()))
    assert [(s.family, s.metric) for s in series] == [("pythia", "exact"), ("pythia", "logprob"), ("mine", "bias")]
    exact, logprob, bias = series
    assert exact.members == [m for m, _ in PYTHIA]
    assert exact.params[0] == 70e6 and exact.tokens[0] == 299_892_736_000
    assert exact.flops[0] == pytest.approx(6 * 70e6 * 299_892_736_000)  # 6·N·D
    assert exact.kind == "discrete" and exact.companion == "logprob" and exact.n_items == [1000] * 6
    assert exact.ci_low is None and logprob.ci_low == pytest.approx([v - 0.01 for v in logprob.values])  # type: ignore[operator]
    assert logprob.kind == "continuous" and logprob.n_items is None
    assert bias.values == [0.10, None, 0.30, 0.50]
    assert bias.flops == [pytest.approx(6e18), pytest.approx(6e19), 7e20, pytest.approx(6e21)]
    assert bias.tokens[2] is None

    fas = analyze_families(series)
    doc = analysis_json(fas)
    json.dumps(doc, allow_nan=False)
    by = {(r["family"], r["metric"]): r for r in doc["results"]}
    assert by[("pythia", "exact")]["resampling"] == "binomial"
    assert by[("pythia", "logprob")]["resampling"] == "normal from CI"
    assert by[("pythia", "exact")]["companion"] == "logprob"
    assert by[("mine", "bias")]["n_members"] == 3  # the NA value is left out
    assert by[("mine", "bias")]["slope_per_decade_flops"]["slope"] > 0


def test_flops_missing_falls_back_to_params(tmp_path: Path) -> None:
    text = "family,member,params,tokens,metric,value\n" + "".join(
        f"f,m{i},{10 ** (8 + i)},NA,r,{0.1 * i}\n" for i in range(5)
    )
    (s,) = read_points_csv(write(tmp_path, text))
    assert s.flops == [None] * 5
    (fa,) = analyze_families([s])
    a = fa.metrics[0]
    assert a.x_axis == "params" and a.growth_flops is None and a.growth_params is not None
    assert a.growth_params.slope == pytest.approx(0.1)


MALFORMED: list[tuple[str, str, int, str, str]] = [
    # (id, csv text, row, column, phrase)
    (
        "params not a number",
        "family,member,params,tokens,metric,value\nf,a,1e9,1e10,m,0.1\nf,b,abc,1e10,m,0.2\n",
        3,
        "params",
        "'abc' is not a number",
    ),
    ("params zero", "family,member,params,tokens,metric,value\nf,a,0,1e10,m,0.1\n", 2, "params", "must be > 0"),
    (
        "params with junk",
        "family,member,params,tokens,metric,value\nf,a,70M params,1e10,m,0.1\n",
        2,
        "params",
        "not a number",
    ),
    ("tokens negative", "family,member,params,tokens,metric,value\nf,a,1e9,-5,m,0.1\n", 2, "tokens", "≥ 0"),
    (
        "value not a number",
        "family,member,params,tokens,metric,value\nf,a,1e9,1e10,m,0.1\nf,b,1e9,1e10,m,x\n",
        3,
        "value",
        "'x' is not a number",
    ),
    ("value infinite", "family,member,params,tokens,metric,value\nf,a,1e9,1e10,m,inf\n", 2, "value", "finite"),
    ("flops not positive", "family,member,params,tokens,metric,value,flops\nf,a,1e9,1e10,m,0.1,0\n", 2, "flops", "> 0"),
    ("n not whole", "family,member,params,tokens,metric,value,n\nf,a,1e9,1e10,m,0.1,12.5\n", 2, "n", "whole"),
    (
        "n with value > 1",
        "family,member,params,tokens,metric,value,n\nf,a,1e9,1e10,m,3.5,100\n",
        2,
        "value",
        "proportion",
    ),
    (
        "ci reversed",
        "family,member,params,tokens,metric,value,ci_low,ci_high\nf,a,1e9,1e10,m,0.1,0.3,0.2\n",
        2,
        "ci_low",
        "above ci_high",
    ),
    (
        "ci half",
        "family,member,params,tokens,metric,value,ci_low,ci_high\nf,a,1e9,1e10,m,0.1,0.05,\n",
        2,
        "ci_high",
        "go together",
    ),
    ("kind bad", "family,member,params,tokens,metric,value,kind\nf,a,1e9,1e10,m,0.1,binary\n", 2, "kind", "not one of"),
    (
        "direction bad",
        "family,member,params,tokens,metric,value,direction\nf,a,1e9,1e10,m,0.1,up\n",
        2,
        "direction",
        "not one of",
    ),
    (
        "baseline bad",
        "family,member,params,tokens,metric,value,baseline\nf,a,1e9,1e10,m,0.1,half\n",
        2,
        "baseline",
        "not a number",
    ),
    ("empty member", "family,member,params,tokens,metric,value\nf,,1e9,1e10,m,0.1\n", 2, "member", "empty"),
    (
        "duplicate member",
        "family,member,params,tokens,metric,value\nf,a,1e9,1e10,m,0.1\nf,a,1e9,1e10,m,0.2\n",
        3,
        "member",
        "already has a value",
    ),
    (
        "params differ across metrics",
        "family,member,params,tokens,metric,value\nf,a,1e9,1e10,m,0.1\nf,a,2e9,1e10,q,0.2\n",
        3,
        "params",
        "differs",
    ),
    (
        "baseline differs across rows",
        "family,member,params,tokens,metric,value,baseline\nf,a,1e9,1e10,m,0.1,0\nf,b,2e9,1e10,m,0.2,0.5\n",
        3,
        "baseline",
        "differs",
    ),
    (
        "companion unknown",
        "family,member,params,tokens,metric,value,companion\nf,a,1e9,1e10,m,0.1,lp\n",
        2,
        "companion",
        "'lp' is not a metric of family 'f'",
    ),
    (
        "companion discrete",
        "family,member,params,tokens,metric,value,kind,companion\nf,a,1e9,1e10,m,0.1,discrete,q\n"
        "f,a,1e9,1e10,q,0.1,discrete,\n",
        2,
        "companion",
        "must be a continuous metric",
    ),
    ("too few fields", "family,member,params,tokens,metric,value\nf,a,1e9,1e10,m\n", 2, "value", "missing"),
    ("too many fields", "family,member,params,tokens,metric,value\nf,a,1e9,1e10,m,0.1,9\n", 2, "#7", "extra field"),
    ("missing column", "family,member,params,metric,value\nf,a,1e9,m,0.1\n", 1, "tokens", "required column"),
    (
        "unknown column",
        "family,member,params,tokens,metric,value,ci_lo\nf,a,1e9,1e10,m,0.1,0\n",
        1,
        "ci_lo",
        "unknown column",
    ),
    ("duplicate column", "family,member,params,tokens,metric,value,value\nf,a,1e9,1e10,m,0.1,0\n", 1, "value", "twice"),
]


@pytest.mark.parametrize(("text", "row", "column", "phrase"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_names_row_and_column(tmp_path: Path, text: str, row: int, column: str, phrase: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RiskauditError) as info:
        read_points_csv(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: row {row}, column '{column}': "), msg
    assert phrase in msg, msg


def test_blank_lines_keep_file_row_numbers(tmp_path: Path) -> None:
    text = "family,member,params,tokens,metric,value\n\nf,a,1e9,1e10,m,0.1\n\nf,b,1e9,1e10,m,oops\n"
    with pytest.raises(RiskauditError, match=r"row 5, column 'value': 'oops' is not a number"):
        read_points_csv(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "phrase"),
    [("", "row 1: empty file"), ("family,member,params,tokens,metric,value\n", "row 1: no data rows")],
)
def test_empty_files(tmp_path: Path, text: str, phrase: str) -> None:
    with pytest.raises(RiskauditError, match=phrase):
        read_points_csv(write(tmp_path, text))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(RiskauditError, match="no such file"):
        read_points_csv(tmp_path / "absent.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("family,member\nf,caf\xe9\n".encode("latin-1"))
    with pytest.raises(RiskauditError, match="not a UTF-8"):
        read_points_csv(bad)


# --------------------------------------------------------------------------------------------------
# From a scan


def _metric(name: str, value: float, kind: str = "continuous", companion: str | None = None) -> MetricResult:
    return MetricResult(
        name=name,
        value=value,
        ci_low=value - 0.02,
        ci_high=value + 0.02,
        n_items=60,
        direction="higher_is_riskier",
        baseline=0.5 if kind == "discrete" else 0.0,
        kind="discrete" if kind == "discrete" else "continuous",
        companion=companion,
    )


def test_series_from_scan_pairs_replicates_and_splits_checkpoints() -> None:
    rng = np.random.default_rng(0)
    members: list[MemberPoint | tuple[str, float | None, float | None, float | None]] = [
        MemberPoint(name="s", params=1e7, tokens=1e9, flops=6e16),
        MemberPoint(name="m@step100", params=1e8, tokens=1e8, flops=6e16, checkpoint_of="m", step=100),
        MemberPoint(name="m@step1000", params=1e8, tokens=1e9, flops=6e17, checkpoint_of="m", step=1000),
        ("l", 1e9, 1e9, 6e18),  # a plain tuple works as well
    ]
    values = [0.55, 0.6, 0.7, 0.9]
    metrics = [{"pronoun": [_metric("agree", v, "discrete", "corr"), _metric("corr", v - 0.5)]} for v in values]
    reps = [
        {"pronoun": {"agree": list(rng.normal(v, 0.01, 50)), "corr": list(rng.normal(v, 0.01, 50))}} for v in values
    ]
    out = series_from_scan("fam", members, metrics, reps)
    key = {(s.metric, s.axis, s.checkpoint_of): s for s in out}
    assert set(key) == {
        ("agree", "members", None),
        ("corr", "members", None),
        ("agree", "checkpoints", "m"),
        ("corr", "checkpoints", "m"),
    }
    fam = key[("agree", "members", None)]
    assert fam.members == ["s", "m@step1000", "l"]  # the checkpoint with the most tokens stands for "m"
    assert fam.values == [0.55, 0.7, 0.9] and fam.n_items == [60, 60, 60] and fam.companion == "corr"
    assert fam.replicates is not None and len(fam.replicates) == 50 and len(fam.replicates[0]) == 3
    assert fam.replicates[7][1] == reps[2]["pronoun"]["agree"][7]  # row b = resample b of every member
    assert key[("corr", "members", None)].n_items is None  # item counts only for discrete proportions
    assert key[("agree", "checkpoints", "m")].members == ["m@step100", "m@step1000"]
    # a member without replicates: no pairing, parametric draws from the CIs (said in a note)
    reps[0] = {}
    out2 = series_from_scan("fam", members, metrics, reps)
    s2 = next(s for s in out2 if s.metric == "agree" and s.axis == "members")
    assert s2.replicates is None and any("replicates missing" in n for n in s2.notes)
    with pytest.raises(ValueError):
        series_from_scan("fam", members, metrics[:2])


def test_series_from_report_and_failed_member() -> None:
    run = RunMetadata(
        riskaudit_version="0",
        python_version="3.11",
        platform="x",
        device="cpu",
        dtype="float32",
        seed=0,
        started_utc="2025-01-01T00:00:00Z",
    )

    def member(name: str, params: int, value: float | None) -> MemberReport:
        probes = (
            []
            if value is None
            else [
                ProbeOutcome(
                    probe_id="pronoun", probe_hash="h", metrics=[_metric("corr", value)], n_records=1, seconds=0.1
                )
            ]
        )
        return MemberReport(
            name=name,
            source="x",
            params_total=params,
            train_tokens=1e9,
            flops=6.0 * params * 1e9,
            status="ok" if value is not None else "failed",
            probes=probes,
        )

    report = Report(
        run=run,
        family=FamilyInfo(name="demo", flops_basis="total"),
        members=[member("a", 10**6, 0.1), member("b", 10**7, None), member("c", 10**8, 0.3), member("d", 10**9, 0.4)],
        probes=[],
    )
    (s,) = series_from_report(report)
    assert s.family == "demo" and s.members == ["a", "b", "c", "d"] and s.values == [0.1, None, 0.3, 0.4]
    assert s.replicates is None
    (fa,) = analyze_families([s])
    assert fa.metrics[0].n_members == 3 and fa.metrics[0].resampling == "normal from CI"


def test_seed_replicates_collapse_into_one_point_with_a_noise_estimate() -> None:
    """Members declared as seed replicates of one size (``replicate_of``) become one point (the mean value and
    the mean of their paired replicates); their spread beyond item noise is a model-to-model noise estimate."""
    rng = np.random.default_rng(1)
    members: list[MemberPoint | tuple[str, float | None, float | None, float | None]] = [
        MemberPoint(name="s", params=1e7, tokens=1e9, flops=6e16, replicate_of="s"),
        MemberPoint(name="s-seed1", params=1e7, tokens=1e9, flops=6e16, replicate_of="s"),
        MemberPoint(name="s-seed2", params=1e7, tokens=1e9, flops=6e16, replicate_of="s"),
        MemberPoint(name="m", params=1e8, tokens=1e9, flops=6e17),
        MemberPoint(name="l", params=1e9, tokens=1e9, flops=6e18),
    ]
    values = [0.50, 0.60, 0.70, 0.65, 0.80]
    metrics = [{"p": [_metric("corr", v)]} for v in values]
    reps = [{"p": {"corr": list(rng.normal(v, 0.01, 400))}} for v in values]
    (s,) = series_from_scan("fam", members, metrics, reps)
    assert s.members == ["s", "m", "l"] and s.values[0] == pytest.approx(0.60) and s.n_seeds == [3, 1, 1]
    assert s.replicates is not None
    assert s.replicates[5][0] == pytest.approx(np.mean([reps[k]["p"]["corr"][5] for k in range(3)]))
    (est,) = [e for e in s.noise_estimates if e.source == "seed replicates"]
    item_var = np.mean([np.var(reps[k]["p"]["corr"], ddof=1) for k in range(3)])
    assert est.df == 2 and est.sd == pytest.approx(np.sqrt(0.01 - item_var))  # sample variance of .5 .6 .7 = 0.01
    assert any("mean of 3 seed replicates" in n for n in s.notes)


def test_neighbouring_checkpoints_give_a_noise_estimate() -> None:
    members: list[MemberPoint | tuple[str, float | None, float | None, float | None]] = [
        MemberPoint(name="m@step90", params=1e8, tokens=0.95e9, flops=5.7e17, checkpoint_of="m", step=90),
        MemberPoint(name="m@step100", params=1e8, tokens=1e9, flops=6e17, checkpoint_of="m", step=100),
        MemberPoint(name="n@step50", params=1e9, tokens=0.5e9, flops=3e18, checkpoint_of="n", step=50),
        MemberPoint(name="n@step100", params=1e9, tokens=1e9, flops=6e18, checkpoint_of="n", step=100),
        MemberPoint(name="s", params=1e7, tokens=1e9, flops=6e16),
    ]
    values = [0.40, 0.46, 0.30, 0.70, 0.2]
    metrics = [{"p": [_metric("corr", v)]} for v in values]
    (s, *_) = series_from_scan("fam", members, metrics)
    assert s.axis == "members"
    (est,) = s.noise_estimates  # only m's last two checkpoints are neighbours (n's are 2× apart in tokens)
    item_var = (0.04 / (2 * 1.959963984540054)) ** 2  # from the ±0.02 CIs
    assert est.source == "neighbouring checkpoints" and est.df == 1
    assert est.sd == pytest.approx(np.sqrt(0.06**2 / 2 - item_var))
