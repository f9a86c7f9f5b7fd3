"""Model families: the messy-number parser, the built-in table, TOML families, revisions, the demo."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from riskaudit import resources
from riskaudit.errors import FamilyError
from riskaudit.inputs.demo_family import demo_family
from riskaudit.inputs.families import builtin_families, load_family
from riskaudit.inputs.family_spec import Family, ModelSpec
from riskaudit.inputs.quantities import parse_quantity
from riskaudit.inputs.revisions import PYTHIA_TOKENS_PER_STEP, pythia_checkpoint_steps

REPO = Path(__file__).resolve().parents[1]
REQUIRED = [
    "pythia",
    "pythia-deduped",
    "gpt2",
    "gpt-neo",
    "opt",
    "cerebras-gpt",
    "olmo",
    "olmo-2",
    "smollm2",
    "qwen2.5",
    "demo",
]

# --------------------------------------------------------------------------------------------------
# Parser


@pytest.mark.parametrize(
    ("text", "value", "approximate"),
    [
        ("14067712", 14067712, False),
        ("0.49B", 490_000_000, False),
        ("72.7B (UNVERIFIED)", 72_700_000_000, False),
        ("299892736000 (~1.5 epochs of 207B-token deduped Pile)", 299_892_736_000, False),
        ("300B (572,300 steps) Pile", 300e9, False),
        ("2.22E+09 Pile (20 tok/param)", 2.22e9, False),
        ("~180B (corpus size; OPT paper s2.3)", 180e9, True),
        ("3T", 3e12, False),
        ("18T (up to; series-level claim)", 18e12, False),
        ("NA (not disclosed; WebText ~40GB)", None, False),
        ("NA", None, False),
        ("", None, False),
        ("124,439,808", 124_439_808, False),
        ("1.5 billion", 1.5e9, False),
        ("70M", 70e6, False),
    ],
)
def test_parse_quantity(text: str, value: float | None, approximate: bool) -> None:
    parsed = parse_quantity(text)
    assert parsed.value == value
    assert parsed.approximate is approximate
    assert parsed.raw == text


def test_parse_quantity_keeps_remark_and_rounds_params() -> None:
    parsed = parse_quantity("72.7B (UNVERIFIED)")
    assert parsed.remark == "(UNVERIFIED)"
    assert parsed.as_int() == 72_700_000_000
    assert parse_quantity("0.49B").as_int() == 490_000_000
    assert parse_quantity("3T").is_bare and not parse_quantity("~3T").is_bare


@pytest.mark.parametrize("text", ["Pile only", "about 3T", "B300", "-5", "(unknown)"])
def test_parse_quantity_rejects_text_without_a_number(text: str) -> None:
    with pytest.raises(ValueError, match="no leading number"):
        parse_quantity(text)


# --------------------------------------------------------------------------------------------------
# The built-in table


def _table_rows() -> list[dict[str, str]]:
    with open(REPO / "riskaudit" / "data" / "families.tsv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def _table_specs() -> dict[tuple[str, str], ModelSpec]:
    """Members of the table-backed families (the demo family comes from its own manifest)."""
    return {(m.family, m.name): m for f in builtin_families().values() if f.name != "demo" for m in f.members}


def test_flops_match_the_tables_6nd_columns() -> None:
    """Recompute 6·N·D from the parsed numbers and compare with the table's own FLOPs columns."""
    specs = _table_specs()
    checked = 0
    for row in _table_rows():
        spec = specs[(row["family"], row["member"])]
        for column, computed in (
            ("flops_6ND_total", spec.flops_total),
            ("flops_6ND_nonemb", spec.flops_nonembedding),
        ):
            expected = parse_quantity(row[column]).value
            if expected is None:
                continue
            assert computed is not None, (row["family"], row["member"], column)
            assert abs(computed - expected) / expected < 0.01, (row["family"], row["member"], column)
            checked += 1
    assert checked >= 90  # most of the 59 rows have both columns


def test_table_keeps_originals_and_sources() -> None:
    specs = _table_specs()
    rows = {(r["family"], r["member"]): r for r in _table_rows()}
    assert len(specs) == len(rows)  # every row in exactly one family
    for key, row in rows.items():
        assert specs[key].source_ref == row["source"]
        assert specs[key].source == row["hf_id"]
    qwen = specs[("qwen2.5", "72B")]
    assert qwen.params_total == 72_700_000_000
    assert "72.7B (UNVERIFIED)" in qwen.notes
    opt = specs[("opt", "125m")]
    assert opt.approximate and opt.train_tokens == 180e9
    assert "~180B" in opt.notes


