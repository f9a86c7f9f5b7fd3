"""Out of memory: recognise allocation failures, give memory back, and run batches that halve on failure."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys
from collections.abc import Callable, Sequence

import torch

from riskaudit.errors import ModelLoadError
from riskaudit.models.base import BatchHalving
from riskaudit.models.batching import sorted_batches
from riskaudit.models.load_errors import one_line

BatchFn = Callable[[list[int]], None]  # runs one batch, given indices into the workload
RunBatches = Callable[[Sequence[int], int, BatchFn], None]  # (lengths, longest total length, fn)


class OutOfMemory(ModelLoadError):
    """The model ran out of memory even one sequence at a time."""


# messages of allocation failures: CUDA ("CUDA out of memory"), torch's CPU allocator ("DefaultCPUAllocator:
# can't allocate memory"), and oneDNN, whose CPU kernels fail with "could not create a primitive" when their
# scratch memory cannot be allocated (seen here with a capped address space)
_CPU_ALLOC_FAILURES = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "failed to allocate",
    "could not create a primitive",
)


def is_oom(exc: BaseException) -> bool:
    """A CUDA or CPU allocation failure (torch's OutOfMemoryError, the CPU allocator's RuntimeError, or
    Python's MemoryError) — the errors a smaller batch can cure."""
    if isinstance(exc, MemoryError):
        return True
    for owner in (torch, torch.cuda):  # torch.OutOfMemoryError is recent; torch.cuda's is older
        cls = getattr(owner, "OutOfMemoryError", None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    low = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(s in low for s in _CPU_ALLOC_FAILURES)


def trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc's ``malloc_trim``). Without it a family scan's resident
    memory keeps the high-water mark of every earlier member's buffers: measured on the demo family, the
    RSS after freeing a member fell by 50-140 MiB."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def release_memory(device: torch.device) -> None:
    """Collect garbage and, on CUDA, hand cached blocks back to the driver."""
    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


class HalvingRunner:
    """Runs length-sorted batches; after an allocation failure the batch size is halved for the rest of the
    model's work (:attr:`cap`) and each halving is recorded in :attr:`halvings` (the report's
    ``members[].batch_halvings``)."""

    def __init__(self, model_name: str, device: torch.device) -> None:
        self._name = model_name
        self._device = device
        self.cap: int | None = None  # after an out-of-memory retry: the batch size never exceeds this
        self.halvings: list[BatchHalving] = []

    def capped(self, size: int) -> int:
        return size if self.cap is None else max(1, min(size, self.cap))

    def run(self, stage: str, lengths: Sequence[int], batch_size: int, fn: BatchFn) -> None:
        """Call ``fn`` on length-sorted batches of indices into ``lengths``; on a CUDA or CPU allocation failure
        free what can be freed, halve the batch size, record it and run the same sequences again. ``fn`` must
        only publish its results once it has them all, so a failed batch leaves nothing half-written. Out of
        memory at batch size 1 is raised as :class:`OutOfMemory`."""
        pending = list(sorted_batches(lengths, batch_size))
        while pending:
            batch = pending.pop(0)
            try:
                fn(batch)
                continue
            except Exception as exc:
                if not is_oom(exc):
                    raise
                message = one_line(exc)
            # outside the handler: the failed batch's tensors, held by the traceback's frames, can be freed
            release_memory(self._device)
            if len(batch) == 1:
                raise OutOfMemory(
                    f"model '{self._name}' ran out of memory on {self._device} even at batch size 1 "
                    f"({message}); use --dtype bfloat16, a shorter --max-length or a device with more memory"
                )
            half = len(batch) // 2
            self.cap = half
            self.halvings.append(
                BatchHalving(stage=stage, from_size=len(batch), to_size=half, device=str(self._device), error=message)
            )
            rest = batch + [i for b in pending for i in b]  # still longest first
            pending = [rest[k : k + half] for k in range(0, len(rest), half)]
