"""The hub fallback of CrowS-Pairs and BBQ (riskaudit.inputs.benchmark_hub): with no data directory, the hub
dataset lm-evaluation-harness loads is rewritten into the official files and the probes read the same items as
from the official files; offline nothing is loaded and "not audited" names the hub dataset; a hub dataset
without a column the official file has is a one-line error. ``datasets.load_dataset`` is faked with rows built
from this project's own fixture files (tests/fixtures/benchmarks/), so no network is used."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import datasets
import pytest

from riskaudit.inputs import benchmark_hub
from riskaudit.inputs.benchmark_data import BenchmarkFileError
from riskaudit.probes import registry
from riskaudit.probes.bench_bbq import BBQProbe
from riskaudit.probes.bench_crows_pairs import CrowsPairsProbe

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
CROWS = "jannalu/crows_pairs_multilingual"
BBQ = "oskarvanderwal/bbq"


def _crows_rows() -> list[dict[str, Any]]:
    with (FIXTURES / "crows_pairs" / "crows_pairs_anonymized.csv").open(newline="", encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k} for row in csv.DictReader(f)]  # the hub has no index column


def _bbq_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in ("Gender_identity.jsonl", "Age.jsonl"):
        text = (FIXTURES / "bbq" / name).read_text(encoding="utf-8")
        rows.extend(json.loads(line) for line in text.splitlines() if line.strip())
    return rows


def _fake_hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, crows_rows: list[dict[str, Any]] | None = None
) -> list[tuple[str, str | None, str]]:
    """Patch the hub: reachable, online, a fresh cache dir, and load_dataset serving the fixture rows."""
    calls: list[tuple[str, str | None, str]] = []

    def load_dataset(path: str, name: str | None = None, *, split: str, **_: object) -> datasets.Dataset:
        calls.append((path, name, split))
        if path == CROWS:
            ds = datasets.Dataset.from_list(crows_rows if crows_rows is not None else _crows_rows())
            if "stereo_antistereo" in ds.column_names:  # as a ClassLabel: mapped back through its names
                ds = ds.cast_column("stereo_antistereo", datasets.ClassLabel(names=["stereo", "antistereo"]))
            return ds
        assert path == BBQ
        return datasets.Dataset.from_list(_bbq_rows())

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("RISKAUDIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(benchmark_hub, "_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def _by_id(found: list[Any]) -> dict[str, Any]:
    return {p.id: p for p in found}


def test_crows_pairs_and_bbq_load_from_the_hub_as_from_the_official_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = _fake_hub(monkeypatch, tmp_path)
    official, _ = registry.load_benchmark_probes([], [FIXTURES])
    found, missing = registry.load_benchmark_probes([], [])
    assert sorted(calls) == [(CROWS, "english", "test"), (BBQ, "All", "test")]
    hub = _by_id(found)
    assert sorted(hub) == ["bbq", "crows_pairs"]
    assert {n.benchmark for n in missing} == {"winogender", "winobias"}  # no hub fallback
    assert all("hub dataset" not in n.reason for n in missing)
    ref = _by_id(official)
    crows, crows_ref = hub["crows_pairs"], ref["crows_pairs"]
    assert isinstance(crows, CrowsPairsProbe) and isinstance(crows_ref, CrowsPairsProbe)
    assert crows.pairs == crows_ref.pairs and len(crows.pairs) == 10
    bbq, bbq_ref = hub["bbq"], ref["bbq"]
    assert isinstance(bbq, BBQProbe) and isinstance(bbq_ref, BBQProbe)
    assert bbq.items == bbq_ref.items and {it.row.category for it in bbq.items} == {"Gender_identity", "Age"}
    files = {f.name: f for p in (crows, bbq) for f in p.data_files}
    assert files["crows_pairs_anonymized.csv"].source == f"hub:{CROWS} english/test"
    assert files["data/Gender_identity.jsonl"].source == f"hub:{BBQ} All/test"
    assert files["data/Age.jsonl"].source == f"hub:{BBQ} All/test"
    assert [f.rows for f in bbq.data_files] == [f.rows for f in bbq_ref.data_files]
    assert all(f.source is None for p in (crows_ref, bbq_ref) for f in p.data_files)
    cached = tmp_path / "cache" / "benchmarks" / "crows_pairs" / "jannalu--crows_pairs_multilingual"
    assert (cached / "crows_pairs_anonymized.csv").is_file()
    assert not [p for p in cached.parent.rglob("*.tmp")]


def test_offline_loads_nothing_and_says_which_hub_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _fake_hub(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found, missing = registry.load_benchmark_probes([], [])
    assert not found and not calls
    reasons = {n.benchmark: n.reason for n in missing}
    assert f"hub dataset {CROWS} not reachable (offline" in reasons["crows_pairs"]
    assert f"hub dataset {BBQ} not reachable (offline" in reasons["bbq"]
    assert reasons["crows_pairs"].startswith("data not found (crows_pairs_anonymized.csv; ")
    assert "hub dataset" not in reasons["winogender"] and "hub dataset" not in reasons["winobias"]


def test_unreachable_hub_is_not_audited(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _fake_hub(monkeypatch, tmp_path)
    monkeypatch.setattr(benchmark_hub, "_reachable", lambda: False)
    found, missing = registry.load_benchmark_probes([], [])
    assert not found and not calls
    assert any(f"hub dataset {CROWS} not reachable" in n.reason for n in missing)


def test_hub_row_without_a_column_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "sent_more"} for r in _crows_rows()]
    _fake_hub(monkeypatch, tmp_path, crows_rows=rows)
    with pytest.raises(BenchmarkFileError) as err:
        registry.load_benchmark_probes([], [])
    msg = str(err.value)
    assert "\n" not in msg and CROWS in msg and "sent_more" in msg
