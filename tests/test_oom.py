"""Out of memory: on a CUDA or CPU allocation failure the batch size halves, the batch is retried, and the
report records it (reliability issue, item 2).

The fast tests inject torch's own out-of-memory errors into a real tiny model; the slow test makes the CPU
allocator really fail (a capped address space) during a demo scan from the command line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import REPO, DemoScanned
from tiny import build_tiny_model

from riskaudit.errors import ModelLoadError
from riskaudit.models import LoadOptions, load_model
from riskaudit.models.hf import HFModel, OutOfMemory
from riskaudit.models.oom import is_oom
from riskaudit.reporting.report import read_report

CUDA_OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total capacity)"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-oom"), hidden=32, layers=2)


@pytest.fixture
def model(model_dir: Path) -> Iterator[HFModel]:
    with load_model(str(model_dir), None, LoadOptions(batch_size=16)) as m:
        yield m


def _fail_above(m: HFModel, limit: int, calls: list[int], error: BaseException | None = None) -> None:
    """Make the model's forward pass raise an out-of-memory error for batches of more than ``limit``."""
    real = m._forward

    def forward(seqs: Sequence[Sequence[int]], keep: Sequence[int] | None = None) -> torch.Tensor:
        calls.append(len(seqs))
        if len(seqs) > limit:
            raise error if error is not None else torch.OutOfMemoryError(CUDA_OOM)
        return real(seqs, keep)

    m._forward = forward  # type: ignore[method-assign]


