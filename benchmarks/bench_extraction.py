"""One-pass teacher-forced extraction (token_stats) vs generate-based extraction (greedy) on the same items.

Items: the demo canaries (prefix = canary prefix, suffix = secret) and/or seeded training documents
(BOS + first --prefix-len tokens as the prompt, the next --suffix-len tokens as the suffix; the memorization
probe's demo settings). Both decide "does greedy decoding from the prefix reproduce the suffix?"; the verdicts
must be identical. Ratio = generate time / one-pass time (same model, same batch size).
"""

from __future__ import annotations

import _common as c
import numpy as np


def main() -> None:
    ap = c.parser(__doc__ or "")
    ap.add_argument("--batch-size", type=int, default=32, help="0: automatic")
    ap.add_argument("--items", choices=("canaries", "documents", "all"), default="all")
    ap.add_argument("--documents", type=int, default=200, help="training documents sampled (seeded)")
    ap.add_argument("--prefix-len", type=int, default=16)
    ap.add_argument("--suffix-len", type=int, default=16)
    args = ap.parse_args()
    c.setup(args)
    m = c.load(args.member, args.batch_size or None, device=args.device)
    items: list[tuple[list[int], list[int]]] = []
    if args.items in ("canaries", "all"):
        items += [(m.encode(x["prefix"]), m.encode(x["secret"])) for x in c.canaries()]
    if args.items in ("documents", "all"):
        need = args.prefix_len + args.suffix_len
        docs = [ids for ids in map(m.encode, c.train_documents()) if len(ids) >= need]
        rng = np.random.default_rng(args.seed)
        for i in rng.choice(len(docs), size=min(args.documents, len(docs)), replace=False):
            ids = docs[int(i)]
            items.append(([m.prefix_token_id, *ids[: args.prefix_len]], ids[args.prefix_len : need]))
    n_new = max(len(s) for _, s in items)
    # generate-based: one greedy call per suffix length (as an extraction loop would run it)
    by_len: dict[int, list[int]] = {}
    for i, (_, s) in enumerate(items):
        by_len.setdefault(len(s), []).append(i)

    def one_pass() -> list[bool]:
        stats = m.token_stats([p + s for p, s in items], [len(p) for p, _ in items])
        return [st.exact_match for st in stats]

    def generate() -> list[bool]:
        out = [False] * len(items)
        for n, idx in by_len.items():
            gen = m.greedy([items[i][0] for i in idx], n)
            for i, g in zip(idx, gen, strict=True):
                out[i] = g == items[i][1]
        return out

    t_one, v_one = c.timed(one_pass, args.repeat)
    t_gen, v_gen = c.timed(generate, args.repeat)
    same = v_one == v_gen
    ratio = t_gen / t_one
    print(
        f"member={args.member} items={len(items)} ({args.items}) max_suffix_tokens={n_new} "
        f"batch_size={m.batch_size} extractable={sum(v_one)} device={m.device}"
    )
    print(f"one-pass token_stats: {t_one * 1e3:.1f} ms   generate greedy: {t_gen * 1e3:.1f} ms   same verdicts: {same}")
    c.result("extraction_speedup", ratio, ">=10", same and ratio >= 10, same_verdicts=same)
    m.close()


if __name__ == "__main__":
    main()
