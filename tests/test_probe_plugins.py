"""Plug-ins found through entry points: an installed distribution (a real ``*.dist-info`` directory put on
``sys.path``) declares a probe kind in ``riskaudit.probe_kinds`` and a model backend in
``riskaudit.model_backends``; a probe YAML of that kind validates, loads and runs on that backend."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from riskaudit.errors import ProbeError
from riskaudit.models import LoadOptions, backend_names, load_model
from riskaudit.models.backends import unregister_backend
from riskaudit.probes import registry
from riskaudit.probes.registry import list_probe_files, load_bias_probes, load_probes, validate_probe_file

PLUGIN = "riskaudit_pref_plugin"

PLUGIN_SOURCE = '''
"""A third-party probe kind (continuation preference) and a model backend (log P = -length of the text)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from riskaudit.analysis.metric import MetricResult
from riskaudit.models.base import LoglikelihoodResult, Placement, TokenizationInfo
from riskaudit.probes.base import ItemRecord, ProbeResult
from riskaudit.probes.spec import SpecBase


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    context: str
    preferred: str
    other: str


class PreferenceSpec(SpecBase):
    kind: Literal["continuation_preference"]
    pairs: list[Pair]


class PreferenceProbe:
    spec_model = PreferenceSpec

    def __init__(self, spec: PreferenceSpec, n: int | None = None) -> None:
        self.spec, self.id, self.n = spec, spec.id, n

    @classmethod
    def from_spec(cls, spec: PreferenceSpec, table: Any) -> "PreferenceProbe":
        return cls(spec)

    @property
    def description(self) -> str:
        return self.spec.description

    def content_hash(self) -> str:
        return self.spec.content_hash() + ("" if self.n is None else f":{self.n}")

    def limited(self, n: int) -> "PreferenceProbe":
        return PreferenceProbe(self.spec, n)

    def run(self, model: Any, progress: Any = None) -> ProbeResult:
        pairs = self.spec.pairs[: self.n]
        lls = model.loglikelihood([(p.context, c) for p in pairs for c in (p.preferred, p.other)])
        gaps = [lls[2 * i].logprob - lls[2 * i + 1].logprob for i in range(len(pairs))]
        records = [ItemRecord(probe=self.id, item_id=str(i), values={"gap": g}) for i, g in enumerate(gaps)]
        metric = MetricResult(
            name="preference", value=sum(gaps) / len(gaps), n_items=len(gaps), direction="two_sided",
            baseline=0.0, kind="continuous",
        )
        return ProbeResult(probe_id=self.id, probe_hash=self.content_hash(), metrics=[metric], records=records)

    def finalize_family(self, results: list[ProbeResult]) -> list[ProbeResult]:
        return results


class LengthModel:
    vocab_size, max_length, add_bos, prefix_token_id = 50, 64, False, 0
    n_params_total, n_params_nonembedding = 10, 5
    tokenization = TokenizationInfo(add_bos=False)
    batch_halvings: list[Any] = []
    placement = Placement(dtype="float32", device="cpu")

    def __init__(self, name: str) -> None:
        self.name, self.closed = name, False

    def __enter__(self) -> "LengthModel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def loglikelihood(self, pairs: Any) -> list[LoglikelihoodResult]:
        return [LoglikelihoodResult(-float(len(c)), len(c), False) for _, c in pairs]

    def close(self) -> None:
        self.closed = True


def load_length(source: str, revision: Any, options: Any, name: Any) -> LengthModel:
    return LengthModel(name or source)
