"""The shipped demo family: manifest, weights, ground truth, reproducibility, and the end-to-end scan."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter

import pytest
from conftest import DemoScanned

from riskaudit.inputs.families import load_family
from riskaudit.inputs.occupations import load_occupations
from riskaudit.inputs.zoo_manifest import DemoManifest
from riskaudit.resources import demo_dir
from riskaudit.zoo.corpus import CorpusConfig, build_corpus

DEMO = demo_dir()


def _manifest() -> DemoManifest:
    return DemoManifest.model_validate_json((DEMO / "manifest.json").read_text())


def _gz(name: str) -> object:
    return json.loads(gzip.decompress((DEMO / name).read_bytes()))


def test_manifest_members_span_50k_to_5m_with_safetensors_weights() -> None:
    m = _manifest()
    sizes = [x.params_total for x in m.members]
    assert 5 <= len(sizes) <= 6
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert 40_000 <= sizes[0] <= 70_000 and sizes[-1] >= 5_000_000
    for x in m.members:
        d = DEMO / x.path
        assert (d / "model.safetensors").exists() and not list(d.glob("*.bin"))
        assert (d / "tokenizer.json").exists() and (d / "config.json").exists()
        assert x.train_tokens == m.members[0].train_tokens  # same data, same order
    ckpts = m.members[-1].checkpoints
    assert len(ckpts) >= 2
    assert [c.step for c in ckpts] == sorted(c.step for c in ckpts)
    assert all((DEMO / c.path / "model.safetensors").exists() for c in ckpts)


def test_demo_family_and_its_revisions_load() -> None:
    fam = load_family("demo")
    assert [m.name for m in fam.members] == [x.name for x in _manifest().members]
    assert all(m.flops_total and m.flops_total > 0 for m in fam.members)
    largest = _manifest().members[-1]
    revs = [c.revision for c in largest.checkpoints]
    fam2 = load_family("demo", [*revs, "main"])
    names = [m.name for m in fam2.members if m.name.partition("@")[0] == largest.name]
    assert names == [f"{largest.name}@{r}" for r in revs] + [largest.name]  # main keeps the plain name
    toks = [m.train_tokens for m in fam2.members if m.name.partition("@")[0] == largest.name]
    assert toks == sorted(toks)
    assert fam2.member(largest.name) == fam.member(largest.name)  # the same weights, the same store units
    assert "loss not recorded" in fam2.member(names[0]).notes and "final_loss" not in fam2.member(names[0]).notes
    assert [m.name for m in fam2.select([largest.name]).members] == names


def test_ground_truth_matches_the_training_documents() -> None:
    gt = _gz("ground_truth.json.gz")
    train = _gz("train_documents.json.gz")
    assert isinstance(gt, dict) and isinstance(train, list)
    counts = Counter(train)
    dups = sorted({c["duplicates"] for c in gt["canaries"]})
    assert dups[0] == 0 and 64 in dups and dups[-1] >= 64
    for c in gt["canaries"]:
        assert counts[c["prefix"] + c["secret"]] == c["duplicates"], c["canary_id"]
        assert {"digits", "id_number", "email"} >= {c["kind"]}
    train_set = set(train)
    assert not any(d in train_set for d in gt["heldout_documents"])
    assert len(gt["heldout_documents"]) >= 500


def test_corpus_is_reproducible_from_its_seed() -> None:
    gt = _gz("ground_truth.json.gz")
    assert isinstance(gt, dict)
    cfg = CorpusConfig.model_validate(gt["corpus_config"])
    occupations, _ = load_occupations("bls2015")
    corpus = build_corpus({o.name: o.pct_female for o in occupations}, cfg)
    shipped = (DEMO / "train_documents.json.gz").read_bytes()
    rebuilt = json.dumps(corpus.train_documents, ensure_ascii=False).encode()
    assert hashlib.sha256(gzip.decompress(shipped)).hexdigest() == hashlib.sha256(rebuilt).hexdigest()


@pytest.mark.slow
@pytest.mark.xdist_group("demo-scan")
def test_demo_scan_bias_grows_with_size(demo_scan: DemoScanned) -> None:
    """Acceptance of the foundation issue: smallest member's r CI includes 0; largest r > 0.5, CI excludes 0.
    The scan is the session's (``scan --family demo``, shared with test_oom and test_reliability)."""
    from riskaudit.reporting.report import read_report

    report = read_report(demo_scan.out)

    def r(i: int) -> tuple[float, float, float]:
        m = next(x for x in report.members[i].probes[0].metrics if x.name == "stereotype_correlation_pearson")
        assert m.value is not None and m.ci_low is not None and m.ci_high is not None
        return m.value, m.ci_low, m.ci_high

    small, large = r(0), r(-1)
    assert small[1] <= 0.0 <= small[2], small
    assert large[0] > 0.5 and large[1] > 0.0, large
