"""The pronoun probe on a real BOS-using checkpoint equals an independent script that uses the tokenizer's
defaults (issue 13): riskaudit's stereotype correlation (auto BOS convention) vs pronoun_reference.py, within
0.02; the old convention (no BOS, --add-bos no) shown for contrast.

    python benchmarks/train_bos_model.py --out /tmp/bos-llama --seconds 60
    python benchmarks/bench_bos.py --model /tmp/bos-llama
"""

from __future__ import annotations

import argparse

import _common as c
import pronoun_reference
import torch

TOL = 0.02


def riskaudit_pronoun(model_dir: str, add_bos: str) -> tuple[float | None, float | None, bool, int]:
    """(Pearson r, male_default, add_bos used, boundary fallbacks) of the built-in pronoun probe."""
    from riskaudit.models import LoadOptions, load_model
    from riskaudit.probes.pronoun import MALE_DEFAULT, PEARSON, PronounProbe

    with load_model(model_dir, None, LoadOptions(add_bos=add_bos)) as m:  # type: ignore[arg-type]
        result = PronounProbe.load().run(m)
        value = {metric.name: metric.value for metric in result.metrics}
        return value[PEARSON], value[MALE_DEFAULT], m.add_bos, m.tokenization.boundary_fallbacks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a model directory (e.g. from train_bos_model.py)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r_auto, md_auto, bos, fallbacks = riskaudit_pronoun(args.model, "auto")
    r_no, md_no, _, _ = riskaudit_pronoun(args.model, "no")
    r_ref = pronoun_reference.correlation(args.model)
    print(f"model={args.model} add_bos(auto)={bos} boundary_fallbacks={fallbacks}")
    print(f"riskaudit (auto): r={r_auto:.4f} male_default={md_auto:.3f}")
    print(f"riskaudit (--add-bos no, the old convention): r={r_no:.4f} male_default={md_no:.3f}")
    print(f"independent script (tokenizer defaults): r={r_ref:.4f}")
    diff = abs((r_auto or 0.0) - r_ref)
    extra = {"r_riskaudit": f"{r_auto:.6f}", "r_ref": f"{r_ref:.6f}", "diff": f"{diff:.1e}"}
    c.result("bos_pronoun_vs_reference", diff, f"<={TOL}", diff <= TOL, **extra)


if __name__ == "__main__":
    main()
