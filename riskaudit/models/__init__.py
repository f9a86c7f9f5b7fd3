"""The model layer: one loaded-model abstraction over transformers.

``load_model`` imports torch/transformers lazily, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from riskaudit.models.base import (
    DTYPES,
    BatchHalving,
    LoadOptions,
    LoglikelihoodResult,
    ModelHandle,
    ParamCounts,
    TokenStats,
)

if TYPE_CHECKING:
    from riskaudit.models.hf import HFModel

__all__ = [
    "DTYPES",
    "BatchHalving",
    "LoadOptions",
    "LoglikelihoodResult",
    "ModelHandle",
    "ParamCounts",
    "TokenStats",
    "load_model",
]


def load_model(source: str, revision: str | None, options: LoadOptions, name: str | None = None) -> HFModel:
    """Load a causal LM + tokenizer (hub id or local dir); see :func:`riskaudit.models.hf.load_model`."""
    from riskaudit.models.hf import load_model as _load

    return _load(source, revision, options, name)
