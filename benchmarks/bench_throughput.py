"""Scoring throughput of ``loglikelihood`` on the pronoun probe's pairs vs the raw forward throughput of the
same model on exactly the same batch shapes (plain ``model(input_ids)`` under ``torch.inference_mode``).

Tokens counted: the real (unpadded) tokens of the sequences the scorer forwards. The raw side replays the
same padded input tensors (full logits, as ``model(input_ids)`` returns them), so the ratio is the share of
time spent in the forward pass itself. riskaudit projects onto the vocabulary only at the scored positions
(``logits_to_keep``), so it can exceed 1 where the output projection is a large share of the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import _common as c
import torch


def main() -> None:
    ap = c.parser(__doc__ or "", repeat=3)
    ap.add_argument("--batch-size", type=int, default=32, help="0: automatic")
    args = ap.parse_args()
    c.setup(args)
    m = c.load(args.member, args.batch_size or None, device=args.device)
    pairs = c.pronoun_pairs()
    shapes: list[tuple[int, ...]] = []
    batches: list[list[list[int]]] = []
    forward = m._forward

    def recording(seqs: Sequence[Sequence[int]], keep: Sequence[int] | None = None) -> torch.Tensor:
        batches.append([list(s) for s in seqs])
        return forward(seqs, keep=keep)

    m._forward = recording
    m.loglikelihood(pairs)
    m._forward = forward
    n_tokens = sum(len(s) for b in batches for s in b)
    model = m._model
    padded = []
    for b in batches:
        width = max(len(s) for s in b)
        ids = torch.full((len(b), width), m.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(b), width), dtype=torch.long)
        for r, s in enumerate(b):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        padded.append((ids.to(m.device), mask.to(m.device)))
        shapes.append(tuple(ids.shape))

    def raw() -> None:
        with torch.inference_mode():
            for ids, mask in padded:
                model(input_ids=ids, attention_mask=mask, use_cache=False)

    def ours() -> None:
        m.loglikelihood(pairs)

    # interleave the two so that load from other jobs on the shared cores hits both alike
    raw()
    ours()
    t_raw, t_ours = [], []
    for _ in range(max(1, args.repeat)):
        t0 = c.clock()
        raw()
        t_raw.append(c.clock() - t0)
        t0 = c.clock()
        ours()
        t_ours.append(c.clock() - t0)
    tr, to = sorted(t_raw)[len(t_raw) // 2], sorted(t_ours)[len(t_ours) // 2]
    ratio = tr / to
    print(
        f"member={args.member} pairs={len(pairs)} forwarded_sequences={sum(len(b) for b in batches)} "
        f"batches={len(batches)} batch_size={m.batch_size} tokens={n_tokens} device={m.device}"
    )
    print(
        f"raw forward: {n_tokens / tr:,.0f} tok/s ({tr * 1e3:.1f} ms)   loglikelihood: {n_tokens / to:,.0f} tok/s "
        f"({to * 1e3:.1f} ms)   pairs/s: {len(pairs) / to:,.0f}"
    )
    c.result("scoring_vs_raw_forward", ratio, ">=0.8", ratio >= 0.8)
    m.close()


if __name__ == "__main__":
    main()
