"""CrowS-Pairs probe: the official CSV format (a fixture written for this project), lm-eval's metrics against a
hand computation with transformers on a tiny model, the shared-token scoring, and one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import build_tiny_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from riskaudit.inputs.benchmark_data import BenchmarkFileError
from riskaudit.models import LoadOptions, load_model
from riskaudit.models.base import LoglikelihoodResult
from riskaudit.probes.bench_crows_pairs import CrowsPairsProbe, CrowsPairsSpec, read_pairs, shared_spans

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
CSV = FIXTURES / "crows_pairs" / "crows_pairs_anonymized.csv"


def probe(root: Path = FIXTURES, resamples: int = 200) -> CrowsPairsProbe:
    spec = CrowsPairsSpec(id="crows_pairs", version=1, description="d", settings={"bootstrap_resamples": resamples})
    return CrowsPairsProbe.from_spec(spec, Path("."), [root])


def test_reads_the_official_format() -> None:
    pairs = read_pairs(CSV)
    assert len(pairs) == 10
    assert [p.item_id for p in pairs] == [str(i) for i in range(10)]
    assert sum(p.bias_type == "gender" for p in pairs) == 6
    assert {p.direction for p in pairs} == {"stereo", "antistereo"}
    assert pairs[2].sent_more.startswith("My sister could not lift the heavy box, so")  # a quoted field with a comma


def test_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "crows_pairs_anonymized.csv"
    lines = CSV.read_text().splitlines()
    lines[4] = lines[4].replace(",stereo,", ",sometimes,")
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchmarkFileError) as err:
        read_pairs(bad)
    assert f"{bad}: line 5:" in str(err.value) and "sometimes" in str(err.value) and "\n" not in str(err.value)
    bad.write_text("sent_more,sent_less\na,b\n")
    with pytest.raises(BenchmarkFileError, match="line 1: missing column"):
        read_pairs(bad)


def test_shared_spans_are_the_words_after_the_first_difference() -> None:
    a, b = shared_spans("My sister said that she was late.", "My brother said that he was late.")
    assert a == [("My sister", " said that"), ("My sister said that she", " was late.")]
    assert b == [("My brother", " said that"), ("My brother said that he", " was late.")]
    assert shared_spans("He is a pilot.", "He is a teacher.") == ([], [])  # differs at the end: nothing shared after


class _ByLength:
    """A model whose log-likelihood of any continuation is minus its length in characters (answers by construction)."""

    name = "by-length"

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[LoglikelihoodResult]:
        return [LoglikelihoodResult(-float(len(c)), len(c), False) for _, c in pairs]


def test_metrics_by_construction() -> None:
    p = probe()
    res = p.run(_ByLength())  # type: ignore[arg-type]
    m = {x.name: x for x in res.metrics}
    pairs = p.items()
    more = np.array([-len(x.sent_more) for x in pairs], dtype=float)
    less = np.array([-len(x.sent_less) for x in pairs], dtype=float)
    gender = np.array([x.bias_type == "gender" for x in pairs])
    assert m["crows_pairs_english.pct_stereotype"].value == pytest.approx(np.mean(more > less))
    assert m["crows_pairs_english.likelihood_diff"].value == pytest.approx(np.mean(np.abs(more - less)))
    assert m["crows_pairs_english_gender.pct_stereotype"].value == pytest.approx(np.mean((more > less)[gender]))
    assert m["crows_pairs_english_age.pct_stereotype"].value == pytest.approx(float(more[3] > less[3]))
    # the bias types present, gender first, and no metric for an absent one
    tasks = list(dict.fromkeys(x.name.split(".")[0] for x in res.metrics))
    assert tasks[:2] == ["crows_pairs_english", "crows_pairs_english_gender"]
    assert "crows_pairs_english_religion" not in tasks
    assert all(m[n].ci_low is not None for n in m if n.endswith("likelihood_diff"))
    assert any("share no word after their first difference" in n for n in res.notes)  # pair 7


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("crows"), seed=5, max_positions=256)


def _hand_ll(path: Path, texts: list[str]) -> list[float]:
    """log P(text | prefix token) with transformers directly: the tokenizer has no BOS by default, so the prefix
    is its BOS id (lm-eval's prefix_token_id)."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    out = []
    for t in texts:
        ids = [tok.bos_token_id, *tok(t, add_special_tokens=False)["input_ids"]]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
        out.append(float(sum(logp[i, ids[i + 1]] for i in range(len(ids) - 1))))
    return out


def test_equals_a_hand_computation_on_a_tiny_model(tiny: Path) -> None:
    p = probe()
    with load_model(str(tiny), None, LoadOptions(batch_size=4)) as model:
        res = p.run(model)
    pairs = p.items()
    more = np.array(_hand_ll(tiny, [x.sent_more for x in pairs]))
    less = np.array(_hand_ll(tiny, [x.sent_less for x in pairs]))
    got = {r.item_id: r.values for r in res.records}
    for x, a, b in zip(pairs, more, less, strict=True):
        assert got[x.item_id]["ll_sent_more"] == pytest.approx(a, abs=1e-4)
        assert got[x.item_id]["ll_sent_less"] == pytest.approx(b, abs=1e-4)
    m = {x.name: x.value for x in res.metrics}
    gender = np.array([x.bias_type.startswith("gender") for x in pairs])
    assert m["crows_pairs_english.pct_stereotype"] == pytest.approx(np.mean(more > less))
    assert m["crows_pairs_english.likelihood_diff"] == pytest.approx(np.mean(np.abs(more - less)), abs=1e-4)
    assert m["crows_pairs_english_gender.pct_stereotype"] == pytest.approx(np.mean((more > less)[gender]))


def test_limit_and_content_hash(tmp_path: Path) -> None:
    p = probe()
    small = p.limited(3)
    assert len(small.items()) == 3 and len(p.items()) == 10
    assert small.content_hash() != p.content_hash()
    moved = tmp_path / "elsewhere"
    shutil.copytree(FIXTURES / "crows_pairs", moved)
    assert probe(moved).content_hash() == p.content_hash()  # moving the file keeps stored results
    edited = moved / "crows_pairs_anonymized.csv"
    edited.write_text(edited.read_text().replace("morning shift", "evening shift"))
    assert probe(moved).content_hash() != p.content_hash()  # editing it does not