'''


def _install(site: Path, entry_points: str, source: str = PLUGIN_SOURCE) -> None:
    """A distribution as pip would leave it: the module and its dist-info with METADATA and entry_points.txt."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{PLUGIN}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{PLUGIN}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PLUGIN}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points), encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "site-packages"
    monkeypatch.syspath_prepend(str(path))
    yield path
    sys.modules.pop(PLUGIN, None)
    unregister_backend("length")


ENTRY_POINTS = f"""
    [riskaudit.probe_kinds]
    continuation_preference = {PLUGIN}:PreferenceProbe

    [riskaudit.model_backends]
    length = {PLUGIN}:load_length
"""


def _probe_dir(tmp_path: Path, **change: object) -> Path:
    d = tmp_path / "probes"
    d.mkdir(exist_ok=True)
    data = {
        "kind": "continuation_preference",
        "id": "short_answers",
        "version": 1,
        "description": "Does the model prefer the shorter continuation?",
        "pairs": [
            {"context": "The answer is", "preferred": " yes", "other": " certainly"},
            {"context": "She said", "preferred": " no thanks", "other": " no"},
        ],
        **change,
    }
    (d / "short_answers.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return d


def test_a_plugin_kind_validates_loads_and_runs_on_a_plugin_backend(site: Path, tmp_path: Path) -> None:
    _install(site, ENTRY_POINTS)
    assert "continuation_preference" in registry.probe_kinds()
    assert "length" in backend_names()
    d = _probe_dir(tmp_path)
    info = validate_probe_file(d / "short_answers.yaml")
    assert info.handled and info.kind == "continuation_preference" and info.content_hash and not info.builtin
    assert not [i for i in list_probe_files([d]) if i.id == "short_answers" and not i.handled]
    (probe,) = [p for p in load_bias_probes([d]) if p.id == "short_answers"]
    assert type(probe).__module__ == PLUGIN
    assert [p.id for p in load_probes([d])].count("short_answers") == 1
    with load_model("anything", None, LoadOptions(backend="length")) as model:
        result = probe.run(model)
    assert model.closed
    # log P = -len(continuation): gaps (-4 + 10) = 6 and (-10 + 3) = -7
    assert [r.values["gap"] for r in result.records] == [6.0, -7.0]
    assert result.metrics[0].name == "preference" and result.metrics[0].value == pytest.approx(-0.5)


def test_a_plugin_kind_file_is_validated_by_its_spec(site: Path, tmp_path: Path) -> None:
    _install(site, ENTRY_POINTS)
    d = _probe_dir(tmp_path, pairs=[{"context": "x", "preferred": " a"}])
    with pytest.raises(ProbeError, match=r"short_answers\.yaml: pairs\[0\]\.other") as err:
        validate_probe_file(d / "short_answers.yaml")
    assert "\n" not in str(err.value)


def test_without_the_distribution_the_kind_is_routed_not_loaded(tmp_path: Path) -> None:
    d = _probe_dir(tmp_path)
    assert "continuation_preference" not in registry.probe_kinds()
    info = validate_probe_file(d / "short_answers.yaml")
    assert not info.handled and info.kind == "continuation_preference"
    assert "short_answers" not in [p.id for p in load_bias_probes([d])]


def test_a_plugin_that_cannot_be_imported_is_one_line(site: Path, tmp_path: Path) -> None:
    _install(site, ENTRY_POINTS, source="raise ImportError('needs torch 9')\n")
    with pytest.raises(ProbeError, match="cannot be imported: ImportError: needs torch 9") as err:
        load_bias_probes([_probe_dir(tmp_path)])
    assert "\n" not in str(err.value) and "riskaudit.probe_kinds" in str(err.value)


def test_a_plugin_object_without_a_spec_model_is_refused(site: Path, tmp_path: Path) -> None:
    _install(site, f"[riskaudit.probe_kinds]\ncontinuation_preference = {PLUGIN}:load_length\n")
    with pytest.raises(ProbeError, match="is not a probe kind"):
        validate_probe_file(_probe_dir(tmp_path) / "short_answers.yaml")


def test_a_plugin_cannot_take_a_builtin_kind(site: Path, tmp_path: Path) -> None:
    _install(site, f"[riskaudit.probe_kinds]\npronoun = {PLUGIN}:PreferenceProbe\n")
    with pytest.raises(ProbeError, match="'pronoun' is a built-in probe kind"):
        list_probe_files()
