"""Memorization on a family's declared training data, on your own canaries, and the note when there is none.

* a pre-tokenized training set in the Pythia layout (one packed sequence of token ids per row, its training
  position ``uid``, its duplication count), a tiny GPT-NeoX trained on it here, declared as a TOML family's
  ``[training_data]``: the sample is the first k·batch_size sequences of training order, ids used as given,
  extraction split by duplication count;
* the demo's canaries as a canary file reproduce the extraction figures of ``reports/demo.json``; a
  three-format canary file (one enumerable) gives the exact rank-based exposure for the enumerable one;
* template language and canary-file errors.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from conftest import assert_one_line_error, run_cli
from test_memorization import WORDS, _train  # tests/ is on sys.path

from riskaudit.inputs.canaries import CanaryError, CanaryLine, load_canaries, make_canary, write_canaries
from riskaudit.inputs.canary_format import FormatError, parse_format
from riskaudit.inputs.data_sampling import demo_memorization_data
from riskaudit.inputs.families import load_family
from riskaudit.inputs.family_toml import load_family_toml
from riskaudit.inputs.megatron import write_indexed
from riskaudit.inputs.memdata import DataOptions
from riskaudit.models import LoadOptions, load_model
from riskaudit.probes import exposure as expo
from riskaudit.probes.memorization import (
    NO_DATA_NOTE,
    MemorizationInputs,
    MemorizationProbe,
    MemorizationSpec,
    load_memorization_spec,
)
from riskaudit.reporting.report import read_report
from riskaudit.resources import demo_dir, probe_data_dir
from riskaudit.run.scan import ProbeOptions, ScanOptions, build_probes, run_scan, scan_notes

DEMO = demo_dir() / "canaries.jsonl"
STEPS = 40  # full-batch steps: sequences seen 8 times are memorized, most seen once are not
needs_demo = pytest.mark.skipif(not DEMO.is_file(), reason="demo family not built")


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------------------------- templates


def test_template_language() -> None:
    f = parse_format("PIN {digits:4}, key {hex:2}, {choice:red|blue|}, {range:10-99}, {letters:1} {{x}}")
    assert f.size == 10**4 * 16**2 * 3 * 90 * 26
    assert f.matches("PIN 0042, key a9, blue, 17, q {x}") and f.matches("PIN 0042, key a9, , 99, z {x}")
    assert not f.matches("PIN 042, key a9, blue, 17, q {x}") and not f.matches("PIN 0042, key A9, blue, 17, q {x}")
    rng = random.Random(0)
    assert all(f.matches(f.sample(rng)) for _ in range(50))
    small = parse_format("{choice:a|b}-{digits:1}")
    assert small.enumerate(20) == [f"{c}-{d}" for c in "ab" for d in range(10)]
    for bad in ("{digits:0}", "{digits}", "no slot", "{range:9-1}", "{choice:a}", "x}", "{oops:3}"):
        with pytest.raises(FormatError) as ei:
            parse_format(bad)
        assert "\n" not in str(ei.value)


def test_canary_file_errors_name_the_line(tmp_path: Path) -> None:
    good = {"id": "a", "prefix": "The PIN is", "secret": " 12", "duplicates": 2, "format": " {digits:2}"}
    cases = [
        ({**good, "secret": " 1x"}, "secret is not one the format can produce"),
        ({**good, "format": "{digits:0}"}, "width"),
        ({**good, "duplicates": -1}, "duplicates"),
        ({**good, "extra": 1}, "extra"),
    ]
    for k, (row, needle) in enumerate(cases):
        p = tmp_path / f"c{k}.jsonl"
        p.write_text(json.dumps(good) + "\n" + json.dumps({**row, "id": "b"}) + "\n")
        with pytest.raises(CanaryError) as ei:
            load_canaries(p)
        assert f"{p}:2" in str(ei.value) and needle in str(ei.value) and "\n" not in str(ei.value)
    p = tmp_path / "dup.jsonl"
    p.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(CanaryError, match="already used on line 1"):
        load_canaries(p)


# --------------------------------------------------------------------------------------------- Pythia layout


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[int]], list[int]]:
    """A tiny GPT-NeoX trained here on 24 sequences, 6 of them seen 8 times; (its directory, the sequences'
    token ids, their duplication counts)."""
    from transformers import AutoTokenizer

    rng = random.Random(11)
    texts = [" ".join(rng.choice(WORDS) for _ in range(20)) + "." for _ in range(24)]
    dups = [8] * 6 + [1] * 18
    training = [t for t, d in zip(texts, dups, strict=True) for _ in range(d)]
    model_dir = _train(tmp_path_factory.mktemp("fam") / "m", training, texts, steps=STEPS)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    return model_dir, [tok.encode(t) for t in texts], dups


def _small_suite(tmp_path: Path, n_documents: int) -> Path:
    spec = yaml.safe_load((probe_data_dir() / "memorization.yaml").read_text())
    spec["id"] = "memorization_small"
    spec["extraction"].update(n_documents=n_documents, n_heldout=0)
    spec["settings"]["bootstrap_resamples"] = 200
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "mem.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "probes"


def _family(tmp_path: Path, model_dir: Path, training_data: str) -> Path:
    shutil.copytree(model_dir, tmp_path / "m")
    toml = tmp_path / "family.toml"
    toml.write_text(f'name = "tinyfam"\n[[members]]\nname = "m"\nsource = "./m"\ntokens = 1e6\n{training_data}')
    return toml


def _pythia_layout(tmp_path: Path, trained: tuple[Path, list[list[int]], list[int]]) -> tuple[Path, dict[int, int]]:
    """The trained model's data written as the parquet Pythia layout (one sequence of token ids per row, its
    training position ``uid``, its duplication count) and declared as the family's training data."""
    import datasets

    model_dir, seqs, dups = trained
    positions = list(range(len(seqs)))
    random.Random(3).shuffle(positions)  # row order is not training order: the uid column is
    rows = [{"uid": positions[i], "token_ids": ids, "dups": dups[i]} for i, ids in enumerate(seqs)]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "train.parquet"))
    decl = (
        '[training_data]\ndataset = "./train.parquet"\ncolumn = "token_ids"\norder_column = "uid"\n'
        'dup_column = "dups"\nbatch_size = 4\nsampling = "first"\n'
    )
    _small_suite(tmp_path, 14)
    return _family(tmp_path, model_dir, decl), {positions[i]: dups[i] for i in range(len(seqs))}


