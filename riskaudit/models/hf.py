"""Hugging Face causal LMs behind the :class:`~riskaudit.models.base.ModelHandle` protocol.

Loading is safe by default (safetensors only, no repository code) and fails with one-line
:class:`~riskaudit.errors.ModelLoadError` messages. Scoring is batched, length-sorted and order-preserving;
log-softmax is always taken in float32 so results do not depend on batch size or padding.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import re
import socket
import struct
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch

from riskaudit.errors import ModelLoadError
from riskaudit.models.base import DTYPES, BatchHalving, LoadOptions, LoglikelihoodResult, ParamCounts, TokenStats

_TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
_SAFE_SUFFIXES = (".safetensors",)
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "merges.txt",
)
_HUB_PROBE_TIMEOUT_S = 3.0
_FALLBACK_CONTEXT = 2048


class NumericalError(ModelLoadError):
    """The model produced NaN/Inf logits (typically float16 overflow)."""


class OutOfMemory(ModelLoadError):
    """The model ran out of memory even one sequence at a time."""


class _StageError(Exception):
    """Internal: a loading stage ('config', 'tokenizer', 'model') failed with ``cause``."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(stage)
        self.stage = stage
        self.cause = cause


# --------------------------------------------------------------------------------------------- loading


def load_model(source: str, revision: str | None, options: LoadOptions, name: str | None = None) -> HFModel:
    """Load a causal LM and its tokenizer from a hub id or a local directory.

    ``revision`` (branch, tag, commit) applies to hub ids; a local directory is loaded as it is.
    Raises :class:`ModelLoadError` with a one-line reason and fix on any failure.
    """
    source = str(source)
    path = Path(source).expanduser()
    local = path.exists() or _looks_like_path(source)
    label = (
        f"cannot load model '{source}'" if local else f"cannot load model '{source}' (revision {revision or 'main'})"
    )
    if options.dtype not in _TORCH_DTYPES:
        raise ModelLoadError(f"{label}: unknown dtype {options.dtype!r}; use one of {', '.join(DTYPES)}")
    if options.batch_size is not None and options.batch_size < 0:
        raise ModelLoadError(f"{label}: batch size must be at least 1, or 0 for automatic (got {options.batch_size})")
    if options.max_length is not None and options.max_length < 2:
        raise ModelLoadError(f"{label}: max length must be at least 2 (got {options.max_length})")
    device = _resolve_device(options.device, label)
    display = name or (source if local or not revision else f"{source}@{revision}")

    if local:
        _check_local_dir(path, options, label)
        with _quiet_progress():
            model, tokenizer = _load_classified(str(path), None, options, label, local_only=True, is_local=True)
    else:
        model, tokenizer = _load_hub(source, revision, options, label)

    try:
        model.to(device)
    except (RuntimeError, ValueError, AssertionError) as exc:
        raise ModelLoadError(f"{label}: cannot move it to device {device}: {_one_line(exc)}") from None
    model.eval()
    handle = HFModel(model, tokenizer, name=display, options=options, device=device)
    handle._check_tokenizer(label)
    return handle


def _looks_like_path(source: str) -> bool:
    """A source that is clearly meant as a filesystem path (hub ids are 'org/name' or 'name')."""
    return (
        source.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or source in (".", "..")
        or "\\" in source
        or source.count("/") > 1
        or source.endswith("/")
        or bool(re.match(r"^[A-Za-z]:[\\/]", source))
    )


