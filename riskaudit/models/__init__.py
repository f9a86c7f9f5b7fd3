"""The model layer: one loaded-model abstraction (:class:`ModelHandle`) over a backend.

Owns loading (hub id, local path, revision; safetensors only unless asked), the tokenization convention
(BOS), batched and length-sorted scoring, greedy and seeded decoding, automatic batch sizes, out-of-memory
retries and device maps. Backends are registered by name (:mod:`.backends`); probes see only the protocol.
It may import only the foundation (``riskaudit.errors``, ``riskaudit.resources``). ``load_model`` imports
torch/transformers lazily, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from riskaudit.models.base import (
    ADD_BOS_CHOICES,
    DTYPE_CHOICES,
    DTYPES,
    AddBos,
    BatchHalving,
    LoadOptions,
    LoglikelihoodResult,
    ModelHandle,
    ParamCounts,
    Placement,
    TokenizationInfo,
    TokenStats,
)

if TYPE_CHECKING:
    from riskaudit.models.hf import HFModel

__all__ = [
    "ADD_BOS_CHOICES",
    "DTYPES",
    "DTYPE_CHOICES",
    "AddBos",
    "BatchHalving",
    "LoadOptions",
    "LoglikelihoodResult",
    "ModelHandle",
    "ParamCounts",
    "Placement",
    "TokenStats",
    "TokenizationInfo",
    "load_model",
]


def load_model(source: str, revision: str | None, options: LoadOptions, name: str | None = None) -> HFModel:
    """Load a causal LM + tokenizer (hub id or local dir); see :func:`riskaudit.models.loading.load_model`."""
    from riskaudit.models.loading import load_model as _load

    return _load(source, revision, options, name)
