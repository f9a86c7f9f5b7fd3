"""The plan's memory estimate (riskaudit.run.placement) against the real peak: each workload kind (the bias
probes' log-likelihoods, free generation's decodes, teacher-forced statistics at every position) on tiny
random models of the common architectures (tests/archs.py) with a small (360) and a large (100k) vocabulary,
scored on CPU in a fresh process whose peak RSS increase (VmHWM, reset before loading) is measured. The
estimate must be within [0.5, 2] of it. The old formula (every position's logits of 32 × 256 tokens) was
10-100× too high for a large vocabulary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from archs import _config, _tokenizer, available_archs
from conftest import REPO

LARGE_VOCAB = 100_000
SMALL_VOCAB = 360  # the archs tokenizers' own size
WORKLOADS = ("bias", "gen", "teacher")

MEASURE = r"""
import gc, json, sys

source, workload = sys.argv[1], sys.argv[2]


def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024


import torch

torch.set_num_threads(1)
from riskaudit.inputs.family_spec import ModelSpec
from riskaudit.models import LoadOptions, load_model
from riskaudit.probes.registry import load_bias_probes
from riskaudit.run.placement import estimate_footprint
from riskaudit.run.token_count import TokenCounter, workload_shapes


class Teacher:
    id = "teacher"

    def run(self, model, progress=None):
        ids = model.encode(" ".join(["the nurse said that she was tired and the engineer said he was right"] * 8))
        ids = ids[: min(64, model.max_length - 2)]
        seqs = [ids[: len(ids) - i % 5] for i in range(16)]
        model.token_stats(seqs, [4] * len(seqs))


bias = {"occupation_gender_pronoun", "occupation_gender_coreference", "occupation_gender_minimal_pairs"}
if workload == "teacher":
    probes = [Teacher()]
elif workload == "bias":
    probes = [p.limited(12) for p in load_bias_probes() if p.id in bias]
else:
    probes = [p.limited(4) for p in load_bias_probes() if p.id == "occupation_gender_free_generation"]
load = LoadOptions(batch_size=8)
member = ModelSpec(family="t", name="m", source=source)
shapes = workload_shapes(TokenCounter(probes).count(member, load))
assert shapes is not None
estimate = estimate_footprint(member, load, shapes=shapes).peak_bytes
gc.collect()
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current RSS
with load_model(source, None, load) as model:
    torch.manual_seed(0)
    for p in probes:
        p.run(model)
print(json.dumps({"estimate": estimate, "measured": status("VmHWM") - base}))
"""


def _build(root: Path, arch: str, vocab: int) -> Path:
    """An archs.py model whose output embedding has ``vocab`` rows (its tokenizer stays small)."""
    out = root / f"{arch}-{vocab}"
    if not out.exists():
        tok = _tokenizer(arch)
        config = _config(arch, tok)
        config.vocab_size = vocab
        torch.manual_seed(0)
        transformers.AutoModelForCausalLM.from_config(config).eval().save_pretrained(out)
        tok.save_pretrained(out)
    return out


def _measure(source: Path, workload: str) -> tuple[int, int]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(source), workload],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    return int(doc["estimate"]), int(doc["measured"])


def _check(root: Path, arch: str, workloads: tuple[str, ...] = WORKLOADS) -> list[str]:
    """Every (vocabulary, workload) of ``arch`` measured; the rows whose estimate is off by more than 2×."""
    rows, off = [], []
    for vocab in (SMALL_VOCAB, LARGE_VOCAB):
        source = _build(root, arch, vocab)
        for workload in workloads:
            estimate, measured = _measure(source, workload)
            row = f"{arch} vocab {vocab} {workload}: estimate {estimate / 2**20:.1f} MiB, "
            row += f"measured {measured / 2**20:.1f} MiB"
            rows.append(row)
            if not 0.5 <= estimate / measured <= 2.0:
                off.append(row)
    print("\n".join(rows))  # shown with pytest -s
    return off


@pytest.fixture(autouse=True)
def _linux_only() -> None:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("measuring a peak RSS needs Linux /proc (VmHWM, clear_refs)")


def test_estimate_is_the_real_peak_within_2x_gemma(tmp_path: Path) -> None:
    """Gemma-3 (the issue's case: a 262k vocabulary on a small model) scoring the bias probes."""
    assert _check(tmp_path, "gemma", ("bias",)) == []


@pytest.mark.slow
@pytest.mark.parametrize("arch", available_archs())
def test_estimate_is_the_real_peak_within_2x(tmp_path: Path, arch: str) -> None:
    """Every architecture, both vocabularies, the bias probes' scoring (a fresh process each); the other workload
    kinds (teacher-forced statistics, generation) on Gemma-3 below. All 42 (architecture, vocabulary, workload)
    cases were measured once within [0.75, 1.48] (docs/plan.md); the suite keeps the cases that differ in kind."""
    assert _check(tmp_path, arch, ("bias",)) == []


@pytest.mark.slow
def test_estimate_is_the_real_peak_within_2x_other_workloads(tmp_path: Path) -> None:
    """Teacher-forced scoring and generation (KV cache, per-step logits) on Gemma-3, both vocabularies."""
    assert _check(tmp_path, "gemma", tuple(w for w in WORKLOADS if w != "bias")) == []
