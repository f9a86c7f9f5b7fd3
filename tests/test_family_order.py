"""Family-level metrics do not depend on the order a family lists its members in: they are computed in scale
order (training FLOPs), and the report names the reference member (issue: "a TOML family listed in another
order, or --members, changes them")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import SENTENCES, build_tiny_model

from riskaudit.inputs.families import load_family
from riskaudit.inputs.memdata import DataOptions
from riskaudit.models import LoadOptions
from riskaudit.run.scan import ProbeOptions, ScanOptions, build_probes, run_scan

SIZES = {"small": (16, 1), "mid": (32, 2), "big": (48, 2)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("order")
    for i, (name, (hidden, layers)) in enumerate(SIZES.items()):
        build_tiny_model(root, seed=i, hidden=hidden, layers=layers, heads=2, name=name)
    docs = root / "train.jsonl"
    with docs.open("w") as fh:
        for i in range(24):  # documents of three sentences: long enough for an 8 + 8 token split
            text = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(3))
            fh.write(json.dumps({"text": text, "member": int(i % 2 == 0)}) + "\n")
    return root, docs


def _toml(root: Path, names: list[str]) -> Path:
    params = {"small": 10_000, "mid": 40_000, "big": 90_000}
    body = 'name = "ordered"\n'
    for n in names:
        body += f'[[members]]\nname = "{n}"\nsource = "{root / n}"\nparams = {params[n]}\ntokens = 1000000\n'
    path = root / f"{'-'.join(names)}.toml"
    path.write_text(body)
    return path


def _family_metrics(report_members: list[object]) -> dict[tuple[str, str], float | None]:
    out: dict[tuple[str, str], float | None] = {}
    for m in report_members:
        for p in m.probes:  # type: ignore[attr-defined]
            for r in p.metrics:
                if "ref_ratio" in r.name or r.name.startswith("memorization_prediction"):
                    out[(m.name, r.name)] = r.value  # type: ignore[attr-defined]
    return out


@pytest.mark.slow
def test_largest_first_gives_the_same_family_level_metrics(setup: tuple[Path, Path]) -> None:
    root, docs = setup
    data = DataOptions(source=str(docs), label_column="member")  # non-members too: membership inference runs
    options = ProbeOptions(data=data, prefix_len=8, suffix_len=8)
    results = {}
    for order in (["small", "mid", "big"], ["big", "mid", "small"], ["mid", "big", "small"]):
        family = load_family(str(_toml(root, order)))
        probes = [p for p in build_probes(family.name, options) if p.id == "memorization"]
        report, _ = run_scan(family, ScanOptions(load=LoadOptions(batch_size=8)), probes=probes)
        assert [m.name for m in report.members] == order  # the report keeps the family's own order
        assert report.family.scale_order == ["small", "mid", "big"]
        assert report.family.reference_member == "small" and report.family.largest_member == "big"
        results[tuple(order)] = _family_metrics(report.members)
    first, *others = results.values()
    assert any(k[1].startswith("mia_auc_ref_ratio") for k in first)  # the family-level metrics are there
    assert all(other == first for other in others)


def test_toml_replicate_of_is_read(tmp_path: Path) -> None:
    toml = tmp_path / "seeds.toml"
    toml.write_text(
        '[[members]]\nname = "a"\nsource = "x/a"\ntokens = 1e9\nreplicate_of = "a"\n'
        '[[members]]\nname = "a-seed1"\nsource = "x/a-seed1"\ntokens = 1e9\nreplicate_of = "a"\n'
        '[[members]]\nname = "b"\nsource = "x/b"\ntokens = 1e9\n'
    )
    fam = load_family(str(toml))
    assert [m.replicate_of for m in fam.members] == ["a", "a", None]