def test_declared_pythia_layout_training_data(tmp_path: Path, trained: tuple[Path, list[list[int]], list[int]]) -> None:
    toml, dup_at = _pythia_layout(tmp_path, trained)
    fam = load_family_toml(toml)
    assert fam.training_data is not None and fam.training_data.order_column == "uid"
    opts = ProbeOptions(probe_dirs=[str(tmp_path / "probes")], prefix_len=8, suffix_len=8)
    probes = [p for p in build_probes(fam, opts) if isinstance(p, MemorizationProbe)]
    assert len(probes) == 1 and scan_notes(probes, opts) == []
    probe = probes[0]
    # the sample: the first ceil(14 / 4) = 4 batches of 4 = 16 sequences of training order, ids as given
    assert [d.index for d in probe.data.documents] == list(range(16))
    assert all(d.ids is not None and d.text is None for d in probe.data.documents)
    assert [d.duplicates for d in probe.data.documents] == [dup_at[i] for i in range(16)]
    assert any("the first 4·4 = 16 sequences of training order" in n for n in probe.data.notes)
    report, _ = run_scan(fam, ScanOptions(), probes=probes)
    res = report.members[0].probes[0]
    m = {x.name: x.value for x in res.metrics}
    seen8, seen1 = m["text_exact_extraction[dup=8]"], m["text_exact_extraction[dup=1]"]
    assert seen8 is not None and seen1 is not None
    assert seen8 == 1.0 and seen8 > seen1  # seen 8 times: every sequence extracted
    assert any("used, 0 of 14 examined skipped" in n for n in res.notes)  # 14 wanted, all long enough


