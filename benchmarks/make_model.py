"""Write a randomly initialised GPT-NeoX model with the shape of a Pythia member (and the demo tokenizer) to a
directory, for benchmarks at a realistic size without hub access: throughput and batching do not depend on
the weights' values. Shapes from Biderman et al. 2023 (Pythia), Table 1; vocabulary 50,304 as in Pythia.

    python benchmarks/make_model.py --shape pythia-160m --out /tmp/pythia-160m-random
    python benchmarks/bench_throughput.py --member /tmp/pythia-160m-random --device cuda
"""

from __future__ import annotations

import argparse
from pathlib import Path

import _common as c  # noqa: F401  (environment defaults)
import torch

SHAPES = {  # layers, d_model, heads
    "pythia-70m": (6, 512, 8),
    "pythia-160m": (12, 768, 12),
    "pythia-410m": (24, 1024, 16),
    "pythia-1b": (16, 2048, 8),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="pythia-160m")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from transformers import AutoTokenizer, GPTNeoXConfig, GPTNeoXForCausalLM

    import riskaudit

    layers, d_model, heads = SHAPES[args.shape]
    config = GPTNeoXConfig(
        vocab_size=50304,
        hidden_size=d_model,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * d_model,
        max_position_embeddings=2048,
        rotary_pct=0.25,
        use_parallel_residual=True,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(args.seed)
    model = GPTNeoXForCausalLM(config)
    tok = AutoTokenizer.from_pretrained(Path(riskaudit.__file__).parent / "zoo" / "demo" / "tokenizer")
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tok.save_pretrained(args.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.shape}: {n / 1e6:.1f}M parameters (random weights) written to {args.out}")


if __name__ == "__main__":
    main()
