"""The plan's memory estimate (riskaudit.run.placement) against the real peak: each workload kind (the bias
probes' log-likelihoods, free generation's decodes, teacher-forced statistics at every position) on tiny
random models of the common architectures (tests/archs.py) with a small (360) and a large (100k) vocabulary,
scored on CPU in a fresh process whose peak RSS increase (VmHWM, reset before loading) is measured. The
estimate must be within [0.5, 2] of it, or, for a toy model, within the runtime's fixed cost (FIXED_SLACK) of it.
The old formula (every position's logits of 32 × 256 tokens) was 10-100× too high for a large vocabulary.

Each measurement is a process that has imported torch, transformers and riskaudit and done nothing else, as
``python -c`` would be after its imports; to pay those imports (about 8 s of CPU) once per test run instead of
once per case, one server process imports them and forks a child for each measurement. A forked child starts
from the same resident pages and counts its new ones as a fresh process does (VmHWM is reset in the child)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import transformers
from archs import _config, _tokenizer, available_archs
from conftest import REPO

LARGE_VOCAB = 100_000
SMALL_VOCAB = 360  # the archs tokenizers' own size
WORKLOADS = ("bias", "gen", "teacher")
# The runtime's fixed cost that the estimate leaves out: library code paged in on first use, allocator arenas,
# tokenizer and probe data. Measured 15-40 MiB on this project's machines (33-57 MiB in all for a 360-entry
# vocabulary whose estimate is 18 MiB; it varies with the machine), it matters only for toy models: a case
# within this many bytes of its estimate passes whatever the ratio. The 100k-vocabulary cases (300-530 MiB)
# are judged by the ratio alone, as the slack is below their [0.5, 2] band.
FIXED_SLACK = 64 * 2**20

MEASURE = r"""
import gc, json, os, sys, traceback


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


def measure(source, workload):
    # in a fresh process (a child forked from this one, which has only imported): the estimate, then the peak
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
    return {"estimate": estimate, "measured": status("VmHWM") - base}


# The server: one request per stdin line ("SOURCE\tWORKLOAD"), one JSON answer per stdout line, each measured
# in a child forked from this process (which never loads a model).
for line in sys.stdin:
    source, workload = line.rstrip("\n").split("\t")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            print(json.dumps(measure(source, workload)), flush=True)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            code = 1
        os._exit(code)
    _, status_code = os.waitpid(pid, 0)
    if status_code != 0:
        print(json.dumps({"error": f"the measuring child ended with wait status {status_code}"}), flush=True)
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


class _Server:
    """The MEASURE process: started once per test module (and xdist worker), fed one case per line."""

    def __init__(self, log: Path) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        self.log = log
        self._err = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", MEASURE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            env=env,
            cwd=REPO,
        )

    def measure(self, source: Path, workload: str) -> tuple[int, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{source}\t{workload}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()  # pytest-timeout bounds the wait
        doc = json.loads(line) if line.strip() else {"error": f"the server ended ({self.proc.poll()})"}
        assert "error" not in doc, (doc, self.log.read_text()[-3000:])
        return int(doc["estimate"]), int(doc["measured"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    s = _Server(tmp_path_factory.mktemp("memory-estimate") / "server.log")
    yield s
    s.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the models are built, each once per module (Gemma-3 serves three tests)."""
    return tmp_path_factory.mktemp("memory-estimate-models")


def _check(
    server: _Server,
    root: Path,
    arch: str,
    workloads: tuple[str, ...] = WORKLOADS,
    vocabs: tuple[int, ...] = (SMALL_VOCAB, LARGE_VOCAB),
) -> list[str]:
    """Every (vocabulary, workload) of ``arch`` measured; the rows whose estimate is off by more than 2×."""
    rows, off = [], []
    for vocab in vocabs:
        source = _build(root, arch, vocab)
        for workload in workloads:
            estimate, measured = server.measure(source, workload)
            row = f"{arch} vocab {vocab} {workload}: estimate {estimate / 2**20:.1f} MiB, "
            row += f"measured {measured / 2**20:.1f} MiB"
            rows.append(row)
            if not 0.5 <= estimate / measured <= 2.0 and abs(estimate - measured) > FIXED_SLACK:
                off.append(row)
    print("\n".join(rows))  # shown with pytest -s
    return off


@pytest.fixture(autouse=True)
def _linux_only() -> None:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("measuring a peak RSS needs Linux /proc (VmHWM, clear_refs)")


@pytest.mark.slow
def test_estimate_is_the_real_peak_within_2x_gemma(server: _Server, models: Path) -> None:
    """Gemma-3 (the issue's case: a 262k vocabulary on a small model) scoring the bias probes."""
    assert _check(server, models, "gemma", ("bias",)) == []


@pytest.mark.slow
@pytest.mark.parametrize("arch", [a for a in available_archs() if a != "gemma"])
def test_estimate_is_the_real_peak_within_2x(server: _Server, models: Path, arch: str) -> None:
    """Every other architecture with the 100k vocabulary, the bias probes' scoring (a fresh process each: a
    child forked from the server); Gemma-3's, with both vocabularies, is the test above, the other workload kinds
    (teacher-forced statistics, generation) on Gemma-3 below. The 360-entry vocabulary is left out here: its
    estimate (18 MiB) is below the runtime's fixed cost, so only FIXED_SLACK decides it, whatever the
    architecture. All 42 (architecture, vocabulary, workload) cases were measured once within [0.75, 1.48]
    (docs/plan.md); the suite keeps the cases that differ in kind."""
    assert _check(server, models, arch, ("bias",), (LARGE_VOCAB,)) == []


@pytest.mark.slow
def test_estimate_is_the_real_peak_within_2x_other_workloads(server: _Server, models: Path) -> None:
    """Teacher-forced scoring and generation (KV cache, per-step logits) on Gemma-3, both vocabularies."""
    assert _check(server, models, "gemma", tuple(w for w in WORKLOADS if w != "bias")) == []
