"""riskaudit vs lm-evaluation-harness computing the same log-likelihoods on the same local model.

Both score the built-in pronoun probe's (context, continuation) pairs on a demo member in float32 on the
same device (--device, default cpu) with the same batch size: every pair must agree within 1e-4 nats; the speed ratio is
lm-eval time / riskaudit time. lm-eval is not a dependency of riskaudit: ``pip install lm-eval accelerate``.

``--archs`` instead compares the same pairs on every architecture of the test matrix (tests/archs.py: tiny random
GPT-NeoX, GPT-2, Llama, Gemma-3, OPT, Qwen2, OLMo-2 models with their families' tokenizer behaviour, built
offline), each with lm-eval told the BOS convention riskaudit decided (lm-eval 0.4.13 follows the tokenizer's
default, so only Gemma, whose test tokenizer does not add BOS itself, needs ``add_bos_token=True``).
"""

from __future__ import annotations

import sys
from typing import Any

import _common as c

TOL = 1e-4


def main() -> None:
    ap = c.parser(__doc__ or "", repeat=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--archs", action="store_true", help="compare on every architecture of the test matrix")
    args = ap.parse_args()
    try:
        import lm_eval  # noqa: F401
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError as exc:
        print(f"lm-evaluation-harness is not installed ({exc}); install it with: pip install lm-eval accelerate")
        print("RESULT name=lm_eval_speedup ratio=nan target=>=1.5 met=no skipped=lm_eval_missing")
        sys.exit(0)
    import logging

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    c.setup(args)
    pairs = c.pronoun_pairs()
    if args.archs:
        arch_matrix(pairs, args)
        return
    source = c.member_source(args.member)
    ours = c.load(args.member, args.batch_size, device=args.device)
    lm = HFLM(pretrained=source, revision=None, device=args.device, dtype="float32", batch_size=args.batch_size)

    def run_ours() -> list[float]:
        return [r.logprob for r in ours.loglikelihood(pairs)]

    def run_lm_eval() -> list[float]:
        reqs = [
            Instance(request_type="loglikelihood", doc={}, arguments=(ctx, cont), idx=i)
            for i, (ctx, cont) in enumerate(pairs)
        ]
        return [float(lp) for lp, _ in lm.loglikelihood(reqs, disable_tqdm=True)]

    run_ours()  # warm-up both
    run_lm_eval()
    t_ours, t_lm = [], []
    for _ in range(max(1, args.repeat)):  # interleaved: shared cores load both alike
        t0 = c.clock()
        a = run_ours()
        t_ours.append(c.clock() - t0)
        t0 = c.clock()
        b = run_lm_eval()
        t_lm.append(c.clock() - t0)
    to, tl = sorted(t_ours)[len(t_ours) // 2], sorted(t_lm)[len(t_lm) // 2]
    diff = max(abs(x - y) for x, y in zip(a, b, strict=True))
    agree = diff <= TOL
    ratio = tl / to
    print(f"member={args.member} pairs={len(pairs)} batch_size={args.batch_size} device={args.device}")
    print(f"riskaudit: {to * 1e3:.1f} ms   lm-eval HFLM: {tl * 1e3:.1f} ms   max |diff| = {diff:.2e} nats")
    c.result("lm_eval_speedup", ratio, ">=1.5", agree and ratio >= 1.5, max_diff=f"{diff:.2e}", agree=agree)
    ours.close()


def arch_matrix(pairs: list[tuple[str, str]], args: Any) -> None:
    """riskaudit vs lm-eval on each architecture of tests/archs.py; one RESULT line per architecture."""
    import tempfile
    from pathlib import Path

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from riskaudit.models import LoadOptions, load_model

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from archs import available_archs, build_arch

    reqs = [Instance(request_type="loglikelihood", doc={}, arguments=p, idx=i) for i, p in enumerate(pairs)]
    root = Path(tempfile.mkdtemp(prefix="riskaudit-archs-"))
    for arch in available_archs():
        path = build_arch(arch, root)
        with load_model(str(path), None, LoadOptions(batch_size=args.batch_size, device=args.device)) as ours:
            a = [r.logprob for r in ours.loglikelihood(pairs)]
            add_bos, fallbacks = ours.add_bos, ours.tokenization.boundary_fallbacks
        kw = {"add_bos_token": True} if arch == "gemma" else {}
        lm = HFLM(pretrained=str(path), device=args.device, dtype="float32", batch_size=args.batch_size, **kw)
        b = [float(lp) for lp, _ in lm.loglikelihood(reqs, disable_tqdm=True)]
        diff = max(abs(x - y) for x, y in zip(a, b, strict=True))
        print(f"{arch}: add_bos={add_bos} boundary_fallbacks={fallbacks} pairs={len(pairs)} max |diff| = {diff:.2e}")
        c.result(f"lm_eval_agreement_{arch}", diff, f"<={TOL}", diff <= TOL, add_bos=add_bos)
        del lm


if __name__ == "__main__":
    main()
