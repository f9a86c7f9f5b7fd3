"""One tokenization convention per model, decided once when it is loaded and applied by every method.

**BOS.** Every model input starts with the BOS token exactly when the tokenizer's own configuration adds it
to a default encoding (``add_bos_token`` or its post-processor: Llama, Gemma, OPT's ``</s>``; not GPT-2,
GPT-NeoX/Pythia, Qwen2) — what a plain ``tokenizer(text)`` gives, and what lm-evaluation-harness 0.4.9+ does.
Exception, as lm-evaluation-harness 0.4.2-0.4.8 made it: Gemma models (``model_type`` containing "gemma") are
badly out of distribution without BOS, so they always get it. ``--add-bos yes|no`` (or ``add_bos`` in the
family TOML) overrides the rule. Texts are encoded without special tokens and the BOS token is put in front
of the whole model input, so a context and its continuation share one BOS. An input longer than the context
window is cut from the left, as lm-evaluation-harness cuts it (the BOS token goes first).

**Boundaries.** A (context, continuation) pair is split as lm-evaluation-harness splits it: trailing
whitespace of the context moves to the continuation, the joint text is encoded, and the continuation is the
tokens after the context's. When the context's tokens are not a prefix of the joint tokens (a token merges
across the boundary), the continuation is encoded on its own instead, and the pair is counted as a
boundary fallback (reported per member). An empty context conditions on the BOS token when the convention
adds it, else on the prefix token (BOS, else EOS).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from riskaudit.errors import ModelLoadError
from riskaudit.models.base import AddBos, TokenizationInfo

_BOS_REQUIRED_TYPES = ("gemma",)  # model_type substrings that always get BOS (lm-evaluation-harness' rule)
_PROBE_TEXT = "Hello world"

Pair = tuple[list[int], list[int]]


def default_bos(tokenizer: Any) -> int | None:
    """The token the tokenizer's default encoding puts in front of a text, if it puts exactly one there."""
    try:
        plain = [int(t) for t in tokenizer(_PROBE_TEXT, add_special_tokens=False)["input_ids"]]
        full = [int(t) for t in tokenizer(_PROBE_TEXT)["input_ids"]]
    except Exception:
        return None
    if len(full) > len(plain) and full[1 : 1 + len(plain)] == plain and full[:1] != plain[:1]:
        return full[0]
    return None


def decide_bos(tokenizer: Any, model_type: str, requested: AddBos, vocab_size: int, name: str) -> TokenizationInfo:
    """The BOS convention of a model (see the module docstring); ModelLoadError when BOS is requested and the
    tokenizer has no BOS token."""

    def valid(v: object) -> int | None:
        return int(v) if isinstance(v, int) and 0 <= v < vocab_size else None

    added = valid(default_bos(tokenizer))
    bos = added if added is not None else valid(getattr(tokenizer, "bos_token_id", None))
    required = any(t in model_type.lower() for t in _BOS_REQUIRED_TYPES)
    if requested == "yes":
        if bos is None:
            raise ModelLoadError(f"model '{name}': add_bos is 'yes' but its tokenizer has no BOS token; use auto or no")
        add, rule = True, "add_bos = yes (override)"
    elif requested == "no":
        add, rule = False, "add_bos = no (override)"
    elif added is not None:
        add, rule = True, "the tokenizer adds BOS by default (add_bos_token / post-processor)"
    elif required and bos is not None:
        add, rule = True, f"{model_type} models need BOS (as lm-evaluation-harness)"
    else:
        add, rule = False, "the tokenizer adds no BOS by default"
    return TokenizationInfo(add_bos=add, bos_token_id=bos if add else None, requested=requested, rule=rule)


def move_trailing_space(context: str, continuation: str) -> tuple[str, str]:
    """lm-evaluation-harness: trailing whitespace of the context belongs to the continuation."""
    n_spaces = len(context) - len(context.rstrip())
    if context and n_spaces > 0:
        return context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


class Convention:
    """A tokenizer with its model's convention: text encoding, model inputs, and pair splitting."""

    def __init__(self, tokenizer: Any, info: TokenizationInfo, prefix_id: int) -> None:
        self.tokenizer = tokenizer
        self.info = info
        self.prefix_id = prefix_id  # an empty context's token when BOS is not added (BOS, else EOS)
        self._bos: list[int] = [info.bos_token_id] if info.add_bos and info.bos_token_id is not None else []

    @property
    def start_id(self) -> int:
        """The token an empty input conditions on: BOS when the convention adds it, else the prefix token."""
        return self._bos[0] if self._bos else self.prefix_id

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return [int(t) for t in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def encode_many(self, texts: Sequence[str]) -> dict[str, list[int]]:
        """:meth:`encode` of distinct texts, in one batched tokenizer call."""
        distinct = sorted(set(texts))
        if not distinct:
            return {}
        enc = self.tokenizer(distinct, add_special_tokens=False)["input_ids"]
        return {t: [int(x) for x in e] for t, e in zip(distinct, enc, strict=True)}

    def scoring_input(self, ids: Sequence[int], prefix_len: int) -> tuple[list[int], int]:
        """A teacher-forced sequence and its prefix length as the model sees them: BOS in front when the
        convention adds it; a sequence scored from its first token conditions on the prefix token."""
        seq = [int(t) for t in ids]
        if self._bos:
            return [*self._bos, *seq], prefix_len + 1
        if prefix_len == 0:
            return [self.prefix_id, *seq], 1
        return seq, prefix_len

    def decoding_input(self, prefix: Sequence[int]) -> list[int]:
        """A decoding prefix as the model sees it: BOS in front when the convention adds it; never empty."""
        seq = [int(t) for t in prefix]
        return [*self._bos, *seq] if self._bos else (seq or [self.prefix_id])

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Pair]:
        """(context tokens, continuation tokens) of every pair, with the BOS convention applied to the context
        (module docstring); counts the pairs and the boundary fallbacks in :attr:`info`."""
        split = [move_trailing_space(c, k) for c, k in pairs]
        ids = self.encode_many([t for c, k in split for t in ((k,) if c == "" else (c, c + k))])
        out: list[Pair] = []
        fallback: list[int] = []
        for i, (context, continuation) in enumerate(split):
            if context == "":
                out.append(([self.start_id], list(ids[continuation])))
                continue
            ctx, whole = ids[context], ids[context + continuation]
            if whole[: len(ctx)] == ctx:
                cont = whole[len(ctx) :]
            else:
                cont = []
                fallback.append(i)
            out.append(([*self._bos, *ctx] or [self.prefix_id], cont))
        if fallback:
            alone = self.encode_many([split[i][1] for i in fallback])
            for i in fallback:
                out[i] = (out[i][0], list(alone[split[i][1]]))
        self.info.pairs += len(pairs)
        self.info.boundary_fallbacks += len(fallback)
        return out
