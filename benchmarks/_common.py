"""Shared helpers of the benchmark scripts (not part of the package; not imported by tests)."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

DEFAULT_MEMBER = "demo-5.8m"


def parser(description: str, repeat: int = 3) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--member", default=DEFAULT_MEMBER, help="demo family member (default: the largest) or a model directory"
    )
    p.add_argument("--repeat", type=int, default=repeat, help="timed repetitions; the median is reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (timings synchronise the device)")
    return p


def setup(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)


def member_source(name: str) -> str:
    """A demo member's directory, or ``name`` itself when it is a model directory (e.g. make_model.py's)."""
    from pathlib import Path

    from riskaudit.inputs.families import load_family

    if Path(name).is_dir():
        return name

    fam = load_family("demo")
    for m in fam.members:
        if m.name == name:
            return str(m.source)
    raise SystemExit(f"no member {name!r} in the demo family: {', '.join(m.name for m in fam.members)}")


def load(name: str, batch_size: int | None = 32, dtype: str = "float32", device: str = "cpu") -> Any:
    from riskaudit.models import LoadOptions, load_model

    opts = LoadOptions(batch_size=batch_size, dtype=dtype, device=device)
    return load_model(member_source(name), None, opts, name=name)


def sync() -> None:
    """Wait for queued GPU work, so that a wall-clock interval covers it (no-op on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def clock() -> float:
    sync()
    return time.perf_counter()


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls (after one warm-up call) and the last result."""
    out = fn()
    times = []
    for _ in range(max(1, repeat)):
        t0 = clock()
        out = fn()
        times.append(clock() - t0)
    return statistics.median(times), out


def result(name: str, ratio: float, target: str, met: bool, **extra: object) -> None:
    more = "".join(f" {k}={v}" for k, v in extra.items())
    print(f"RESULT name={name} ratio={ratio:.3f} target={target} met={'yes' if met else 'no'}{more}")


def pronoun_pairs() -> list[tuple[str, str]]:
    """The built-in pronoun probe's (context, continuation) pairs, in the order the probe scores them."""
    from riskaudit.probes.pronoun import PronounProbe

    probe = PronounProbe.load()
    return [(it.context, c) for it in probe.items() for c in (*it.female, *it.male)]


def canaries() -> list[dict[str, Any]]:
    import gzip
    import json
    from pathlib import Path

    import riskaudit

    path = Path(riskaudit.__file__).parent / "zoo" / "demo" / "ground_truth.json.gz"
    with gzip.open(path, "rt") as fh:
        data: list[dict[str, Any]] = json.load(fh)["canaries"]
    return data


def train_documents() -> list[str]:
    import gzip
    import json
    from pathlib import Path

    import riskaudit

    path = Path(riskaudit.__file__).parent / "zoo" / "demo" / "train_documents.json.gz"
    with gzip.open(path, "rt") as fh:
        data: list[str] = json.load(fh)
    return data