def test_pythia_offline_names_the_dataset_and_the_model(tmp_path: Path) -> None:
    """Pythia declares its training data; offline, the scan stops before any work with one line naming the
    data set and the model, and how to provide it (exit 2). --no-memorization goes on to the models."""
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    out = str(tmp_path / "r.json")
    proc = run_cli("scan", "--family", "pythia", "-q", "--out", out, env=env)
    assert_one_line_error(
        proc, "EleutherAI/pile-standard-pythia-preshuffled", "EleutherAI/pythia-14m", "--data", "--no-memorization"
    )
    proc = run_cli("scan", "--family", "pythia", "-q", "--no-memorization", "--out", out, env=env)
    assert_one_line_error(proc, "cannot load model 'EleutherAI/pythia-14m'")  # the data is not even looked up
    assert not (tmp_path / "r.json").exists()


def test_megatron_layout_first_sequences_of_training_order(
    tmp_path: Path, trained: tuple[Path, list[list[int]], list[int]]
) -> None:
    """Pythia's published layout: a Megatron document.idx and byte shards document-0000i-of-00002.bin, item i
    = training sequence i. The sample is the first k·batch_size items, ids as stored, no boundary token."""
    model_dir, seqs, dups = trained
    eod = int(json.loads((model_dir / "config.json").read_text())["eos_token_id"])
    # the training stream as packed: each sequence starts with the end-of-document token that precedes it
    order = [[eod, *ids] for ids, d in zip(seqs, dups, strict=True) for _ in range(d)]
    random.Random(5).shuffle(order)  # sequences seen 8 times recur
    (tmp_path / "data").mkdir()
    write_indexed(tmp_path / "data" / "document", order, shards=3)
    assert sorted(f.name for f in (tmp_path / "data").iterdir())[0] == "document-00000-of-00002.bin"
    decl = '[training_data]\ndataset = "./data"\nlayout = "megatron"\npacked = true\nbatch_size = 4\n'
    fam = load_family_toml(_family(tmp_path, model_dir, decl))
    opts = ProbeOptions(probe_dirs=[str(_small_suite(tmp_path, 10))], prefix_len=8, suffix_len=8)
    (probe,) = [p for p in build_probes(fam, opts) if isinstance(p, MemorizationProbe)]
    assert probe.data.packed
    assert [d.ids for d in probe.data.documents] == [tuple(x) for x in order[:12]]  # first 3·4, in order
    assert [d.index for d in probe.data.documents] == list(range(12))
    assert any("the first 3·4 = 12 sequences of training order" in n for n in probe.data.notes)
    report, _ = run_scan(fam, ScanOptions(), probes=[probe])
    m = {x.name: x.value for x in report.members[0].probes[0].metrics}
    assert (m["text_exact_extraction"] or 0.0) > 0.5  # most of the stream is the 8-times-seen sequences
    # the same directory given with --data (no declaration needed) is recognised as the Megatron layout
    plain = load_family_toml(_family(tmp_path / "plain", model_dir, ""))
    opts = opts.model_copy(update={"data": DataOptions(source=str(tmp_path / "data"))})
    (probe,) = [p for p in build_probes(plain, opts) if isinstance(p, MemorizationProbe)]
    assert [d.ids for d in probe.data.documents][:12] == [tuple(x) for x in order[:12]]


