"""Hugging Face causal LMs behind the :class:`~riskaudit.models.base.ModelHandle` protocol.

The handle composes small modules, one job each: :mod:`~riskaudit.models.loading` (and
:mod:`~riskaudit.models.checks`, :mod:`~riskaudit.models.hub`, :mod:`~riskaudit.models.load_errors`) loads
it, :mod:`~riskaudit.models.tokenization` holds its one tokenization convention (BOS, pair boundaries),
:mod:`~riskaudit.models.scoring` scores, :mod:`~riskaudit.models.decoding` and
:mod:`~riskaudit.models.sampling` generate, :mod:`~riskaudit.models.autobatch` sizes batches and
:mod:`~riskaudit.models.oom` retries them with half the batch on out of memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import torch

from riskaudit.errors import ModelLoadError
from riskaudit.models import autobatch, decoding, scoring
from riskaudit.models.base import (
    BatchHalving,
    LoadOptions,
    LoglikelihoodResult,
    ParamCounts,
    Placement,
    TokenizationInfo,
    TokenStats,
)
from riskaudit.models.hub import env_offline as _env_offline  # inputs.data_sources imports these two from here
from riskaudit.models.hub import hub_reachable as _hub_reachable
from riskaudit.models.load_errors import one_line
from riskaudit.models.oom import BatchFn, HalvingRunner, OutOfMemory, RunBatches, release_memory, trim_heap
from riskaudit.models.sampling import GumbelSampler, check_sampling_args, row_generator
from riskaudit.models.scoring import NumericalError
from riskaudit.models.tokenization import Convention, decide_bos

__all__ = ["HFModel", "NumericalError", "OutOfMemory", "_env_offline", "_hub_reachable"]

_FALLBACK_CONTEXT = 2048


def context_length(config: Any, tokenizer: Any) -> int:
    """The model's context length from its config (else the tokenizer's model_max_length, else 2048)."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 1:
            return v
    v = getattr(tokenizer, "model_max_length", None)
    if isinstance(v, int) and 1 < v < 1_000_000:
        return v
    return _FALLBACK_CONTEXT


def count_params(model: Any) -> ParamCounts:
    """Total parameters (shared tensors once) and non-embedding parameters."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():  # distinct Parameter objects; shared storage counted once
        if _storage(p) in seen and p.numel() > 0:
            continue
        seen.add(_storage(p))
        total += p.numel()
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    n_emb = emb.numel()
    if out is not None and _storage(out.weight) != _storage(emb):
        n_emb += out.weight.numel()
    return ParamCounts(total=int(total), nonembedding=int(total - n_emb))


def _storage(p: torch.Tensor) -> int:
    """Identifies a tensor's memory; a tensor offloaded to disk (meta, no memory) by itself."""
    return id(p) if p.device.type == "meta" else int(p.data_ptr())


