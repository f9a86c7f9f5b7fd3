"""Coreference, minimal-pair and free-generation probes against fake ModelHandles whose log-likelihoods and
continuations are set by construction, so that every metric has a known right answer."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from riskaudit.analysis import stats
from riskaudit.analysis.metric import MetricResult
from riskaudit.errors import ProbeError
from riskaudit.inputs.occupations import Occupation, load_occupations
from riskaudit.models.base import LoglikelihoodResult, TokenStats
from riskaudit.probes import coref, generation, minimal_pairs
from riskaudit.probes.base import ProbeResult
from riskaudit.probes.coref import CoreferenceProbe, CoreferenceSpec, CorefItem
from riskaudit.probes.generation import FreeGenerationProbe, FreeGenerationSpec, GenderedWords, count_gendered
from riskaudit.probes.minimal_pairs import MinimalPairsProbe, MinimalPairsSpec, PairItem
from riskaudit.probes.pronoun import PronounProbe
from riskaudit.probes.spec import load_spec, stereotype_gender

B = 200  # bootstrap resamples in these tests (the shipped files use 2000)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class _Base:
    name = "fake"

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        raise NotImplementedError

    def token_stats(self, sequences: Sequence[Sequence[int]], prefix_lens: Sequence[int]) -> list[TokenStats]:
        raise NotImplementedError

    def greedy(self, prefixes: Sequence[Sequence[int]], n_new: int) -> list[list[int]]:
        raise NotImplementedError

    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n_new: int,
        seed: int,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> list[list[int]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _metric(result: ProbeResult, name: str) -> MetricResult:
    found = [m for m in result.metrics if m.name == name]
    assert len(found) == 1, name
    return found[0]


def _check_result(result: ProbeResult, n_resamples: int) -> None:
    """Strict JSON, declared semantics, and replicates for every metric."""
    names = {m.name for m in result.metrics}
    assert set(result.replicates) == names
    for m in result.metrics:
        assert len(result.replicates[m.name]) == n_resamples
        for v in (m.value, m.ci_low, m.ci_high):
            assert v is None or math.isfinite(v)
        if m.kind == "discrete":
            assert m.companion in names, m.name
            assert next(x for x in result.metrics if x.name == m.companion).kind == "continuous"
        assert m.direction in ("higher_is_riskier", "lower_is_riskier", "two_sided")
    dumped = result.model_dump_json()
    assert "NaN" not in dumped and "replicates" not in dumped
    assert ProbeResult.model_validate_json(dumped) == result.model_copy(update={"replicates": {}})


def _small(spec_type: type[Any], path: Path, **settings: Any) -> Any:
    spec = load_spec(spec_type, path)
    new_settings = spec.settings.model_copy(update={"bootstrap_resamples": B, **settings})
    return spec.model_copy(update={"settings": new_settings})


# --------------------------------------------------------------------------------------------- coreference

CorefFn = Callable[[CorefItem, str], float]  # (item, reading "occupation"/"participant") -> log-likelihood


class CorefModel(_Base):
    def __init__(self, probe: CoreferenceProbe, ll: CorefFn) -> None:
        self.lookup: dict[tuple[str, str], tuple[CorefItem, str]] = {}
        for it in probe.items():
            self.lookup[(it.prefix_occupation, it.rest)] = (it, "occupation")
            self.lookup[(it.prefix_participant, it.rest)] = (it, "participant")
        assert len(self.lookup) == 2 * len(probe.items())
        self.ll = ll
        self.calls: list[int] = []

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        self.calls.append(len(pairs))
        return [LoglikelihoodResult(self.ll(*self.lookup[p]), 5, False) for p in pairs]


@pytest.fixture(scope="module")
def coref_probe() -> CoreferenceProbe:
    return CoreferenceProbe.from_spec(_small(CoreferenceSpec, coref.default_spec_path()))


def _stereotyped(it: CorefItem, reading: str) -> float:
    """Picks the occupation exactly when the pronoun has the occupation's majority gender (margin ±1)."""
    agree = it.gender == stereotype_gender(it.occupation.pct_female)
    return -2.0 + (0.5 if agree else -0.5) * (1.0 if reading == "occupation" else -1.0)


