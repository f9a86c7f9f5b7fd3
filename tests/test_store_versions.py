"""The result store never serves numbers computed under other library versions: a unit's key names the versions
of torch, transformers, tokenizers and accelerate (which places a model split by a device map), so upgrading one
recomputes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import riskaudit.run.unit_key as unit_key
from riskaudit.analysis.metric import MetricResult
from riskaudit.models.base import LoadOptions
from riskaudit.probes.base import ProbeResult
from riskaudit.run.store import ResultStore
from riskaudit.run.unit_key import UnitKey, unit_options_hash

BASE = {"torch": "2.4.0", "transformers": "4.44.0", "tokenizers": "0.19.1", "accelerate": "0.33.0"}


def _use_versions(monkeypatch: pytest.MonkeyPatch, **changed: str) -> None:
    versions = {**BASE, **changed}
    monkeypatch.setattr(unit_key, "_package_version", lambda name: versions.get(name, ""))


def _key(load: LoadOptions) -> UnitKey:
    return UnitKey(
        model_id="some/model",
        weights_hash="sha256:" + "0" * 64,
        dtype="float32",
        probe_id="probe_a",
        probe_hash="h" * 64,
        unit_options_hash=unit_options_hash(load, seed=0),
    )


def _result() -> ProbeResult:
    metric = MetricResult(
        name="gap", value=0.25, n_items=3, direction="higher_is_riskier", baseline=0.0, kind="continuous"
    )
    return ProbeResult(probe_id="probe_a", probe_hash="h" * 64, metrics=[metric], records=[])


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[ResultStore]:
    with ResultStore(tmp_path / "results.sqlite") as s:
        yield s


@pytest.mark.parametrize("library", ["torch", "transformers", "tokenizers", "accelerate"])
def test_a_unit_stored_under_one_library_version_is_not_served_under_another(
    store: ResultStore, monkeypatch: pytest.MonkeyPatch, library: str
) -> None:
    load = LoadOptions(device="cpu")
    _use_versions(monkeypatch)
    store.put(_key(load), _result())
    assert store.get(_key(load)) is not None  # same versions: served
    _use_versions(monkeypatch, **{library: "9.9.9"})
    assert store.get(_key(load)) is None  # upgraded: recomputed
    _use_versions(monkeypatch)
    assert store.get(_key(load)) is not None  # back to the versions it was computed with: served again


def test_a_split_model_is_keyed_by_accelerate_and_still_shares_units(
    store: ResultStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """accelerate places a model split by --device-map; a split scan and a single-device scan compute the same
    numbers (tests/test_device_map.py), so they keep one key under the same versions."""
    single, split = LoadOptions(device="cpu"), LoadOptions(device_map="auto", max_memory={"cpu": "1GB"})
    _use_versions(monkeypatch)
    assert _key(split) == _key(single)
    store.put(_key(split), _result())
    _use_versions(monkeypatch, accelerate="9.9.9")
    assert store.get(_key(split)) is None


def test_the_real_versions_are_the_installed_ones() -> None:
    from importlib.metadata import version

    unit_key._package_version.cache_clear()
    assert unit_key.library_versions() == {
        name: version(name) for name in ("torch", "transformers", "tokenizers", "accelerate")
    }


def test_a_non_default_backend_gets_keys_of_its_own() -> None:
    """Numbers from another model backend are never served for the transformers backend (and back)."""
    from riskaudit.models import LoadOptions
    from riskaudit.run.unit_key import unit_options_hash

    default = unit_options_hash(LoadOptions(), seed=0)
    assert unit_options_hash(LoadOptions(backend="transformers"), seed=0) == default
    assert unit_options_hash(LoadOptions(backend="other"), seed=0) != default
