"""Tokenizer training, sequence packing and GPT-NeoX (Pythia architecture) training for the demo family."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

EOS = "<|endoftext|>"


class MemberConfig(BaseModel):
    name: str
    d_model: int
    n_layers: int
    n_heads: int
    lr: float


class TrainConfig(BaseModel):
    seq_len: int = 128
    batch_size: int = 8
    weight_decay: float = 0.01
    warmup_share: float = 0.05
    grad_clip: float = 1.0
    seed: int = 1234


def train_tokenizer(documents: Sequence[str], vocab_size: int, out_dir: Path) -> PreTrainedTokenizerFast:
    """Byte-level BPE (as GPT-2/Pythia) trained on the corpus; saved as a transformers tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(documents, trainer=trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    return fast


def pack(
    doc_ids: Sequence[Sequence[int]], seq_len: int, eos_id: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Greedy packing of whole documents (each followed by EOS) into blocks of ``seq_len`` tokens.

    A document never straddles two blocks, so every planted copy of a canary is seen whole. Unused tail
    positions are padding and carry no loss (mask False).
    """
    blocks: list[list[int]] = []
    cur: list[int] = []
    for ids in doc_ids:
        d = [*list(ids)[: seq_len - 1], eos_id]
        if len(cur) + len(d) > seq_len:
            blocks.append(cur)
            cur = []
        cur.extend(d)
    if cur:
        blocks.append(cur)
    arr = np.full((len(blocks), seq_len), eos_id, dtype=np.int64)
    mask = np.zeros((len(blocks), seq_len), dtype=bool)
    for i, b in enumerate(blocks):
        arr[i, : len(b)] = b
        mask[i, : len(b)] = True
    return arr, mask


def make_model(m: MemberConfig, vocab_size: int, seq_len: int, seed: int) -> GPTNeoXForCausalLM:
    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(  # type: ignore[call-arg]
        vocab_size=vocab_size,
        hidden_size=m.d_model,
        num_hidden_layers=m.n_layers,
        num_attention_heads=m.n_heads,
        intermediate_size=4 * m.d_model,
        max_position_embeddings=2 * seq_len,
        rotary_pct=0.25,  # Pythia: rotary embeddings on 25% of each head's dimensions
        use_parallel_residual=True,
        tie_word_embeddings=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPTNeoXForCausalLM(cfg)


def count_params(model: torch.nn.Module) -> tuple[int, int]:
    """(total, non-embedding): non-embedding excludes the input embedding and the (untied) output layer."""
    total = sum(p.numel() for p in model.parameters())
    emb = 0
    seen: set[int] = set()
    for mod in (model.get_input_embeddings(), model.get_output_embeddings()):  # type: ignore[operator]
        if mod is not None and id(mod.weight) not in seen:
            seen.add(id(mod.weight))
            emb += mod.weight.numel()
    return total, total - emb


def train_member(
    m: MemberConfig,
    blocks: npt.NDArray[np.int64],
    mask: npt.NDArray[np.bool_],
    vocab_size: int,
    cfg: TrainConfig,
    checkpoint_steps: Sequence[int] = (),
    on_checkpoint: Callable[[int, int, GPTNeoXForCausalLM], None] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> tuple[GPTNeoXForCausalLM, dict[str, float]]:
    """One epoch over ``blocks`` in order; AdamW, linear warm-up then cosine decay, gradient clipping."""
    model = make_model(m, vocab_size, cfg.seq_len, cfg.seed)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=m.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    n_steps = math.ceil(len(blocks) / cfg.batch_size)
    warm = max(1, int(cfg.warmup_share * n_steps))

    def lr_at(step: int) -> float:
        if step < warm:
            return m.lr * (step + 1) / warm
        prog = (step - warm) / max(1, n_steps - warm)
        return m.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog)))

    x_all = torch.from_numpy(blocks)
    m_all = torch.from_numpy(mask)
    tokens_seen = 0
    t0 = time.perf_counter()
    ema = float("nan")
    for step in range(n_steps):
        sl = slice(step * cfg.batch_size, (step + 1) * cfg.batch_size)
        x, mk = x_all[sl], m_all[sl]
        labels = x.masked_fill(~mk, -100)
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step)
        out = model(input_ids=x, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens_seen += int(mk.sum())
        loss = float(out.loss.detach())
        ema = loss if math.isnan(ema) else 0.95 * ema + 0.05 * loss
        if on_step is not None:
            on_step(step + 1, n_steps, ema)
        if on_checkpoint is not None and (step + 1) in checkpoint_steps:
            on_checkpoint(step + 1, tokens_seen, model)
    model.eval()  # type: ignore[no-untyped-call]
    return model, {
        "train_tokens": tokens_seen,
        "train_seconds": time.perf_counter() - t0,
        "final_loss": ema,
        "n_steps": n_steps,
    }