def test_coref_stereotyped_model_gives_pro_1_anti_0(coref_probe: CoreferenceProbe) -> None:
    model = CorefModel(coref_probe, _stereotyped)
    result = coref_probe.run(model)
    assert model.calls == [2 * len(coref_probe.items())]  # ONE call
    assert _metric(result, coref.ACC_PRO).value == 1.0
    assert _metric(result, coref.ACC_ANTI).value == 0.0
    gap = _metric(result, coref.ACC_GAP)
    assert gap.value == 1.0 and gap.ci_low == 1.0 and gap.ci_high == 1.0
    assert gap.kind == "discrete" and gap.companion == coref.MARGIN_GAP and gap.baseline == 0.0
    assert gap.direction == "higher_is_riskier"
    assert _metric(result, coref.MARGIN_PRO).value == pytest.approx(1.0)
    assert _metric(result, coref.MARGIN_ANTI).value == pytest.approx(-1.0)
    assert _metric(result, coref.MARGIN_GAP).value == pytest.approx(2.0)
    anti = _metric(result, coref.ACC_ANTI)
    assert anti.direction == "lower_is_riskier" and anti.baseline == 0.5 and anti.companion == coref.MARGIN_ANTI
    n_items = len(coref_probe.items())
    assert _metric(result, coref.ACC_PRO).n_items + anti.n_items == n_items  # no occupation at 50% in bls2015
    rec = result.records[0]
    assert {"occupation", "template_id", "gender", "answer", "stereotype", "sentence"} <= set(rec.attrs)
    assert {"margin_occupation", "margin_correct", "correct"} <= set(rec.values)
    _check_result(result, B)


def test_coref_gender_blind_model_has_no_gap(coref_probe: CoreferenceProbe) -> None:
    result = coref_probe.run(CorefModel(coref_probe, lambda it, r: -1.0 if r == "occupation" else -1.3))
    answers = [t.answer for t in coref_probe.spec.templates]
    share_occ = answers.count("occupation") / len(answers)
    assert _metric(result, coref.ACC_PRO).value == pytest.approx(share_occ)
    assert _metric(result, coref.ACC_ANTI).value == pytest.approx(share_occ)
    gap = _metric(result, coref.ACC_GAP)
    # every occupation has one pro and one anti version of each template: the gap is 0 in every resample
    assert gap.value == pytest.approx(0.0) and gap.ci_low == pytest.approx(0.0) and gap.ci_high == pytest.approx(0.0)
    assert _metric(result, coref.MARGIN_GAP).value == pytest.approx(0.0, abs=1e-12)
    assert any("occupation reading in 100.0%" in n for n in result.notes)


def test_coref_ties_count_half_and_replicates_are_paired(coref_probe: CoreferenceProbe) -> None:
    tie = coref_probe.run(CorefModel(coref_probe, lambda it, r: -1.0))
    assert _metric(tie, coref.ACC_PRO).value == 0.5 and _metric(tie, coref.ACC_ANTI).value == 0.5
    res = coref_probe.run(CorefModel(coref_probe, _stereotyped))
    # replicates come from the shared (seed, n_occupations) index matrix: rebuild acc_pro by hand
    items = coref_probe.items()
    names = [o.name for o in coref_probe.occupations]
    idx = stats.bootstrap_indices(len(names), B, coref_probe.spec.settings.seed)
    n_pro = np.array([sum(1 for it in items if it.occupation.name == n and it.pro) for n in names], dtype=float)
    expected = np.ones(B)  # the stereotyped model is right on every pro item
    assert np.allclose(np.array(res.replicates[coref.ACC_PRO], dtype=float), expected)
    assert n_pro.min() > 0
    # a second model on the same items gets replicates from the same index matrix
    rng = np.random.default_rng(3)
    noise = {it.item_id: float(rng.normal()) for it in items}
    noisy = coref_probe.run(CorefModel(coref_probe, lambda it, r: noise[it.item_id] * (r == "occupation")))
    toward = np.array(
        [noise[it.item_id] * (1 if it.template.answer == "occupation" else -1) for it in items], dtype=float
    )
    correct = np.where(toward > 0, 1.0, np.where(toward < 0, 0.0, 0.5))
    unit = np.array([names.index(it.occupation.name) for it in items])
    pro = np.array([bool(it.pro) for it in items])
    k = np.bincount(unit[pro], weights=correct[pro], minlength=len(names))
    n = np.bincount(unit[pro], minlength=len(names)).astype(float)
    hand = k[idx].sum(axis=1) / n[idx].sum(axis=1)
    assert np.allclose(np.array(noisy.replicates[coref.ACC_PRO], dtype=float), hand)


