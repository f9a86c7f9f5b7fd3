"""The audit's own forward-pass token count, from the member's real tokenizer and no model.

:class:`CountingModel` implements the :class:`~riskaudit.models.base.ModelHandle` protocol with the member's
tokenizer and its BOS convention (:mod:`riskaudit.models.tokenization`, decided as a loaded model decides
it) but no weights: every call counts the tokens the real implementation (:mod:`riskaudit.models.hf`) would
feed the model, and returns cheap results of the right shape (log-probability 0, no argmax match, generated
tokens all the prefix token). Each probe's own ``run`` is called on it, so the count follows exactly the
calls, pairs, sequences and chunking the probe makes; none of a probe's model inputs depends on an earlier
output, so the counts are those of a real run.

What is counted, per model input (padding is not: it depends on the batch size):

* ``loglikelihood``: the input ``(context + continuation)[-(max_length + 1):][:-1]`` of every pair with a
  non-empty continuation, BOS included by the convention; pairs with the same input share one pass and are
  counted once (as :func:`riskaudit.models.scoring.score_pairs` runs them).
* ``token_stats``: the whole teacher-forced sequence (BOS or the prefix token in front, cut to the context).
* ``greedy`` / ``sample``: the prefix (cut to leave room for the new tokens) plus ``n_new - 1`` tokens fed
  back one step each with the KV cache (the last new token is never fed).

It also records the shape of the largest forward pass of each kind (:class:`PassShapes`), batched as the
real implementation batches (length-sorted, ``batch_size`` sequences at a time): what the memory estimate of
:mod:`riskaudit.run.placement` sizes the activations and logits by.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from riskaudit.errors import RiskauditError
from riskaudit.inputs.family_spec import ModelSpec
from riskaudit.models.base import (
    BatchHalving,
    LoadOptions,
    LoglikelihoodResult,
    Placement,
    TokenizationInfo,
    TokenStats,
)
from riskaudit.models.batching import sorted_batches
from riskaudit.models.tokenization import Convention, decide_bos
from riskaudit.probes.base import Probe
from riskaudit.run.placement import ESTIMATE_BATCH, PassShapes
from riskaudit.run.weights import MODEL_FILES as _MODEL_FILES


class ProbeTokens(BaseModel):
    """Forward-pass tokens one probe feeds one model."""

    probe_id: str
    tokens: int | None  # None: not countable (error says why)
    sequences: int = 0  # model inputs (rows of the forward passes; a decode counts once)
    longest: int = 0  # the longest model input, in tokens
    shapes: PassShapes = PassShapes()  # its largest forward passes (the memory estimate's workload)
    error: str = ""


class CountingModel:
    """A :class:`~riskaudit.models.base.ModelHandle` that counts forward-pass tokens instead of running a
    model (module docstring)."""

    def __init__(
        self,
        name: str,
        tokenizer: Any,
        info: TokenizationInfo,
        prefix_id: int,
        vocab_size: int,
        max_length: int,
        batch_size: int = 32,
    ) -> None:
        self.name = name
        self.batch_size = max(1, batch_size)
        self.shapes = PassShapes()
        self.tokenizer = tokenizer
        self._conv = Convention(tokenizer, info, prefix_id)
        self._vocab_size = vocab_size
        self._max_length = max_length
        self.tokens = 0
        self.sequences = 0
        self.longest = 0

    def reset(self) -> None:
        self.tokens = self.sequences = self.longest = 0
        self.shapes = PassShapes()

    def _scoring_passes(self, lengths: Sequence[int], scored: Sequence[set[int]] | None) -> None:
        """Record the batches of a scoring call: ``scored[i]`` the positions whose logits input i needs (None:
        every position, as token_stats projects them all)."""
        for batch in sorted_batches(lengths, self.batch_size):
            width = max(lengths[i] for i in batch)
            kept = width
            if scored is not None:  # score_pairs keeps the union of the batch's positions, unless that is all
                needed = set().union(*(scored[i] for i in batch))
                kept = len(needed) if len(needed) < width else width
            shape = PassShapes(tokens=len(batch) * width, logit_rows=len(batch) * kept)
            self.shapes = self.shapes.merge(shape)

    def _feed(self, lengths: Sequence[int]) -> None:
        self.tokens += sum(lengths)
        self.sequences += len(lengths)
        self.longest = max([self.longest, *lengths])

    # ---- properties of the protocol

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def add_bos(self) -> bool:
        return self._conv.info.add_bos

    @property
    def prefix_token_id(self) -> int:
        return self._conv.start_id

    @property
    def tokenization(self) -> TokenizationInfo:
        return self._conv.info.model_copy()

    @property
    def batch_halvings(self) -> list[BatchHalving]:
        return []

    @property
    def placement(self) -> Placement:
        return Placement(dtype="none", device="none")  # no model: nothing is placed anywhere

    # ---- text

    def encode(self, text: str) -> list[int]:
        return self._conv.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._conv.tokenizer.decode([int(i) for i in ids], clean_up_tokenization_spaces=False))

    # ---- counted calls

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        encoded = self._conv.encode_pairs(pairs)
        inputs: dict[tuple[int, ...], set[int]] = {}
        for ctx, cont in encoded:
            if len(cont) > self._max_length:
                raise ValueError(f"continuation of {len(cont)} tokens exceeds max_length {self._max_length}")
            if cont:
                x = tuple((ctx + cont)[-(self._max_length + 1) :][:-1])
                inputs.setdefault(x, set()).update(range(len(x) - len(cont), len(x)))
        self._feed([len(x) for x in inputs])
        self._scoring_passes([len(x) for x in inputs], list(inputs.values()))
        return [LoglikelihoodResult(logprob=0.0, n_tokens=len(cont), is_greedy=False) for _, cont in encoded]

    def token_stats(self, sequences: Sequence[Sequence[int]], prefix_lens: Sequence[int]) -> list[TokenStats]:
        if len(sequences) != len(prefix_lens):
            raise ValueError("sequences and prefix_lens differ in length")
        lengths: list[int] = []
        out: list[TokenStats] = []
        for seq, p in zip(sequences, prefix_lens, strict=True):
            if not 0 <= p <= len(seq):
                raise ValueError(f"prefix_len {p} outside 0..{len(seq)}")
            ids, p = self._conv.scoring_input(seq, p)
            cut = max(0, len(ids) - self._max_length)
            if cut > p - 1:
                raise ValueError(f"suffix of {len(ids) - p} tokens does not fit max_length {self._max_length}")
            lengths.append(len(ids) - cut)
            n = len(ids) - p
            out.append(TokenStats(logprobs=np.zeros(n, dtype=np.float64), argmax_match=np.zeros(n, dtype=np.bool_)))
        self._feed(lengths)
        self._scoring_passes(lengths, None)
        return out

    def greedy(self, prefixes: Sequence[Sequence[int]], n_new: int) -> list[list[int]]:
        if n_new < 0:
            raise ValueError("n_new must be >= 0")
        return self._decode(prefixes, n_new)

    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n_new: int,
        seed: int,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> list[list[int]]:
        from riskaudit.models.sampling import check_sampling_args

        check_sampling_args(n_new, seed, temperature, top_k)
        return self._decode(prefixes, n_new)

    def _decode(self, prefixes: Sequence[Sequence[int]], n_new: int) -> list[list[int]]:
        if n_new == 0:
            return [[] for _ in prefixes]
        keep = self._max_length - n_new
        if keep < 1:
            raise ValueError(f"n_new={n_new} leaves no room for a prefix within max_length {self._max_length}")
        widths = [len(self._conv.decoding_input(p)[-keep:]) for p in prefixes]
        self._feed([w + n_new - 1 for w in widths])
        for batch in sorted_batches(widths, self.batch_size):
            width = max(widths[i] for i in batch)
            rows = len(batch)
            shape = PassShapes(decode_tokens=rows * (width + n_new), decode_logits=rows * n_new, decode_rows=rows)
            self.shapes = self.shapes.merge(shape)
        return [[self.prefix_token_id] * n_new for _ in prefixes]

    def close(self) -> None:
        pass


def load_counting_model(member: ModelSpec, load: LoadOptions) -> CountingModel:
    """A :class:`CountingModel` with the member's own tokenizer and config, from local files only (its
    directory or the local HF cache); RiskauditError with the reason when they cannot be read."""
    from transformers import AutoTokenizer

    from riskaudit.models.hf import context_length
    from riskaudit.run.placement import hf_kwargs, quiet_transformers, read_config

    config, why = read_config(member, load)
    if config is None:
        raise RiskauditError(why)
    where, kwargs = hf_kwargs(member, load)
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    except Exception as exc:
        from riskaudit.models.load_errors import one_line

        raise RiskauditError(f"tokenizer not readable from local files ({one_line(exc)[:120]})") from None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab = getattr(text, "vocab_size", None)
    vocab = int(vocab) if isinstance(vocab, int) and vocab > 0 else len(tokenizer)

    def tok_id(attr: str) -> int | None:
        v = getattr(tokenizer, attr, None)
        return int(v) if isinstance(v, int) and 0 <= v < vocab else None

    eos, bos, pad = tok_id("eos_token_id"), tok_id("bos_token_id"), tok_id("pad_token_id")
    prefix_id = bos if bos is not None else eos if eos is not None else pad if pad is not None else 0
    model_type = str(getattr(config, "model_type", "") or "")
    info = decide_bos(tokenizer, model_type, load.add_bos, vocab, member.name)
    max_length = load.max_length or context_length(config, tokenizer)
    batch = load.batch_size or ESTIMATE_BATCH
    return CountingModel(member.name, tokenizer, info, prefix_id, vocab, max_length, batch_size=batch)


def tokenizer_key(model: CountingModel) -> str:
    """What the counts depend on: the tokenizer's content, the convention, the vocabulary and the context
    length. Members with equal keys feed the model the same tokens."""
    tok = model.tokenizer
    backend = getattr(tok, "backend_tokenizer", None)
    content = backend.to_str() if backend is not None else repr(sorted(tok.get_vocab().items()))
    doc = [content, model.tokenization.model_dump(mode="json"), model.prefix_token_id, model.vocab_size]
    doc += [model.max_length, type(tok).__name__, model.batch_size]
    return hashlib.sha256(repr(doc).encode()).hexdigest()


def count_probe_tokens(model: CountingModel, probes: Sequence[Probe]) -> list[ProbeTokens]:
    """Run every probe on the counting model and return its forward-pass tokens; a probe that cannot run
    on this model (too short a context, ...) gets ``tokens=None`` and the reason."""
    out: list[ProbeTokens] = []
    for probe in probes:
        model.reset()
        try:
            probe.run(model)
        except (RiskauditError, ValueError) as exc:
            out.append(ProbeTokens(probe_id=probe.id, tokens=None, error=str(exc).splitlines()[0][:200]))
            continue
        out.append(
            ProbeTokens(
                probe_id=probe.id,
                tokens=model.tokens,
                sequences=model.sequences,
                longest=model.longest,
                shapes=model.shapes,
            )
        )
    return out


def workload_shapes(counts: Sequence[ProbeTokens]) -> PassShapes | None:
    """The largest forward passes of all ``counts`` together; None when some probe could not be counted
    (the memory estimate then assumes its default pass)."""
    if not counts or any(t.tokens is None for t in counts):
        return None
    shapes = PassShapes()
    for t in counts:
        shapes = shapes.merge(t.shapes)
    return shapes


# the config, generation config and tokenizer files (the files besides the weights a model fingerprint covers)
TOKENIZER_FILES = tuple(sorted(_MODEL_FILES))


def files_key(member: ModelSpec, load: LoadOptions) -> str | None:
    """A digest of the member's config and tokenizer files and the options the count depends on, found
    without loading the tokenizer (~0.6 s for a 50k-token BPE): equal digests give equal counts, so the
    checkpoints of one member (one set of files, or the same HF-cache blobs) load their tokenizer once.
    None when it cannot be known cheaply (remote code, no config.json)."""
    from riskaudit.run.placement import is_local_source

    if load.trust_remote_code:
        return None
    parts = [repr((load.add_bos, load.max_length, load.batch_size))]
    for name in TOKENIZER_FILES:
        path: Path | None = None
        if is_local_source(member.source):
            path = Path(member.source).expanduser() / name
        else:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(member.source, name, revision=member.revision)
            path = Path(found) if isinstance(found, str) else None
        if path is None or not path.is_file():
            continue
        blob = path.resolve()
        # an HF-cache snapshot file links to a blob named by its content hash; anything else is hashed
        digest = blob.name if blob.name != name and blob.parent.name == "blobs" else _sha256(blob)
        parts.append(f"{name}:{digest}")
    if not any(p.startswith("config.json:") for p in parts):
        return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class TokenCounter:
    """Forward-pass tokens per probe for many members, each distinct tokenizer (:func:`tokenizer_key`)
    counted once, and each distinct set of files (:func:`files_key`) loaded once."""

    def __init__(self, probes: Sequence[Probe]) -> None:
        self.probes = list(probes)
        self._by_key: dict[str, list[ProbeTokens]] = {}
        self._by_files: dict[str, str] = {}  # files_key -> tokenizer_key
        self.loaded = 0  # tokenizers loaded

    def count(self, member: ModelSpec, load: LoadOptions) -> list[ProbeTokens]:
        files = files_key(member, load)
        key = self._by_files.get(files) if files is not None else None
        if key is None:
            try:
                model = load_counting_model(member, load)
            except RiskauditError as exc:
                return [ProbeTokens(probe_id=p.id, tokens=None, error=str(exc)) for p in self.probes]
            self.loaded += 1
            key = tokenizer_key(model)
            if key not in self._by_key:
                self._by_key[key] = count_probe_tokens(model, self.probes)
            if files is not None:
                self._by_files[files] = key
        return [t.model_copy() for t in self._by_key[key]]

    @property
    def distinct(self) -> int:
        """Distinct tokenizers counted so far."""
        return len(self._by_key)
