"""The model layer: one loaded-model abstraction (:class:`ModelHandle`) over a backend.

Owns loading (hub id, local path, revision; safetensors only unless asked), the tokenization convention
(BOS), batched and length-sorted scoring, greedy and seeded decoding, automatic batch sizes, out-of-memory
retries and device maps. Backends are registered by name (:mod:`.backends`); probes see only the protocol.
It may import only the foundation (``riskaudit.errors``, ``riskaudit.resources``). ``load_model`` imports
torch/transformers lazily, so importing this package stays cheap.
"""

from __future__ import annotations

from riskaudit.models.backends import backend_names, get_backend, load_with_backend, register_backend
from riskaudit.models.base import (
    ADD_BOS_CHOICES,
    DEFAULT_BACKEND,
    DTYPE_CHOICES,
    DTYPES,
    AddBos,
    BatchHalving,
    LoadedModel,
    LoadOptions,
    LoglikelihoodResult,
    ModelHandle,
    ParamCounts,
    Placement,
    TokenizationInfo,
    TokenStats,
)

__all__ = [
    "ADD_BOS_CHOICES",
    "DEFAULT_BACKEND",
    "DTYPES",
    "DTYPE_CHOICES",
    "AddBos",
    "BatchHalving",
    "LoadOptions",
    "LoadedModel",
    "LoglikelihoodResult",
    "ModelHandle",
    "ParamCounts",
    "Placement",
    "TokenStats",
    "TokenizationInfo",
    "backend_names",
    "get_backend",
    "load_model",
    "register_backend",
]


def load_model(source: str, revision: str | None, options: LoadOptions, name: str | None = None) -> LoadedModel:
    """Load a causal LM + tokenizer (hub id or local dir) with the backend ``options.backend`` names
    (``transformers``: :func:`riskaudit.models.loading.load_model`); an unknown backend is a one-line
    :class:`~riskaudit.errors.ModelLoadError` naming the registered ones."""
    return load_with_backend(source, revision, options, name)