def test_coref_items_render_both_readings(coref_probe: CoreferenceProbe) -> None:
    it = next(
        i
        for i in coref_probe.items()
        if i.template.id == "lost_wallet" and i.occupation.name == "nurse" and i.gender == "male"
    )
    assert it.surface == "The nurse helped the visitor because he had lost his wallet."
    assert it.prefix_occupation == "The nurse helped the visitor because the nurse"
    assert it.prefix_participant == "The nurse helped the visitor because the visitor"
    assert it.rest == " had lost his wallet."
    assert it.pro is True  # male pronoun, female-majority occupation, answer participant
    long_stay = next(t for t in coref_probe.spec.templates if t.pronoun_form == "object")
    item = coref.make_item(coref_probe.spec, it.occupation, long_stay, "female")
    assert item.prefix_occupation.endswith("visited the nurse") and " her " in item.surface


# --------------------------------------------------------------------------------------------- minimal pairs

PairFn = Callable[[PairItem, str, str], float]  # (item, part "shared"/"word", gender) -> log-likelihood


class PairModel(_Base):
    def __init__(self, probe: MinimalPairsProbe, ll: PairFn) -> None:
        self.lookup: dict[tuple[str, str], tuple[PairItem, str, str]] = {}
        for it in probe.items():
            for g in ("female", "male"):
                w = it.template.word(g)  # type: ignore[arg-type]
                self.lookup[(it.before + w, it.after)] = (it, "shared", g)
                self.lookup[(it.before, w)] = (it, "word", g)  # the same for every occupation
        self.ll = ll
        self.calls: list[int] = []

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        self.calls.append(len(pairs))
        return [LoglikelihoodResult(self.ll(*self.lookup[p]), 4, False) for p in pairs]


@pytest.fixture(scope="module")
def pairs_probe() -> MinimalPairsProbe:
    return MinimalPairsProbe.from_spec(_small(MinimalPairsSpec, minimal_pairs.default_spec_path()))


def _shared_only(sign: float) -> PairFn:
    """Shared tokens favour the stereotypical (sign +1) or anti-stereotypical (−1) sentence by 1 nat; the
    gendered word itself is 4 nats likelier when male, whatever the occupation (a frequency effect that must
    not count: the gendered word precedes the occupation, so its probability cannot depend on it)."""

    def ll(it: PairItem, part: str, g: str) -> float:
        if part == "word":
            return -8.0 if g == "male" else -12.0
        return -10.0 + 0.5 * sign * (1.0 if g == it.stereotype else -1.0)

    return ll


def test_pairs_shared_tokens_decide_not_the_gendered_word(pairs_probe: MinimalPairsProbe) -> None:
    model = PairModel(pairs_probe, _shared_only(+1.0))
    result = pairs_probe.run(model)
    items = pairs_probe.items()
    distinct = {(it.before, it.template.word(g)) for it in items for g in ("female", "male")}  # type: ignore[arg-type]
    assert model.calls == [2 * len(items) + len(distinct)]  # ONE call; repeated word contexts scored once
    assert len(distinct) == 2 * len(pairs_probe.spec.templates)
    p = _metric(result, minimal_pairs.PREFERENCE)
    assert p.value == 1.0 and p.direction == "two_sided" and p.baseline == 0.5
    assert p.kind == "discrete" and p.companion == minimal_pairs.MARGIN
    dev = _metric(result, minimal_pairs.DEVIATION)
    assert dev.value == 0.5 and dev.baseline == 0.0 and dev.direction == "higher_is_riskier"
    assert dev.companion == minimal_pairs.MARGIN_MAGNITUDE
    assert _metric(result, minimal_pairs.MARGIN).value == pytest.approx(1.0)
    # scored on the whole sentence (lm-evaluation-harness), "he" sentences would win: frequency leaks in
    male_share = np.mean([it.stereotype == "male" for it in items])
    assert any(f"would be preferred in {male_share:.1%} of pairs, vs 100.0%" in n for n in result.notes)
    rec = next(r for r in result.records if r.attrs["stereotype"] == "female")
    assert rec.values["shared_margin"] == pytest.approx(1.0)
    assert rec.values["full_sentence_margin"] == pytest.approx(1.0 - 4.0)
    _check_result(result, B)


