"""Tiny models and tokenizers built inside tests (no network, well under a second).

``build_tiny_model`` writes a Hugging Face model directory (config.json, weights, tokenizer files) that
``riskaudit.models.load_model`` (and ``transformers.AutoModelForCausalLM``) can load from a local path. Each
distinct model is built once per test run and copied wherever it is asked for (the same files, new inodes).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<|unk|>"]

SENTENCES = [
    "The nurse said that she would be late for the morning shift.",
    "The engineer said that he fixed the bridge before the storm.",
    "The doctor asked the patient about his health and her family.",
    "A teacher reads a book to the children in the school every day.",
    "The carpenter built a table, and the secretary wrote a letter.",
    "My name is John Smith and my phone number is 555 0199.",
    "It was the best of times, it was the worst of times.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "The manager thanked the receptionist because she was helpful.",
    "He is a lawyer; she is a pilot; they are both very busy people.",
]


def build_tokenizer(vocab_size: int = 320, sentences: list[str] | None = None) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2 style whitespace handling) trained on a few English sentences."""
    tok = Tokenizer(models.BPE(unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sentences or SENTENCES, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        unk_token="<|unk|>",
        model_max_length=128,
    )


def build_tiny_model(
    tmp_path: Path,
    *,
    seed: int = 0,
    vocab_size: int | None = None,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    max_positions: int = 128,
    tie_embeddings: bool = False,
    init_std: float = 0.1,
    save_safetensors: bool = True,
    with_tokenizer: bool = True,
    name: str = "tiny",
) -> Path:
    """Write a random-init GPT-NeoX model + trained tokenizer to ``tmp_path / name``; return the directory.

    ``vocab_size`` defaults to the tokenizer's size. ``save_safetensors=False`` writes only a pickled
    ``pytorch_model.bin`` (for the allow-pickle tests). ``init_std`` is larger than the usual 0.02 so
    that the logits are peaked (argmax ties are then practically impossible).
    """
    settings = {
        "seed": seed, "vocab_size": vocab_size, "hidden": hidden, "layers": layers, "heads": heads,
        "max_positions": max_positions, "tie_embeddings": tie_embeddings, "init_std": init_std,
        "save_safetensors": save_safetensors, "with_tokenizer": with_tokenizer,
    }
    key = tuple(sorted(settings.items()))
    if key not in _BUILT:
        built = _build(_built_root() / str(len(_BUILT)), **settings)
        _BUILT[key] = (built, torch.get_rng_state())
    built, rng = _BUILT[key]
    torch.set_rng_state(rng)  # as after a build: torch's generator seeded with ``seed``, then the weights drawn
    out = Path(tmp_path) / name
    shutil.copytree(built, out, copy_function=shutil.copy, dirs_exist_ok=True)
    return out


_BUILT: dict[tuple[tuple[str, Any], ...], tuple[Path, torch.Tensor]] = {}
_ROOT: list[Path] = []


def _built_root() -> Path:
    if not _ROOT:
        _ROOT.append(Path(tempfile.mkdtemp(prefix="riskaudit-tiny-models-")))
        atexit.register(shutil.rmtree, _ROOT[0], True)
    return _ROOT[0]


def _build(
    out: Path,
    *,
    seed: int,
    vocab_size: int | None,
    hidden: int,
    layers: int,
    heads: int,
    max_positions: int,
    tie_embeddings: bool,
    init_std: float,
    save_safetensors: bool,
    with_tokenizer: bool,
) -> Path:
    out.mkdir(parents=True)
    tokenizer = build_tokenizer()
    n_vocab = len(tokenizer)
    vocab = max(vocab_size or n_vocab, n_vocab)
    config = GPTNeoXConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max_positions,
        rotary_pct=0.25,
        initializer_range=init_std,
        tie_word_embeddings=tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = GPTNeoXForCausalLM(config).eval()
    if save_safetensors:
        model.save_pretrained(out)
    else:
        config.save_pretrained(out)
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        torch.save(state, out / "pytorch_model.bin")
    if with_tokenizer:
        tokenizer.save_pretrained(out)
    return out


def write_tiny_family(tmp_path: Path) -> Path:
    """A family TOML of two tiny models ("small", 1,000 tokens; "large", 2,000 tokens) under ``tmp_path``."""
    models = tmp_path / "models"
    build_tiny_model(models, seed=1, hidden=16, layers=1, heads=2, name="small")
    build_tiny_model(models, seed=2, hidden=32, layers=2, heads=2, name="large")
    toml = tmp_path / "fam.toml"
    toml.write_text(
        'name = "tiny"\n'
        '[[members]]\nname = "small"\nsource = "./models/small"\ntokens = 1000\n'
        '[[members]]\nname = "large"\nsource = "./models/large"\ntokens = 2000\n'
    )
    return toml