def _sequences(n: int) -> tuple[list[list[int]], list[int]]:
    rng = np.random.default_rng(0)
    seqs = [[int(t) for t in rng.integers(5, 300, size=int(rng.integers(8, 30)))] for _ in range(n)]
    return seqs, [len(s) // 2 for s in seqs]


def test_allocation_failures_are_recognised() -> None:
    assert is_oom(torch.OutOfMemoryError(CUDA_OOM))
    assert is_oom(MemoryError())
    assert is_oom(RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory"))
    assert is_oom(RuntimeError("could not create a primitive"))  # oneDNN, when its scratch memory fails
    assert not is_oom(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x6)"))
    assert not is_oom(ValueError("out of memory"))  # only the allocator's exception types


def test_token_stats_halves_the_batch_and_gives_the_same_results(model_dir: Path, model: HFModel) -> None:
    seqs, prefix = _sequences(37)
    with load_model(str(model_dir), None, LoadOptions(batch_size=16)) as ref_model:
        ref = ref_model.token_stats(seqs, prefix)
        assert ref_model.batch_halvings == []
    calls: list[int] = []
    _fail_above(model, 3, calls)
    got = model.token_stats(seqs, prefix)
    assert [(h.from_size, h.to_size, h.stage) for h in model.batch_halvings] == [
        (16, 8, "token_stats"),
        (8, 4, "token_stats"),
        (4, 2, "token_stats"),
    ]
    assert all(CUDA_OOM in h.error for h in model.batch_halvings)
    assert max(c for c in calls if c <= 3) == 2 and sum(c for c in calls if c <= 3) == 37  # every item once
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)
        assert (a.argmax_match == b.argmax_match).all()
    # the halved size is remembered: later work starts at 2 and needs no new retry
    calls.clear()
    model.loglikelihood([("The nurse said that", " she"), ("The engineer said", " he")])
    assert calls and max(calls) <= 2 and len(model.batch_halvings) == 3
    assert model.batch_size_for(10) == 2


def test_loglikelihood_retry_matches(model_dir: Path, model: HFModel) -> None:
    pairs = [(f"The worker number {i} said that", w) for i in range(12) for w in (" she", " he", " they went")]
    with load_model(str(model_dir), None, LoadOptions(batch_size=16)) as ref_model:
        ref = ref_model.loglikelihood(pairs)
    _fail_above(model, 5, [], RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"))
    got = model.loglikelihood(pairs)
    assert [(h.from_size, h.to_size) for h in model.batch_halvings] == [(16, 8), (8, 4)]
    assert model.batch_halvings[0].device == "cpu" and model.batch_halvings[0].stage == "loglikelihood"
    for a, b in zip(ref, got, strict=True):
        assert b.logprob == pytest.approx(a.logprob, abs=1e-5)
        assert (a.n_tokens, a.is_greedy) == (b.n_tokens, b.is_greedy)


def test_greedy_retry_matches(model_dir: Path, model: HFModel) -> None:
    seqs, _ = _sequences(9)
    with load_model(str(model_dir), None, LoadOptions(batch_size=16)) as ref_model:
        ref = ref_model.greedy(seqs, 6)
    inner = model._model
    real_generate = inner.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        if kwargs["input_ids"].shape[0] > 4:
            raise torch.OutOfMemoryError(CUDA_OOM)
        return real_generate(*args, **kwargs)

    inner.generate = generate
    assert model.greedy(seqs, 6) == ref
    assert [(h.from_size, h.to_size, h.stage) for h in model.batch_halvings] == [(9, 4, "greedy")]


def test_out_of_memory_at_batch_size_one_is_a_clear_error(model: HFModel) -> None:
    _fail_above(model, 0, [])
    with pytest.raises(OutOfMemory) as info:
        model.token_stats(*_sequences(3))
    assert isinstance(info.value, ModelLoadError)  # a member failure: --keep-going records it and goes on
    msg = str(info.value)
    assert "even at batch size 1" in msg and "--dtype bfloat16" in msg and "\n" not in msg


def test_other_errors_are_not_retried(model: HFModel) -> None:
    calls: list[int] = []
    _fail_above(model, 0, calls, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        model.token_stats(*_sequences(5))
    assert calls == [5] and model.batch_halvings == []


def test_scan_report_records_the_halving(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from riskaudit.inputs.families import load_family
    from riskaudit.reporting.report import write_report
    from riskaudit.run.scan import ProbeOptions, ScanOptions, build_probes, run_scan

    toml = tmp_path / "fam.toml"
    toml.write_text(f'name = "one"\n[[members]]\nname = "m"\nsource = "{model_dir}"\ntokens = 1000\n')
    real = HFModel._forward

    def forward(self: HFModel, seqs: Sequence[Sequence[int]], keep: Sequence[int] | None = None) -> torch.Tensor:
        if len(seqs) > 4:
            raise torch.OutOfMemoryError(CUDA_OOM)
        return real(self, seqs, keep)

    monkeypatch.setattr(HFModel, "_forward", forward)
    family = load_family(str(toml))
    probes = build_probes(family.name, ProbeOptions())[:1]
    report, rows = run_scan(family, ScanOptions(load=LoadOptions(batch_size=16)), probes=probes)
    halvings = report.members[0].batch_halvings
    assert [(h.from_size, h.to_size) for h in halvings] == [(16, 8), (8, 4)]
    assert {h.probe_id for h in halvings} == {probes[0].id}
    assert any("ran out of memory and retried with half the batch (16→8" in n for n in report.notes)
    out = tmp_path / "r.json"
    write_report(report, out, rows)
    again = read_report(out)
    assert again.members[0].batch_halvings == halvings


_CAPPED = textwrap.dedent(
    """
    import resource, sys
    import torch, transformers
    from transformers import GPTNeoXForCausalLM
    import scipy.special, scipy.stats, sklearn.metrics  # imported lazily by riskaudit: load them before the cap
    from riskaudit.cli import main
    vm = int(open("/proc/self/statm").read().split()[0]) * 4096  # address space in use after the imports
    cap = vm + int(float(sys.argv[1]) * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    sys.argv = ["riskaudit", *sys.argv[2:]]
    main()
    """
)


@pytest.mark.slow
@pytest.mark.xdist_group("demo-scan")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_real_cpu_allocation_failure_in_a_demo_scan(tmp_path: Path, demo_scan: DemoScanned) -> None:
    """The address space is capped 0.8 GiB above what the imports use, and the scan of the two probes whose
    batches are cut asks for batches of 8192 (all 1,920 coreference sequences in one forward pass): the CPU
    allocator really fails, the batch halves until it fits, and the metrics equal an ordinary run's. Seen here at 0.8 GiB with one thread: 1920 → 960 →
    480 in coreference, 256 → 64 in memorization. At 0.7 GiB (the earlier cap) a CI run once failed even at
    batch size 1: too little headroom for the oneDNN primitives.

    The ordinary run is demo-5.8m in the session's demo scan (default batch size, same seed and probes): a
    unit's numbers do not depend on the other members (the result store keys them without them), so they are
    the numbers of an ordinary ``--members demo-5.8m`` scan, plus the family-level reference-model-ratio
    metrics that a one-member scan cannot have (its only member is the reference)."""
    script = tmp_path / "capped.py"
    script.write_text(_CAPPED)
    # the two probes whose batches are cut (coreference and memorization): the others would only add minutes
    probes = ["occupation_gender_coreference", "memorization"]
    common = ["--family", "demo", "--members", "demo-5.8m", "--probes", ",".join(probes), "-q", "--no-cache"]
    capped = tmp_path / "capped" / "r.json"
    proc = subprocess.run(
        [sys.executable, str(script), "0.8", "scan", *common, "--batch-size", "8192", "--out", str(capped)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = read_report(capped)
    [plain] = [m for m in read_report(demo_scan.out).members if m.name == "demo-5.8m"]
    halvings = a.members[0].batch_halvings
    assert [m.name for m in a.members] == ["demo-5.8m"]
    assert halvings and halvings[0].from_size >= 1024 and halvings[0].device == "cpu"
    assert all(h.to_size == h.from_size // 2 for h in halvings)
    assert any("ran out of memory" in n for n in a.notes) and plain.batch_halvings == []
    n = 0
    assert [p.probe_id for p in a.members[0].probes] == probes
    for pa, pb in zip(a.members[0].probes, [p for p in plain.probes if p.probe_id in probes], strict=True):
        assert pa.probe_id == pb.probe_id
        # the same metrics in the same order; the family scan adds only the reference-model-ratio ones
        assert [m.name for m in pb.metrics if "ref_ratio" not in m.name] == [m.name for m in pa.metrics]
        assert not any("ref_ratio" in m.name for m in pa.metrics)
        ys = {m.name: m for m in pb.metrics}
        for x in pa.metrics:
            y = ys[x.name]
            if x.value is not None:
                assert y.value == pytest.approx(x.value, abs=1e-4), (pa.probe_id, x.name)
                n += 1
    assert n > 100
    assert json.loads(capped.read_text())["members"][0]["batch_halvings"][0]["error"]
