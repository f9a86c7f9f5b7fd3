"""Out-of-memory recovery on a GPU: the caching allocator is capped (``--cap-mib``) so that a forward pass of
``--batch-size`` sequences really fails with ``torch.OutOfMemoryError``; riskaudit must halve the batch, retry
and give the same teacher-forced statistics as an uncapped run at a small batch size.

Items: ``--documents`` seeded demo training documents, BOS + 32-token prefix + 32-token suffix (Pythia's
extraction setting, Biderman et al. 2023). Needs CUDA; on a machine without it the script says so and exits 0.
"""

from __future__ import annotations

import sys

import _common as c
import numpy as np
import torch


def main() -> None:
    ap = c.parser(__doc__ or "", repeat=1)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--cap-mib", type=int, default=600, help="allocator cap for the capped run")
    ap.add_argument("--documents", type=int, default=2048)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        print("RESULT name=cuda_oom_recovery ratio=nan target=halved+same met=no skipped=no_cuda")
        sys.exit(0)
    c.setup(args)
    device = "cuda" if args.device == "cpu" else args.device
    ref_model = c.load(args.member, 16, device=device)
    docs = [ids for ids in map(ref_model.encode, c.train_documents()) if len(ids) >= 64]
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(len(docs), size=min(args.documents, len(docs)), replace=False)
    seqs = [[ref_model.prefix_token_id, *docs[int(i)][:64]] for i in picks]
    prefix = [33] * len(seqs)
    ref = ref_model.token_stats(seqs, prefix)
    ref_model.close()
    torch.cuda.empty_cache()

    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(args.cap_mib * 2**20 / total)
    m = c.load(args.member, args.batch_size, device=device)
    t0 = c.clock()
    got = m.token_stats(seqs, prefix)
    seconds = c.clock() - t0
    for h in m.batch_halvings:
        print(f"halved {h.from_size} -> {h.to_size} in {h.stage}: {h.error[:120]}")
    same = all(bool((a.argmax_match == b.argmax_match).all()) for a, b in zip(ref, got, strict=True))
    diff = max(float(np.abs(a.logprobs - b.logprobs).max()) for a, b in zip(ref, got, strict=True))
    peak = torch.cuda.max_memory_allocated() / 2**20
    print(
        f"member={args.member} sequences={len(seqs)} start_batch={args.batch_size} cap={args.cap_mib} MiB "
        f"final_batch={m.batch_size_for(65)} halvings={len(m.batch_halvings)} peak_allocated={peak:.0f} MiB "
        f"seconds={seconds:.2f} same_verdicts={same} max_logprob_diff={diff:.2e}"
    )
    ok = bool(m.batch_halvings) and same and diff <= 1e-4
    c.result("cuda_oom_recovery", float(len(m.batch_halvings)), "halved+same", ok, same_verdicts=same)
    m.close()


if __name__ == "__main__":
    main()
