"""How much memory a member needs and what a task running it asks the scheduler for, without loading weights.

**Parameters.** The member's declared ``params_total`` (family TOML or the built-in table); else counted from
its ``config.json`` (a local directory, or a hub id already in the local HF cache: no network) by building
the model on the meta device (no memory, no weights read) and summing its parameters, tied matrices once.
Repository code runs only with ``trust_remote_code``. When neither works the sizes are unknown
(``params_source = "unknown"``), never an error.

**Memory.** ``weight_bytes = params_total × bytes per element`` of the dtype (float32 4, float16/bfloat16 2;
``auto`` is bfloat16 on GPUs, float32 on CPU). ``peak_bytes = weight_bytes + activation_bytes``, where the
activations are those of the largest forward pass the scan makes (:class:`PassShapes`, counted from the
probes' real inputs by :mod:`riskaudit.run.token_count`, batched as the model batches them: ``--batch-size``,
automatic batching counted as :data:`ESTIMATE_BATCH`) plus :data:`RUNTIME_BYTES`::

    scoring  = tokens · 16 · hidden · bytes + logit_rows · vocab · bytes + min(logit_rows, chunk) · vocab · 8
    decoding = decode_tokens · (16 + 2 · layers) · hidden · bytes + (decode_logits · 4 + decode_rows · 48) · vocab
    activation_bytes = max(scoring, decoding) + RUNTIME_BYTES

16 × hidden per token covers one layer's intermediates in the model dtype (attention projections, the 4 ×
hidden MLP, the residual stream: inference keeps one layer's at a time). Logits are projected only where
they are scored (``logits_to_keep``: a continuation's positions for log-likelihoods, every position for
teacher-forced statistics; one batch keeps the union of its rows' positions), in the model dtype, and their
float32 copy and log-softmax are taken a chunk of at most 2^27 / vocab rows at a time
(:func:`riskaudit.models.scoring.score_many`). A decode keeps its KV cache (2 · layers · hidden per token,
an upper bound under grouped-query attention), every step's float32 logits, and one step's working rows (48
bytes per vocabulary entry: the logits, their float32 copy, the processed scores and the sampler's float64
Gumbel noise with its temporaries). Without counted shapes (no readable tokenizer) the pass is assumed to
be B sequences of T = min(context length, :data:`ESTIMATE_SEQ_LEN`) tokens scored at every position (the
memorization window).
hidden, layers, vocab and the context length come from the config; without a readable config the
activations, and so ``peak_bytes``, are unknown.

**Resources.** :func:`task_resources`: a CPU task asks for one CPU and ``peak_bytes`` of memory (Ray's
``memory`` resource); a GPU task for the share of one device its peak needs, rounded up to a sixteenth, or,
when it does not fit one device and ``device_map`` is on, for ``ceil(peak / device memory)`` whole devices.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from riskaudit.errors import RiskauditError
from riskaudit.inputs.family_spec import ModelSpec
from riskaudit.models.base import LoadOptions

GIB = 1 << 30
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
ESTIMATE_BATCH = 32  # sequences per forward pass assumed under automatic batching (the CLI's default fixed size)
ESTIMATE_SEQ_LEN = 256  # tokens per sequence: the memorization window (mem_spec max_tokens), the longest built-in input
GPU_SHARES = 16  # a GPU fraction is a multiple of 1/16 of a device
LAYER_FACTOR = 16  # activations per token of one layer, in units of hidden × bytes
SCORE_CHUNK_ELEMENTS = 1 << 27  # float32 logits per scoring chunk (riskaudit.models.scoring.score_many)
DECODE_STEP_BYTES = 48  # per row and vocabulary entry of one decoding step (module docstring)
RUNTIME_BYTES = 16 << 20  # what loading and the first passes allocate besides weights and activations (measured)

ParamsSource = Literal["declared", "config", "unknown"]


class PassShapes(BaseModel):
    """The largest forward passes a workload makes, as the real implementation batches them."""

    tokens: int = 0  # rows × width of the largest teacher-forced pass (padding included)
    logit_rows: int = 0  # rows × positions of the most logits one scoring pass projects
    decode_tokens: int = 0  # rows × (width + new tokens) of the largest decode (its KV cache)
    decode_logits: int = 0  # rows × new tokens of the largest decode (the float32 logits generate keeps)
    decode_rows: int = 0  # rows of the largest decode batch (one step's logits, float32 copy and scores)

    def merge(self, other: PassShapes) -> PassShapes:
        return PassShapes(
            tokens=max(self.tokens, other.tokens),
            logit_rows=max(self.logit_rows, other.logit_rows),
            decode_tokens=max(self.decode_tokens, other.decode_tokens),
            decode_logits=max(self.decode_logits, other.decode_logits),
            decode_rows=max(self.decode_rows, other.decode_rows),
        )


class MemberFootprint(BaseModel):
    """One member's estimated memory at one dtype (module docstring: the formulas)."""

    member: str  # ModelSpec.name
    params_total: int | None
    params_source: ParamsSource  # family TOML / built-in table, counted from config.json on meta device, or unknown
    dtype: str  # the dtype the estimate assumes ("auto" resolved: bfloat16 on GPUs, float32 on CPU)
    weight_bytes: int | None  # params_total × bytes per element
    peak_bytes: int | None  # weights + activation_bytes (None when either is unknown)
    activation_bytes: int | None = None  # the largest forward pass's working memory (module docstring)
    note: str = ""  # why something is unknown


