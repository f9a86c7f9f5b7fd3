"""Exact extraction of one suffix and its continuous companions (one teacher-forced pass), and the chunked
model calls that produce them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from riskaudit.errors import ProbeError
from riskaudit.models.base import ModelHandle, TokenStats

# --------------------------------------------------------------------------------------------- per item


@dataclass(frozen=True)
class ExtractionStats:
    """Teacher-forced statistics of one suffix (one forward pass)."""

    exact: bool
    token_accuracy: float
    mean_logprob: float
    sum_logprob: float
    longest_match: int  # leading suffix tokens that are the argmax (= greedy's first divergence)
    n_tokens: int
    extraction_prob: float  # p = Π p_t
    extraction_prob_n: float  # 1 − (1 − p)^n


def extraction_stats(logprobs: npt.ArrayLike, argmax_match: npt.ArrayLike, n_samples: int) -> ExtractionStats:
    """Exact verdict and continuous companions of a suffix from its teacher-forced log-probs and argmax flags."""
    lp = np.asarray(logprobs, dtype=np.float64)
    am = np.asarray(argmax_match, dtype=bool)
    if lp.size == 0 or lp.shape != am.shape:
        raise ValueError("need one log-prob and one argmax flag per suffix token")
    total = float(lp.sum())
    misses = np.flatnonzero(~am)
    p = math.exp(total) if total < 0.0 else 1.0
    return ExtractionStats(
        exact=bool(am.all()),
        token_accuracy=float(am.mean()),
        mean_logprob=total / lp.size,
        sum_logprob=total,
        longest_match=int(misses[0]) if misses.size else int(am.size),
        n_tokens=int(lp.size),
        extraction_prob=p,
        extraction_prob_n=prob_at_least_once(p, n_samples),
    )


def prob_at_least_once(p: float, n: int) -> float:
    """1 − (1 − p)^n, computed stably for tiny p (Hayes et al. 2024)."""
    if p >= 1.0:
        return 1.0
    if p <= 0.0:
        return 0.0
    return float(-math.expm1(n * math.log1p(-p)))


def memorization_score(generated: Sequence[int], truth: Sequence[int]) -> float:
    """Share of positions where the greedy generation equals the true suffix (Biderman et al. 2023)."""
    if not truth or len(generated) < len(truth):
        raise ValueError("the generation must cover the whole suffix")
    return float(np.mean([int(g) == int(t) for g, t in zip(generated, truth, strict=False)]))


def chunked_token_stats(
    model: ModelHandle, seqs: list[list[int]], plens: list[int], tick: Callable[[int], None], chunk: int = 256
) -> list[TokenStats]:
    """token_stats over length-sorted chunks (one forward pass per sequence; chunks only for progress)."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out: list[TokenStats | None] = [None] * len(seqs)
    for a in range(0, len(order), chunk):
        part = order[a : a + chunk]
        res = model.token_stats([seqs[i] for i in part], [plens[i] for i in part])
        if len(res) != len(part):
            raise ProbeError(f"model {model.name!r} returned {len(res)} token stats for {len(part)} sequences")
        for i, r in zip(part, res, strict=True):
            out[i] = r
        tick(len(part))
    return [r for r in out if r is not None]


def chunked_greedy(
    model: ModelHandle, prefixes: list[list[int]], n_new: list[int], tick: Callable[[int], None], chunk: int = 64
) -> list[list[int]]:
    """Greedy generations of ``n_new[i]`` tokens (or more) after each prefix, in chunks sorted by length."""
    order = sorted(range(len(prefixes)), key=lambda i: (n_new[i], len(prefixes[i])))
    out: list[list[int]] = [[] for _ in prefixes]
    for a in range(0, len(order), chunk):
        part = order[a : a + chunk]
        res = model.greedy([prefixes[i] for i in part], max(n_new[i] for i in part))
        if len(res) != len(part):
            raise ProbeError(f"model {model.name!r} returned {len(res)} generations for {len(part)} prefixes")
        for i, r in zip(part, res, strict=True):
            out[i] = list(r)
        tick(len(part))
    return out