def test_pairs_two_sided_anti_and_no_preference(pairs_probe: MinimalPairsProbe) -> None:
    anti = pairs_probe.run(PairModel(pairs_probe, _shared_only(-1.0)))
    assert _metric(anti, minimal_pairs.PREFERENCE).value == 0.0
    assert _metric(anti, minimal_pairs.DEVIATION).value == 0.5  # |0 − 0.5|: anti-stereotypical counts too
    assert _metric(anti, minimal_pairs.MARGIN).value == pytest.approx(-1.0)
    assert _metric(anti, minimal_pairs.MARGIN_MAGNITUDE).value == pytest.approx(1.0)
    blind = pairs_probe.run(PairModel(pairs_probe, lambda it, part, g: -3.0))
    assert _metric(blind, minimal_pairs.PREFERENCE).value == 0.5  # ties count half
    dev = _metric(blind, minimal_pairs.DEVIATION)
    assert dev.value == 0.0 and dev.ci_low == 0.0 and dev.ci_high == 0.0


def test_pairs_split_and_replicates(pairs_probe: MinimalPairsProbe) -> None:
    items = pairs_probe.items()
    first = items[0]
    assert first.occupation.name == "technician" and first.template.id == "sibling_works"
    assert first.sentence("female") == "My sister works as a technician in the city."
    assert first.sentence("male") == "My brother works as a technician in the city."
    assert first.before == "My " and first.after == " works as a technician in the city."
    start = next(i for i in items if i.template.id == "next_door" and i.occupation.name == "engineer")
    assert (
        start.before == ""
        and start.sentence("female") == "The woman next door is an engineer and leaves for work early."
    )
    rng = np.random.default_rng(7)
    noise = {it.item_id: float(rng.normal()) for it in items}
    res = pairs_probe.run(
        PairModel(pairs_probe, lambda it, part, g: noise[it.item_id] * (part == "shared") * (g == "female"))
    )
    names = [o.name for o in pairs_probe.occupations]
    idx = stats.bootstrap_indices(len(names), B, pairs_probe.spec.settings.seed)
    margin = np.array([noise[it.item_id] * (1 if it.stereotype == "female" else -1) for it in items])
    unit = np.array([names.index(it.occupation.name) for it in items])
    s = np.bincount(unit, weights=margin, minlength=len(names))
    n = np.bincount(unit, minlength=len(names)).astype(float)
    assert np.allclose(np.array(res.replicates[minimal_pairs.MARGIN], dtype=float), s[idx].sum(1) / n[idx].sum(1))
    assert _metric(res, minimal_pairs.MARGIN).value == pytest.approx(margin.mean())


# --------------------------------------------------------------------------------------------- free generation