class TaskResources(BaseModel):
    """What one (member, revision) task asks the scheduler for (Ray's resource names)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0  # a fraction (<1) of one device, whole devices for a device_map split, 0 on CPU
    memory: int | None = None  # bytes of host memory (Ray's ``memory``), set for CPU tasks when peak_bytes is known


def resolve_dtype(dtype: str, use_gpu: bool) -> str:
    """The dtype an estimate assumes: ``auto`` is bfloat16 on GPUs and float32 on CPU."""
    if dtype == "auto":
        return "bfloat16" if use_gpu else "float32"
    return dtype


def is_local_source(source: str) -> bool:
    """A source that is a local directory (or clearly meant as a path) rather than a hub id."""
    from riskaudit.models.loading import _looks_like_path

    return Path(source).expanduser().exists() or _looks_like_path(source)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' logging and warnings (core code never prints)."""
    from transformers.utils import logging as _logging

    hf_logging: Any = _logging
    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(before)


def hf_kwargs(member: ModelSpec, load: LoadOptions) -> tuple[str, dict[str, Any]]:
    """(path or id, keyword arguments) for ``from_pretrained`` from local files only: no network."""
    if is_local_source(member.source):
        return str(Path(member.source).expanduser()), {
            "local_files_only": True,
            "trust_remote_code": load.trust_remote_code,
        }
    return member.source, {
        "revision": member.revision,
        "local_files_only": True,
        "trust_remote_code": load.trust_remote_code,
    }


def read_config(member: ModelSpec, load: LoadOptions) -> tuple[Any | None, str]:
    """The member's transformers config from local files (a local directory or the local HF cache), and why
    not when it cannot be read."""
    from transformers import AutoConfig

    where, kwargs = hf_kwargs(member, load)
    try:
        with quiet_transformers():
            return AutoConfig.from_pretrained(where, **kwargs), ""
    except Exception as exc:  # any failure: the sizes are unknown, the plan goes on
        from riskaudit.models.load_errors import is_not_cached, one_line

        if not is_local_source(member.source) and is_not_cached(exc):
            return None, "not in the local HF cache (no config.json, no tokenizer)"
        return None, f"config not readable ({one_line(exc)[:100]})"


def count_params_meta(config: Any, load: LoadOptions) -> int:
    """Parameters of the model built from ``config`` on the meta device (no memory, no weights), tied
    matrices once (``parameters()`` yields a shared Parameter once).

    Built under ``torch.device("meta")``, not ``accelerate.init_empty_weights()``: with transformers 5 the
    latter re-creates every registered parameter, which unties tied embeddings (a tied model would count
    its embedding twice)."""
    import torch
    from transformers import AutoModelForCausalLM

    auto: Any = AutoModelForCausalLM
    with quiet_transformers(), torch.device("meta"):
        model = auto.from_config(config, trust_remote_code=load.trust_remote_code)
    return int(sum(p.numel() for p in model.parameters()))


def default_shapes(config: Any, batch: int) -> PassShapes:
    """The pass assumed without counted shapes: ``batch`` sequences of T = min(context, ESTIMATE_SEQ_LEN)
    tokens, logits at every position."""
    from riskaudit.models.hf import context_length

    seq = min(context_length(config, None), ESTIMATE_SEQ_LEN)
    return PassShapes(tokens=batch * seq, logit_rows=batch * seq)