def test_builtin_families_present_and_sorted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_manifest(tmp_path)
    monkeypatch.setattr(resources, "demo_dir", lambda: tmp_path)
    families = builtin_families()
    for name in REQUIRED:
        assert name in families, name
        family = families[name]
        assert family.members, name
        assert all(m.params_total is not None for m in family.members), name
        sizes = [m.params_total or 0 for m in family.members]
        assert sizes == sorted(sizes), name
    assert [m.name for m in families["gpt-j"].members] == ["6B"]
    assert [m.name for m in families["pythia"].members][:3] == ["14m", "31m", "70m"]


def test_gpt2_lists_with_unknown_flops() -> None:
    gpt2 = load_family("gpt2")
    assert len(gpt2.members) == 4
    assert not gpt2.flops_known
    assert all(m.train_tokens is None and m.flops_total is None for m in gpt2.members)
    assert "FLOPs unknown" in gpt2.members[0].notes
    assert load_family("pythia").flops_known


def test_unknown_family_lists_known_names_on_one_line() -> None:
    with pytest.raises(FamilyError) as info:
        load_family("pythai")
    message = str(info.value)
    assert "\n" not in message
    assert "'pythai'" in message
    for name in REQUIRED:
        assert name in message


def test_spec_flops_basis_and_display_name() -> None:
    spec = ModelSpec(
        family="f", name="m", source="x/y", params_total=10, params_nonembedding=4, train_tokens=5
    )
    assert spec.flops("total") == 300 and spec.flops("nonembedding") == 120
    assert spec.display_name == "f/m"
    with pytest.raises(FamilyError, match="basis"):
        spec.flops("embedding")
    family = Family(name="f", flops_basis="nonembedding", members=[spec])
    assert family.member_flops(spec) == 120
    assert family.member("m") is spec
    with pytest.raises(ValueError):
        Family(name="f", flops_basis="all", members=[spec])


# --------------------------------------------------------------------------------------------------
# Revisions


def test_pythia_revisions_expand_members() -> None:
    family = load_family("pythia-deduped", ["step143000", "step1000", "step1000"])
    names = [m.name for m in family.members]
    assert names[:2] == ["70m@step1000", "70m@step143000"]
    assert len(names) == 2 * 8
    for m in family.members:
        assert m.step is not None
        assert m.revision == f"step{m.step}"
        assert m.train_tokens == m.step * PYTHIA_TOKENS_PER_STEP
        assert m.source.startswith("EleutherAI/pythia-")
    assert family.members[1].train_tokens == 299_892_736_000  # the table's final token count


def test_pythia_checkpoint_schedule() -> None:
    steps = pythia_checkpoint_steps()
    assert len(steps) == 154
    assert steps[:4] == (0, 1, 2, 4) and 512 in steps and steps[-1] == 143_000


@pytest.mark.parametrize("revision", ["step1500", "step3", "step144000", "1000", "latest"])
def test_pythia_invalid_revision_rejected(revision: str) -> None:
    with pytest.raises(FamilyError, match="no checkpoint"):
        load_family("pythia", [revision])


def test_revisions_rejected_for_families_without_checkpoints() -> None:
    with pytest.raises(FamilyError, match="no checkpoint schedule"):
        load_family("gpt2", ["step1000"])


# --------------------------------------------------------------------------------------------------
# The demo family


def _write_manifest(root: Path) -> Path:
    def member(name: str, params: int, checkpoints: list[dict[str, object]]) -> dict[str, object]:
        return {
            "name": name,
            "path": f"members/{name}",
            "d_model": 32,
            "n_layers": 2,
            "n_heads": 2,
            "lr": 1e-3,
            "params_total": params,
            "params_nonembedding": params // 2,
            "train_tokens": 600_000,
            "train_seconds": 1.0,
            "final_loss": 3.5,
            "checkpoints": checkpoints,
        }

    ckpts: list[dict[str, object]] = [
        {
            "revision": f"step{s}",
            "step": s,
            "train_tokens": s * 1000,
            "path": f"members/demo-200k/checkpoints/step{s}",
        }
        for s in (100, 300)
    ]
    manifest = {
        "seed": 0,
        "vocab_size": 512,
        "seq_len": 64,
        "corpus_tokens": 100_000,
        "tokenizer_path": "tokenizer.json",
        "ground_truth_path": "ground_truth.json",
        "members": [member("demo-200k", 200_000, ckpts), member("demo-50k", 50_000, [])],
        "build_seconds": 2.0,
    }
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_demo_missing_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "demo_dir", lambda: tmp_path)
    with pytest.raises(FamilyError, match="riskaudit zoo build"):
        load_family("demo")
    assert "demo" not in builtin_families()


def test_demo_family_from_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_manifest(tmp_path)
    monkeypatch.setattr(resources, "demo_dir", lambda: tmp_path)
    family = load_family("demo")
    assert [m.name for m in family.members] == ["demo-50k", "demo-200k"]
    small = family.members[0]
    assert small.source == str(tmp_path.resolve() / "members" / "demo-50k")
    assert Path(small.source).is_absolute()
    assert small.params_total == 50_000 and small.train_tokens == 600_000
    assert small.flops_total == 6 * 50_000 * 600_000


