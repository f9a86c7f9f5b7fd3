"""Train a tiny Llama-architecture model whose tokenizer adds BOS (like Llama, Gemma, OPT) on the demo corpus,
offline, for a fixed time: a real BOS-using checkpoint for the BOS checks (bench_bos.py).

Every training sequence is one demo document as the tokenizer encodes it by default, so it starts with <s>:
like Gemma, the model never sees an input without BOS, and scoring it without BOS is out of distribution.

    python benchmarks/train_bos_model.py --out /tmp/bos-llama --seconds 60
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path
from typing import Any

import _common as c
import torch


def build_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A sentencepiece-style (▁) BPE whose post-processor puts <s> in front of every encoding (Llama's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", model_max_length=256
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=60.0, help="training time (default 60 s)")
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from transformers import LlamaConfig, LlamaForCausalLM

    import riskaudit

    corpus = Path(riskaudit.__file__).parent / "zoo" / "demo" / "train_documents.json.gz"
    texts = [str(t) for t in json.loads(gzip.decompress(corpus.read_bytes()))]
    tok = build_tokenizer(texts, args.vocab)
    docs = [[*ids[:128], tok.eos_token_id] for ids in tok(texts)["input_ids"]]
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=args.hidden,
        intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config).to(args.device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed)
    t0, step, loss_ema = time.perf_counter(), 0, None
    while time.perf_counter() - t0 < args.seconds:
        batch = [docs[int(i)] for i in torch.randint(len(docs), (args.batch,), generator=gen)]
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), tok.eos_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for r, d in enumerate(batch):
            ids[r, : len(d)] = torch.tensor(d)
            labels[r, : len(d)] = torch.tensor(d)
        mask = (labels != -100).long()
        out = model(input_ids=ids.to(args.device), attention_mask=mask.to(args.device), labels=labels.to(args.device))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        step += 1
        value = float(out.loss.detach())
        loss_ema = value if loss_ema is None else 0.95 * loss_ema + 0.05 * value
    args.out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(args.out)
    tok.save_pretrained(args.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"trained {n / 1e6:.2f}M parameters, {step} steps ({args.seconds:.0f} s), loss {loss_ema:.3f} -> {args.out}")
    c.result("bos_model_loss", loss_ema or float("nan"), "<5", (loss_ema or 99) < 5, steps=step)


if __name__ == "__main__":
    main()
