"""Automatic batch size: the largest power of two up to :data:`AUTO_BATCH_CAP` that fits — on CUDA found by
trying forward passes, elsewhere estimated from the activation memory against the available RAM."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from riskaudit.models.oom import is_oom

AUTO_BATCH_CAP = 256
CPU_MEMORY_FRACTION = 0.25  # share of the available RAM that one batch's activations may use


def floor_pow2(n: int) -> int:
    """The largest power of two ≤ ``n`` (1 for n < 1)."""
    return 1 << (max(1, n).bit_length() - 1)


def activation_bytes_per_token(hidden: int, layers: int, vocab: int) -> int:
    """Rough float32 activation footprint of one token in a forward pass: hidden states of every layer
    (attention and MLP intermediates, ~16 × hidden per layer) plus the logits row (twice: logits and the
    float32 log-softmax taken while scoring)."""
    return (hidden * layers * 16 + 2 * vocab) * 4


def cpu_auto_batch_size(
    max_len: int,
    *,
    hidden: int,
    layers: int,
    vocab: int,
    available_bytes: int,
    cap: int = AUTO_BATCH_CAP,
    fraction: float = CPU_MEMORY_FRACTION,
) -> int:
    """The largest power of two ≤ ``cap`` whose activations for ``max_len`` tokens per sequence fit in
    ``fraction`` of ``available_bytes`` (at least 1)."""
    per_seq = max(1, max_len) * activation_bytes_per_token(hidden, layers, vocab)
    fits = int(available_bytes * fraction) // per_seq
    return min(floor_pow2(cap), floor_pow2(fits))


def available_ram_bytes() -> int:
    """Available physical memory from ``os.sysconf`` (no psutil); a conservative 2 GiB when unknown."""
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        page = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2 << 30
    if pages <= 0 or page <= 0:
        return 2 << 30
    return int(pages) * int(page)


def model_shape(config: Any) -> tuple[int, int]:
    """(hidden size, number of layers) from a model config (conservative defaults when absent)."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config

    def first_int(names: tuple[str, ...], default: int) -> int:
        for name in names:
            v = getattr(cfg, name, None)
            if isinstance(v, int) and v > 0:
                return v
        return default

    return first_int(("hidden_size", "n_embd", "d_model"), 4096), first_int(("num_hidden_layers", "n_layer"), 32)


def probe_cuda_batch_size(try_batch: Callable[[int], None], release: Callable[[], None]) -> int:
    """Largest power-of-two batch ≤ the cap for which ``try_batch(size)`` (a forward pass plus float32 scoring
    at the workload's length) does not run out of CUDA memory."""
    bs = floor_pow2(AUTO_BATCH_CAP)
    while True:
        try:
            try_batch(bs)
            return bs
        except Exception as exc:
            if not is_oom(exc) or bs == 1:
                raise
            bs //= 2
        finally:
            release()


class AutoBatch:
    """The batch size of one model: fixed, or automatic (found once, found again only for a longer workload)."""

    def __init__(
        self,
        fixed: int | None,
        *,
        on_cuda: bool,
        shape: Callable[[], tuple[int, int]],
        vocab: int,
        try_batch: Callable[[int, int], None],
        release: Callable[[], None],
    ) -> None:
        self.fixed = fixed
        self._on_cuda = on_cuda
        self._shape = shape
        self._vocab = vocab
        self._try_batch = try_batch  # (batch size, length) -> None, raises on out of memory
        self._release = release
        self._found: tuple[int, int] | None = None  # (probed sequence length, batch size)
        self._available_ram: int | None = None

    @property
    def current(self) -> int | None:
        """The fixed batch size, or the automatic one found so far (None: not yet found)."""
        if self.fixed is not None:
            return self.fixed
        return self._found[1] if self._found is not None else None

    def size_for(self, max_len: int) -> int:
        """Sequences per forward pass for a workload whose longest sequence has ``max_len`` tokens."""
        if self.fixed is not None:
            return self.fixed
        max_len = max(1, max_len)
        if self._found is not None and max_len <= self._found[0]:
            return self._found[1]
        if self._on_cuda:
            found = probe_cuda_batch_size(lambda bs: self._try_batch(bs, max_len), self._release)
        else:
            if self._available_ram is None:
                self._available_ram = available_ram_bytes()
            hidden, layers = self._shape()
            found = cpu_auto_batch_size(
                max_len, hidden=hidden, layers=layers, vocab=self._vocab, available_bytes=self._available_ram
            )
        self._found = (max_len, found)
        return found
