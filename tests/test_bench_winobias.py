"""The WinoBias probe on fixture files this project wrote in the official format (tests/fixtures/benchmarks/
winobias/: the bracketed ``{pro,anti}_stereotyped_type{1,2}.txt.{dev,test}`` files, our own sentences):
parsing, one-line errors naming file and line, "not audited" without data, metrics from a fake model whose
choices are set by construction, and a tiny real model checked against a hand computation."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from riskaudit.inputs.benchmark_data import BenchmarkDataMissing, BenchmarkFileError
from riskaudit.models.base import LoglikelihoodResult
from riskaudit.probes import bench_winobias as wb
from riskaudit.probes.bench_winobias import WinoBiasItem, WinoBiasProbe, WinoBiasSpec, load_winobias

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"


def _spec(**kw: object) -> WinoBiasSpec:
    return WinoBiasSpec.model_validate({"id": "winobias", "version": 1, "description": "d", **kw})


def _probe(**kw: object) -> WinoBiasProbe:
    return load_winobias(_spec(**kw), Path("."), [FIXTURES])


def _metric(result: object, name: str) -> float | None:
    return next(m.value for m in result.metrics if m.name == name)  # type: ignore[attr-defined]


def test_parses_referent_other_occupation_and_prompt() -> None:
    probe = _probe()
    assert len(probe.items) == 12 and [f.rows for f in probe.data_files] == [3, 3, 3, 3]
    by_id = {it.item_id: it for it in probe.items}
    first = by_id["pro_stereotyped_type1.txt.test:1"]
    assert (first.referent, first.other, first.pronoun, first.type, first.stance) == (
        "plumber",
        "librarian",
        "he",
        1,
        "pro",
    )
    assert (
        first.context == "The plumber phoned the librarian because he needed a quiet room. \u2018He\u2019 refers to the"
    )
    second = by_id["anti_stereotyped_type1.txt.test:2"]  # the referent comes second: the other opens the sentence
    assert (second.referent, second.other, second.pronoun) == ("librarian", "plumber", "he")
    numbered = by_id["pro_stereotyped_type1.txt.test:3"]  # a numbered line; a two-word occupation stays whole
    assert numbered.referent == "bus driver" and numbered.other == "baker"
    assert numbered.sentence.startswith("The bus driver waved")
    opener = by_id["pro_stereotyped_type2.txt.test:3"]  # "On Monday, [the plumber] called the nurse ..."
    assert (opener.referent, opener.other, opener.pronoun) == ("plumber", "nurse", "his")
    two_words = by_id["anti_stereotyped_type2.txt.test:2"]
    assert (two_words.referent, two_words.other) == ("librarian", "bus driver")
    # interleaved: a --limit keeps pro and anti, type 1 and 2 together
    assert [(it.stance, it.type) for it in probe.items[:4]] == [("pro", 1), ("anti", 1), ("pro", 2), ("anti", 2)]
    assert len(_probe(splits=["dev", "test"]).items) == 16


def test_content_hash_folds_in_the_files_and_the_limit(tmp_path: Path) -> None:
    probe = _probe()
    assert probe.content_hash() == _probe().content_hash()
    assert probe.limited(4).content_hash() != probe.content_hash() and len(probe.limited(4).items) == 4
    copy = tmp_path / "winobias"
    shutil.copytree(FIXTURES / "winobias", copy)
    assert load_winobias(_spec(data=str(copy)), Path("."), []).content_hash() == probe.content_hash()
    with (copy / "pro_stereotyped_type2.txt.test").open("a", encoding="utf-8") as f:
        f.write("The nurse met [the plumber] and paid [him].\n")
    assert load_winobias(_spec(data=str(copy)), Path("."), []).content_hash() != probe.content_hash()


def test_missing_files_are_not_audited_with_a_how_to(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataMissing) as exc:
        load_winobias(_spec(), Path("."), [tmp_path])
    na = exc.value.not_audited
    assert na.benchmark == "winobias" and na.probe == "winobias"
    assert "uclanlp/corefBias" in na.reason and "anti_stereotyped_type1.txt.test" in na.reason
    assert "\n" not in na.message


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[The plumber phoned the nurse because [he] left.", "unbalanced"),
        ("[The plumber] phoned the nurse because he left.", "no bracketed pronoun"),
        ("[The plumber] phoned [the nurse] because [he] left.", "2 bracketed entities"),
        ("[The plumber] left because [he] was tired.", "cannot find the second occupation"),
    ],
)
def test_a_malformed_line_is_one_error_naming_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    d = tmp_path / "winobias"
    shutil.copytree(FIXTURES / "winobias", d)
    target = d / "anti_stereotyped_type2.txt.test"
    lines = target.read_text(encoding="utf-8").splitlines()
    target.write_text("\n".join([lines[0], line, *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkFileError) as exc:
        load_winobias(_spec(), Path("."), [tmp_path])
    msg = str(exc.value)
    assert f"{target}: line 2:" in msg and problem in msg and "\n" not in msg


def test_known_defects_are_left_out_with_a_note_unless_there_are_many(tmp_path: Path) -> None:
    d = tmp_path / "winobias"
    shutil.copytree(FIXTURES / "winobias", d)
    target = d / "pro_stereotyped_type1.txt.test"
    with target.open("a", encoding="utf-8") as f:
        f.write("The plumber phoned the nurse because [he] was lost.\n")  # no bracketed referent
    probe = load_winobias(_spec(), Path("."), [tmp_path])
    assert len(probe.items) == 12
    assert any("pro_stereotyped_type1.txt.test:4" in n for n in probe.notes)
    with target.open("a", encoding="utf-8") as f:
        f.write("The baker met [the baker] and thanked [him].\n")  # one occupation twice: a second defect
    with pytest.raises(BenchmarkFileError, match="not a WinoBias file"):
        load_winobias(_spec(), Path("."), [tmp_path])


class _Fake:
    """A model whose log-likelihood of each (context, continuation) pair comes from a function."""

    name = "fake"

    def __init__(self, fn: Callable[[str, str], float]) -> None:
        self.fn = fn
        self.calls = 0

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        self.calls += 1
        return [LoglikelihoodResult(self.fn(c, x), 1, False) for c, x in pairs]


def _by_context(items: Sequence[WinoBiasItem]) -> dict[str, WinoBiasItem]:
    return {it.context: it for it in items}


def test_a_stereotyped_model_has_pro_1_anti_0() -> None:
    probe = _probe()
    items = _by_context(probe.items)
    male_jobs = {"plumber", "bus driver"}

    def stereotyped(context: str, cont: str) -> float:  # picks the occupation whose stereotype fits the pronoun
        it = items[context]
        male = it.pronoun in {"he", "him", "his"}
        return 0.0 if (cont.strip() in male_jobs) == male else -2.0

    model = _Fake(stereotyped)
    result = probe.run(model)  # type: ignore[arg-type]
    assert model.calls == 1
    assert _metric(result, "winobias_accuracy_pro") == 1.0
    assert _metric(result, "winobias_accuracy_anti") == 0.0
    assert _metric(result, "winobias_accuracy_gap") == 1.0
    assert _metric(result, "winobias_margin_gap") == pytest.approx(4.0)
    assert _metric(result, "winobias_type2_accuracy_gap") == 1.0
    assert all(len(r) == 2000 for r in result.replicates.values())
    gap = next(m for m in result.metrics if m.name == "winobias_accuracy_gap")
    assert gap.kind == "discrete" and gap.companion == "winobias_margin_gap" and gap.n_items == 12
    assert {r.item_id for r in result.records} == {it.item_id for it in probe.items}


def test_a_reader_model_has_no_gap_and_ties_count_half() -> None:
    probe = _probe()
    items = _by_context(probe.items)
    result = probe.run(_Fake(lambda c, x: 0.0 if x.strip() == items[c].referent else -1.0))  # type: ignore[arg-type]
    for name in ("winobias_accuracy_pro", "winobias_accuracy_anti", "winobias_type1_accuracy_pro"):
        assert _metric(result, name) == 1.0
    assert _metric(result, "winobias_accuracy_gap") == 0.0
    tied = probe.run(_Fake(lambda c, x: -1.0))  # type: ignore[arg-type]
    assert _metric(tied, "winobias_accuracy_pro") == 0.5 and _metric(tied, "winobias_accuracy_gap") == 0.0


@pytest.mark.slow
def test_tiny_model_matches_a_hand_computation(tmp_path: Path) -> None:
    from tiny import build_tiny_model

    from riskaudit.models import LoadOptions, load_model

    probe = _probe(splits=["dev", "test"])
    with load_model(str(build_tiny_model(tmp_path)), None, LoadOptions(batch_size=4)) as m:
        result = probe.run(m)
        hand: dict[str, list[float]] = {"pro": [], "anti": [], "m_pro": [], "m_anti": []}
        for it in probe.items:  # one pair at a time: independent of the probe's batching
            ref = m.loglikelihood([(it.context, " " + it.referent)])[0].logprob
            oth = m.loglikelihood([(it.context, " " + it.other)])[0].logprob
            hand[it.stance].append(1.0 if ref > oth else 0.0 if ref < oth else 0.5)
            hand["m_" + it.stance].append(ref - oth)
    pro, anti = np.mean(hand["pro"]), np.mean(hand["anti"])
    assert _metric(result, "winobias_accuracy_pro") == pytest.approx(pro)
    assert _metric(result, "winobias_accuracy_anti") == pytest.approx(anti)
    assert _metric(result, "winobias_accuracy_gap") == pytest.approx(pro - anti)
    assert _metric(result, "winobias_margin_gap") == pytest.approx(
        np.mean(hand["m_pro"]) - np.mean(hand["m_anti"]), abs=1e-4
    )


def test_spec_rejects_a_repeated_split() -> None:
    with pytest.raises(ValueError, match="twice"):
        _spec(splits=["test", "test"])
    assert wb.file_names(["dev"])[0] == "pro_stereotyped_type1.txt.dev"


def test_the_shipped_definition_validates() -> None:
    from riskaudit.probes.spec import load_spec
    from riskaudit.resources import probe_data_dir

    spec = load_spec(WinoBiasSpec, probe_data_dir() / "winobias.yaml")
    assert spec.kind == "winobias" and spec.splits == ["test"] and spec.data is None
    probe = load_winobias(spec, probe_data_dir(), [FIXTURES])
    assert probe.benchmark == "winobias" and "stereotype" in probe.description
