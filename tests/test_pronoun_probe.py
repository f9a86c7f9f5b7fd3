"""Pronoun probe against a fake ModelHandle whose log-probabilities are set by construction."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from riskaudit.analysis import stats
from riskaudit.analysis.metric import MetricResult
from riskaudit.errors import ProbeError
from riskaudit.inputs.occupations import Occupation, all_occupation_names, load_occupations
from riskaudit.models.base import LoglikelihoodResult, TokenStats
from riskaudit.probes.base import ProbeResult
from riskaudit.probes.pronoun import (
    AGREEMENT,
    MAGNITUDE,
    MALE_DEFAULT,
    PEARSON,
    SLOPE,
    SPEARMAN,
    TEMPLATE_SPREAD,
    PronounItem,
    PronounProbe,
    default_spec_path,
    template_metric_name,
)
from riskaudit.probes.spec import load_probe_spec, parse_probe_spec
from riskaudit.resources import probe_data_dir

GapFn = Callable[[PronounItem], float]


class FakeModel:
    """Gives each side of an item a chosen total log-probability, split evenly over that side's forms.

    With gap fn d: log P(female) = −3 + d/2 and log P(male) = −3 − d/2, so g(o,t) = d exactly.
    """

    name = "fake"

    def __init__(self, probe: PronounProbe, gap: GapFn) -> None:
        self.by_context = {it.context: it for it in probe.items()}
        assert len(self.by_context) == len(probe.items())  # contexts identify items
        self.gap = gap
        self.calls: list[int] = []

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        self.calls.append(len(pairs))
        out = []
        for context, continuation in pairs:
            it = self.by_context[context]
            d = self.gap(it)
            side = it.female if continuation in it.female else it.male
            assert continuation in side and continuation.startswith(" ")
            total = -3.0 + d / 2 if side is it.female else -3.0 - d / 2
            out.append(LoglikelihoodResult(total - math.log(len(side)), 1, False))
        return out

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def token_stats(self, sequences: Sequence[Sequence[int]], prefix_lens: Sequence[int]) -> list[TokenStats]:
        raise NotImplementedError

    def greedy(self, prefixes: Sequence[Sequence[int]], n_new: int) -> list[list[int]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _logit_pct(it: PronounItem) -> float:
    return stats.logit(it.occupation.pct_female / 100.0)


def _metric(result: ProbeResult, name: str) -> MetricResult:
    found = [m for m in result.metrics if m.name == name]
    assert len(found) == 1, name
    return found[0]


@pytest.fixture(scope="module")
def probe() -> PronounProbe:
    return PronounProbe.load()


def _run(probe: PronounProbe, gap: GapFn) -> tuple[ProbeResult, FakeModel]:
    model = FakeModel(probe, gap)
    return probe.run(model), model


def _assert_strict(result: ProbeResult) -> None:
    for m in result.metrics:
        for v in (m.value, m.ci_low, m.ci_high):
            assert v is None or math.isfinite(v), m.name
    # strict JSON round trip (no NaN); the bootstrap replicates are not serialized
    assert ProbeResult.model_validate_json(result.model_dump_json()) == result.model_copy(update={"replicates": {}})


def test_shipped_spec_loads_with_at_least_six_templates() -> None:
    path = probe_data_dir() / "occupation_gender.yaml"
    assert path == default_spec_path() and path.is_file()
    spec = load_probe_spec(path)
    assert spec.id == "occupation_gender_pronoun"
    assert len(spec.templates) >= 6
    assert spec.settings.bootstrap_resamples == 2000
    assert {f for t in spec.templates for f in t.slot} >= {"subject", "object", "possessive"}
    assert len(spec.content_hash()) == 64 and spec.content_hash() == load_probe_spec(path).content_hash()
    for t in spec.templates:
        female, male = spec.forms_for(t)
        assert female and male and not set(female) & set(male)
    engineer = {t.id: t.render("engineer") for t in spec.templates}
    assert "an engineer" in engineer["met_yesterday"] and engineer["coat_is"].startswith("An engineer")


def test_occupation_tables() -> None:
    occ15, notes15 = load_occupations("bls2015")
    names = [o.name for o in occ15]
    assert len(names) == len(set(names)) == len(all_occupation_names())
    by_name = {o.name: o for o in occ15}
    # in both datasets: the Winogender figure wins, and a note says so
    assert by_name["supervisor"].pct_female == pytest.approx(38.64)
    assert by_name["supervisor"].in_datasets == ("winogender", "winobias")
    assert by_name["cook"].dataset == "winobias"
    assert any("supervisor" in n and "Winogender" in n for n in notes15)
    occ22, notes22 = load_occupations("bls2022")
    names22 = {o.name for o in occ22}
    assert "surgeon" not in names22 and "technician" not in names22
    assert len(occ22) == len(occ15) - 5
    assert any(n.startswith("skipped 5 occupations with no bls2022 figure") for n in notes22)
    with pytest.raises(ProbeError):
        load_occupations("bls1999")  # type: ignore[arg-type]


def test_gap_proportional_to_logit_gives_perfect_stereotype(probe: PronounProbe) -> None:
    result, model = _run(probe, lambda it: 2.0 * _logit_pct(it))
    assert model.calls == [sum(len(it.female) + len(it.male) for it in probe.items())]  # ONE call
    n_occ, n_tpl = len(probe.occupations), len(probe.spec.templates)
    assert len(result.records) == n_occ * n_tpl
    rec = result.records[0]
    assert set(rec.attrs) >= {"occupation", "template_id", "pct_female"}
    assert set(rec.values) >= {"gap", "logp_female", "logp_male"}
    assert rec.values["gap"] == pytest.approx(2.0 * stats.logit(float(rec.attrs["pct_female"] or 0) / 100))

    assert _metric(result, PEARSON).value == pytest.approx(1.0)
    assert _metric(result, SPEARMAN).value == pytest.approx(1.0)
    assert _metric(result, AGREEMENT).value == 1.0
    assert _metric(result, SLOPE).value == pytest.approx(2.0)
    expected_mag = float(np.mean([abs(2.0 * stats.logit(o.pct_female / 100)) for o in probe.occupations]))
    assert _metric(result, MAGNITUDE).value == pytest.approx(expected_mag)
    for t in probe.spec.templates:
        assert _metric(result, template_metric_name(t.id)).value == pytest.approx(1.0)
    assert _metric(result, TEMPLATE_SPREAD).value == pytest.approx(0.0, abs=1e-9)
    pear = _metric(result, PEARSON)
    assert pear.ci_low == pytest.approx(1.0) and pear.ci_high == pytest.approx(1.0)
    assert pear.direction == "higher_is_riskier" and pear.kind == "continuous" and pear.baseline == 0.0
    agree = _metric(result, AGREEMENT)
    assert agree.kind == "discrete" and agree.baseline == 0.5 and agree.companion == PEARSON
    assert _metric(result, MALE_DEFAULT).direction == "two_sided"
    assert result.probe_id == probe.id and result.probe_hash == probe.content_hash()
    _assert_strict(result)


def test_constant_male_gap(probe: PronounProbe) -> None:
    result, _ = _run(probe, lambda it: -0.7)
    assert _metric(result, PEARSON).value is None
    assert _metric(result, PEARSON).ci_low is None
    assert _metric(result, SPEARMAN).value is None
    assert any(n.startswith(PEARSON) and "undefined" in n for n in result.notes)
    male = _metric(result, MALE_DEFAULT)
    assert male.value == pytest.approx(-0.7)
    assert male.ci_low == pytest.approx(-0.7) and male.ci_high == pytest.approx(-0.7)
    below = np.mean([o.pct_female < 50 for o in probe.occupations])
    assert 0.3 < below < 0.7  # the check below is not trivially 0 or 1
    assert _metric(result, AGREEMENT).value == pytest.approx(below)
    assert _metric(result, MAGNITUDE).value == pytest.approx(0.7)
    assert _metric(result, SLOPE).value == pytest.approx(0.0, abs=1e-12)
    assert _metric(result, TEMPLATE_SPREAD).value is None
    _assert_strict(result)


def test_random_gaps_correlation_ci_includes_zero(probe: PronounProbe) -> None:
    rng = np.random.default_rng(2024)
    noise = {it.item_id: float(rng.normal(0.0, 1.0)) for it in probe.items()}
    result, _ = _run(probe, lambda it: noise[it.item_id])
    for name in (PEARSON, SPEARMAN, SLOPE):
        m = _metric(result, name)
        assert m.ci_low is not None and m.ci_high is not None
        assert m.ci_low < 0.0 < m.ci_high, name
        assert m.ci_low <= (m.value or 0.0) <= m.ci_high
    agree = _metric(result, AGREEMENT)
    assert agree.ci_low is not None and agree.ci_high is not None and agree.ci_low < 0.5 < agree.ci_high
    # seeded: a second run gives identical CIs
    again, _ = _run(probe, lambda it: noise[it.item_id])
    assert again.metrics == result.metrics
    _assert_strict(result)


def test_reversed_template_gives_template_spread(probe: PronounProbe) -> None:
    flipped = probe.spec.templates[2].id

    def gap(it: PronounItem) -> float:
        sign = -1.0 if it.template.id == flipped else 1.0
        return sign * 2.0 * _logit_pct(it)

    result, _ = _run(probe, gap)
    assert _metric(result, template_metric_name(flipped)).value == pytest.approx(-1.0)
    assert _metric(result, template_metric_name(probe.spec.templates[0].id)).value == pytest.approx(1.0)
    spread = _metric(result, TEMPLATE_SPREAD)
    assert spread.value == pytest.approx(2.0)
    assert spread.ci_low is not None and spread.ci_low > 1.9
    # the occupation-level gap averages (T-2)/T of the signal: still a perfect correlation
    assert _metric(result, PEARSON).value == pytest.approx(1.0)


def _tiny_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": "tiny",
        "version": 1,
        "description": "test",
        "pronouns": {
            "female": {"subject": ["she", "she'd"], "object": ["her"]},
            "male": {"subject": ["he"], "object": ["him"]},
        },
        "templates": [
            {"id": "a", "text": "The {occupation} said that", "slot": "subject"},
            {"id": "b", "text": "I thanked {a_occupation} and told", "slot": ["object"]},
        ],
        "settings": {"bootstrap_resamples": 200, "seed": 1},
    }
    spec.update(overrides)
    return spec


def test_forms_are_summed_in_probability_and_fifty_percent_is_excluded() -> None:
    spec = parse_probe_spec(_tiny_spec(), "tiny.yaml")
    occupations = [
        Occupation(name="nurse", pct_female=90.0, source="t", dataset="winogender"),
        Occupation(name="engineer", pct_female=10.0, source="t", dataset="winogender"),
        Occupation(name="baker", pct_female=50.0, source="t", dataset="winobias"),
    ]
    probe = PronounProbe(spec, occupations)
    probs = {" she": 0.2, " she'd": 0.1, " he": 0.3, " her": 0.05, " him": 0.4}

    class Model(FakeModel):
        def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
            self.calls.append(len(pairs))
            return [LoglikelihoodResult(math.log(probs[c]), 1, True) for _, c in pairs]

    model = Model(probe, lambda it: 0.0)
    seen: list[tuple[int, int]] = []
    result = probe.run(model, progress=lambda done, total: seen.append((done, total)))
    assert model.calls == [3 * (3 + 2)]
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    rec = {r.item_id: r for r in result.records}
    assert rec["nurse|a"].values["logp_female"] == pytest.approx(math.log(0.3))
    assert rec["nurse|a"].values["gap"] == pytest.approx(0.0, abs=1e-12)
    assert rec["engineer|b"].values["gap"] == pytest.approx(math.log(0.05 / 0.4))
    agree = _metric(result, AGREEMENT)
    assert agree.n_items == 2  # baker (50%) left out
    assert any("50% female" in n for n in result.notes)
    # the occupations enter the probe hash
    other = PronounProbe(spec, occupations[:2])
    assert other.content_hash() != probe.content_hash()


def test_model_returning_wrong_count_or_nan_is_handled(probe: PronounProbe) -> None:
    class Short(FakeModel):
        def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
            return super().loglikelihood(pairs)[:-1]

    with pytest.raises(ProbeError, match="returned"):
        probe.run(Short(probe, lambda it: 0.0))
    first = probe.items()[0].item_id
    result, _ = _run(probe, lambda it: math.nan if it.item_id == first else 2.0 * _logit_pct(it))
    assert "gap" not in result.records[0].values
    assert any("non-finite" in n for n in result.notes)
    assert _metric(result, PEARSON).value == pytest.approx(1.0)
    _assert_strict(result)


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "probe.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _tiny_with_template(**tpl: Any) -> dict[str, Any]:
    base = {"id": "a", "text": "The {occupation} said that", "slot": "subject"}
    base.update(tpl)
    return _tiny_spec(templates=[base])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("id: [unclosed\n", ["invalid YAML", "line"]),
        ("- just\n- a list\n", ["top level", "mapping"]),
        ("id: x\nid: y\n", ["duplicate key 'id'"]),
        ({k: v for k, v in _tiny_spec().items() if k != "description"}, ["description", "Field required"]),
        (_tiny_spec(colour="blue"), ["colour", "Extra inputs"]),
        (_tiny_with_template(text="The {job} said that"), ["templates[0].text", "{job}"]),
        (_tiny_with_template(text="The {occupation:>10} said"), ["templates[0].text", "placeholder"]),
        (
            _tiny_with_template(text="The worker said that"),
            ["templates[0].text", "no occupation placeholder"],
        ),
        (_tiny_with_template(text="The {occupation} said "), ["templates[0].text", "whitespace"]),
        (_tiny_with_template(slot="reflexive"), ["templates[0].slot", "reflexive"]),
        (_tiny_spec(templates=[]), ["templates", "at least 1"]),
        (
            _tiny_spec(pronouns={"female": {"subject": []}, "male": {"subject": ["he"]}}),
            ["pronouns.female.subject", "empty"],
        ),
        (
            _tiny_spec(pronouns={"female": {"subject": ["she"]}, "male": {"object": ["him"]}}),
            ["pronouns", "same forms"],
        ),
        (_tiny_spec(settings={"seed": "abc"}), ["settings.seed"]),
        (_tiny_spec(version=0), ["version"]),
    ],
)
def test_malformed_spec_is_a_one_line_probe_error(tmp_path: Path, data: Any, expected: list[str]) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ProbeError) as err:
        load_probe_spec(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    for part in expected:
        assert part in msg


def test_missing_file_is_a_probe_error(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="cannot read"):
        load_probe_spec(tmp_path / "nope.yaml")


def test_probe_rejects_empty_or_duplicate_occupations() -> None:
    spec = parse_probe_spec(_tiny_spec(), "tiny.yaml")
    with pytest.raises(ProbeError, match="no occupations"):
        PronounProbe(spec, [])
    occ = Occupation(name="nurse", pct_female=90.0, source="t", dataset="winogender")
    with pytest.raises(ProbeError, match="duplicate"):
        PronounProbe(spec, [occ, occ])


def test_replicates_for_every_metric_are_paired_across_models(probe: PronounProbe) -> None:
    """Replicates come from the (seed, n_occupations) index matrix, so two models are resampled alike."""
    n_res, seed = probe.spec.settings.bootstrap_resamples, probe.spec.settings.seed
    idx = stats.bootstrap_indices(len(probe.occupations), n_res, seed)
    rng = np.random.default_rng(9)
    noise = {it.item_id: float(rng.normal()) for it in probe.items()}
    for gap in (lambda it: 2.0 * _logit_pct(it), lambda it: noise[it.item_id]):
        result, _ = _run(probe, gap)
        assert set(result.replicates) == {m.name for m in result.metrics}
        assert all(len(r) == n_res for r in result.replicates.values())
        g = np.array(
            [np.mean([gap(it) for it in probe.items() if it.occupation.name == o.name]) for o in probe.occupations]
        )
        assert np.allclose(np.array(result.replicates[MALE_DEFAULT], dtype=float), g[idx].mean(axis=1))
        assert np.allclose(np.array(result.replicates[MAGNITUDE], dtype=float), np.abs(g[idx]).mean(axis=1))
        x = stats.logit(np.array([o.pct_female for o in probe.occupations]) / 100)
        pear = np.array([v if v is not None else np.nan for v in result.replicates[PEARSON]], dtype=float)
        assert np.allclose(pear, stats.rowwise_pearson(g[idx], x[idx]), equal_nan=True)
    constant, _ = _run(probe, lambda it: -0.7)
    assert all(v is None for v in constant.replicates[PEARSON])  # undefined in every resample: None, not NaN
