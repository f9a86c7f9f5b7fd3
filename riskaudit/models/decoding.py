"""Decoding exactly ``n_new`` tokens after each prefix with ``generate``: left-padded, length-sorted batches,
input order kept, EOS never stops decoding; greedy unless a logits processor turns it into sampling."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from riskaudit.models.oom import RunBatches


def clean_generation_config(pad_id: int) -> Any:
    """A model's generation config with nothing of its own: pure greedy, no EOS stopping, no processors."""
    from transformers import GenerationConfig

    cls: Any = GenerationConfig
    return cls(pad_token_id=pad_id, bos_token_id=None, eos_token_id=None, do_sample=False, num_beams=1)


def generation_config(n_new: int, pad_id: int) -> Any:
    """Exactly ``n_new`` new tokens, greedy, the logits of each step returned (checked for NaN/Inf)."""
    from transformers import GenerationConfig

    cls: Any = GenerationConfig
    return cls(
        max_new_tokens=n_new,
        min_new_tokens=0,
        do_sample=False,
        num_beams=1,
        use_cache=True,
        pad_token_id=pad_id,
        eos_token_id=None,
        output_logits=True,
        return_dict_in_generate=True,
    )


def decode(
    model: Any,
    items: Sequence[Sequence[int]],
    n_new: int,
    *,
    processor: Callable[[list[int]], Any] | None,
    pad_id: int,
    device: torch.device,
    check: Callable[[torch.Tensor], None],
    run_batches: RunBatches,
) -> list[list[int]]:
    """``n_new`` tokens after each of ``items`` (non-empty model inputs that already fit the context).

    ``processor(batch indices)`` gives the logits processors of a batch (None: greedy argmax); ``check`` is
    called on every step's logits; ``run_batches`` runs the batches (and retries them on out of memory).
    """
    results: list[list[int] | None] = [None] * len(items)

    def run(batch: list[int]) -> None:
        width = max(len(items[i]) for i in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):  # left padding
            seq = items[i]
            ids[row, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq) :] = 1
        extra: dict[str, Any] = {} if processor is None else {"logits_processor": processor(batch)}
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                generation_config=generation_config(n_new, pad_id),
                **extra,
            )
        for step_logits in out.logits:
            check(step_logits)
        new = out.sequences[:, width:].cpu()
        if new.shape[1] != n_new:
            raise RuntimeError(f"generation returned {new.shape[1]} tokens instead of {n_new}")
        del out
        for row, i in enumerate(batch):
            results[i] = [int(t) for t in new[row].tolist()]

    run_batches([len(x) for x in items], max(map(len, items), default=0) + n_new, run)
    return [r for r in results if r is not None]