def test_family_without_training_data_gets_a_note(
    tmp_path: Path, trained: tuple[Path, list[list[int]], list[int]]
) -> None:
    toml, _ = _pythia_layout(tmp_path, trained)
    toml.write_text(toml.read_text().split("[training_data]")[0])
    fam = load_family_toml(toml)
    opts = ProbeOptions()
    probes = build_probes(fam, opts)[:1]  # pronoun only: fast
    assert not any(isinstance(p, MemorizationProbe) for p in build_probes(fam, opts))
    notes = scan_notes(build_probes(fam, opts), opts)
    assert notes == [NO_DATA_NOTE]
    report, _ = run_scan(fam, ScanOptions(notes=notes), probes=probes)
    assert NO_DATA_NOTE in report.notes
    assert scan_notes([], ProbeOptions(memorization=False)) == []  # --no-memorization: nothing to say


# --------------------------------------------------------------------------------------------- canaries on the demo


def _fast_demo_spec(n_candidates: int = 16, per_dup: int | None = 1) -> MemorizationSpec:
    spec = load_memorization_spec()
    update = {"n_documents": 10, "n_heldout": 10, "max_canaries_per_dup": per_dup, "n_candidates": n_candidates}
    demo = spec.demo.model_copy(update=update)
    stats = spec.settings.model_copy(update={"bootstrap_resamples": 100})
    return spec.model_copy(update={"demo": demo, "settings": stats})


@needs_demo
def test_canaries_option_in_any_family(tmp_path: Path) -> None:
    """--canaries alone audits a family with no training data; on a family that declares canaries it
    replaces them; --exposure-candidates reaches the run settings."""
    mine = tmp_path / "mine.jsonl"
    write_canaries(list(load_canaries(DEMO))[:5], mine)
    spec = load_memorization_spec()
    only = MemorizationProbe.for_inputs(
        spec, MemorizationInputs(family="x", canaries=str(mine), exposure_candidates=40)
    )
    assert only is not None and len(only.data.canaries) == 5 and not only.data.documents
    assert only.config.n_candidates == 40
    demo = load_family("demo")
    replaced = MemorizationProbe.for_inputs(
        spec, MemorizationInputs(family="demo", training_data=demo.training_data, canaries=str(mine))
    )
    assert replaced is not None and len(replaced.data.canaries) == 5 and replaced.data.documents
    assert replaced.data.is_demo and any("canaries: 5 from mine.jsonl" in n for n in replaced.data.notes)
    declared = MemorizationProbe.for_inputs(spec, MemorizationInputs(family="demo", training_data=demo.training_data))
    assert declared is not None and len(declared.data.canaries) == 120
    assert declared.content_hash() != replaced.content_hash()
    off = MemorizationInputs(family="demo", training_data=demo.training_data, enabled=False)
    assert MemorizationProbe.for_inputs(spec, off) is None


@needs_demo
def test_demo_canary_file_reproduces_the_report_extraction_figures() -> None:
    report = read_report(Path(__file__).parents[1] / "reports" / "demo.json")
    want = {
        x.name: x.value
        for m in report.members
        if m.name == "demo-150k"
        for p in m.probes
        if p.probe_id == "memorization"
        for x in p.metrics
        if x.name.startswith("canary_exact_extraction") or x.name == "canary_token_accuracy"
    }
    data = demo_memorization_data(canaries=load_canaries(DEMO))
    assert {c.kind for c in data.canaries} == {"digits", "id_number", "email"}
    probe = MemorizationProbe(_fast_demo_spec(), data)
    with load_model(str(demo_dir() / "members" / "demo-150k"), None, LoadOptions(batch_size=64)) as model:
        got = {x.name: x.value for x in probe.run(model).metrics}
    assert len(want) >= 12
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


