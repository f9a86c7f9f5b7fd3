"""Result-store keys: what one (member × probe) unit's numbers depend on, as hashable, comparable values.

:class:`UnitKey` names the model, its weights, the dtype, the probe and the run options
(:func:`unit_options_hash`, which includes :func:`code_fingerprint`); :class:`ModelKey` names a loaded model
for the parameter counts kept beside the units (:class:`ModelInfo`). See :mod:`riskaudit.run.store` and
``docs/store.md``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from riskaudit import __version__
from riskaudit.models.base import LoadOptions
from riskaudit.models.devices import compute_device_type

__all__ = [
    "RESULT_FORMAT",
    "ModelInfo",
    "ModelKey",
    "UnitKey",
    "code_fingerprint",
    "library_versions",
    "unit_options_hash",
]

# Bump when the payload format or the meaning of a stored result changes without a code change that
# code_fingerprint() would see (it already covers every .py file of the package).
RESULT_FORMAT = 1
# Libraries whose code computes a unit's numbers. accelerate places a model split by --device-map; it is keyed
# for every unit (installed or not) so that a split scan and a single-device scan keep sharing their units.
_LIBRARIES = ("torch", "transformers", "tokenizers", "accelerate")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class ModelKey(BaseModel):
    """What identifies a loaded model, independent of dtype and probes (for :class:`ModelInfo`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(min_length=1)
    revision: str | None = None
    weights_hash: str = Field(min_length=1)

    def digest(self) -> str:
        """sha256 hex of the canonical JSON of every field."""
        return hashlib.sha256(("riskaudit.model/1\n" + _canonical(self.model_dump())).encode()).hexdigest()


class UnitKey(BaseModel):
    """Everything one (member × probe) result depends on; two keys are the same unit iff all fields match."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(min_length=1)  # the member's source: hub id or local directory
    revision: str | None = None
    weights_hash: str = Field(min_length=1)  # weights_fingerprint(source, revision)
    dtype: str = Field(min_length=1)
    probe_id: str = Field(min_length=1)
    probe_hash: str = Field(min_length=1)  # probe.content_hash()
    unit_options_hash: str = Field(min_length=1)  # unit_options_hash(load, seed)

    def digest(self) -> str:
        """sha256 hex of the canonical JSON of every field (the unit's primary key)."""
        return hashlib.sha256(("riskaudit.unit/1\n" + _canonical(self.model_dump())).encode()).hexdigest()

    @property
    def model(self) -> ModelKey:
        return ModelKey(model_id=self.model_id, revision=self.revision, weights_hash=self.weights_hash)


class ModelInfo(BaseModel):
    """Facts about a model counted at load time, so a fully cached member need not be loaded at all."""

    params_total: int
    params_nonembedding: int


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over the names and contents of riskaudit's own ``.py`` files: results computed by different
    code are different results (a scoring fix invalidates the store without anyone bumping a version)."""
    root = Path(__file__).resolve().parents[1]  # the riskaudit package, every layer (this file is in run/)
    h = hashlib.sha256(f"riskaudit {__version__} format {RESULT_FORMAT}\n".encode())
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).as_posix()
        if "__pycache__" in rel:
            continue
        data = f.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


@cache
def _package_version(name: str) -> str:
    """The installed version of the distribution ``name`` ("" when it is not installed)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def library_versions() -> dict[str, str]:
    """The installed versions of the libraries that compute a unit: torch, transformers, tokenizers and
    accelerate (which places a model split by a device map; "" when not installed)."""
    return {name: _package_version(name) for name in _LIBRARIES}


def unit_options_hash(load: LoadOptions, seed: int, extra: Mapping[str, Any] | None = None) -> str:
    """Hash of the run options a unit's numbers depend on, other than the model, dtype and probe.

    Included: the seed, the kind of device the model computes on, ``max_length``, ``trust_remote_code``,
    :func:`code_fingerprint` and :func:`library_versions` (an upgraded torch, transformers, tokenizers or
    accelerate recomputes), plus ``extra`` (JSON-serializable), and the model backend when it is not the default
    ``transformers``. Excluded: the batch size (every ModelHandle
    method is documented as independent of batching), the device index, ``allow_pickle`` (which only permits a
    load) and ``device_map`` / ``max_memory``: a model split by accelerate computes the same layers with the
    same kernels as on one device of that kind (tested: equal log-likelihoods), so a split scan and a
    single-device scan share their units.
    """
    payload = {
        "format": RESULT_FORMAT,
        "code": code_fingerprint(),
        "seed": seed,
        "device": compute_device_type(load),
        "max_length": load.max_length,
        "trust_remote_code": load.trust_remote_code,
        "libraries": library_versions(),
        "extra": dict(extra or {}),
    }
    if load.backend != "transformers":  # another backend computes other numbers; the default keeps its keys
        payload["backend"] = load.backend
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()
