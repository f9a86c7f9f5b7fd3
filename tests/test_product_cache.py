"""The family-level product in the result store: a rescan whose every input is unchanged loads no model,
decodes no unit and runs no analysis, yet reports exactly what a full scan reports; any changed input
(a member added, a probe's text, the seed) misses it and recomputes only what changed."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tiny import build_tiny_model

import riskaudit.run.scan as scan_mod
import riskaudit.run.units as units_mod
from riskaudit.inputs.families import load_family
from riskaudit.models import LoadOptions
from riskaudit.probes.base import Probe
from riskaudit.reporting.report import Report
from riskaudit.run.scan import ProbeOptions, ScanOptions, build_probes, run_scan
from riskaudit.run.store import STORE_FILENAME, ResultStore

OPTS = ScanOptions(load=LoadOptions(batch_size=16), seed=5)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("product-models")
    for i, (hidden, layers) in enumerate(((16, 1), (32, 2))):
        build_tiny_model(root, seed=i, hidden=hidden, layers=layers, heads=2, name=f"m{i}")
    return root


def _family(tmp_path: Path, models: Path, n: int) -> Any:
    toml = tmp_path / f"fam{n}.toml"
    body = 'name = "two"\n'
    for i in range(n):
        body += f'[[members]]\nname = "m{i}"\nsource = "{models / f"m{i}"}"\ntokens = {1000 * (i + 1)}\n'
    toml.write_text(body)
    return load_family(str(toml))


def _probes(family: Any) -> list[Probe]:
    return build_probes(family.name, ProbeOptions())[:2]  # pronoun and coreference: seconds, not minutes


def _comparable(report: Report) -> dict[str, Any]:
    doc = report.model_dump(mode="json", exclude={"run"})
    for m in doc["members"]:
        m["load_seconds"] = 0.0
        m["placement"] = None  # where a unit ran; None when served from the store
        for p in m["probes"]:
            p["seconds"] = 0.0
    return doc


class _Counts:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loads: list[str] = []
        self.analyses = 0
        real_load, real_analyze = units_mod.load_model, scan_mod.analyze_family

        def load_model(source: str, *args: Any, **kwargs: Any) -> Any:
            self.loads.append(Path(source).name)
            return real_load(source, *args, **kwargs)

        def analyze_family(*args: Any, **kwargs: Any) -> Any:
            self.analyses += 1
            return real_analyze(*args, **kwargs)

        monkeypatch.setattr(units_mod, "load_model", load_model)
        monkeypatch.setattr(scan_mod, "analyze_family", analyze_family)


def test_unchanged_rescan_is_served_whole(tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    family = _family(tmp_path, models, 2)
    probes = _probes(family)
    counts = _Counts(monkeypatch)
    with ResultStore(tmp_path / "cache" / STORE_FILENAME) as store:
        cold, cold_side = run_scan(family, OPTS, probes=probes, store=store)
        assert counts.loads == ["m0", "m1"] and counts.analyses == 1
        decoded: list[int] = []
        real_get = store.get

        def get(key: Any) -> Any:
            decoded.append(1)
            return real_get(key)

        monkeypatch.setattr(store, "get", get)
        warm, warm_side = run_scan(family, OPTS, probes=probes, store=store)
    assert counts.loads == ["m0", "m1"] and counts.analyses == 1 and decoded == []  # nothing redone
    assert warm_side == cold_side and len(cold_side) > 1000
    assert _comparable(warm) == _comparable(cold)
    assert warm.analysis is not None and warm.analysis == cold.analysis
    # the compute times are the original computation's, not zero (issue 14)
    assert [p.seconds for m in warm.members for p in m.probes] == [p.seconds for m in cold.members for p in m.probes]
    assert all(m.load_seconds == 0 for m in warm.members)  # nothing was loaded this run
    assert all(p.seconds > 0 for m in warm.members for p in m.probes)
    # without the store, the same inputs give the same report: the product is what a full scan computes
    plain, plain_side = run_scan(family, OPTS, probes=probes)
    assert plain_side == cold_side and _comparable(plain) == _comparable(cold)


@pytest.mark.slow
def test_changed_inputs_miss_the_product(tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = _family(tmp_path, models, 1), _family(tmp_path, models, 2)
    counts = _Counts(monkeypatch)
    with ResultStore(tmp_path / "cache" / STORE_FILENAME) as store:
        run_scan(one, OPTS, probes=_probes(one), store=store)
        assert counts.loads == ["m0"] and counts.analyses == 1
        # a member added: only it is loaded; the family-level product is recomputed
        run_scan(two, OPTS, probes=_probes(two), store=store)
        assert counts.loads == ["m0", "m1"] and counts.analyses == 2
        # another seed: a different scan (sampling and bootstrap depend on it)
        run_scan(two, OPTS.model_copy(update={"seed": 6}), probes=_probes(two), store=store)
        assert counts.analyses == 3
        # the same inputs again: served
        run_scan(two, OPTS, probes=_probes(two), store=store)
        assert counts.loads == ["m0", "m1", "m0", "m1"] and counts.analyses == 3
        # only the first probe: a different product, no model work
        run_scan(two, OPTS, probes=_probes(two)[:1], store=store)
        assert counts.loads == ["m0", "m1", "m0", "m1"] and counts.analyses == 4


def test_undecodable_product_is_recomputed(tmp_path: Path, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    family = _family(tmp_path, models, 2)
    probes: Sequence[Probe] = _probes(family)
    path = tmp_path / "cache" / STORE_FILENAME
    with ResultStore(path) as store:
        cold, side = run_scan(family, OPTS, probes=probes, store=store)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] == 1
        conn.execute("UPDATE products SET payload = ?", (b"not zlib",))
    counts = _Counts(monkeypatch)
    with ResultStore(path) as store:
        again, side2 = run_scan(family, OPTS, probes=probes, store=store)
        assert counts.loads == [] and counts.analyses == 1  # units from the store, product rebuilt
        assert side2 == side and _comparable(again) == _comparable(cold)
        store.clear()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] == 0
