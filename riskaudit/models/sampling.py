"""Seeded, batch-independent sampling: one generator per prefix and the Gumbel-max trick."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def check_sampling_args(n_new: int, seed: int, temperature: float, top_k: int | None) -> None:
    """ValueError for arguments no sampler accepts."""
    if n_new < 0:
        raise ValueError("n_new must be >= 0")
    if not temperature > 0.0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def row_generator(seed: int, index: int) -> torch.Generator:
    """A CPU generator for row ``index`` of a sampling call, seeded from (seed, index)."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(state[0]) << 32 | int(state[1]))
    return gen


class GumbelSampler:
    """A logits processor turning greedy search into sampling: logits / T (top-k masked) + Gumbel noise
    drawn from one generator per row, so argmax = a sample from softmax(logits / T) (Gumbel-max trick)."""

    def __init__(self, generators: Sequence[torch.Generator], temperature: float, top_k: int | None) -> None:
        self._generators = list(generators)
        self._temperature = float(temperature)
        self._top_k = top_k

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        x = scores.float() / self._temperature
        if self._top_k is not None and self._top_k < x.shape[-1]:
            kth = torch.topk(x, self._top_k, dim=-1).values[:, -1:]
            x = x.masked_fill(x < kth, -torch.inf)
        width = x.shape[-1]
        uniform = torch.stack([torch.rand(width, generator=g, dtype=torch.float64) for g in self._generators])
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-300)))
        return x + gumbel.to(device=x.device, dtype=x.dtype)