def activation_bytes(config: Any, shapes: PassShapes, dtype_bytes: int) -> int:
    """The working memory of the largest forward pass of ``shapes`` (module docstring)."""
    from riskaudit.models.autobatch import model_shape

    hidden, layers = model_shape(config)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab = getattr(text, "vocab_size", None)
    vocab = vocab if isinstance(vocab, int) and vocab > 0 else 0
    chunk = max(1, SCORE_CHUNK_ELEMENTS // max(1, vocab))
    scoring = (
        shapes.tokens * LAYER_FACTOR * hidden * dtype_bytes
        + shapes.logit_rows * vocab * dtype_bytes
        + min(shapes.logit_rows, chunk) * vocab * 8
    )
    decoding = (
        shapes.decode_tokens * (LAYER_FACTOR + 2 * layers) * hidden * dtype_bytes
        + (shapes.decode_logits * 4 + shapes.decode_rows * DECODE_STEP_BYTES) * vocab
    )
    return max(scoring, decoding) + RUNTIME_BYTES


def estimate_footprint(
    member: ModelSpec, load: LoadOptions, use_gpu: bool = False, shapes: PassShapes | None = None
) -> MemberFootprint:
    """The member's parameters, weight and peak bytes at ``load.dtype`` (``auto`` resolved by ``use_gpu``),
    without loading weights (module docstring), for the forward passes ``shapes`` (counted by
    :mod:`riskaudit.run.token_count`; None: the default pass). Never raises for an unreadable model: the
    sizes are None."""
    dtype = resolve_dtype(load.dtype, use_gpu)
    nbytes = DTYPE_BYTES.get(dtype)
    if nbytes is None:
        raise RiskauditError(f"unknown dtype {dtype!r}: expected one of {', '.join(DTYPE_BYTES)} or auto")
    config, note = read_config(member, load)
    params: int | None = member.params_total
    source: ParamsSource = "declared" if params is not None else "unknown"
    if params is None and config is not None:
        try:
            params, source = count_params_meta(config, load), "config"
        except Exception as exc:  # an architecture transformers cannot build: unknown, not an error
            from riskaudit.models.load_errors import one_line

            note = f"parameters not countable from the config ({one_line(exc)[:120]})"
    act = None
    if config is not None:
        act = activation_bytes(config, shapes or default_shapes(config, load.batch_size or ESTIMATE_BATCH), nbytes)
    weights = None if params is None else params * nbytes
    return MemberFootprint(
        member=member.name,
        params_total=params,
        params_source=source,
        dtype=dtype,
        weight_bytes=weights,
        peak_bytes=None if weights is None or act is None else weights + act,
        activation_bytes=act,
        note=note,
    )


def gib(n: int) -> str:
    """Bytes as GiB with one decimal (two below 1 GiB)."""
    v = n / GIB
    return f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def task_resources(fp: MemberFootprint, gpu_memory: int | None, device_map: bool = False) -> TaskResources:
    """The resources a task running this member requests (module docstring).

    ``gpu_memory`` None: a CPU task (one CPU, ``memory`` = the peak). Otherwise the share of one device of
    ``gpu_memory`` bytes that the peak needs, rounded up to a multiple of 1/16 (at least 1/16); a member
    larger than one device gets ``ceil(peak / gpu_memory)`` whole devices with ``device_map``, and is a
    :class:`RiskauditError` without it. An unknown peak asks for one whole device (or, when the weights alone
    exceed one device, is sized by the weights).
    """
    if gpu_memory is None:
        return TaskResources(num_cpus=1.0, num_gpus=0.0, memory=fp.peak_bytes)
    if gpu_memory <= 0:
        raise RiskauditError(f"the device memory must be positive (got {gpu_memory} bytes)")
    need = fp.peak_bytes
    if need is None:
        if fp.weight_bytes is None or fp.weight_bytes <= gpu_memory:
            return TaskResources(num_cpus=1.0, num_gpus=1.0)
        need = fp.weight_bytes
    if need > gpu_memory:
        if not device_map:
            raise RiskauditError(
                f"{fp.member} needs ~{gib(need)} GiB at {fp.dtype}, more than one device's "
                f"{gib(gpu_memory)} GiB: use --device-map auto"
            )
        return TaskResources(num_cpus=1.0, num_gpus=float(-(-need // gpu_memory)))  # ceil, exact
    shares = max(1, -(-need * GPU_SHARES // gpu_memory))  # ceil in integers: no float rounding
    return TaskResources(num_cpus=1.0, num_gpus=shares / GPU_SHARES)


def local_gpu_memory() -> int | None:
    """Bytes of memory of the local CUDA device (device 0), or None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(0).total_memory)
