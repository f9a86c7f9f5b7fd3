"""Teacher-forced scoring: one forward pass over right-padded sequences, then float32 log-probabilities of
the target tokens (so results do not depend on the batch size, the padding or the model's dtype)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from riskaudit.errors import ModelLoadError

FloatRows = np.ndarray[Any, Any]
ScoreRequest = tuple[int, int, Sequence[int]]  # (row, start, targets): target j is predicted at start + j


class NumericalError(ModelLoadError):
    """The model produced NaN/Inf logits (typically float16 overflow)."""


def check_finite(x: torch.Tensor, model_name: str, dtype_name: str) -> None:
    """:class:`NumericalError` when ``x`` holds NaN or Inf."""
    if not bool(torch.isfinite(x).all()):
        hint = (
            "the weights themselves may hold NaN/Inf (not an fp16 overflow, so --dtype bfloat16 would not help)"
            if dtype_name == "float32"
            else "use --dtype bfloat16 or --dtype float32 (fp16 overflows easily)"
        )
        raise NumericalError(f"model '{model_name}' produced NaN/Inf logits in {dtype_name}; {hint}")


def supports_logits_to_keep(model: Any) -> bool:
    """The model's forward accepts ``logits_to_keep`` (project onto the vocabulary at chosen positions only)."""
    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def forward(
    model: Any,
    seqs: Sequence[Sequence[int]],
    *,
    pad_id: int,
    device: torch.device,
    keep: Sequence[int] | None = None,
    logits_to_keep: bool = False,
) -> torch.Tensor:
    """Logits [batch, width, vocab] of right-padded sequences (model dtype, on the model's device).

    With ``keep`` (sorted positions), logits [batch, len(keep), vocab] of those positions only, through the
    model's ``logits_to_keep`` when ``logits_to_keep`` is true (else all positions, then selected: the same
    values).
    """
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, : len(seq)] = 1
    kwargs: dict[str, Any] = {}
    if keep is not None and logits_to_keep:
        kwargs["logits_to_keep"] = torch.tensor(list(keep), dtype=torch.long, device=device)
    with torch.inference_mode():
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False, **kwargs)
        logits: torch.Tensor = out.logits
        if keep is not None and not kwargs:
            logits = logits[:, torch.tensor(list(keep), dtype=torch.long, device=logits.device)]
    return logits


def score_many(logits: torch.Tensor, requests: Sequence[ScoreRequest], check: Any) -> list[tuple[FloatRows, FloatRows]]:
    """Float32 log p of targets and whether each is the argmax, for many (row, start, targets) requests
    on logits [batch, width, vocab]: target j of a request is predicted at position start + j of its row.
    ``check(tensor)`` is called on every float32 block of logits (e.g. :func:`check_finite`).

    Positions shared by several requests (one context, several continuations) are normalised once; the
    log-softmax runs over the gathered positions in bounded chunks.
    """
    slot: dict[tuple[int, int], int] = {}
    rows: list[int] = []
    cols: list[int] = []
    sel: list[int] = []
    tgts: list[int] = []
    for row, start, targets in requests:
        for j, t in enumerate(targets):
            key = (row, start + j)
            k = slot.get(key)
            if k is None:
                k = slot[key] = len(rows)
                rows.append(row)
                cols.append(start + j)
            sel.append(k)
            tgts.append(int(t))
    lp_all = np.zeros(0, dtype=np.float64)
    match_all = np.zeros(0, dtype=np.bool_)
    if rows:
        dev = logits.device
        vocab = int(logits.shape[-1])
        chunk = max(1, (1 << 27) // max(1, vocab))  # ≤ 512 MiB of float32 logits at a time
        lp_parts: list[torch.Tensor] = []
        arg_parts: list[torch.Tensor] = []
        with torch.inference_mode():
            row_t = torch.tensor(rows, dtype=torch.long, device=dev)
            col_t = torch.tensor(cols, dtype=torch.long, device=dev)
            sel_t = torch.tensor(sel, dtype=torch.long, device=dev)
            tgt_t = torch.tensor(tgts, dtype=torch.long, device=dev)
            for lo in range(0, len(rows), chunk):
                x = logits[row_t[lo : lo + chunk], col_t[lo : lo + chunk]].float()
                check(x)
                lp_parts.append(torch.log_softmax(x, dim=-1))
                arg_parts.append(x.argmax(dim=-1))
                del x
            logp = torch.cat(lp_parts) if len(lp_parts) > 1 else lp_parts[0]
            argmax = torch.cat(arg_parts) if len(arg_parts) > 1 else arg_parts[0]
            lp_all = logp[sel_t, tgt_t].cpu().double().numpy()
            match_all = (argmax[sel_t] == tgt_t).cpu().numpy().astype(np.bool_)
    out: list[tuple[FloatRows, FloatRows]] = []
    pos = 0
    for _, _, targets in requests:
        n = len(targets)
        out.append((lp_all[pos : pos + n].copy(), match_all[pos : pos + n].copy()))
        pos += n
    return out