@needs_demo
def test_three_format_canary_file_exact_exposure_equals_rank_formula(tmp_path: Path) -> None:
    """Three formats: the last three digits of planted access codes (enumerable: |R| = 1000), and the demo's
    ID-number and e-mail formats (sampled: skew-normal estimate, candidates and bound recorded)."""
    demo = {c.canary_id: c for c in load_canaries(DEMO)}
    lines = []
    for cid in ("digits-k256-0", "digits-k16-0", "digits-k0-0"):
        c = demo[cid]
        head, tail = c.secret[:-7], c.secret[-7:]  # " 1 2 3 4 5 6 7" + " 8 9 0."
        fmt = " {digits:1} {digits:1} {digits:1}."
        lines.append(
            CanaryLine(id=f"tail-{cid}", prefix=c.prefix + head, secret=tail, duplicates=c.duplicates, format=fmt)
        )
    for cid in ("id_number-k256-0", "email-k256-0"):
        lines.append(demo[cid].to_line())
    path = tmp_path / "mine.jsonl"
    write_canaries([make_canary(x) for x in lines], path)
    canaries = load_canaries(path)
    assert len({c.secret_format.template for c in canaries}) == 3
    data = demo_memorization_data(canaries=canaries)
    probe = MemorizationProbe(_fast_demo_spec(n_candidates=24, per_dup=None), data)
    with load_model(str(demo_dir() / "members" / "demo-150k"), None, LoadOptions(batch_size=64)) as model:
        res = probe.run(model)
        recs = {r.item_id: r for r in res.records}
        exact_vs_est: list[tuple[float, float]] = []
        for c in canaries[:3]:
            rec = recs[c.canary_id]
            assert rec.attrs["exposure_method"] == "exact" and rec.attrs["n_candidates"] == 999
            # the rank formula, computed here from the model's log-likelihood of every member of R
            prefix = model.encode(c.prefix)
            bos = model.prefix_token_id  # the probe conditions on the document boundary first
            ctx = [] if bos is None else [int(bos)]
            space = c.secret_format.enumerate(1000)
            seqs = [ctx + model.encode(c.prefix + s) for s in space]
            assert all(q[len(ctx) : len(ctx) + len(prefix)] == prefix for q in seqs)
            scored = model.token_stats(seqs, [len(ctx) + len(prefix)] * len(seqs))
            lls = {s: st.total_logprob for s, st in zip(space, scored, strict=True)}
            mine = lls[c.secret]
            rank = 1 + sum(v > mine for s, v in lls.items() if s != c.secret)
            rank += 0.5 * sum(v == mine for s, v in lls.items() if s != c.secret)
            assert rec.values["exposure_exact"] == pytest.approx(math.log2(1000) - math.log2(rank), abs=1e-6)
            others = [v for s, v in lls.items() if s != c.secret]
            sample = random.Random(c.canary_id).sample(others, 64)
            exact_vs_est.append((rec.values["exposure_exact"], expo.exposure_skewnorm(mine, sample, 1000)))
        assert recs["tail-digits-k256-0"].values["exposure_exact"] == pytest.approx(math.log2(1000))
        # the same model, where both can be computed: the skew-normal estimate from 64 of the 999 candidates
        # against the exact exposure, on average over the three canaries
        exact_mean = sum(e for e, _ in exact_vs_est) / 3
        assert abs(sum(x for _, x in exact_vs_est) / 3 - exact_mean) < 1.0, exact_vs_est
        for c in canaries[3:]:
            rec = recs[c.canary_id]
            assert rec.attrs["exposure_method"] == "skewnorm" and rec.attrs["n_candidates"] == 24
            assert rec.attrs["exposure_bound"] == pytest.approx(math.log2(25))
            assert 0.0 <= rec.values["exposure_empirical"] <= math.log2(25) + 1e-12
            assert "exposure_skewnorm" in rec.values
    blob = json.dumps([r.model_dump() for r in res.records]) + json.dumps(res.notes)
    for c in canaries:
        assert c.secret.strip() not in blob  # secrets never in outputs
    names = {m.name for m in res.metrics}
    assert {"canary_exposure_exact", "canary_exposure_skewnorm", "canary_exposure_empirical"} <= names
