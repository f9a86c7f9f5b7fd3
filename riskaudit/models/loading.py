"""Loading a causal LM and its tokenizer from a hub id or a local directory.

Safe by default (safetensors only, no repository code; see :mod:`riskaudit.models.checks`); the hub is tried
only when the model is not in the local cache; every failure is one :class:`~riskaudit.errors.ModelLoadError`
line with a fix (see :mod:`riskaudit.models.load_errors`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from riskaudit.errors import ModelLoadError, RiskauditError
from riskaudit.models.base import DTYPE_CHOICES, LoadOptions
from riskaudit.models.checks import check_local_dir
from riskaudit.models.devices import (
    accelerate_max_memory,
    check_placement_options,
    parse_max_memory,
    placement_of,
    resolve_dtype,
)
from riskaudit.models.hf import HFModel
from riskaudit.models.hub import env_offline, hub_reachable
from riskaudit.models.load_errors import StageError, explain, is_not_cached, one_line
from riskaudit.models.oom import is_oom

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def load_model(source: str, revision: str | None, options: LoadOptions, name: str | None = None) -> HFModel:
    """Load a causal LM and its tokenizer from a hub id or a local directory.

    ``revision`` (branch, tag, commit) applies to hub ids; a local directory is loaded as it is.
    ``dtype`` ``auto`` is resolved here (the handle's :attr:`~HFModel.placement` holds the result); with
    ``device_map`` ``auto`` accelerate places the model (see :mod:`riskaudit.models.devices`) and layers
    offloaded to disk live in a temporary directory the handle removes when it is closed.
    Raises :class:`ModelLoadError` with a one-line reason and fix on any failure.
    """
    source = str(source)
    path = Path(source).expanduser()
    local = path.exists() or _looks_like_path(source)
    label = (
        f"cannot load model '{source}'" if local else f"cannot load model '{source}' (revision {revision or 'main'})"
    )
    _check_options(options, label)
    device = None if options.device_map else _resolve_device(options.device, label)
    if options.device_map:
        _check_gpus(options.max_memory or {}, label)
    options = options.model_copy(update={"dtype": resolve_dtype(options)})
    display = name or (source if local or not revision else f"{source}@{revision}")

    offload = tempfile.TemporaryDirectory(prefix="riskaudit-offload-") if options.device_map else None
    try:
        placing = _placement_kwargs(options, None if offload is None else offload.name)
        if local:
            check_local_dir(path, options, label)
            with _quiet_progress():
                model, tokenizer = _load_classified(
                    str(path), None, options, label, placing, local_only=True, is_local=True
                )
        else:
            model, tokenizer = _load_hub(source, revision, options, label, placing)
        if device is not None:
            try:
                model.to(device)
            except (RuntimeError, ValueError, AssertionError) as exc:
                fix = "; to split it over GPUs, CPU RAM and disk use --device-map auto" if is_oom(exc) else ""
                raise ModelLoadError(f"{label}: cannot move it to device {device}: {one_line(exc)}{fix}") from None
        model.eval()
        placement = placement_of(model, options.dtype, device)
        handle = HFModel(model, tokenizer, name=display, options=options, placement=placement, offload=offload)
    except BaseException:
        if offload is not None:
            offload.cleanup()
        raise
    try:
        handle.check_tokenizer(label)
    except BaseException:
        handle.close()
        raise
    return handle


def _check_options(options: LoadOptions, label: str) -> None:
    if options.dtype not in DTYPE_CHOICES:
        raise ModelLoadError(f"{label}: unknown dtype {options.dtype!r}; use one of {', '.join(DTYPE_CHOICES)}")
    if options.batch_size is not None and options.batch_size < 0:
        raise ModelLoadError(f"{label}: batch size must be at least 1, or 0 for automatic (got {options.batch_size})")
    if options.max_length is not None and options.max_length < 2:
        raise ModelLoadError(f"{label}: max length must be at least 2 (got {options.max_length})")
    try:
        check_placement_options(options.dtype, options.device_map, options.max_memory)
        if options.max_memory is not None:  # the CLI's syntax check, for options built in code
            parse_max_memory(",".join(f"{k}={v}" for k, v in options.max_memory.items()))
    except RiskauditError as exc:
        raise ModelLoadError(f"{label}: {exc}") from None


def _check_gpus(max_memory: dict[str, str], label: str) -> None:
    """Every GPU index of ``max_memory`` is a visible CUDA device."""
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for key in max_memory:
        if key.isdigit() and int(key) >= visible:
            raise ModelLoadError(
                f"{label}: --max-memory names GPU {key}, but {visible} CUDA device(s) are visible; "
                "use cpu=SIZE (and disk offload) or the visible GPU indices"
            )


def _placement_kwargs(options: LoadOptions, offload_dir: str | None) -> dict[str, Any]:
    """``from_pretrained`` arguments of the placement: none for one device (moved there after loading)."""
    if options.device_map is None:
        return {}
    return {
        "device_map": options.device_map,
        "max_memory": accelerate_max_memory(options.max_memory),
        "offload_folder": offload_dir,
    }


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


def _load_hub(
    source: str, revision: str | None, options: LoadOptions, label: str, placing: dict[str, Any]
) -> tuple[Any, Any]:
    """Cache first (fast, no network); then the network unless offline mode is set."""
    try:
        with _quiet_progress():
            return _load_parts(source, revision, options, placing, local_only=True)
    except StageError as err:
        if not is_not_cached(err.cause):
            raise ModelLoadError(f"{label}: {explain(err, options, revision, is_local=False)}") from None
    if env_offline():
        raise ModelLoadError(
            f"{label}: it is not in the local HF cache and HF_HUB_OFFLINE is set (no network access to the "
            "Hugging Face Hub); provide it with hub access, a pre-filled HF cache (HF_HOME), "
            "or a local path in a family TOML"
        )
    if not hub_reachable():
        raise ModelLoadError(
            f"{label}: no network access to the Hugging Face Hub and it is not in the local HF cache; "
            "provide it with hub access, a pre-filled HF cache (HF_HOME), or a local path in a family TOML"
        )
    with _env_default("DISABLE_SAFETENSORS_CONVERSION", "1"):  # never ask the hub to convert .bin files
        return _load_classified(source, revision, options, label, placing, local_only=False, is_local=False)


def _load_classified(
    source: str,
    revision: str | None,
    options: LoadOptions,
    label: str,
    placing: dict[str, Any],
    *,
    local_only: bool,
    is_local: bool,
) -> tuple[Any, Any]:
    try:
        return _load_parts(source, revision, options, placing, local_only=local_only)
    except StageError as err:
        raise ModelLoadError(f"{label}: {explain(err, options, revision, is_local=is_local)}") from None


def _load_parts(
    source: str, revision: str | None, options: LoadOptions, placing: dict[str, Any], *, local_only: bool
) -> tuple[Any, Any]:
    """Load config, tokenizer and weights; any failure is wrapped in a :class:`StageError`."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    common: dict[str, Any] = {
        "revision": revision,
        "trust_remote_code": options.trust_remote_code,
        "local_files_only": local_only,
    }
    try:
        config = AutoConfig.from_pretrained(source, **common)
    except Exception as exc:
        raise StageError("config", exc) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **common)
    except Exception as exc:
        raise StageError("tokenizer", exc) from exc
    try:
        with _quiet_logger("accelerate.big_modeling") if placing else contextlib.nullcontext():
            loaded: Any = AutoModelForCausalLM.from_pretrained(
                source,
                config=config,
                dtype=TORCH_DTYPES[options.dtype],
                use_safetensors=None if options.allow_pickle else True,
                output_loading_info=True,
                **placing,
                **common,
            )
    except Exception as exc:
        raise StageError("model", exc) from exc
    model, info = loaded
    missing = list(info.get("missing_keys") or []) if isinstance(info, dict) else []
    if missing:
        shown = ", ".join(sorted(missing)[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise StageError("weights", ValueError(f"weights missing from the checkpoint: {shown}{more}"))
    return model, tokenizer


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
def _quiet_logger(name: str) -> Iterator[None]:
    """Silence a library's warnings while loading (accelerate's notice that layers were offloaded: the report
    records the placement, and core code never prints)."""
    log = logging.getLogger(name)
    was = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(was)


@contextlib.contextmanager
def _env_default(key: str, value: str) -> Iterator[None]:
    had = key in os.environ
    os.environ.setdefault(key, value)
    try:
        yield
    finally:
        if not had:
            os.environ.pop(key, None)
