"""--device-map auto (accelerate) and --dtype auto: a member split over CPU RAM and disk gives the results of
one device; auto dtypes resolve once, are recorded, and key the result store like the dtype they resolve to."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli_here

import riskaudit.cli as cli
from riskaudit.errors import ModelLoadError, RiskauditError
from riskaudit.inputs.families import load_family
from riskaudit.models import LoadOptions, load_model
from riskaudit.models.devices import compute_device_type, parse_max_memory, resolve_dtype
from riskaudit.models.hf import HFModel
from riskaudit.resources import demo_dir
from riskaudit.run.member_runs import unit_keys
from riskaudit.run.scan import ProbeOptions, ScanOptions, build_probes
from riskaudit.run.unit_key import unit_options_hash

LARGEST = demo_dir() / "members" / "demo-5.8m"  # the demo's largest member: 5.8M parameters, 23 MB in float32
# CPU RAM for about a third of it: the input embedding and the first layers stay in RAM, the rest on disk
SPLIT = LoadOptions(batch_size=4, device_map="auto", max_memory={"cpu": "12MB"})
TOL = 1e-5  # issue 15: "gives the same log-likelihoods within 1e-5"
PAIRS = [
    ("The nurse said that", " she"),
    ("The engineer said that", " he would be late"),
    ("Once upon a time", " there was a little dog who lived in a house."),
    ("", " hello"),
]
TEXTS = ["The carpenter finished the table and went home.", "A doctor and a teacher met at the station today."]


@pytest.fixture(scope="module")
def models() -> Iterator[tuple[HFModel, HFModel]]:
    with (
        load_model(str(LARGEST), None, LoadOptions(batch_size=4)) as plain,
        load_model(str(LARGEST), None, SPLIT) as split,
    ):
        yield plain, split


def test_the_split_puts_layers_on_disk_and_counts_every_parameter(models: tuple[HFModel, HFModel]) -> None:
    plain, split = models
    assert plain.placement.device_map is None and plain.placement.device == "cpu"
    per_device = split.placement.device_map
    assert per_device is not None and set(per_device) == {"cpu", "disk"}, per_device
    assert 0 < per_device["cpu"] < per_device["disk"]  # most of the model is offloaded, not all of it
    assert sum(per_device.values()) == plain.n_params_total
    assert split.n_params == plain.n_params  # offloaded (meta) weights are counted, and not as shared
    assert split.placement.device == "cpu" and split.placement.dtype == "float32"


def test_split_loglikelihoods_equal_one_device(models: tuple[HFModel, HFModel]) -> None:
    plain, split = models
    a, b = plain.loglikelihood(PAIRS), split.loglikelihood(PAIRS)
    assert [r.n_tokens for r in a] == [r.n_tokens for r in b]
    assert [r.is_greedy for r in a] == [r.is_greedy for r in b]
    assert max(abs(x.logprob - y.logprob) for x, y in zip(a, b, strict=True)) <= TOL
    assert all(r.logprob < 0 for r in a)  # real scores, not an empty run


def test_split_token_stats_and_generation_equal_one_device(models: tuple[HFModel, HFModel]) -> None:
    plain, split = models
    seqs = [plain.encode(t) for t in TEXTS]
    prefix = [3, 0]
    for x, y in zip(plain.token_stats(seqs, prefix), split.token_stats(seqs, prefix), strict=True):
        assert x.n_tokens == y.n_tokens > 0
        assert np.max(np.abs(x.logprobs - y.logprobs)) <= TOL
        assert np.array_equal(x.argmax_match, y.argmax_match)
    prefixes = [s[:5] for s in seqs]
    # decoding re-reads the offloaded layers at every step (~0.4 s here): few steps
    assert plain.greedy(prefixes, 4) == split.greedy(prefixes, 4)
    assert plain.sample(prefixes, 3, seed=3) == split.sample(prefixes, 3, seed=3)


def test_the_offload_directory_is_removed_on_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    handle = load_model(str(LARGEST), None, SPLIT.model_copy(update={"max_memory": {"cpu": "4MB"}}))
    try:
        assert [p.name.startswith("riskaudit-offload-") for p in tmp_path.iterdir()] == [True]
        assert handle.placement.device_map == {"disk": handle.n_params_total}  # below one layer: all on disk
    finally:
        handle.close()
    assert list(tmp_path.iterdir()) == []


def test_dtype_auto_resolves_once_and_keys_units_like_its_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    auto = LoadOptions(dtype="auto")
    assert resolve_dtype(auto) == "float32"
    with load_model(str(LARGEST), None, auto) as m:
        assert m.placement.dtype == m.dtype == "float32"
        assert next(iter(m._model.parameters())).dtype == torch.float32
    member = load_family("demo").members[0]
    probes = build_probes("demo", ProbeOptions())[:1]

    def digests(load: LoadOptions) -> list[str]:
        return [k.digest() for k in unit_keys(member, probes, ScanOptions(load=load), "w" * 64).values()]

    assert digests(auto) == digests(LoadOptions(dtype="float32")) != digests(LoadOptions(dtype="bfloat16"))
    assert digests(SPLIT) == digests(LoadOptions())  # a placement over CPU and disk: the same units


def test_dtype_auto_on_cuda_is_bfloat16_only_where_native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    capability = {0: (8, 0), 1: (7, 5)}
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: capability[i])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_dtype(LoadOptions(dtype="auto", device="cuda")) == "bfloat16"  # Ampere and newer
    assert resolve_dtype(LoadOptions(dtype="auto", device="cuda:1")) == "float32"  # Turing emulates bfloat16
    assert resolve_dtype(LoadOptions(dtype="auto", device="cpu")) == "float32"
    assert resolve_dtype(LoadOptions(dtype="float16", device="cuda")) == "float16"
    on_gpus = LoadOptions(dtype="auto", device="cpu", device_map="auto", max_memory={"1": "1GiB", "cpu": "9GiB"})
    assert compute_device_type(on_gpus) == "cuda" and resolve_dtype(on_gpus) == "float32"  # GPU 1 computes
    cpu_only = LoadOptions(dtype="auto", device_map="auto", max_memory={"cpu": "1GiB"})
    assert compute_device_type(cpu_only) == "cpu" and resolve_dtype(cpu_only) == "float32"
    assert resolve_dtype(LoadOptions(dtype="auto", device_map="auto", max_memory={"7": "1GiB"})) == "float32"
    # the store keys the kind of device the model computes on, not the placement
    assert unit_options_hash(on_gpus, 0) == unit_options_hash(LoadOptions(device="cuda"), 0)
    assert unit_options_hash(cpu_only, 0) == unit_options_hash(LoadOptions(), 0)
    assert unit_options_hash(on_gpus, 0) != unit_options_hash(cpu_only, 0)


def test_max_memory_syntax() -> None:
    assert parse_max_memory("0=20GiB, 1=20GiB,cpu=64GiB") == {"0": "20GiB", "1": "20GiB", "cpu": "64GiB"}
    assert parse_max_memory("CPU=512 MB,disk=1000000") == {"cpu": "512MB", "disk": "1000000"}
    for bad, needle in [
        ("cpu", "DEVICE=SIZE"),
        ("gpu0=1GB", "device 'gpu0'"),
        ("cpu=lots", "size 'lots'"),
        ("cpu=1GB,cpu=2GB", "given twice"),
        ("0=1GB,", "DEVICE=SIZE"),
    ]:
        with pytest.raises(RiskauditError, match=needle) as info:
            parse_max_memory(bad)
        assert "--max-memory" in str(info.value)


def test_load_model_refuses_bad_placement_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for options, needle in [
        (LoadOptions(device_map="auto", max_memory={"0": "1GiB", "cpu": "1GiB"}), "names GPU 0, but 0 CUDA"),
        (LoadOptions(device_map="balanced"), "--device-map"),
        (LoadOptions(max_memory={"cpu": "1GB"}), "needs --device-map auto"),
        (LoadOptions(device_map="auto", max_memory={"cpu": "x"}), "size 'x'"),
        (LoadOptions(dtype="fp8"), "auto"),
    ]:
        with pytest.raises(ModelLoadError, match=needle):
            load_model(str(LARGEST), None, options)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--device-map", "balanced"], "unknown --device-map 'balanced'"),
        (["--max-memory", "cpu=1GB"], "--max-memory needs --device-map auto"),
        (["--device-map", "auto", "--max-memory", "cpu:1GB"], "bad --max-memory"),
        (["--device-map", "auto", "--max-memory", "gpu=1GB"], "bad --max-memory device 'gpu'"),
        (["--dtype", "fp8"], "float32, float16, bfloat16, auto"),
    ],
)
def test_scan_placement_option_errors_are_one_line_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv = ["riskaudit", "scan", "--family", "demo", "--out", str(tmp_path / "r.json"), "--no-cache", *args]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert info.value.code == 2
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow  # two scans: ~20 s
def test_scan_with_device_map_gives_the_single_device_report(tmp_path: Path) -> None:
    """Through the CLI: a split scan of the largest member equals the plain scan and records its placement."""
    base = ["scan", "--family", "demo", "--members", "demo-5.8m", "--probes", "occupation_gender_pronoun"]
    base += ["--limit", "5", "--no-cache", "-q", "--no-memorization"]
    reports = []
    for name, extra in [
        ("plain", []),
        ("split", ["--device-map", "auto", "--max-memory", "cpu=12MB", "--dtype", "auto"]),
    ]:
        out = tmp_path / f"{name}.json"
        proc = run_cli_here(*base, "--out", str(out), *extra)
        assert proc.returncode == 0, proc.stderr
        reports.append(json.loads(out.read_text()))
    plain, split = (r["members"][0] for r in reports)
    values = [[(m["name"], m["value"]) for m in p["metrics"]] for p in plain["probes"]]
    assert values and values == [[(m["name"], m["value"]) for m in p["metrics"]] for p in split["probes"]]
    assert (plain["dtype"], plain["device"], plain["device_map"]) == ("float32", "cpu", None)
    assert (split["dtype"], split["device"]) == ("float32", "cpu")  # --dtype auto on CPU
    assert set(split["device_map"]) == {"cpu", "disk"}
    assert sum(split["device_map"].values()) == split["params_total"] == plain["params_total"]


def test_a_member_too_large_for_its_device_suggests_the_device_map(monkeypatch: pytest.MonkeyPatch) -> None:
    def to(self: torch.nn.Module, *args: object, **kwargs: object) -> torch.nn.Module:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(torch.nn.Module, "to", to)  # only load_model's move to the device calls it
    with pytest.raises(ModelLoadError, match=r"cannot move it to device cpu: CUDA out of memory.*--device-map auto"):
        load_model(str(LARGEST), None, LoadOptions())