class HFModel:
    """A loaded transformers causal LM (implements :class:`~riskaudit.models.base.ModelHandle`)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        options: LoadOptions,
        placement: Placement,
        offload: tempfile.TemporaryDirectory[str] | None = None,
    ) -> None:
        self.name = name
        self._model: Any = model
        self._placement = placement
        self._offload = offload  # layers offloaded to disk by accelerate: removed on close
        device = self._device = torch.device(placement.device)
        self._dtype_name = placement.dtype
        self._max_length = options.max_length or context_length(model.config, tokenizer)
        out_emb = model.get_output_embeddings()
        in_emb = model.get_input_embeddings()
        self._vocab_size = int(out_emb.weight.shape[0] if out_emb is not None else in_emb.weight.shape[0])
        self._params = count_params(model)
        self._logits_to_keep = scoring.supports_logits_to_keep(model)

        def tok_id(attr: str) -> int | None:
            v = getattr(tokenizer, attr, None)
            return int(v) if isinstance(v, int) and 0 <= v < self._vocab_size else None

        eos, bos, pad = tok_id("eos_token_id"), tok_id("bos_token_id"), tok_id("pad_token_id")
        self._pad_id: int = pad if pad is not None else eos if eos is not None else 0
        prefix_id = bos if bos is not None else eos if eos is not None else self._pad_id
        model_type = str(getattr(model.config, "model_type", "") or "")
        info = decide_bos(tokenizer, model_type, options.add_bos, self._vocab_size, name)
        self._conv: Convention | None = Convention(tokenizer, info, prefix_id)
        self._info = info
        self._runner = HalvingRunner(name, device)
        self._batch = autobatch.AutoBatch(
            options.batch_size or None,
            on_cuda=device.type == "cuda",
            shape=lambda: autobatch.model_shape(self._live().config),
            vocab=self._vocab_size,
            try_batch=self._try_batch,
            release=self._release_memory,
        )
        self._model.generation_config = decoding.clean_generation_config(self._pad_id)

    # ---- context manager / lifetime

    def __enter__(self) -> HFModel:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Free the model's memory (the handle is unusable afterwards)."""
        if self._model is None:
            return
        self._model = None
        self._conv = None
        self._release_memory()
        trim_heap()
        if self._offload is not None:
            self._offload.cleanup()
            self._offload = None

    @property
    def closed(self) -> bool:
        return self._model is None

    # ---- properties

    @property
    def vocab_size(self) -> int:
        """Rows of the output embedding (the logits' width); may exceed the tokenizer's size."""
        return self._vocab_size

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def n_params(self) -> ParamCounts:
        return self._params

    @property
    def n_params_total(self) -> int:
        return self._params.total

    @property
    def n_params_nonembedding(self) -> int:
        return self._params.nonembedding

    @property
    def dtype(self) -> str:
        """The dtype the weights were loaded in (``auto`` resolved)."""
        return self._dtype_name

    @property
    def device(self) -> str:
        """The device inputs go to and the model computes on."""
        return str(self._device)

    @property
    def placement(self) -> Placement:
        """The resolved dtype, the compute device and, under ``device_map``, the parameters per device."""
        return self._placement.model_copy(deep=True)

    @property
    def add_bos(self) -> bool:
        """Every model input starts with the BOS token (see :mod:`riskaudit.models.tokenization`)."""
        return self._info.add_bos

    @property
    def tokenization(self) -> TokenizationInfo:
        """The tokenization convention and the pairs met so far (a copy)."""
        return self._info.model_copy()

    @property
    def prefix_token_id(self) -> int:
        """The token an empty input conditions on: BOS when the convention adds it, else BOS, else EOS (as
        lm-evaluation-harness)."""
        return self._convention().start_id

    @property
    def pad_token_id(self) -> int:
        return self._pad_id

    @property
    def batch_halvings(self) -> list[BatchHalving]:
        """Out-of-memory retries so far (recorded in the report)."""
        return self._runner.halvings

    @property
    def batch_size(self) -> int | None:
        """The fixed batch size, or the automatic one found so far (None: automatic, not yet found)."""
        return self._batch.current

    def batch_size_for(self, max_len: int) -> int:
        """Sequences per forward pass for a workload whose longest sequence has ``max_len`` tokens.

        A fixed batch size is returned as it is. Automatic (``batch_size`` 0 or None): the largest power of
        two up to 256 that fits — on CUDA by trying forward passes and halving on out-of-memory, elsewhere
        from an activation-memory estimate against the available RAM — found once and remembered (found
        again only for a longer workload). Never above the cap left by an out-of-memory retry.
        """
        return self._runner.capped(self._batch.size_for(min(int(max_len), self._max_length)))

    def _batches(self, stage: str) -> RunBatches:
        """Runs a stage's length-sorted batches at this model's batch size, halving on out of memory."""

        def run(lengths: Sequence[int], max_len: int, fn: BatchFn) -> None:
            self._runner.run(stage, lengths, self.batch_size_for(max_len), fn)

        return run

    def _release_memory(self) -> None:
        release_memory(self._device)

    # ---- text

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens (the methods below add BOS by the convention)."""
        return self._convention().encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._convention().tokenizer.decode([int(i) for i in ids], clean_up_tokenization_spaces=False))

    # ---- scoring

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        """Sum of log P(continuation tokens | context) per pair (lm-evaluation-harness semantics, with this
        model's BOS convention and the boundary check of :mod:`riskaudit.models.tokenization`).

        Pairs whose model input is the same token sequence share one forward pass; in particular every
        single-token continuation of a context is scored from one pass of that context (its last position).
        """
        return scoring.score_pairs(
            self._encode_pairs(pairs),
            self._max_length,
            forward=lambda seqs, keep: self._forward(seqs, keep),
            run_batches=self._batches("loglikelihood"),
            check=self._check_finite,
        )

    def token_stats(self, sequences: Sequence[Sequence[int]], prefix_lens: Sequence[int]) -> list[TokenStats]:
        """Teacher-forced log p and argmax agreement of every token at position ≥ prefix_len (one pass).

        ``sequences`` are text tokens (from :meth:`encode`); the model input gets BOS by the convention, and
        a sequence scored from its first token (prefix_len 0) conditions on :attr:`prefix_token_id`.
        """
        if len(sequences) != len(prefix_lens):
            raise ValueError("sequences and prefix_lens differ in length")
        conv = self._convention()
        items: list[tuple[list[int], int]] = []
        for seq, p in zip(sequences, prefix_lens, strict=True):
            if not 0 <= p <= len(seq):
                raise ValueError(f"prefix_len {p} outside 0..{len(seq)}")
            ids, p = conv.scoring_input(seq, p)
            cut = max(0, len(ids) - self._max_length)
            if cut > p - 1:
                raise ValueError(f"suffix of {len(ids) - p} tokens does not fit max_length {self._max_length}")
            items.append((ids[cut:], p - cut))
        return scoring.score_suffixes(
            items,
            forward=lambda seqs, keep: self._forward(seqs, keep),
            run_batches=self._batches("token_stats"),
            check=self._check_finite,
        )

    # ---- generation

    def greedy(self, prefixes: Sequence[Sequence[int]], n_new: int) -> list[list[int]]:
        """Greedy-decode exactly ``n_new`` tokens after each prefix of text tokens (BOS added by the
        convention; EOS does not stop decoding)."""
        if n_new < 0:
            raise ValueError("n_new must be >= 0")
        return self._decode(prefixes, n_new, None, "greedy")

    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n_new: int,
        seed: int,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> list[list[int]]:
        """Sample exactly ``n_new`` tokens after each prefix from softmax(logits / temperature), optionally
        restricted to the ``top_k`` most likely tokens (BOS added by the convention; EOS does not stop).

        Reproducible and independent of batching: the i-th prefix draws its randomness from its own
        ``torch.Generator`` seeded with (seed, i), and each step takes the argmax of
        logits / temperature + Gumbel noise, which is an exact sample from the softmax (the Gumbel-max trick).
        """
        check_sampling_args(n_new, seed, temperature, top_k)
        from transformers import LogitsProcessorList

        def processor(batch: list[int]) -> Any:
            return LogitsProcessorList([GumbelSampler([row_generator(seed, i) for i in batch], temperature, top_k)])

        return self._decode(prefixes, n_new, processor, "sample")

    def _decode(
        self,
        prefixes: Sequence[Sequence[int]],
        n_new: int,
        processor: Callable[[list[int]], Any] | None,
        stage: str,
    ) -> list[list[int]]:
        if n_new == 0:
            return [[] for _ in prefixes]
        keep = self._max_length - n_new
        if keep < 1:
            raise ValueError(f"n_new={n_new} leaves no room for a prefix within max_length {self._max_length}")
        conv = self._convention()
        items = [conv.decoding_input(p)[-keep:] for p in prefixes]
        return decoding.decode(
            self._live(),
            items,
            n_new,
            processor=processor,
            pad_id=self._pad_id,
            device=self._device,
            check=self._check_finite,
            run_batches=self._batches(stage),
        )

    # ---- internals

    def _live(self) -> Any:
        if self._model is None:
            raise RuntimeError(f"model {self.name!r} is closed")
        return self._model

    def _convention(self) -> Convention:
        if self._conv is None:
            raise RuntimeError(f"model {self.name!r} is closed")
        return self._conv

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context tokens, continuation tokens) of one pair as :meth:`loglikelihood` scores it."""
        return self._encode_pairs([(context, continuation)])[0]

    def _encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        return self._convention().encode_pairs(pairs)

    def _forward(self, seqs: Sequence[Sequence[int]], keep: Sequence[int] | None = None) -> torch.Tensor:
        """Logits of right-padded sequences (see :func:`riskaudit.models.scoring.forward`)."""
        return scoring.forward(
            self._live(),
            seqs,
            pad_id=self._pad_id,
            device=self._device,
            keep=keep,
            logits_to_keep=self._logits_to_keep,
            split=self._placement.device_map is not None,
        )

    def _try_batch(self, batch_size: int, max_len: int) -> None:
        """A forward pass with float32 scoring of ``batch_size`` sequences of ``max_len`` tokens (raises on
        out of memory; used to find the CUDA batch size)."""
        logits = self._forward([[self._pad_id] * max_len] * batch_size)
        torch.log_softmax(logits[:, -min(max_len, 64) :].float(), dim=-1)
        del logits

    def _check_finite(self, x: torch.Tensor) -> None:
        scoring.check_finite(x, self.name, self._dtype_name)

    def check_tokenizer(self, label: str) -> None:
        """The tokenizer must produce ids the model can embed (ModelLoadError otherwise)."""
        conv = self._convention()
        try:
            n_tok = len(conv.tokenizer)
            probe = self.encode("The quick brown fox.")
        except Exception as exc:
            raise ModelLoadError(f"{label}: the tokenizer is broken ({one_line(exc)})") from None
        if n_tok < 2 or not probe:
            raise ModelLoadError(f"{label}: the tokenizer is empty or broken; save a working tokenizer with the model")
        if max(probe) >= self._vocab_size:
            raise ModelLoadError(
                f"{label}: the tokenizer ({n_tok} tokens) does not match the model's vocabulary "
                f"({self._vocab_size} rows); use the model's own tokenizer"
            )
