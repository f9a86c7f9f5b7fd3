"""scan --plan: footprints, resource requests, stored units and forward-pass token counts, no model loaded."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import REPO
from rich.console import Console
from tiny import build_tiny_model, write_tiny_family
from transformers import AutoModelForCausalLM, AutoTokenizer

import riskaudit.cli as cli
from riskaudit.cli.render_plan import plan_tables
from riskaudit.errors import RiskauditError
from riskaudit.inputs.families import load_family
from riskaudit.models import LoadOptions, load_model
from riskaudit.probes.pronoun import PronounProbe
from riskaudit.reporting.layout import table_width
from riskaudit.run.placement import GIB, MemberFootprint, estimate_footprint, task_resources
from riskaudit.run.plan import ScanPlan, plan_scan
from riskaudit.run.probe_subset import limit_probe, select_probes
from riskaudit.run.scan import ProbeOptions, ScanOptions, build_probes
from riskaudit.run.token_count import TokenCounter, count_probe_tokens, load_counting_model

PRONOUN = "occupation_gender_pronoun"


@pytest.fixture(scope="module")
def demo_probes() -> list[Any]:
    return build_probes(load_family("demo"), ProbeOptions())


def _fp(peak_gib: float, dtype: str = "bfloat16") -> MemberFootprint:
    peak = int(peak_gib * GIB)
    return MemberFootprint(
        member="m", params_total=peak // 2, params_source="declared", dtype=dtype, weight_bytes=peak, peak_bytes=peak
    )


def test_resource_requests_follow_the_fraction_rules() -> None:
    gpu = 80 * GIB
    assert task_resources(_fp(10), gpu).num_gpus == 2 / 16
    assert task_resources(_fp(5), gpu).num_gpus == 1 / 16  # exactly one share
    assert task_resources(_fp(5).model_copy(update={"peak_bytes": 5 * GIB + 1}), gpu).num_gpus == 2 / 16
    assert task_resources(_fp(0.001), gpu).num_gpus == 1 / 16  # at least one share
    assert task_resources(_fp(80), gpu).num_gpus == 1.0
    with pytest.raises(RiskauditError) as err:
        task_resources(_fp(100), gpu)
    assert str(err.value) == "m needs ~100.0 GiB at bfloat16, more than one device's 80.0 GiB: use --device-map auto"
    split = task_resources(_fp(100), gpu, device_map=True)
    assert split.num_gpus == 2.0 and split.memory is None
    cpu = task_resources(_fp(10, "float32"), None)
    assert (cpu.num_gpus, cpu.num_cpus, cpu.memory) == (0.0, 1.0, 10 * GIB)
    unknown = _fp(10).model_copy(update={"peak_bytes": None})
    assert task_resources(unknown, gpu).num_gpus == 1.0  # unknown activations: a whole device


@pytest.mark.parametrize("tied", [False, True])
def test_params_counted_from_config_equal_the_loaded_model(tmp_path: Path, tied: bool) -> None:
    toml = write_tiny_family(tmp_path)
    build_tiny_model(tmp_path / "models", seed=3, hidden=24, layers=2, heads=2, tie_embeddings=tied, name="small")
    member = load_family(str(toml)).members[0]
    assert member.params_total is None
    fp = estimate_footprint(member, LoadOptions(dtype="auto"), use_gpu=True)
    model = AutoModelForCausalLM.from_pretrained(member.source)
    ptrs: dict[int, int] = {}
    for t in model.state_dict().values():  # every tensor, shared storage once
        ptrs[t.untyped_storage().data_ptr()] = t.numel()
    assert fp.params_source == "config" and fp.params_total == sum(ptrs.values())
    assert fp.dtype == "bfloat16" and fp.weight_bytes == 2 * sum(ptrs.values())
    assert fp.peak_bytes is not None and fp.activation_bytes is not None
    assert fp.peak_bytes == fp.weight_bytes + fp.activation_bytes
    assert estimate_footprint(member, LoadOptions(dtype="auto")).dtype == "float32"


def test_unreadable_member_is_unknown_not_an_error(tmp_path: Path) -> None:
    toml = tmp_path / "fam.toml"
    toml.write_text('name = "x"\n[[members]]\nname = "gone"\nsource = "./nowhere"\ntokens = 1000\n')
    family = load_family(str(toml))
    fp = estimate_footprint(family.members[0], LoadOptions())
    assert fp.params_source == "unknown" and fp.params_total is None and fp.peak_bytes is None
    assert "config not readable" in fp.note
    plan = plan_scan(family, [], ScanOptions(), None, "local", 80 * GIB, False)
    (unit,) = plan.units
    assert unit.resources.num_gpus == 1.0 and plan.peak_bytes_max is None
    text = " ".join(_render(plan_tables(plan, 80), 80).split())  # captions wrap
    assert "?: config not readable" in text and "(gone)." in text


def test_pronoun_tokens_equal_a_hand_count(demo_probes: list[Any]) -> None:
    """The probe's pairs tokenized here: each distinct input (context + continuation minus its last token)
    is one forward pass; the demo tokenizer adds no BOS."""
    member = load_family("demo").members[0]
    probe = next(p for p in demo_probes if p.id == PRONOUN)
    assert isinstance(probe, PronounProbe)
    tok = AutoTokenizer.from_pretrained(member.source)
    inputs: set[tuple[int, ...]] = set()
    for it in probe.items():
        for cont in (*it.female, *it.male):
            ctx_ids = tok(it.context, add_special_tokens=False)["input_ids"]
            whole = tok(it.context + cont, add_special_tokens=False)["input_ids"]
            assert whole[: len(ctx_ids)] == ctx_ids
            inputs.add(tuple(whole[:-1]))
    counted = count_probe_tokens(load_counting_model(member, LoadOptions()), [probe])[0]
    assert counted.tokens == sum(map(len, inputs)) and counted.sequences == len(inputs)


def test_token_counts_equal_the_real_models_forward_passes() -> None:
    """Every probe (cut to its first item, 3 exposure candidates) on demo-50k: the counting model's tokens
    equal the non-padding input positions the real model computes (a forward pre-hook on the loaded model,
    every generate step included)."""
    family = load_family("demo")
    member = family.members[0]
    probes = [limit_probe(p, 1) for p in build_probes(family, ProbeOptions(exposure_candidates=3))]
    counted = count_probe_tokens(load_counting_model(member, LoadOptions()), probes)
    seen = [0]

    def hook(_module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids, mask = kwargs.get("input_ids", args[0] if args else None), kwargs.get("attention_mask")
        assert ids is not None
        seen[0] += ids.numel() if mask is None else int(mask[:, -ids.shape[1] :].sum())  # no mask: no padding

    with load_model(member.source, None, LoadOptions(batch_size=64), name=member.name) as model:
        model._model.register_forward_pre_hook(hook, with_kwargs=True)
        for probe, c in zip(probes, counted, strict=True):
            seen[0] = 0
            torch.manual_seed(0)
            probe.run(model)
            assert c.tokens == seen[0] > 0, probe.id


def test_members_sharing_a_tokenizer_are_counted_once(demo_probes: list[Any]) -> None:
    family = load_family("demo")
    pronoun = select_probes(demo_probes, [PRONOUN])
    counter = TokenCounter(pronoun)
    counts = [counter.count(m, LoadOptions())[0].tokens for m in family.members]
    assert counter.distinct == 1 and len(set(counts)) == 1
    counts_bos = counter.count(family.members[0], LoadOptions(add_bos="yes"))[0].tokens
    assert counter.distinct == 2 and counts_bos is not None and counts[0] is not None and counts_bos > counts[0]


def _hub_cache(root: Path, repo: str, model_dir: Path, commits: dict[str, str]) -> None:
    """An HF hub cache holding ``model_dir``'s small files (no weights) at every revision of ``commits``, as
    the hub stores them: content-named blobs, one snapshot of symlinks per commit, a ref per revision."""
    base = root / ("models--" + repo.replace("/", "--"))
    (base / "blobs").mkdir(parents=True)
    (base / "refs").mkdir()
    for ref, commit in commits.items():
        (base / "refs" / ref).write_text(commit)
        (base / "snapshots" / commit).mkdir(parents=True)
        for f in model_dir.iterdir():
            if f.suffix in (".json", ".txt"):
                blob = base / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
                blob.write_bytes(f.read_bytes())
                (base / "snapshots" / commit / f.name).symlink_to(blob)


def test_hub_checkpoints_from_the_local_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_probes: list[Any]
) -> None:
    """A hub family with checkpoints, config and tokenizer only in the local HF cache (no weights, no network):
    parameters counted on the meta device, tokens counted with one tokenizer load for every checkpoint."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    demo = load_family("demo").members[1]
    _hub_cache(tmp_path / "hub", "org/tiny", Path(demo.source), {"step1": "a" * 40, "step2": "b" * 40})
    toml = tmp_path / "fam.toml"
    toml.write_text(
        'name = "hub"\ntokens_per_step = 1000\n[[members]]\nname = "t"\nsource = "org/tiny"\ntokens = 5000\n'
    )
    family = load_family(str(toml), ["step1", "step2"])
    probes = select_probes(demo_probes, [PRONOUN])
    counter = TokenCounter(probes)
    counts = [counter.count(m, LoadOptions())[0].tokens for m in family.members]
    assert counter.loaded == 1 and counts == [10073, 10073]  # the demo tokenizer's count (docs/plan.md)
    plan = plan_scan(family, probes, ScanOptions(), None, "local", None, False)
    assert [u.footprint.params_total for u in plan.units] == [demo.params_total] * 2
    assert [u.footprint.params_source for u in plan.units] == ["config", "config"]


