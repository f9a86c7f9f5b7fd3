"""Tiny random models of the common causal-LM architectures, each with a small tokenizer built here that has
its family's special-token behaviour (offline, about a second each).

================  =========================  ==============================================================
architecture      model class                tokenizer (what matters for scoring)
================  =========================  ==============================================================
gpt-neox          GPTNeoXForCausalLM         byte-level BPE; BOS = EOS = <|endoftext|>, a pad token; no BOS
gpt2              GPT2LMHeadModel            byte-level BPE; BOS = EOS = <|endoftext|>, **no pad token**
llama             LlamaForCausalLM (GQA)     sentencepiece-style (▁) BPE; <s> added by its post-processor
gemma             Gemma3ForCausalLM          sentencepiece-style BPE, <bos> NOT added by the tokenizer: BOS
                                             comes from the Gemma rule (model_type "gemma3_text")
opt               OPTForCausalLM             byte-level BPE; BOS = EOS = </s>, added in front by default
qwen2             Qwen2ForCausalLM           byte-level BPE; no BOS token at all, EOS = pad
olmo2             Olmo2ForCausalLM           byte-level BPE; BOS = EOS = <|endoftext|>, a pad token; no BOS
================  =========================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers
from tiny import SENTENCES
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

HIDDEN, LAYERS, HEADS, FFN, POSITIONS = 32, 2, 2, 64, 128
INIT_STD = 0.2  # peaked logits: argmax ties are practically impossible

# architecture -> does every model input start with BOS under --add-bos auto
EXPECTED_ADD_BOS = {
    "gpt-neox": False,
    "gpt2": False,
    "llama": True,
    "gemma": True,
    "opt": True,
    "qwen2": False,
    "olmo2": False,
}

EXTRA_SENTENCES = [
    "The nurse said that he was tired. The engineer said that she was right.",
    "The secretary thought that they would be late. The mechanic knew that it was broken.",
]


def _train(tok: Tokenizer, specials: list[str], vocab_size: int = 360) -> Tokenizer:
    alphabet = pre_tokenizers.ByteLevel.alphabet() if isinstance(tok.pre_tokenizer, pre_tokenizers.ByteLevel) else []
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator([*SENTENCES, *EXTRA_SENTENCES], trainer=trainer)
    return tok


def _byte_level(specials: list[str], unk: str | None = None) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return _train(tok, specials)


def _metaspace(specials: list[str], unk: str) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    return _train(tok, specials)


def _prepend(tok: Tokenizer, token: str) -> Tokenizer:
    """A post-processor that puts ``token`` in front of every encoding (what add_bos_token does)."""
    tok.post_processor = processors.TemplateProcessing(
        single=f"{token} $A", pair=f"{token} $A {token} $B", special_tokens=[(token, tok.token_to_id(token))]
    )
    return tok


def _fast(tok: Tokenizer, **special: str) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=POSITIONS, **special)


def _tokenizer(arch: str) -> PreTrainedTokenizerFast:
    if arch in ("gpt-neox", "olmo2"):
        tok = _byte_level(["<|endoftext|>", "<|pad|>"])
        return _fast(tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|pad|>")
    if arch == "gpt2":
        return _fast(_byte_level(["<|endoftext|>"]), bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    if arch == "llama":
        tok = _prepend(_metaspace(["<unk>", "<s>", "</s>"], "<unk>"), "<s>")
        return _fast(tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    if arch == "gemma":
        tok = _metaspace(["<pad>", "<eos>", "<bos>", "<unk>"], "<unk>")
        return _fast(tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    if arch == "opt":
        tok = _prepend(_byte_level(["<s>", "<pad>", "</s>", "<unk>"]), "</s>")
        return _fast(tok, bos_token="</s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    if arch == "qwen2":
        return _fast(_byte_level(["<|endoftext|>"]), eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    raise ValueError(arch)


def _config(arch: str, tok: PreTrainedTokenizerFast) -> Any:
    ids = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    common: dict[str, Any] = {
        "vocab_size": len(tok),
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": FFN,
        "max_position_embeddings": POSITIONS,
        "initializer_range": INIT_STD,
        "tie_word_embeddings": False,
        **ids,
    }
    builders: dict[str, Callable[[], Any]] = {
        "gpt-neox": lambda: transformers.GPTNeoXConfig(**common, rotary_pct=0.25),
        "gpt2": lambda: transformers.GPT2Config(
            vocab_size=len(tok),
            n_embd=HIDDEN,
            n_layer=LAYERS,
            n_head=HEADS,
            n_positions=POSITIONS,
            initializer_range=INIT_STD,
            **ids,
        ),
        "llama": lambda: transformers.LlamaConfig(**common, num_key_value_heads=1),
        "gemma": lambda: transformers.Gemma3TextConfig(
            **common, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16, sliding_window=8
        ),
        "opt": lambda: transformers.OPTConfig(
            vocab_size=len(tok),
            hidden_size=HIDDEN,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            ffn_dim=FFN,
            max_position_embeddings=POSITIONS,
            word_embed_proj_dim=HIDDEN,
            init_std=INIT_STD,
            **ids,
        ),
        "qwen2": lambda: transformers.Qwen2Config(**common, num_key_value_heads=1),
        "olmo2": lambda: transformers.Olmo2Config(**common, num_key_value_heads=1),
    }
    return builders[arch]()


def available_archs() -> list[str]:
    """The architectures of the matrix that the installed transformers has."""
    needed = {"gemma": "Gemma3TextConfig", "qwen2": "Qwen2Config", "olmo2": "Olmo2Config"}
    return [a for a in EXPECTED_ADD_BOS if hasattr(transformers, needed.get(a, "AutoConfig"))]


def build_arch(arch: str, root: Path, *, seed: int = 0, name: str | None = None) -> Path:
    """Write a random-init model of ``arch`` with its tokenizer to ``root / (name or arch)``."""
    out = Path(root) / (name or arch)
    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(arch)
    config = _config(arch, tok)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