def test_demo_revisions_map_to_checkpoints(tmp_path: Path) -> None:
    _write_manifest(tmp_path)
    family = demo_family(["main", "step300", "step100"], demo_dir=tmp_path)
    assert [m.name for m in family.members] == [
        "demo-50k",
        "demo-200k@step100",
        "demo-200k@step300",
        "demo-200k",  # main: the member itself, the same name as without --revisions
    ]
    ckpt = family.members[1]
    assert ckpt.step == 100 and ckpt.train_tokens == 100_000
    assert ckpt.source == str(tmp_path.resolve() / "members/demo-200k/checkpoints/step100")
    assert family.members[-1].source == str(tmp_path.resolve() / "members" / "demo-200k")
    with pytest.raises(FamilyError, match="step100, step300, main"):
        demo_family(["step200"], demo_dir=tmp_path)


def test_demo_malformed_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"seed": 0}', encoding="utf-8")
    with pytest.raises(FamilyError, match="malformed demo manifest") as info:
        demo_family(demo_dir=tmp_path)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------
# TOML families

GOOD_TOML = """
name = "mine"
description = "two members"
flops_basis = "nonembedding"
tokens_per_step = 1000

[[members]]
name = "small"
source = "models/small"
params = 100
params_nonembedding = 60
tokens = 5000

[[members]]
name = "big"
source = "EleutherAI/pythia-70m"
revision = "step7"
params = "1K"
"""


def test_toml_family_happy_path(tmp_path: Path) -> None:
    (tmp_path / "models" / "small").mkdir(parents=True)
    path = tmp_path / "fam.toml"
    path.write_text(GOOD_TOML, encoding="utf-8")
    family = load_family(str(path))
    assert family.name == "mine" and family.flops_basis == "nonembedding"
    small, big = family.members
    assert small.source == str((tmp_path / "models" / "small").resolve())
    assert family.member_flops(small) == 6 * 60 * 5000
    assert big.source == "EleutherAI/pythia-70m"
    assert big.step == 7 and big.train_tokens == 7000 and big.params_total == 1000
    assert family.member_flops(big) is None  # nonembedding count unknown until loaded


def test_toml_revisions(tmp_path: Path) -> None:
    path = tmp_path / "fam.toml"
    path.write_text(GOOD_TOML.replace('source = "models/small"', 'source = "org/small"'), encoding="utf-8")
    family = load_family(str(path), ["step2", "main"])
    assert [m.name for m in family.members] == ["small@step2", "small", "big@step2", "big"]
    assert [m.train_tokens for m in family.members] == [2000, 5000, 2000, 7000]
    no_tps = tmp_path / "no_tps.toml"
    no_tps.write_text(GOOD_TOML.replace("tokens_per_step = 1000\n", "").replace('revision = "step7"', ""))
    with pytest.raises(FamilyError, match="tokens_per_step"):
        load_family(str(no_tps), ["step2"])


def test_example_family_loads() -> None:
    family = load_family(str(REPO / "examples" / "family.toml"))
    assert [m.name for m in family.members] == ["70m", "160m", "410m"]
    assert all(m.train_tokens == 299_892_736_000 for m in family.members)


_MEMBER = '[[members]]\nname = "a"\nsource = "org/a"\ntokens = 10\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "x"\n[[members]\n', "invalid TOML"),
        ('[[members]]\nname = "a"\ntokens = 10\n', "member 'a' field 'source': Field required"),
        (_MEMBER.replace("tokens = 10", 'tokens = "lots"'), "member 'a' field 'tokens'"),
        (_MEMBER + "params = 1.5\n", "member 'a' field 'params'"),
        (_MEMBER.replace("tokens = 10", "tokens = -10"), "member 'a' field 'tokens'"),
        (_MEMBER + "params = -1\n", "member 'a' field 'params'"),
        (_MEMBER + _MEMBER, "member 'a': duplicate member name"),
        (_MEMBER.replace("tokens = 10\n", ""), "member 'a' field 'tokens': missing"),
        ('flops_basis = "all"\n' + _MEMBER, "field 'flops_basis'"),
        (_MEMBER + "param = 5\n", "member 'a' field 'param': Extra inputs"),
        ('name = "x"\n', "field 'members': Field required"),
        (_MEMBER.replace('name = "a"', 'name = "a@b"'), "member 'a@b' field 'name'"),
    ],
)
def test_malformed_toml(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FamilyError) as info:
        load_family(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert expected in message


def test_missing_toml_file(tmp_path: Path) -> None:
    with pytest.raises(FamilyError, match="not found"):
        load_family(str(tmp_path / "nope.toml"))