def test_plan_lists_every_member_and_fits_80_columns(demo_probes: list[Any]) -> None:
    family = load_family("demo")
    probes = select_probes(demo_probes, [PRONOUN])
    plan = plan_scan(family, probes, ScanOptions(load=LoadOptions(batch_size=8)), None, "local", 80 * GIB, False)
    assert [u.name for u in plan.units] == [m.name for m in family.members]
    assert all(u.footprint.params_source == "declared" for u in plan.units)
    assert all(u.resources.num_gpus == 1 / 16 and u.submit for u in plan.units)
    assert plan.units_to_run == 6 and plan.tokens_to_run == plan.tokens_total == 6 * plan.units[0].probes[0].tokens
    for width in (80, 100, 120):
        text = _render(plan_tables(plan, width), width)
        assert all(m.name in text for m in family.members) and "1/16 GPU" in text
    for suffix in ("@step1", "@step103", "@step143000"):  # checkpoint names, at every width around 80-120
        units = [u.model_copy(update={"name": u.name + suffix}) for u in plan.units]
        for width in range(72, 128):
            _render(plan_tables(plan.model_copy(update={"units": units}), width), width)


def _render(tables: list[Any], width: int) -> str:
    """The tables as printed at ``width``: nothing wider, no cell cut with an ellipsis."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    for t in tables:
        assert table_width(t) <= width  # else the console crops it (no ellipsis, but cells cut)
        console.print(t)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str) and "…" not in text
    assert max(len(ln.rstrip()) for ln in text.splitlines()) <= width
    return text


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["riskaudit", *argv])
    code: Any = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 0, err
    return 0, out


def test_plan_json_sees_the_units_a_real_scan_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    common = ["scan", "--family", "demo", "--probes", PRONOUN, "--limit", "3", "--cache-dir", str(tmp_path / "c")]
    _cli([*common, "--members", "demo-50k", "-q", "-o", str(tmp_path / "r.json")], capsys, monkeypatch)
    _, out = _cli([*common, "--members", "demo-50k,demo-150k", "--plan", "--json"], capsys, monkeypatch)
    plan = ScanPlan.model_validate(json.loads(out))
    done, todo = plan.units
    assert (done.name, done.submit, [p.stored for p in done.probes]) == ("demo-50k", False, [True])
    assert (todo.name, todo.submit, [p.stored for p in todo.probes]) == ("demo-150k", True, [False])
    assert done.weights.startswith("sha256:") and plan.units_to_run == 1
    assert plan.tokens_to_run == todo.tokens_to_run and done.tokens_to_run == 0 and (done.tokens or 0) > 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--json"], "--json needs --plan"),
        (["--plan", "--gpu-memory", "80"], "--gpu-memory sizes GPU tasks: add --device auto"),
        (["--plan", "--device", "auto", "--gpu-memory", "0.07"], "demo-5.8m needs ~0.08 GiB at float32, more than one device's 0.07 GiB"),
    ],
)
def test_plan_usage_errors_are_one_line(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["riskaudit", "scan", "--family", "demo", "--no-memorization", "--no-cache", *args]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_pass_shapes_equal_the_real_models_forward_passes() -> None:
    """The largest forward passes the counting model records (what the memory estimate sizes) equal those the
    real model makes, batched 4 at a time: rows × width of every teacher-forced pass, rows × positions of the
    logits it projects (``logits_to_keep``), and rows × (width + new tokens) of every decode."""
    from riskaudit.run.placement import PassShapes

    family = load_family("demo")
    member = family.members[0]
    probes = [limit_probe(p, 2) for p in build_probes(family, ProbeOptions(exposure_candidates=3))]
    load = LoadOptions(batch_size=4)
    counted = count_probe_tokens(load_counting_model(member, load), probes)
    seen = [PassShapes()]
    decoding = [False]

    def hook(_module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        if decoding[0]:
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        rows, width = int(ids.shape[0]), int(ids.shape[1])
        keep = kwargs.get("logits_to_keep")
        kept = width if keep is None or isinstance(keep, int) else len(keep)
        seen[0] = seen[0].merge(PassShapes(tokens=rows * width, logit_rows=rows * kept))

    with load_model(member.source, None, load, name=member.name) as model:
        hf = model._model  # type: ignore[attr-defined]
        hf.register_forward_pre_hook(hook, with_kwargs=True)
        generate = hf.generate

        def recording_generate(*args: Any, **kwargs: Any) -> Any:
            ids, n_new = kwargs["input_ids"], kwargs["generation_config"].max_new_tokens
            rows, width = int(ids.shape[0]), int(ids.shape[1])
            shape = PassShapes(decode_tokens=rows * (width + n_new), decode_logits=rows * n_new, decode_rows=rows)
            seen[0] = seen[0].merge(shape)
            decoding[0] = True
            try:
                return generate(*args, **kwargs)
            finally:
                decoding[0] = False

        hf.generate = recording_generate
        kinds = set()
        for probe, c in zip(probes, counted, strict=True):
            seen[0] = PassShapes()
            torch.manual_seed(0)
            probe.run(model)
            assert c.shapes == seen[0], probe.id
            kinds |= {k for k, v in c.shapes.model_dump().items() if v}
    assert kinds == set(PassShapes.model_fields)  # every kind of pass was compared


def test_ray_requests_the_plans_memory_for_the_counted_passes(demo_probes: list[Any]) -> None:
    """The Ray executor's request for a CPU unit is the plan's peak, sized by the probes' counted passes (not
    the default every-position pass, which is several times larger)."""
    from riskaudit.run.ray_executor import RayExecutor

    family = load_family("demo")
    plan = plan_scan(family, demo_probes, ScanOptions(), None, "ray", None, False)
    counter = TokenCounter(demo_probes)
    executor = RayExecutor()  # not connected: a CPU scan's request needs no cluster
    for member, unit in zip(family.members, plan.units, strict=True):
        need = executor.resources(member, ScanOptions().load, counter)
        assert need.memory == unit.footprint.peak_bytes == unit.resources.memory is not None
        assert need.num_gpus == 0.0 and need.num_cpus == 1.0
        default = estimate_footprint(member, ScanOptions().load).peak_bytes
        assert default is not None and need.memory < default


def test_plan_caption_says_nothing_runs_and_explains_only_marks_shown(demo_probes: list[Any]) -> None:
    """Issue 23 item 5: everything served from the store is said in words (not "largest peak ?"), and the
    ``params*`` mark is explained only when a row shows it."""
    family = load_family("demo")
    probes = select_probes(demo_probes, [PRONOUN])
    plan = plan_scan(family, probes, ScanOptions(load=LoadOptions(batch_size=8)), None, "local", None, False)
    text = _render(plan_tables(plan, 120), 120)
    assert "params*" not in text and "largest peak" in text  # declared counts: no row has the mark
    stored = plan.model_copy(
        update={
            "units": [u.model_copy(update={"submit": False, "tokens_to_run": 0}) for u in plan.units],
            "units_to_run": 0,
            "tokens_to_run": 0,
            "peak_bytes_max": None,
        }
    )
    text = " ".join(_render(plan_tables(stored, 120), 120).split())
    assert "largest peak" not in text and "?" not in text, text
    assert "Nothing to run: all 6 units are served from the result store" in text, text
    first = plan.units[0]
    counted = first.model_copy(update={"footprint": first.footprint.model_copy(update={"params_source": "config"})})
    text = _render(plan_tables(plan.model_copy(update={"units": [counted, *plan.units[1:]]}), 120), 120)
    assert "params*: counted from the config" in " ".join(text.split())
    assert sum("*" in ln for ln in text.splitlines() if ln.lstrip().startswith("demo-")) == 1