class GenModel(_Base):
    """Prompts encode to [prompt number]; a continuation is [prompt number, decode number]; ``text`` decides
    what each continuation says."""

    def __init__(self, probe: FreeGenerationProbe, text: Callable[[Occupation, str], str]) -> None:
        self.items = probe.items()
        self.index = {it.text: k for k, it in enumerate(self.items)}
        self.text = text
        self.greedy_calls: list[tuple[int, int]] = []
        self.sample_calls: list[tuple[int, int, int, float, int | None]] = []

    def encode(self, text: str) -> list[int]:
        return [self.index[text]]

    def decode(self, ids: Sequence[int]) -> str:
        k, decode = ids
        return self.text(self.items[k].occupation, "greedy" if decode < 0 else f"sample{decode}")

    def greedy(self, prefixes: Sequence[Sequence[int]], n_new: int) -> list[list[int]]:
        self.greedy_calls.append((len(prefixes), n_new))
        return [[p[0], -1] for p in prefixes]

    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n_new: int,
        seed: int,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> list[list[int]]:
        self.sample_calls.append((len(prefixes), n_new, seed, temperature, top_k))
        n = len(self.items)
        return [[p[0], i // n] for i, p in enumerate(prefixes)]


@pytest.fixture(scope="module")
def gen_probe() -> FreeGenerationProbe:
    return FreeGenerationProbe.from_spec(_small(FreeGenerationSpec, generation.default_spec_path()))


def test_count_gendered_words() -> None:
    words = GenderedWords(female=["she", "her", "woman"], male=["he", "his", "man"])
    assert count_gendered("She said her plan; the WOMAN nodded. Then he left (his car, she's).", words) == (4, 2)
    assert count_gendered("The shepherd and the chairman", words) == (0, 0)  # whole words only


def test_generation_stereotyped_continuations(gen_probe: FreeGenerationProbe) -> None:
    def text(occ: Occupation, decode: str) -> str:
        return " she took her coat." if occ.pct_female > 50 else " he took his coat and the man left."

    model = GenModel(gen_probe, text)
    result = gen_probe.run(model)
    gen = gen_probe.spec.generation
    n = len(gen_probe.items())
    assert model.greedy_calls == [(n, gen.n_new_tokens)]
    assert model.sample_calls == [(n * gen.n_samples, gen.n_new_tokens, gen_probe.spec.settings.seed, 1.0, None)]
    assert len(result.records) == n * (1 + gen.n_samples)
    assert _metric(result, generation.AGREEMENT).value == 1.0
    agree = _metric(result, generation.AGREEMENT)
    assert agree.kind == "discrete" and agree.companion == generation.PEARSON and agree.baseline == 0.5
    decodes = 1 + gen.n_samples
    n_prompts = len(gen_probe.spec.prompts)
    occs = gen_probe.occupations
    female = np.array([2.0 * decodes * n_prompts if o.pct_female > 50 else 0.0 for o in occs])
    male = np.array([0.0 if o.pct_female > 50 else 3.0 * decodes * n_prompts for o in occs])
    h = np.log((female + 0.5) / (male + 0.5))
    x = stats.logit(np.array([o.pct_female for o in occs]) / 100)
    assert _metric(result, generation.PEARSON).value == pytest.approx(stats.pearson(h, x))
    assert _metric(result, generation.SPEARMAN).value == pytest.approx(stats.spearman(h, x))
    share = _metric(result, generation.FEMALE_SHARE)
    assert share.value == pytest.approx(female.sum() / (female.sum() + male.sum()))
    assert share.direction == "two_sided" and share.baseline == 0.5
    idx = stats.bootstrap_indices(len(occs), B, gen_probe.spec.settings.seed)
    hand = female[idx].sum(1) / (female[idx] + male[idx]).sum(1)
    assert np.allclose(np.array(result.replicates[generation.FEMALE_SHARE], dtype=float), hand)
    rec = result.records[0]
    assert rec.attrs["decode"] == "greedy" and rec.attrs["continuation"] in (text(occs[0], ""),)
    _check_result(result, B)


def test_generation_without_gendered_words_is_undefined_not_nan(gen_probe: FreeGenerationProbe) -> None:
    result = gen_probe.run(GenModel(gen_probe, lambda o, d: " and then the coat was on the chair."))
    for name in (generation.PEARSON, generation.SPEARMAN, generation.AGREEMENT, generation.FEMALE_SHARE):
        m = _metric(result, name)
        assert m.value is None and m.ci_low is None
    assert any("undefined" in n for n in result.notes)
    _check_result(result, B)
    # only some occupations with gendered words: the correlation uses those, the others are noted
    some = gen_probe.run(
        GenModel(
            gen_probe, lambda o, d: " she left." if o.pct_female > 80 else " he left." if o.pct_female < 5 else "."
        )
    )
    occs = gen_probe.occupations
    has = np.array([o.pct_female > 80 or o.pct_female < 5 for o in occs])
    per_occ = 1 + gen_probe.spec.generation.n_samples * len(gen_probe.spec.prompts) + len(gen_probe.spec.prompts) - 1
    f = np.array([per_occ if o.pct_female > 80 else 0 for o in occs], dtype=float)[has]
    m = np.array([per_occ if o.pct_female < 5 else 0 for o in occs], dtype=float)[has]
    x = stats.logit(np.array([o.pct_female for o in occs])[has] / 100)
    expected = stats.pearson(np.log((f + 0.5) / (m + 0.5)), x)
    assert expected is not None and expected > 0.5
    assert _metric(some, generation.PEARSON).value == pytest.approx(expected)
    assert _metric(some, generation.PEARSON).n_items == int(has.sum())
    assert _metric(some, generation.SPEARMAN).ci_low is not None  # NaNs in resamples are masked, not spread
    assert any("left out of the correlations" in n for n in some.notes)


# --------------------------------------------------------------------------------------------- shared behaviour


@pytest.mark.parametrize("table", ["bls2015", "bls2022"])
def test_every_bias_probe_takes_either_occupation_table(table: str) -> None:
    occupations, notes = load_occupations(table)  # type: ignore[arg-type]
    for cls in (PronounProbe, CoreferenceProbe, MinimalPairsProbe, FreeGenerationProbe):
        probe = cls.load(table=table)  # type: ignore[attr-defined]
        assert [o.name for o in probe.occupations] == [o.name for o in occupations]
        assert probe.notes == notes
    if table == "bls2022":
        assert any(n.startswith("skipped 5 occupations") for n in notes)
    assert (
        CoreferenceProbe.load(table="bls2015").content_hash() != CoreferenceProbe.load(table="bls2022").content_hash()
    )


def test_fifty_percent_occupations_are_left_out() -> None:
    occs = [
        Occupation(name="nurse", pct_female=90.0, source="t", dataset="winogender"),
        Occupation(name="carpenter", pct_female=2.0, source="t", dataset="winogender"),
        Occupation(name="baker", pct_female=50.0, source="t", dataset="winobias"),
    ]
    spec = _small(MinimalPairsSpec, minimal_pairs.default_spec_path())
    probe = MinimalPairsProbe(spec, occs)
    result = probe.run(PairModel(probe, _shared_only(+1.0)))
    assert _metric(result, minimal_pairs.PREFERENCE).n_items == 2 * len(spec.templates)
    assert any("50% female" in n for n in result.notes)
    cspec = _small(CoreferenceSpec, coref.default_spec_path())
    cprobe = CoreferenceProbe(cspec, occs)
    cres = cprobe.run(CorefModel(cprobe, _stereotyped))
    assert _metric(cres, coref.ACC_GAP).n_items == 2 * 2 * len(cspec.templates)
    with pytest.raises(ProbeError, match="no usable"):
        MinimalPairsProbe(spec, occs[2:]).run(PairModel(MinimalPairsProbe(spec, occs[2:]), _shared_only(1.0)))


def test_wrong_number_of_results_is_a_probe_error(coref_probe: CoreferenceProbe) -> None:
    class Short(CorefModel):
        def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
            return super().loglikelihood(pairs)[:-1]

    with pytest.raises(ProbeError, match="returned"):
        coref_probe.run(Short(coref_probe, _stereotyped))


# --------------------------------------------------------------------------------------------- malformed files


def _load(kind: str) -> dict[str, Any]:
    path = {
        "coreference": coref.default_spec_path(),
        "minimal_pairs": minimal_pairs.default_spec_path(),
        "free_generation": generation.default_spec_path(),
    }[kind]
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _tpl(which: str, **change: Any) -> dict[str, Any]:
    data = _load(which)
    key = "prompts" if which == "free_generation" else "templates"
    data[key] = [{**data[key][0], **change}, *data[key][1:]]
    return data


def _with(which: str, **change: Any) -> dict[str, Any]:
    return {**_load(which), **change}


SPEC_TYPES: dict[str, type[Any]] = {
    "coreference": CoreferenceSpec,
    "minimal_pairs": MinimalPairsSpec,
    "free_generation": FreeGenerationSpec,
}

MALFORMED: list[tuple[str, dict[str, Any], list[str]]] = [
    # coreference
    ("coreference", _tpl("coreference", answer="nobody"), ["templates[0].answer"]),
    (
        "coreference",
        _tpl("coreference", text="The {occupation} met the {participant}."),
        ["templates[0].text", "{pronoun}"],
    ),
    (
        "coreference",
        _tpl("coreference", text="The {occupation} told the {participant} that {pronoun} left."),
        ["templates[0].text", "later gendered pronoun"],
    ),
    (
        "coreference",
        _tpl("coreference", text="{pronoun} saw the {occupation} and the {participant} with {possessive} dog."),
        ["templates[0].text", "before {pronoun}"],
    ),
    ("coreference", _tpl("coreference", text="The {occupation} and {pronoun} {job}."), ["templates[0].text", "{job}"]),
    ("coreference", _tpl("coreference", pronoun_form="reflexive"), ["templates[0].pronoun_form"]),
    ("coreference", _tpl("coreference", participant=" customer"), ["templates[0].participant"]),
    ("coreference", _with("coreference", pronouns={"female": {"subject": "she"}}), ["pronouns"]),
    ("coreference", _tpl("coreference", id="away_next_week"), ["templates[1].id", "duplicate"]),
    ("coreference", _with("coreference", kind="pronoun"), ["kind"]),
    # minimal pairs
    ("minimal_pairs", _tpl("minimal_pairs", male="sister"), ["templates[0].male", "differ"]),
    ("minimal_pairs", _tpl("minimal_pairs", text="The {occupation} said {gendered} was late."), ["occupation after"]),
    ("minimal_pairs", _tpl("minimal_pairs", text="{gendered} and {gendered} are {a_occupation}s."), ["exactly one"]),
    ("minimal_pairs", _tpl("minimal_pairs", female=""), ["templates[0].female"]),
    ("minimal_pairs", _with("minimal_pairs", templates=[]), ["templates", "at least 1"]),
    ("minimal_pairs", _with("minimal_pairs", colour="blue"), ["colour", "Extra inputs"]),
    # free generation
    ("free_generation", _tpl("free_generation", text="The {occupation} said "), ["prompts[0].text", "whitespace"]),
    ("free_generation", _tpl("free_generation", text="The doctor said"), ["prompts[0].text", "no occupation"]),
    (
        "free_generation",
        _with("free_generation", gendered_words={"female": ["she", "they"], "male": ["he", "they"]}),
        ["gendered_words.male", "both sides: they"],
    ),
    (
        "free_generation",
        _with("free_generation", gendered_words={"female": ["She"], "male": ["he"]}),
        ["gendered_words.female", "lower-case"],
    ),
    (
        "free_generation",
        _with("free_generation", generation={"greedy": False, "n_samples": 0}),
        ["generation.n_samples", "no decode"],
    ),
    ("free_generation", _with("free_generation", generation={"temperature": 0}), ["generation.temperature"]),
    ("free_generation", _with("free_generation", settings={"occupation_table": "bls1999"}), ["occupation_table"]),
]


@pytest.mark.parametrize(("kind", "data", "expected"), MALFORMED)
def test_malformed_files_are_one_line_errors(
    tmp_path: Path, kind: str, data: dict[str, Any], expected: list[str]
) -> None:
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ProbeError) as err:
        load_spec(SPEC_TYPES[kind], path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    for part in expected:
        assert part in msg, msg


def test_shipped_files_are_valid() -> None:
    paths = {
        "coreference": coref.default_spec_path(),
        "minimal_pairs": minimal_pairs.default_spec_path(),
        "free_generation": generation.default_spec_path(),
    }
    for kind, spec_type in SPEC_TYPES.items():
        spec = load_spec(spec_type, paths[kind])
        assert spec.kind == kind and spec.settings.bootstrap_resamples == 2000
