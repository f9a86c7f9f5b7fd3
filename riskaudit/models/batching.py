"""The batching rule every model method follows: sequences sorted by length, longest first, cut into batches.

Torch-free, so that the plan's token counter (:mod:`riskaudit.run.token_count`) batches exactly as the model
will without importing torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices sorted by length (longest first; ties keep input order), cut into batches."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
