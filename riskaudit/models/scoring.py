"""Teacher-forced scoring: one forward pass over right-padded sequences, then float32 log-probabilities of
the target tokens (so results do not depend on the batch size, the padding or the model's dtype)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from riskaudit.errors import ModelLoadError
from riskaudit.models.base import LoglikelihoodResult, TokenStats
from riskaudit.models.oom import RunBatches

FloatRows = np.ndarray[Any, Any]
ScoreRequest = tuple[int, int, Sequence[int]]  # (row, start, targets): target j is predicted at start + j
Forward = Callable[[Sequence[Sequence[int]], Sequence[int] | None], torch.Tensor]  # (sequences, keep) -> logits
Check = Callable[[torch.Tensor], None]


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
    split: bool = False,
) -> torch.Tensor:
    """Logits [batch, width, vocab] of right-padded sequences (model dtype, on the model's device).

    With ``keep`` (sorted positions), logits [batch, len(keep), vocab] of those positions only, through the
    model's ``logits_to_keep`` when ``logits_to_keep`` is true (else all positions, then selected: the same
    values). ``split``: the model is placed over several devices by accelerate, so the positions go as a CPU
    tensor (valid as an index into a tensor on any device; the last layer may not be on ``device``).
    """
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, : len(seq)] = 1
    kwargs: dict[str, Any] = {}
    if keep is not None and logits_to_keep:
        kwargs["logits_to_keep"] = torch.tensor(list(keep), dtype=torch.long, device="cpu" if split else device)
    with torch.inference_mode():
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False, **kwargs)
        logits: torch.Tensor = out.logits
        if keep is not None and not kwargs:
            logits = logits[:, torch.tensor(list(keep), dtype=torch.long, device=logits.device)]
    return logits


def score_many(logits: torch.Tensor, requests: Sequence[ScoreRequest], check: Any) -> list[tuple[FloatRows, FloatRows]]:
    """Float32 log p of targets and whether each is the argmax, for many (row, start, targets) requests
    on logits [batch, width, vocab]: target j of a request is predicted at position start + j of its row.
    ``check(tensor)`` (e.g. :func:`check_finite`) is called once, on the targets' log-probabilities: a NaN or +Inf
    logit anywhere in a row makes its log-softmax normaliser NaN or +Inf and so every target read in that row
    non-finite, so this catches what a check of the whole [positions, vocab] block catches, except a -Inf logit
    of a token never scored (which changes no result), at a fraction of the cost (the full check took a third
    of the scoring time with a 100k vocabulary on the CPU).

    Positions shared by several requests (one context, several continuations) are normalised once; the
    log-softmax runs over the gathered positions in bounded chunks, and each chunk's targets are read before
    the next (the float32 working memory is one chunk's, however many positions are scored).
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
        with torch.inference_mode():
            row_t = torch.tensor(rows, dtype=torch.long, device=dev)
            col_t = torch.tensor(cols, dtype=torch.long, device=dev)
            sel_t = torch.tensor(sel, dtype=torch.long, device=dev)
            tgt_t = torch.tensor(tgts, dtype=torch.long, device=dev)
            lp_t = torch.zeros(len(sel), dtype=torch.float32, device=dev)
            argmax = torch.zeros(len(rows), dtype=torch.long, device=dev)
            for lo in range(0, len(rows), chunk):
                hi = min(lo + chunk, len(rows))
                x = logits[row_t[lo:hi], col_t[lo:hi]].float()
                argmax[lo:hi] = x.argmax(dim=-1)
                lp = torch.log_softmax(x, dim=-1)
                del x
                mine = ((sel_t >= lo) & (sel_t < hi)).nonzero().squeeze(1)  # the targets read at these positions
                lp_t[mine] = lp[sel_t[mine] - lo, tgt_t[mine]]
                del lp  # one chunk's float32 rows at a time: memory bounded by the chunk, not the positions
            check(lp_t)
            lp_all = lp_t.cpu().double().numpy()
            match_all = (argmax[sel_t] == tgt_t).cpu().numpy().astype(np.bool_)
    out: list[tuple[FloatRows, FloatRows]] = []
    pos = 0
    for _, _, targets in requests:
        n = len(targets)
        out.append((lp_all[pos : pos + n].copy(), match_all[pos : pos + n].copy()))
        pos += n
    return out


def score_pairs(
    encoded: Sequence[tuple[list[int], list[int]]],
    max_length: int,
    *,
    forward: Forward,
    run_batches: RunBatches,
    check: Check,
) -> list[LoglikelihoodResult]:
    """log P(continuation | context) of encoded (context, continuation) token pairs.

    The model input is (context + continuation)[-(max_length+1):][:-1] (lm-evaluation-harness); pairs with the
    same input share one forward pass, so every single-token continuation of a context is scored from one
    pass of that context (its last position). Logits are projected only at the scored positions.
    """
    for _, cont in encoded:
        if len(cont) > max_length:
            raise ValueError(f"continuation of {len(cont)} tokens exceeds max_length {max_length}")
    results: list[LoglikelihoodResult | None] = [None] * len(encoded)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (c, k) in enumerate(encoded):
        if not k:
            results[i] = LoglikelihoodResult(logprob=0.0, n_tokens=0, is_greedy=True)
            continue
        groups.setdefault(tuple((c + k)[-(max_length + 1) :][:-1]), []).append(i)
    jobs = list(groups.items())
    lengths = [len(seq) for seq, _ in jobs]

    def run(batch: list[int]) -> None:
        requests: list[ScoreRequest] = []
        owners: list[int] = []
        for row, j in enumerate(batch):
            for i in jobs[j][1]:
                cont = encoded[i][1]
                requests.append((row, lengths[j] - len(cont), cont))
                owners.append(i)
        needed = sorted({start + t for _, start, cont in requests for t in range(len(cont))})
        keep = needed if len(needed) < max(lengths[j] for j in batch) else None
        logits = forward([jobs[j][0] for j in batch], keep)
        if keep is not None:
            index = {col: k for k, col in enumerate(keep)}
            requests = [(row, index[start], cont) for row, start, cont in requests]
        scored = score_many(logits, requests, check)
        del logits
        for i, (lp, match) in zip(owners, scored, strict=True):
            results[i] = LoglikelihoodResult(
                logprob=float(lp.sum()), n_tokens=int(lp.shape[0]), is_greedy=bool(match.all())
            )

    run_batches(lengths, max(lengths, default=1), run)
    return [r for r in results if r is not None]


def score_suffixes(
    items: Sequence[tuple[list[int], int]], *, forward: Forward, run_batches: RunBatches, check: Check
) -> list[TokenStats]:
    """Teacher-forced statistics of every token at position >= p of each (model input, p), p >= 1."""
    results: list[TokenStats | None] = [None] * len(items)
    lengths = [len(ids) for ids, _ in items]

    def run(batch: list[int]) -> None:
        logits = forward([items[i][0] for i in batch], None)
        requests = [(row, items[i][1] - 1, items[i][0][items[i][1] :]) for row, i in enumerate(batch)]
        scored = score_many(logits, requests, check)
        del logits
        for i, (lp, match) in zip(batch, scored, strict=True):
            results[i] = TokenStats(logprobs=lp, argmax_match=match)

    run_batches(lengths, max(lengths, default=1), run)
    return [r for r in results if r is not None]
