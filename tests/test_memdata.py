"""Data in for the memorization suite: local files through `datasets`, pre-tokenized ids, labels and
duplication counts, seeded sampling, short-document skipping, and one-line errors."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tiny import build_tiny_model  # tests/ is on sys.path

from riskaudit.errors import ProbeError, RiskauditError
from riskaudit.inputs.data_sampling import demo_memorization_data
from riskaudit.inputs.data_sampling import load_memorization_data as load
from riskaudit.inputs.memdata import DataError, DataOptions, Document, MemorizationData
from riskaudit.inputs.training_data import PYTHIA_STANDARD_DATA
from riskaudit.models import LoadOptions, load_model
from riskaudit.models.hf import HFModel
from riskaudit.probes.memorization import (
    ExposureSettings,
    ExtractionSettings,
    MemorizationInputs,
    MemorizationProbe,
    MemorizationSpec,
    StatsSettings,
    load_memorization_spec,
)
from riskaudit.resources import demo_dir

LONG = "the quick brown fox jumps over the lazy dog near the river bank and then it runs away home"
SHORT = "The dog."


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _opts(tmp_path: Path, source: Path | str, **kw: object) -> DataOptions:
    return DataOptions(source=str(source), cache_dir=str(tmp_path / "hf-cache"), **kw)  # type: ignore[arg-type]


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _one_line_error(exc: pytest.ExceptionInfo[BaseException], *needles: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and isinstance(exc.value, RiskauditError), msg
    for n in needles:
        assert n in msg, (n, msg)


# --------------------------------------------------------------------------------------------- formats


def test_jsonl_text_seeded_order(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "d.jsonl", [{"text": f"document number {i}", "other": i} for i in range(50)])
    a = load(_opts(tmp_path, f), seed=0)
    assert len(a.documents) == 50 and not a.heldout
    assert {d.index for d in a.documents} == set(range(50))
    assert all(d.text == f"document number {d.index}" and d.member is None for d in a.documents)
    assert [d.index for d in load(_opts(tmp_path, f), seed=0).documents] == [d.index for d in a.documents]
    assert [d.index for d in load(_opts(tmp_path, f), seed=1).documents] != [d.index for d in a.documents]
    assert [d.index for d in a.documents] != list(range(50))  # shuffled
    assert len(load(_opts(tmp_path, f), seed=0, limit=7).documents) == 7
    assert any("membership inference is not run" in n for n in a.notes)
    assert a.fingerprint == load(_opts(tmp_path, f), seed=0).fingerprint
    assert a.fingerprint != load(_opts(tmp_path, f, column="text")).fingerprint  # options are part of it


def test_csv_with_duplication_and_label_columns(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text(
        "body,dup,label\n" + "".join(f'"{LONG} {i}",{i % 3},{"member" if i % 2 else "nonmember"}\n' for i in range(20)),
        encoding="utf-8",
    )
    data = load(_opts(tmp_path, f, column="body", dup_column="dup", label_column="label"))
    assert len(data.documents) == 10 and len(data.heldout) == 10
    assert all(d.member is True and d.index % 2 == 1 for d in data.documents)
    assert all(d.member is False for d in data.heldout)
    assert all(d.duplicates == d.index % 3 for d in (*data.documents, *data.heldout))


def test_parquet_pretokenized_ids(tmp_path: Path) -> None:
    f = tmp_path / "d.parquet"
    pq.write_table(pa.table({"input_ids": [[1, 2, 3, i] for i in range(5)], "n": [2] * 5}), f)
    data = load(_opts(tmp_path, f, dup_column="n"))
    assert all(d.ids == (1, 2, 3, d.index) and d.text is None and d.duplicates == 2 for d in data.documents)


def test_text_files_lines_and_paragraphs(tmp_path: Path) -> None:
    f = tmp_path / "d.txt"
    f.write_text("first line\nsecond line\n\nthird line\n", encoding="utf-8")
    lines = load(_opts(tmp_path, f))
    assert sorted(d.text or "" for d in lines.documents if d.text) == ["first line", "second line", "third line"]
    paras = load(_opts(tmp_path, f, text_unit="paragraph"))
    assert sorted((d.text or "").strip() for d in paras.documents) == ["first line\nsecond line", "third line"]


def test_directory_and_glob_of_jsonl(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    _jsonl(d / "a.jsonl", [{"text": "a"}, {"text": "b"}])
    _jsonl(d / "b.jsonl", [{"text": "c"}])
    assert len(load(_opts(tmp_path, d)).documents) == 3
    assert len(load(_opts(tmp_path, str(d / "a*.jsonl"))).documents) == 2
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"text": "zipped"}\n'))
    assert [x.text for x in load(_opts(tmp_path, gz)).documents] == ["zipped"]


# --------------------------------------------------------------------------------------------- errors


def test_empty_dataset_is_one_line_error(tmp_path: Path) -> None:
    f = tmp_path / "empty.jsonl"
    f.write_text("", encoding="utf-8")
    with pytest.raises(DataError) as ei:
        load(_opts(tmp_path, f))
    _one_line_error(ei, "empty.jsonl")


def test_non_utf8_is_one_line_error(tmp_path: Path) -> None:
    for name, raw in (
        ("bad.jsonl", b'{"text": "caf\xe9"}\n'),
        ("bad.csv", b"text\ncaf\xe9\n"),
        ("bad.txt", b"ok\n\xff\n"),
    ):
        f = tmp_path / name
        f.write_bytes(raw)
        with pytest.raises(DataError) as ei:
            load(_opts(tmp_path, f))
        _one_line_error(ei, "not valid UTF-8", "byte offset")


def test_column_and_value_errors(tmp_path: Path) -> None:
    f = _jsonl(tmp_path / "d.jsonl", [{"body": "x", "label": "maybe"}])
    with pytest.raises(DataError) as ei:
        load(_opts(tmp_path, f))
    _one_line_error(ei, "--data-column", "body")
    with pytest.raises(DataError) as ei:
        load(_opts(tmp_path, f, column="nope"))
    _one_line_error(ei, "no text column 'nope'")
    with pytest.raises(DataError) as ei:
        load(_opts(tmp_path, f, column="body", label_column="label"))
    _one_line_error(ei, "label column", "maybe")
    g = _jsonl(tmp_path / "n.jsonl", [{"text": 3.5}])
    with pytest.raises(DataError):
        load(_opts(tmp_path, g))
    with pytest.raises(DataError) as ei:
        load(_opts(tmp_path, tmp_path / "missing.jsonl"))
    _one_line_error(ei, "no such file")
    h = tmp_path / "d.xyz"
    h.write_text("x", encoding="utf-8")
    with pytest.raises(DataError) as ei:
        load(_opts(tmp_path, h))
    _one_line_error(ei, "format")


def test_hub_id_without_network_is_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import riskaudit.models.hf as hf

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hf, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(DataError) as ei:
        load(_opts(tmp_path, "someorg/somedata", config="en"))
    _one_line_error(ei, "someorg/somedata", "no network access")


# --------------------------------------------------------------------------------------------- with a model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HFModel]:
    with load_model(str(build_tiny_model(tmp_path_factory.mktemp("t"))), None, LoadOptions(batch_size=8)) as m:
        yield m


def _spec() -> MemorizationSpec:
    return MemorizationSpec(
        id="memorization",
        version=1,
        description="t",
        extraction=ExtractionSettings(prefix_len=4, suffix_len=4, n_documents=5, n_heldout=5, pool_factor=10),
        exposure=ExposureSettings(n_candidates=4),
        settings=StatsSettings(bootstrap_resamples=20),
    )


def test_short_documents_are_skipped_and_counted(tiny: HFModel) -> None:
    docs = [Document(index=i, text=LONG if i % 3 else SHORT, member=True) for i in range(12)]
    res = MemorizationProbe(_spec(), MemorizationData(name="x", documents=tuple(docs))).run(tiny)
    used = [r for r in res.records if r.attrs["group"] == "document"]
    assert len(used) == 5
    # 12 in pool order: SHORT at 0, 3, 6 -> examined 0..7 to find 5 long ones, skipping 0, 3, 6
    assert any("5 used, 3 of 8 examined skipped as shorter than prefix + suffix = 4+4 tokens" in n for n in res.notes)
    with pytest.raises(ProbeError) as ei:
        MemorizationProbe(_spec(), MemorizationData(name="x", documents=(Document(index=0, text=SHORT),))).run(tiny)
    assert "training documents examined are shorter than prefix + suffix = 4+4" in str(ei.value) and "\n" not in str(
        ei.value
    )


def test_pretokenized_ids_run_and_are_checked(tiny: HFModel) -> None:
    ids = tuple(tiny.encode(LONG))
    data = MemorizationData(name="ids", documents=(Document(index=0, ids=ids), Document(index=1, ids=ids[::-1])))
    res = MemorizationProbe(_spec(), data).run(tiny)
    assert {r.item_id for r in res.records} == {"doc-0", "doc-1"}
    bad = MemorizationData(name="ids", documents=(Document(index=3, ids=(1, 2, 10**6, 4, 5, 6, 7, 8)),))
    with pytest.raises(ProbeError) as ei:
        MemorizationProbe(_spec(), bad).run(tiny)
    assert "row 3" in str(ei.value) and "vocabulary" in str(ei.value)


def test_for_family_with_local_data(tmp_path: Path, tiny: HFModel) -> None:
    f = _jsonl(
        tmp_path / "d.jsonl",
        [{"text": f"{LONG} {i}", "member": i % 2} for i in range(12)],
    )
    inputs = MemorizationInputs(
        family="pythia",
        training_data=PYTHIA_STANDARD_DATA,  # --data replaces the declared data: nothing is downloaded
        data=_opts(tmp_path, f, label_column="member"),
        prefix_len=4,
        suffix_len=4,
    )
    probe = MemorizationProbe.for_inputs(load_memorization_spec(), inputs)
    assert probe is not None and probe.config.prefix_len == 4 and not probe.data.is_demo
    assert len(probe.data.documents) == 6 and len(probe.data.heldout) == 6


@pytest.mark.skipif(not (demo_dir() / "ground_truth.json.gz").exists(), reason="demo family not built")
def test_demo_data() -> None:
    data = demo_memorization_data()
    assert data.is_demo and len(data.canaries) == 120
    planted = {c.prefix + c.secret for c in data.canaries}
    assert not any(d.text in planted for d in data.documents)
    assert all(d.member and (d.duplicates or 0) >= 1 for d in data.documents)
    assert all(d.member is False for d in data.heldout)
    assert [d.index for d in demo_memorization_data().documents[:20]] == [d.index for d in data.documents[:20]]
