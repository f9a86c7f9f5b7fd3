"""Probe-file discovery: built-in and user directories, validation, and routing of unknown kinds."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from riskaudit.errors import ProbeError
from riskaudit.probes import registry
from riskaudit.probes.coref import CoreferenceProbe
from riskaudit.probes.generation import FreeGenerationProbe
from riskaudit.probes.minimal_pairs import MinimalPairsProbe
from riskaudit.probes.pronoun import PronounProbe
from riskaudit.probes.registry import (
    list_probe_files,
    load_bias_probes,
    unhandled_probe_files,
    validate_probe_file,
)
from riskaudit.resources import probe_data_dir

BUILTIN_BIAS = {
    "pronoun": "occupation_gender_pronoun",
    "coreference": "occupation_gender_coreference",
    "minimal_pairs": "occupation_gender_minimal_pairs",
    "free_generation": "occupation_gender_free_generation",
}


def _write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _user_copy(tmp_path: Path, name: str, new_id: str, **change: Any) -> Path:
    data = yaml.safe_load((probe_data_dir() / name).read_text(encoding="utf-8"))
    data.update(id=new_id, **change)
    return _write(tmp_path / f"{new_id}.yaml", data)


def test_builtin_files_are_listed_bias_kinds_first() -> None:
    infos = list_probe_files()
    bias = [i for i in infos if i.handled and i.kind != "memorization" and i.kind not in registry.BENCHMARK_KINDS]
    assert [i.kind for i in bias] == list(BUILTIN_BIAS)  # registry order: pronoun first
    bench = infos[len(bias) : len(bias) + len(registry.BENCHMARK_KINDS)]  # then the canonical benchmarks
    assert [i.kind for i in bench] == list(registry.BENCHMARK_KINDS) and all(i.handled for i in bench)
    mem = infos[len(bias) + len(bench)]  # memorization: a registry kind too, validated in full, after them
    assert mem.kind == "memorization" and mem.handled and mem.builtin and mem.content_hash
    assert {i.kind: i.id for i in bias} == BUILTIN_BIAS
    for i in bias:
        assert i.builtin and i.version == 1 and i.content_hash and len(i.content_hash) == 64
        assert i.n_templates and i.n_templates >= 2 and i.description
    # unknown kinds come after the known kinds and are not loaded here
    assert all(not i.handled for i in infos[len(bias) + len(bench) + 1 :])


def test_unknown_kinds_are_routed_not_errors(tmp_path: Path) -> None:
    _write(
        tmp_path / "mem.yaml",
        {"id": "my_memorization", "kind": "memorization", "version": 2, "description": "d", "extraction": {}},
    )
    _write(tmp_path / "toxic.yml", {"id": "toxicity_v1", "kind": "toxicity", "anything": [1, 2]})
    _write(tmp_path / "notes.txt", "not a probe file")
    others = unhandled_probe_files([tmp_path])
    user = {i.id: i for i in others if not i.builtin}
    assert set(user) == {"toxicity_v1"}
    mem = next(i for i in list_probe_files([tmp_path]) if i.id == "my_memorization")
    assert mem.kind == "memorization" and mem.version == 2 and mem.handled
    assert not user["toxicity_v1"].handled and user["toxicity_v1"].content_hash is None
    probes = load_bias_probes([tmp_path])
    assert [p.id for p in probes] == list(BUILTIN_BIAS.values())  # the unknown kinds are skipped
    info = validate_probe_file(tmp_path / "toxic.yml")
    assert info.kind == "toxicity" and not info.handled and not info.builtin


def test_user_probe_dir_adds_probes_with_the_chosen_table(tmp_path: Path) -> None:
    _user_copy(tmp_path, "coreference.yaml", "team_coref", version=3)
    _user_copy(tmp_path, "occupation_gender.yaml", "team_pronoun")
    probes = load_bias_probes([tmp_path], "bls2022")
    ids = [p.id for p in probes]
    assert ids[:4] == list(BUILTIN_BIAS.values()) and ids[4:] == ["team_pronoun", "team_coref"]
    classes = [type(p) for p in probes]
    assert classes[:4] == [PronounProbe, CoreferenceProbe, MinimalPairsProbe, FreeGenerationProbe]
    for p in probes:
        assert isinstance(p, PronounProbe | CoreferenceProbe | MinimalPairsProbe | FreeGenerationProbe)
        assert len(p.occupations) == 75  # bls2022: 5 occupations without a figure skipped
        assert any("skipped 5 occupations" in n for n in p.notes)
    default = load_bias_probes([tmp_path])
    assert all(len(p.occupations) == 80 for p in default)  # each file's own table (bls2015)
    listed = [i for i in list_probe_files([tmp_path]) if not i.builtin]
    assert [(i.id, i.kind, i.version) for i in listed] == [
        ("team_pronoun", "pronoun", 1),
        ("team_coref", "coreference", 3),
    ]


def test_validate_reports_file_field_and_problem(tmp_path: Path) -> None:
    good = _user_copy(tmp_path, "minimal_pairs.yaml", "pairs_ok")
    info = validate_probe_file(good)
    assert info.handled and info.kind == "minimal_pairs" and not info.builtin
    assert validate_probe_file(probe_data_dir() / "free_generation.yaml").builtin
    cases: list[tuple[Any, list[str]]] = [
        ({"id": "x", "version": 1}, ["kind", "Field required"]),
        ({"kind": "coreference"}, ["id", "Field required"]),
        ({"id": "x", "kind": 3}, ["kind", "string"]),
        ("- a\n- list\n", ["top level", "mapping"]),
        ("id: [oops\n", ["invalid YAML", "line"]),
        ({"id": "Bad Id", "kind": "pronoun", "version": 1, "description": "d"}, ["id", "must match"]),
    ]
    bad_data = yaml.safe_load((probe_data_dir() / "coreference.yaml").read_text(encoding="utf-8"))
    bad_data["templates"][1]["text"] = "The {occupation} met the {participant}."
    cases.append((bad_data, ["templates[1].text", "{pronoun}"]))
    for k, (data, needles) in enumerate(cases):
        path = _write(tmp_path / f"bad{k}.yaml", data)
        with pytest.raises(ProbeError) as err:
            validate_probe_file(path)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(str(path)), msg
        for n in needles:
            assert n in msg, msg
    with pytest.raises(ProbeError, match="no such probe file"):
        validate_probe_file(tmp_path / "missing.yaml")


def test_malformed_user_file_and_duplicate_ids_fail_listing(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    _write(bad / "broken.yaml", {"id": "broken", "kind": "free_generation", "version": 1, "description": "d"})
    with pytest.raises(ProbeError, match=r"broken\.yaml: prompts: Field required"):
        list_probe_files([bad])
    dup = tmp_path / "dup"
    dup.mkdir()
    shutil.copy(probe_data_dir() / "minimal_pairs.yaml", dup / "copy.yaml")
    with pytest.raises(ProbeError, match="already defined in") as err:
        load_bias_probes([dup])
    assert str(err.value).startswith(str(dup / "copy.yaml"))
    with pytest.raises(ProbeError, match="does not exist"):
        list_probe_files([tmp_path / "nowhere"])
    with pytest.raises(ProbeError, match="unknown occupation table"):
        load_bias_probes([], "bls1999")  # type: ignore[arg-type]


def test_bias_kinds_are_exactly_the_four() -> None:
    assert tuple(registry.bias_kinds()) == tuple(BUILTIN_BIAS)
