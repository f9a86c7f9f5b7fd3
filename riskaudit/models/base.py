"""The ModelHandle protocol and its result types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

DTYPES = ("float32", "float16", "bfloat16")
DTYPE_CHOICES = (*DTYPES, "auto")  # auto: bfloat16 on CUDA devices with native bfloat16, else float32
AddBos = Literal["auto", "yes", "no"]
ADD_BOS_CHOICES: tuple[AddBos, ...] = ("auto", "yes", "no")
DEFAULT_BACKEND = "transformers"  # the model backend of LoadOptions (see riskaudit.models.backends)


@dataclass(frozen=True)
class LoglikelihoodResult:
    """log P(continuation | context) summed over the continuation's tokens."""

    logprob: float
    n_tokens: int
    is_greedy: bool  # every continuation token is the argmax (lm-evaluation-harness semantics)


@dataclass(frozen=True)
class TokenStats:
    """Teacher-forced statistics of a suffix, one entry per suffix token (one forward pass)."""

    logprobs: npt.NDArray[np.float64]  # log p(true token_t | tokens_<t)
    argmax_match: npt.NDArray[np.bool_]  # true token is the argmax at t

    @property
    def n_tokens(self) -> int:
        return int(self.logprobs.shape[0])

    @property
    def exact_match(self) -> bool:
        """Every suffix token is the argmax: greedy decoding from the prefix reproduces the suffix."""
        return bool(np.all(self.argmax_match))

    @property
    def total_logprob(self) -> float:
        return float(np.sum(self.logprobs))


@dataclass(frozen=True)
class ParamCounts:
    """Parameters counted from the loaded weights (tied matrices counted once)."""

    total: int
    nonembedding: int  # total minus the input embedding and (when untied) the output embedding


class BatchHalving(BaseModel):
    """One out-of-memory retry: a batch of ``from_size`` sequences failed to allocate, so the batch size was
    halved to ``to_size`` (for the rest of this model's work) and the same sequences were run again."""

    stage: str  # loglikelihood | token_stats | greedy | sample
    probe_id: str = ""  # the probe that was running (filled in by the scan)
    from_size: int
    to_size: int
    device: str
    error: str  # the allocator's message, one line


class TokenizationInfo(BaseModel):
    """A model's tokenization convention, decided once when it is loaded, and the pairs it met (recorded per
    member in the report): whether every model input starts with the BOS token, and why."""

    add_bos: bool  # every model input (scored, decoded or sampled) starts with the BOS token
    bos_token_id: int | None = None  # the BOS token added (None when add_bos is false)
    requested: AddBos = "auto"  # --add-bos / the family TOML's add_bos
    rule: str = ""  # why add_bos is what it is
    pairs: int = 0  # (context, continuation) pairs encoded
    boundary_fallbacks: int = 0  # pairs whose context tokens were not a prefix of the joint tokens


class Placement(BaseModel):
    """Where a loaded model runs (recorded per member in the report)."""

    dtype: str  # the dtype it was loaded in (``auto`` resolved)
    device: str  # the device its inputs go to and it computes on (accelerate's main device when split)
    device_map: dict[str, int] | None = None  # --device-map auto: parameters per device (GPU index, cpu, disk)


class LoadOptions(BaseModel):
    dtype: str = "float32"  # float32 | float16 | bfloat16 | auto (see riskaudit.models.devices)
    device: str = "cpu"  # cpu | cuda | cuda:N | mps | auto (not used with device_map)
    device_map: str | None = None  # auto: accelerate places the model over several devices and disk
    max_memory: dict[str, str] | None = None  # with device_map: per device ("0", "1", "cpu", "mps", "disk"), "20GiB"
    batch_size: int | None = 16  # 0 or None: automatic (largest that fits, found once per model)
    allow_pickle: bool = False  # load .bin/.pt pickled weights (unsafe: runs code on load)
    trust_remote_code: bool = False  # run the model repository's own Python code
    max_length: int | None = None  # default: the model's context length
    add_bos: AddBos = "auto"  # auto: as the tokenizer's own configuration says (see riskaudit.models.tokenization)
    backend: str = DEFAULT_BACKEND  # the registered backend that loads the model (see riskaudit.models.backends)


class ModelHandle(Protocol):
    """A loaded model. All batched methods are order-preserving and independent of batch size.

    One tokenization convention per model (``tokenization``): :meth:`encode` gives text tokens without
    special tokens, and every method that runs the model (``loglikelihood``, ``token_stats``, ``greedy``,
    ``sample``) puts the BOS token in front of its input when ``add_bos`` is true.
    """

    name: str

    @property
    def vocab_size(self) -> int:
        """Rows of the output embedding (the logits' width)."""
        ...

    @property
    def max_length(self) -> int:
        """Longest model input in tokens (BOS included)."""
        ...

    @property
    def add_bos(self) -> bool:
        """Every model input starts with the BOS token."""
        ...

    @property
    def prefix_token_id(self) -> int:
        """The token an empty input conditions on (BOS when ``add_bos``, else BOS, else EOS)."""
        ...

    @property
    def tokenization(self) -> TokenizationInfo:
        """The convention and the (context, continuation) pairs met so far (boundary fallbacks)."""
        ...

    @property
    def batch_halvings(self) -> list[BatchHalving]:
        """Out-of-memory retries with half the batch so far."""
        ...

    @property
    def placement(self) -> Placement:
        """The resolved dtype, the compute device and, when split, the parameters per device."""
        ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]: ...

    def token_stats(self, sequences: Sequence[Sequence[int]], prefix_lens: Sequence[int]) -> list[TokenStats]:
        """Teacher-forced statistics of every token at position >= prefix_len of text-token sequences."""
        ...

    def greedy(self, prefixes: Sequence[Sequence[int]], n_new: int) -> list[list[int]]: ...

    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n_new: int,
        seed: int,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> list[list[int]]:
        """Seeded sampling of exactly ``n_new`` tokens per prefix; the same seed gives the same tokens."""
        ...

    def close(self) -> None: ...


class LoadedModel(ModelHandle, Protocol):
    """What a model backend's loader returns: a :class:`ModelHandle` that also counts its parameters (the
    scaling analysis's x axis) and closes itself at the end of a ``with`` block."""

    @property
    def n_params_total(self) -> int: ...

    @property
    def n_params_nonembedding(self) -> int: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