def _resolve_device(spec: str, label: str) -> torch.device:
    s = spec.strip().lower()
    if s == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(s)
    except (RuntimeError, ValueError):
        raise ModelLoadError(f"{label}: unknown device {spec!r}; use cpu, cuda, cuda:N, mps or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"{label}: device {spec!r} requested but CUDA is not available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"{label}: device {spec!r} does not exist ({torch.cuda.device_count()} CUDA device(s) visible)"
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ModelLoadError(f"{label}: device 'mps' requested but MPS is not available; use --device cpu")
    elif dev.type != "cpu":
        raise ModelLoadError(f"{label}: unsupported device {spec!r}; use cpu, cuda, cuda:N, mps or auto")
    return dev


def _check_local_dir(path: Path, options: LoadOptions, label: str) -> None:
    """Fast, precise checks of a local model directory before transformers sees it."""
    if not path.exists():
        raise ModelLoadError(
            f"{label}: the local path does not exist; fix the path in the family TOML (or use a hub id)"
        )
    if not path.is_dir():
        raise ModelLoadError(
            f"{label}: not a directory; point to a Hugging Face model directory "
            "(config.json, model.safetensors, tokenizer files)"
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{label}: no config.json in the directory; it is not a Hugging Face model directory")
    files = [p for p in path.iterdir() if p.is_file()]
    safe = sorted(p for p in files if p.name.endswith(_SAFE_SUFFIXES))
    pickled = sorted(p for p in files if p.name.endswith(_PICKLE_SUFFIXES) and "training_args" not in p.name)
    if not safe and not pickled:
        raise ModelLoadError(f"{label}: no weights in the directory (expected model.safetensors)")
    if not safe and not options.allow_pickle:
        raise ModelLoadError(
            f"{label}: only pickled weights ({pickled[0].name}), which can run arbitrary code when loaded; "
            "convert them to safetensors, or pass --allow-pickle if you trust them"
        )
    for f in safe:
        problem = _safetensors_problem(f)
        if problem:
            raise ModelLoadError(
                f"{label}: weights file {f.name} is corrupt or truncated ({problem}); re-download or re-save it"
            )
    if not any((path / n).is_file() for n in _TOKENIZER_FILES):
        raise ModelLoadError(
            f"{label}: no tokenizer files (tokenizer.json / tokenizer_config.json) in the directory; "
            "save the tokenizer next to the model (tokenizer.save_pretrained)"
        )


def _safetensors_problem(f: Path) -> str | None:
    """Check a safetensors file's header against its size; return a short description of a problem."""
    try:
        size = f.stat().st_size
        with f.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                return f"{size} bytes, shorter than the header"
            (n,) = struct.unpack("<Q", raw)
            if n > size - 8 or n > 100_000_000:
                return "header length exceeds the file size"
            header = json.loads(fh.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"unreadable header: {_one_line(exc)}"
    if not isinstance(header, dict):
        return "malformed header"
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2):
            return f"malformed entry for {key}"
        end = max(end, int(offsets[1]))
    expected = 8 + n + end
    if expected != size:
        return f"expected {expected} bytes, found {size}"
    return None


def _env_offline() -> bool:
    return any(
        os.environ.get(k, "").strip().upper() in ("1", "ON", "YES", "TRUE")
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_reachable(timeout: float = _HUB_PROBE_TIMEOUT_S) -> bool:
    """A quick TCP probe of the hub endpoint (skipped behind a proxy, where the client must try itself)."""
    proxy_vars = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
    if any(os.environ.get(k) for k in proxy_vars):
        return True
    try:
        from huggingface_hub import constants

        endpoint = str(constants.ENDPOINT)
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        endpoint = "https://huggingface.co"
    url = urllib.parse.urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            ok.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)  # name resolution is not bounded by the socket timeout
    return bool(ok and ok[0])


def _load_hub(source: str, revision: str | None, options: LoadOptions, label: str) -> tuple[Any, Any]:
    """Cache first (fast, no network); then the network unless offline mode is set."""
    try:
        with _quiet_progress():
            return _load_parts(source, revision, options, local_only=True)
    except _StageError as err:
        if not _is_not_cached(err.cause):
            raise ModelLoadError(f"{label}: {_explain(err, options, revision, is_local=False)}") from None
    if _env_offline():
        raise ModelLoadError(
            f"{label}: it is not in the local HF cache and HF_HUB_OFFLINE is set (no network access to the "
            "Hugging Face Hub); provide it with hub access, a pre-filled HF cache (HF_HOME), "
            "or a local path in a family TOML"
        )
    if not _hub_reachable():
        raise ModelLoadError(
            f"{label}: no network access to the Hugging Face Hub and it is not in the local HF cache; "
            "provide it with hub access, a pre-filled HF cache (HF_HOME), or a local path in a family TOML"
        )
    with _env_default("DISABLE_SAFETENSORS_CONVERSION", "1"):  # never ask the hub to convert .bin files
        return _load_classified(source, revision, options, label, local_only=False, is_local=False)


def _load_classified(
    source: str, revision: str | None, options: LoadOptions, label: str, *, local_only: bool, is_local: bool
) -> tuple[Any, Any]:
    try:
        return _load_parts(source, revision, options, local_only=local_only)
    except _StageError as err:
        raise ModelLoadError(f"{label}: {_explain(err, options, revision, is_local=is_local)}") from None


def _load_parts(source: str, revision: str | None, options: LoadOptions, *, local_only: bool) -> tuple[Any, Any]:
    """Load config, tokenizer and weights; any failure is wrapped in a :class:`_StageError`."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    common: dict[str, Any] = {
        "revision": revision,
        "trust_remote_code": options.trust_remote_code,
        "local_files_only": local_only,
    }
    try:
        config = AutoConfig.from_pretrained(source, **common)
    except Exception as exc:
        raise _StageError("config", exc) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **common)
    except Exception as exc:
        raise _StageError("tokenizer", exc) from exc
    try:
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            source,
            config=config,
            dtype=_TORCH_DTYPES[options.dtype],
            use_safetensors=None if options.allow_pickle else True,
            output_loading_info=True,
            **common,
        )
    except Exception as exc:
        raise _StageError("model", exc) from exc
    model, info = loaded
    missing = list(info.get("missing_keys") or []) if isinstance(info, dict) else []
    if missing:
        shown = ", ".join(sorted(missing)[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise _StageError("weights", ValueError(f"weights missing from the checkpoint: {shown}{more}"))
    return model, tokenizer


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _is_not_cached(exc: BaseException) -> bool:
    """True when a local-files-only attempt failed only because files are not in the HF cache."""
    for e in _chain(exc):
        cls = type(e).__name__
        if cls in ("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
            return True
        msg = str(e)
        if "couldn't find them in the cached files" in msg or "local_files_only" in msg:
            return True
    return False


def _explain(err: _StageError, options: LoadOptions, revision: str | None, *, is_local: bool) -> str:
    """One line: what went wrong and how to fix it."""
    exc = err.cause
    names = {type(e).__name__ for e in _chain(exc)}
    text = " ".join(str(e) for e in _chain(exc))
    low = text.lower()
    if "GatedRepoError" in names:
        return "the repository is gated; accept its license on the Hugging Face Hub and log in (hf auth login)"
    if "RevisionNotFoundError" in names or "not a valid git identifier" in low:
        return f"revision {revision!r} does not exist in the repository; check the revision name"
    if "RepositoryNotFoundError" in names or "is not a local folder and is not a valid model identifier" in low:
        return (
            "no such model repository on the Hugging Face Hub (or it is private: log in with hf auth login); "
            "check the hub id, or use a local path in a family TOML"
        )
    if names & {
        "LocalEntryNotFoundError",
        "OfflineModeIsEnabled",
        "ConnectError",
        "ConnectionError",
        "ConnectTimeout",
    }:
        return (
            "no network access to the Hugging Face Hub and it is not in the local HF cache; provide it with "
            "hub access, a pre-filled HF cache (HF_HOME), or a local path in a family TOML"
        )
    if "trust_remote_code" in text or "trust-remote-code" in low:
        return (
            "the model needs its repository's own Python code; pass --trust-remote-code if you trust it"
            if not options.trust_remote_code
            else f"its repository code failed: {_one_line(exc)}"
        )
    if err.stage == "config":
        if "model_type" in text or "Unrecognized model" in text:
            return f"unsupported or unknown architecture in config.json ({_one_line(exc)}); upgrade transformers"
        return f"config.json is missing or broken: {_one_line(exc)}"
    if err.stage == "tokenizer":
        return f"the tokenizer is missing or broken ({_one_line(exc)}); save a working tokenizer with the model"
    if "SafetensorError" in names or ("safetensors" in low and ("header" in low or "deserializ" in low)):
        return f"the safetensors weights are corrupt or truncated ({_one_line(exc)}); re-download or re-save them"
    if not options.allow_pickle and ("safetensors" in low and ("no file named" in low or "does not appear" in low)):
        return (
            "it has no safetensors weights, only pickled ones (pytorch_model.bin), which can run "
            "arbitrary code when loaded; pass --allow-pickle if you trust them"
        )
    if "out of memory" in low:
        return f"out of memory while loading ({_one_line(exc)}); use a smaller dtype or another device"
    return _one_line(exc)


def _one_line(exc: BaseException, limit: int = 240) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if len(msg) > limit:
        msg = msg[: limit - 3] + "..."
    return msg


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """Hide transformers' progress bars while loading local files (core code never prints)."""
    from transformers.utils import logging as _logging

    hf_logging: Any = _logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _env_default(key: str, value: str) -> Iterator[None]:
    had = key in os.environ
    os.environ.setdefault(key, value)
    try:
        yield
    finally:
        if not had:
            os.environ.pop(key, None)


# --------------------------------------------------------------------------------------------- the handle


def _context_length(config: Any, tokenizer: Any) -> int:
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length"):
        v = getattr(cfg, attr, None)
        if isinstance(v, int) and v > 1:
            return v
    v = getattr(tokenizer, "model_max_length", None)
    if isinstance(v, int) and 1 < v < 1_000_000:
        return v
    return _FALLBACK_CONTEXT


AUTO_BATCH_CAP = 256
_CPU_MEMORY_FRACTION = 0.25  # share of the available RAM that one batch's activations may use


def _floor_pow2(n: int) -> int:
    """The largest power of two ≤ ``n`` (1 for n < 1)."""
    return 1 << (max(1, n).bit_length() - 1)


def _activation_bytes_per_token(hidden: int, layers: int, vocab: int) -> int:
    """Rough float32 activation footprint of one token in a forward pass: hidden states of every layer
    (attention and MLP intermediates, ~16 × hidden per layer) plus the logits row (twice: logits and the
    float32 log-softmax taken while scoring)."""
    return (hidden * layers * 16 + 2 * vocab) * 4


def _cpu_auto_batch_size(
    max_len: int,
    *,
    hidden: int,
    layers: int,
    vocab: int,
    available_bytes: int,
    cap: int = AUTO_BATCH_CAP,
    fraction: float = _CPU_MEMORY_FRACTION,
) -> int:
    """The largest power of two ≤ ``cap`` whose activations for ``max_len`` tokens per sequence fit in
    ``fraction`` of ``available_bytes`` (at least 1)."""
    per_seq = max(1, max_len) * _activation_bytes_per_token(hidden, layers, vocab)
    fits = int(available_bytes * fraction) // per_seq
    return min(_floor_pow2(cap), _floor_pow2(fits))


def _available_ram_bytes() -> int:
    """Available physical memory from ``os.sysconf`` (no psutil); a conservative 2 GiB when unknown."""
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        page = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2 << 30
    if pages <= 0 or page <= 0:
        return 2 << 30
    return int(pages) * int(page)


# messages of allocation failures: CUDA ("CUDA out of memory"), torch's CPU allocator ("DefaultCPUAllocator:
# can't allocate memory"), and oneDNN, whose CPU kernels fail with "could not create a primitive" when their
# scratch memory cannot be allocated (seen here with a capped address space)
_CPU_ALLOC_FAILURES = (
    "out of memory",
    "can't allocate memory",
    "cannot allocate memory",
    "failed to allocate",
    "could not create a primitive",
)


def _trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc's ``malloc_trim``). Without it a family scan's resident
    memory keeps the high-water mark of every earlier member's buffers: measured on the demo family, the
    RSS after freeing a member fell by 50-140 MiB."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _is_oom(exc: BaseException) -> bool:
    """A CUDA or CPU allocation failure (torch's OutOfMemoryError, the CPU allocator's RuntimeError, or
    Python's MemoryError) — the errors a smaller batch can cure."""
    if isinstance(exc, MemoryError):
        return True
    for owner in (torch, torch.cuda):  # torch.OutOfMemoryError is recent; torch.cuda's is older
        cls = getattr(owner, "OutOfMemoryError", None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    low = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(s in low for s in _CPU_ALLOC_FAILURES)


def _sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices sorted by length (longest first; ties keep input order), cut into batches."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class HFModel:
    """A loaded transformers causal LM (implements :class:`~riskaudit.models.base.ModelHandle`)."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str, options: LoadOptions, device: torch.device) -> None:
        self.name = name
        self._model: Any = model
        self._tokenizer: Any = tokenizer
        self._device = device
        self._fixed_batch_size: int | None = options.batch_size or None  # None: automatic
        self._auto_batch: tuple[int, int] | None = None  # (probed sequence length, batch size) when automatic
        self._available_ram: int | None = None
        self._oom_cap: int | None = None  # after an out-of-memory retry: the batch size never exceeds this
        self.batch_halvings: list[BatchHalving] = []  # out-of-memory retries so far (recorded in the report)
        self._logits_to_keep: bool | None = None  # the model's forward accepts logits_to_keep (found on first use)
        self._dtype_name = options.dtype
        self._max_length = options.max_length or _context_length(model.config, tokenizer)
        out_emb = model.get_output_embeddings()
        in_emb = model.get_input_embeddings()
        self._vocab_size = int(out_emb.weight.shape[0] if out_emb is not None else in_emb.weight.shape[0])
        self._params = _count_params(model)

        def tok_id(attr: str) -> int | None:
            v = getattr(tokenizer, attr, None)
            return int(v) if isinstance(v, int) and 0 <= v < self._vocab_size else None

        eos, bos, pad = tok_id("eos_token_id"), tok_id("bos_token_id"), tok_id("pad_token_id")
        self._pad_id: int = pad if pad is not None else eos if eos is not None else 0
        self._prefix_id: int = bos if bos is not None else eos if eos is not None else self._pad_id
        self._reset_generation_config()

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
        self._tokenizer = None
        self._release_memory()
        _trim_heap()

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
        return self._dtype_name

    @property
    def device(self) -> str:
        return str(self._device)

    @property
    def prefix_token_id(self) -> int:
        """The token conditioned on when a context is empty (BOS, else EOS; as lm-evaluation-harness)."""
        return self._prefix_id

    @property
    def pad_token_id(self) -> int:
        return self._pad_id

    @property
    def batch_size(self) -> int | None:
        """The fixed batch size, or the automatic one found so far (None: automatic, not yet found)."""
        if self._fixed_batch_size is not None:
            return self._fixed_batch_size
        return self._auto_batch[1] if self._auto_batch is not None else None

    def batch_size_for(self, max_len: int) -> int:
        """Sequences per forward pass for a workload whose longest sequence has ``max_len`` tokens.

        A fixed batch size is returned as it is. Automatic (``batch_size`` 0 or None): the largest power of
        two up to 256 that fits — on CUDA by trying forward passes and halving on out-of-memory, elsewhere
        from an activation-memory estimate against the available RAM — found once and remembered (found
        again only for a longer workload).
        """
        if self._fixed_batch_size is not None:
            return self._capped(self._fixed_batch_size)
        max_len = max(1, min(int(max_len), self._max_length))
        if self._auto_batch is not None and max_len <= self._auto_batch[0]:
            return self._capped(self._auto_batch[1])
        if self._device.type == "cuda":
            found = self._probe_cuda_batch_size(max_len)
        else:
            if self._available_ram is None:
                self._available_ram = _available_ram_bytes()
            hidden, layers = self._shape()
            found = _cpu_auto_batch_size(
                max_len, hidden=hidden, layers=layers, vocab=self._vocab_size, available_bytes=self._available_ram
            )
        self._auto_batch = (max_len, found)
        return self._capped(found)

    def _capped(self, size: int) -> int:
        return size if self._oom_cap is None else max(1, min(size, self._oom_cap))

    def _run_batches(self, stage: str, lengths: Sequence[int], max_len: int, fn: Callable[[list[int]], None]) -> None:
        """Call ``fn`` on length-sorted batches of indices into ``lengths``; on a CUDA or CPU allocation failure
        free what can be freed, halve the batch size (for the rest of this model's work), record it in
        :attr:`batch_halvings` and run the same sequences again. ``fn`` must only publish its results once
        it has them all, so a failed batch leaves nothing half-written. Out of memory at batch size 1 is
        raised as :class:`OutOfMemory`."""
        pending = list(_sorted_batches(lengths, self.batch_size_for(max_len)))
        while pending:
            batch = pending.pop(0)
            try:
                fn(batch)
                continue
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                message = _one_line(exc)
            # outside the handler: the failed batch's tensors, held by the traceback's frames, can be freed
            self._release_memory()
            if len(batch) == 1:
                raise OutOfMemory(
                    f"model '{self.name}' ran out of memory on {self._device} even at batch size 1 "
                    f"({message}); use --dtype bfloat16, a shorter --max-length or a device with more memory"
                )
            half = len(batch) // 2
            self._oom_cap = half
            self.batch_halvings.append(
                BatchHalving(stage=stage, from_size=len(batch), to_size=half, device=str(self._device), error=message)
            )
            rest = batch + [i for b in pending for i in b]  # still longest first
            pending = [rest[k : k + half] for k in range(0, len(rest), half)]

    def _release_memory(self) -> None:
        """Collect garbage and, on CUDA, hand cached blocks back to the driver."""
        gc.collect()
        if self._device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---- text

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        return [int(t) for t in self._tok()(text, add_special_tokens=False)["input_ids"]]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok().decode([int(i) for i in ids], clean_up_tokenization_spaces=False))

    # ---- scoring

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        """Sum of log P(continuation tokens | context) per pair (lm-evaluation-harness semantics).

        Pairs whose model input is the same token sequence share one forward pass; in particular every
        single-token continuation of a context is scored from one pass of that context (its last position).
        """
        encoded = self._encode_pairs(pairs)
        for _, cont_enc in encoded:
            if len(cont_enc) > self._max_length:
                raise ValueError(f"continuation of {len(cont_enc)} tokens exceeds max_length {self._max_length}")
        results: list[LoglikelihoodResult | None] = [None] * len(pairs)
        # model input: (context + continuation)[-(max_length+1):][:-1]; a single-token continuation's input is
        # therefore the (truncated) context itself, shared by all its single-token continuations
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (c, k) in enumerate(encoded):
            if not k:
                results[i] = LoglikelihoodResult(logprob=0.0, n_tokens=0, is_greedy=True)
                continue
            groups.setdefault(tuple((c + k)[-(self._max_length + 1) :][:-1]), []).append(i)
        jobs = list(groups.items())
        lengths = [len(seq) for seq, _ in jobs]

        def run(batch: list[int]) -> None:
            requests: list[tuple[int, int, Sequence[int]]] = []
            owners: list[int] = []
            for row, j in enumerate(batch):
                for i in jobs[j][1]:
                    cont = encoded[i][1]
                    requests.append((row, lengths[j] - len(cont), cont))
                    owners.append(i)
            # project onto the vocabulary only at the positions that are scored (the model's logits_to_keep)
            needed = sorted({start + t for _, start, cont in requests for t in range(len(cont))})
            keep = needed if len(needed) < max(lengths[j] for j in batch) else None
            logits = self._forward([jobs[j][0] for j in batch], keep=keep)
            if keep is not None:
                index = {col: k for k, col in enumerate(keep)}
                requests = [(row, index[start], cont) for row, start, cont in requests]
            scored = self._score_many(logits, requests)
            del logits
            for i, (lp, match) in zip(owners, scored, strict=True):
                results[i] = LoglikelihoodResult(
                    logprob=float(lp.sum()), n_tokens=int(lp.shape[0]), is_greedy=bool(match.all())
                )

        self._run_batches("loglikelihood", lengths, max(lengths, default=1), run)
        return [r for r in results if r is not None]

    def token_stats(self, sequences: Sequence[Sequence[int]], prefix_lens: Sequence[int]) -> list[TokenStats]:
        """Teacher-forced log p and argmax agreement of every token at position ≥ prefix_len (one pass)."""
        if len(sequences) != len(prefix_lens):
            raise ValueError("sequences and prefix_lens differ in length")
        items: list[tuple[list[int], int]] = []
        for seq, p in zip(sequences, prefix_lens, strict=True):
            ids = [int(t) for t in seq]
            if not 0 <= p <= len(ids):
                raise ValueError(f"prefix_len {p} outside 0..{len(ids)}")
            if p == 0:  # condition the first token on the prefix (BOS/EOS) token
                ids, p = [self._prefix_id, *ids], 1
            cut = max(0, len(ids) - self._max_length)
            if cut > p - 1:
                raise ValueError(f"suffix of {len(ids) - p} tokens does not fit max_length {self._max_length}")
            items.append((ids[cut:], p - cut))
        results: list[TokenStats | None] = [None] * len(items)
        lengths = [len(ids) for ids, _ in items]

        def run(batch: list[int]) -> None:
            logits = self._forward([items[i][0] for i in batch])
            requests = [(row, items[i][1] - 1, items[i][0][items[i][1] :]) for row, i in enumerate(batch)]
            scored = self._score_many(logits, requests)
            del logits
            for i, (lp, match) in zip(batch, scored, strict=True):
                results[i] = TokenStats(logprobs=lp, argmax_match=match)

        self._run_batches("token_stats", lengths, max(lengths, default=1), run)
        return [r for r in results if r is not None]

    def greedy(self, prefixes: Sequence[Sequence[int]], n_new: int) -> list[list[int]]:
        """Greedy-decode exactly ``n_new`` tokens after each prefix (EOS does not stop decoding)."""
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
        restricted to the ``top_k`` most likely tokens (EOS does not stop decoding).

        Reproducible and independent of batching: the i-th prefix draws its randomness from its own
        ``torch.Generator`` seeded with (seed, i), and each step takes the argmax of
        logits / temperature + Gumbel noise, which is an exact sample from the softmax (the Gumbel-max trick).
        """
        if n_new < 0:
            raise ValueError("n_new must be >= 0")
        if not temperature > 0.0 or not np.isfinite(temperature):
            raise ValueError(f"temperature must be a positive number, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        from transformers import LogitsProcessorList

        def processor(batch: list[int]) -> Any:
            gens = [_row_generator(seed, i) for i in batch]
            return LogitsProcessorList([_GumbelSampler(gens, temperature, top_k)])

        return self._decode(prefixes, n_new, processor, "sample")

    def _decode(
        self,
        prefixes: Sequence[Sequence[int]],
        n_new: int,
        processor: Callable[[list[int]], Any] | None,
        stage: str,
    ) -> list[list[int]]:
        """Decode exactly ``n_new`` tokens after each prefix: left-padded, length-sorted batches, order kept.

        ``processor(batch indices)`` gives the logits processors of a batch (None: greedy argmax).
        """
        if n_new == 0:
            return [[] for _ in prefixes]
        keep = self._max_length - n_new
        if keep < 1:
            raise ValueError(f"n_new={n_new} leaves no room for a prefix within max_length {self._max_length}")
        items = [[int(t) for t in p][-keep:] or [self._prefix_id] for p in prefixes]
        model = self._live()
        results: list[list[int] | None] = [None] * len(items)

        def run(batch: list[int]) -> None:
            width = max(len(items[i]) for i in batch)
            ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):  # left padding
                seq = items[i]
                ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
                mask[row, width - len(seq) :] = 1
            extra: dict[str, Any] = {} if processor is None else {"logits_processor": processor(batch)}
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids.to(self._device),
                    attention_mask=mask.to(self._device),
                    generation_config=self._generation_config(n_new),
                    **extra,
                )
            for step_logits in out.logits:
                self._check_finite(step_logits)
            new = out.sequences[:, width:].cpu()
            if new.shape[1] != n_new:
                raise RuntimeError(f"generation returned {new.shape[1]} tokens instead of {n_new}")
            del out
            for row, i in enumerate(batch):
                results[i] = [int(t) for t in new[row].tolist()]

        self._run_batches(stage, [len(x) for x in items], max(map(len, items), default=0) + n_new, run)
        return [r for r in results if r is not None]

    # ---- internals

    def _shape(self) -> tuple[int, int]:
        """(hidden size, number of layers) from the model config (conservative defaults when absent)."""
        cfg = self._live().config
        cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg

        def first_int(names: tuple[str, ...], default: int) -> int:
            for name in names:
                v = getattr(cfg, name, None)
                if isinstance(v, int) and v > 0:
                    return v
            return default

        return first_int(("hidden_size", "n_embd", "d_model"), 4096), first_int(("num_hidden_layers", "n_layer"), 32)

    def _probe_cuda_batch_size(self, max_len: int) -> int:
        """Largest power-of-two batch ≤ the cap whose forward pass (with float32 scoring of the logits) at
        ``max_len`` tokens does not run out of CUDA memory."""
        bs = _floor_pow2(AUTO_BATCH_CAP)
        while True:
            try:
                logits = self._forward([[self._pad_id] * max_len] * bs)
                torch.log_softmax(logits[:, -min(max_len, 64) :].float(), dim=-1)
                del logits
                return bs
            except Exception as exc:
                if not _is_oom(exc) or bs == 1:
                    raise
                bs //= 2
            finally:
                self._release_memory()

    def _live(self) -> Any:
        if self._model is None:
            raise RuntimeError(f"model {self.name!r} is closed")
        return self._model

    def _tok(self) -> Any:
        if self._tokenizer is None:
            raise RuntimeError(f"model {self.name!r} is closed")
        return self._tokenizer

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-evaluation-harness encoding: trailing context whitespace moves to the continuation;
        an empty context conditions on the prefix token (BOS/EOS)."""
        if context == "":
            return [self._prefix_id], self.encode(continuation)
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        cont = whole[len(ctx) :]
        if not ctx:  # whitespace-only context
            ctx = [self._prefix_id]
        return ctx, cont

    def _encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """:meth:`_encode_pair` for many pairs: one batched tokenizer call over the distinct strings."""
        split: list[tuple[str, str]] = []
        for context, continuation in pairs:
            n_spaces = len(context) - len(context.rstrip())
            if context and n_spaces > 0:
                continuation = context[-n_spaces:] + continuation
                context = context[:-n_spaces]
            split.append((context, continuation))
        texts = sorted({t for ctx, cont in split for t in ((ctx, cont) if ctx == "" else (ctx, ctx + cont))})
        ids: dict[str, list[int]] = {}
        if texts:
            enc = self._tok()(texts, add_special_tokens=False)["input_ids"]
            ids = {t: [int(x) for x in e] for t, e in zip(texts, enc, strict=True)}
        out: list[tuple[list[int], list[int]]] = []
        for (context, continuation), (orig_ctx, _) in zip(split, pairs, strict=True):
            if orig_ctx == "":
                out.append(([self._prefix_id], list(ids[continuation])))
                continue
            ctx = ids[context]
            cont = ids[context + continuation][len(ctx) :]
            out.append((list(ctx) if ctx else [self._prefix_id], cont))
        return out

    def _forward(self, seqs: Sequence[Sequence[int]], keep: Sequence[int] | None = None) -> torch.Tensor:
        """Logits [batch, width, vocab] of right-padded sequences (model dtype, on the model's device).

        With ``keep`` (sorted positions), logits [batch, len(keep), vocab] of those positions only, when the
        model supports ``logits_to_keep`` (else all positions, then selected: the same values).
        """
        model = self._live()
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, : len(seq)] = 1
        kwargs: dict[str, Any] = {}
        if keep is not None and self._supports_logits_to_keep():
            kwargs["logits_to_keep"] = torch.tensor(list(keep), dtype=torch.long, device=self._device)
        with torch.inference_mode():
            out = model(input_ids=ids.to(self._device), attention_mask=mask.to(self._device), use_cache=False, **kwargs)
            logits: torch.Tensor = out.logits
            if keep is not None and not kwargs:
                logits = logits[:, torch.tensor(list(keep), dtype=torch.long, device=logits.device)]
        return logits

    def _supports_logits_to_keep(self) -> bool:
        if self._logits_to_keep is None:
            import inspect

            try:
                params = inspect.signature(self._live().forward).parameters
                self._logits_to_keep = "logits_to_keep" in params
            except (TypeError, ValueError):
                self._logits_to_keep = False
        return self._logits_to_keep

    def _score_many(
        self, logits: torch.Tensor, requests: Sequence[tuple[int, int, Sequence[int]]]
    ) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
        """Float32 log p of targets and whether each is the argmax, for many (row, start, targets) requests
        on logits [batch, width, vocab]: target j of a request is predicted at position start + j of its row.

        Positions shared by several requests (one context, several continuations) are normalised once; the
        log-softmax runs over the gathered positions in bounded chunks.
        """
        slot: dict[tuple[int, int], int] = {}
        rows: list[int] = []
        cols: list[int] = []
        sel: list[int] = []
        tgts: list[int] = []
        for row, start, targets in requests:
            for j, t in enumerate(targets):
                key = (row, start + j)
                k = slot.get(key)
                if k is None:
                    k = slot[key] = len(rows)
                    rows.append(row)
                    cols.append(start + j)
                sel.append(k)
                tgts.append(int(t))
        lp_all = np.zeros(0, dtype=np.float64)
        match_all = np.zeros(0, dtype=np.bool_)
        if rows:
            dev = logits.device
            vocab = int(logits.shape[-1])
            chunk = max(1, (1 << 27) // max(1, vocab))  # ≤ 512 MiB of float32 logits at a time
            lp_parts: list[torch.Tensor] = []
            arg_parts: list[torch.Tensor] = []
            with torch.inference_mode():
                row_t = torch.tensor(rows, dtype=torch.long, device=dev)
                col_t = torch.tensor(cols, dtype=torch.long, device=dev)
                sel_t = torch.tensor(sel, dtype=torch.long, device=dev)
                tgt_t = torch.tensor(tgts, dtype=torch.long, device=dev)
                for lo in range(0, len(rows), chunk):
                    x = logits[row_t[lo : lo + chunk], col_t[lo : lo + chunk]].float()
                    self._check_finite(x)
                    lp_parts.append(torch.log_softmax(x, dim=-1))
                    arg_parts.append(x.argmax(dim=-1))
                    del x
                logp = torch.cat(lp_parts) if len(lp_parts) > 1 else lp_parts[0]
                argmax = torch.cat(arg_parts) if len(arg_parts) > 1 else arg_parts[0]
                lp_all = logp[sel_t, tgt_t].cpu().double().numpy()
                match_all = (argmax[sel_t] == tgt_t).cpu().numpy().astype(np.bool_)
        out: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
        pos = 0
        for _, _, targets in requests:
            n = len(targets)
            out.append((lp_all[pos : pos + n].copy(), match_all[pos : pos + n].copy()))
            pos += n
        return out

    def _check_finite(self, x: torch.Tensor) -> None:
        if not bool(torch.isfinite(x).all()):
            hint = (
                "the weights themselves may hold NaN/Inf (not an fp16 overflow, so --dtype bfloat16 would not help)"
                if self._dtype_name == "float32"
                else "use --dtype bfloat16 or --dtype float32 (fp16 overflows easily)"
            )
            raise NumericalError(f"model '{self.name}' produced NaN/Inf logits in {self._dtype_name}; {hint}")

    def _reset_generation_config(self) -> None:
        """A clean generation config: pure greedy, no EOS stopping, no model-specific processors."""
        from transformers import GenerationConfig

        cls: Any = GenerationConfig
        self._model.generation_config = cls(
            pad_token_id=self._pad_id, bos_token_id=None, eos_token_id=None, do_sample=False, num_beams=1
        )

    def _generation_config(self, n_new: int) -> Any:
        from transformers import GenerationConfig

        cls: Any = GenerationConfig
        return cls(
            max_new_tokens=n_new,
            min_new_tokens=0,
            do_sample=False,
            num_beams=1,
            use_cache=True,
            pad_token_id=self._pad_id,
            eos_token_id=None,
            output_logits=True,
            return_dict_in_generate=True,
        )

    def _check_tokenizer(self, label: str) -> None:
        """The tokenizer must produce ids the model can embed."""
        try:
            n_tok = len(self._tokenizer)
            probe = self.encode("The quick brown fox.")
        except Exception as exc:
            raise ModelLoadError(f"{label}: the tokenizer is broken ({_one_line(exc)})") from None
        if n_tok < 2 or not probe:
            raise ModelLoadError(f"{label}: the tokenizer is empty or broken; save a working tokenizer with the model")
        if max(probe) >= self._vocab_size:
            raise ModelLoadError(
                f"{label}: the tokenizer ({n_tok} tokens) does not match the model's vocabulary "
                f"({self._vocab_size} rows); use the model's own tokenizer"
            )


def _row_generator(seed: int, index: int) -> torch.Generator:
    """A CPU generator for row ``index`` of a sampling call, seeded from (seed, index)."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(state[0]) << 32 | int(state[1]))
    return gen


class _GumbelSampler:
    """A logits processor turning greedy search into sampling: logits / T (top-k masked) + Gumbel noise
    drawn from one generator per row, so argmax = a sample from softmax(logits / T) (Gumbel-max trick)."""

    def __init__(self, generators: Sequence[torch.Generator], temperature: float, top_k: int | None) -> None:
        self._generators = list(generators)
        self._temperature = float(temperature)
        self._top_k = top_k

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        x = scores.float() / self._temperature
        if self._top_k is not None and self._top_k < x.shape[-1]:
            kth = torch.topk(x, self._top_k, dim=-1).values[:, -1:]
            x = x.masked_fill(x < kth, -torch.inf)
        width = x.shape[-1]
        uniform = torch.stack([torch.rand(width, generator=g, dtype=torch.float64) for g in self._generators])
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-300)))
        return x + gumbel.to(device=x.device, dtype=x.dtype)


def _count_params(model: Any) -> ParamCounts:
    """Total parameters (shared tensors once) and non-embedding parameters."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if p.data_ptr() in seen and p.numel() > 0:
            continue
        seen.add(p.data_ptr())
        total += p.numel()
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    n_emb = emb.numel()
    if out is not None and out.weight.data_ptr() != emb.data_ptr():
        n_emb += out.weight.numel()
    return ParamCounts(total=int(total), nonembedding=int(total - n_emb))
