"""Where a model runs: ``--dtype auto``, ``--device-map auto`` (accelerate) and ``--max-memory``.

``--device-map auto`` lets accelerate place a member that does not fit one device over several: the devices
named in ``max_memory`` (GPU indices, ``cpu``, ``mps``), or, without it, every visible GPU, then CPU RAM,
then disk (layers offloaded to disk are read back for each forward pass). ``--device`` is not used then.
The model computes on accelerate's main device (the first GPU in the map, else the CPU), where its inputs go.

``--dtype auto`` is resolved once, before loading: bfloat16 when the model computes on a CUDA device with
native bfloat16 (compute capability 8.0 or newer), float32 otherwise (CPU, and MPS, whose bfloat16 support
depends on the OS version). The result store keys units by the resolved dtype and the kind of device the
model computes on, never by the placement: a split model computes the same layers with the same kernels.

Importing this module does not import torch; torch is imported only to resolve ``auto``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from riskaudit.errors import RiskauditError
from riskaudit.models.base import DTYPE_CHOICES, LoadOptions, Placement

if TYPE_CHECKING:
    import torch

DEVICE_MAP_CHOICES = ("auto",)
MAX_MEMORY_DEVICES = ("cpu", "mps", "disk")  # besides GPU indices 0, 1, ...
_SIZE = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B|B)?$", re.IGNORECASE)


def parse_max_memory(text: str) -> dict[str, str]:
    """``0=20GiB,1=20GiB,cpu=64GiB`` as accelerate's ``max_memory`` (keys: GPU indices, cpu, mps, disk; sizes
    such as 500MB, 20GiB or bytes); :class:`RiskauditError` naming ``--max-memory`` on bad syntax."""
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, size = (s.strip() for s in part.partition("="))
        if not sep or not key or not size:
            raise RiskauditError(
                f"bad --max-memory {text!r}: expected DEVICE=SIZE pairs separated by commas, e.g. 0=20GiB,cpu=64GiB"
            )
        key = key.lower()
        if not (key.isdigit() or key in MAX_MEMORY_DEVICES):
            raise RiskauditError(
                f"bad --max-memory device {key!r}: expected a GPU index (0, 1, ...), {', '.join(MAX_MEMORY_DEVICES)}"
            )
        if not _SIZE.match(size):
            raise RiskauditError(f"bad --max-memory size {size!r} for {key}: expected e.g. 500MB, 20GiB or bytes")
        if key in out:
            raise RiskauditError(f"bad --max-memory {text!r}: device {key} given twice")
        out[str(int(key)) if key.isdigit() else key] = size.replace(" ", "")
    return out


def check_placement_options(dtype: str, device_map: str | None, max_memory: Mapping[str, str] | None) -> None:
    """:class:`RiskauditError` (naming the option) for an unknown ``--dtype`` or ``--device-map``, or
    ``--max-memory`` without ``--device-map auto``."""
    if dtype not in DTYPE_CHOICES:
        raise RiskauditError(f"unknown --dtype {dtype!r}: expected one of {', '.join(DTYPE_CHOICES)}")
    if device_map is not None and device_map not in DEVICE_MAP_CHOICES:
        raise RiskauditError(f"unknown --device-map {device_map!r}: the only value is 'auto'")
    if max_memory is not None and device_map is None:
        raise RiskauditError("--max-memory needs --device-map auto")


def accelerate_max_memory(max_memory: Mapping[str, str] | None) -> dict[int | str, str] | None:
    """``max_memory`` as accelerate takes it: GPU indices as integers."""
    if max_memory is None:
        return None
    return {int(k) if k.isdigit() else k: v for k, v in max_memory.items()}


def compute_device_type(load: LoadOptions) -> str:
    """The kind of device the model computes on ("cpu", "cuda", "mps"): numerics differ between kinds, not
    between devices of one kind or placements over them."""
    if load.device_map is None:
        return _device_type(load.device)
    import torch

    allowed = load.max_memory
    if torch.cuda.is_available() and (allowed is None or any(k.isdigit() for k in allowed)):
        return "cuda"
    if torch.backends.mps.is_available() and (allowed is None or "mps" in allowed):
        return "mps"
    return "cpu"


def _device_type(device: str) -> str:
    s = device.strip().lower()
    if s == "auto":
        import torch

        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    return s.split(":", 1)[0]


def resolve_dtype(load: LoadOptions) -> str:
    """The dtype the model is loaded in: ``auto`` is bfloat16 on a CUDA device with native bfloat16, else
    float32; any other value is returned as it is."""
    if load.dtype != "auto":
        return load.dtype
    if compute_device_type(load) != "cuda":
        return "float32"
    import torch

    index = _cuda_index(load)
    if index >= torch.cuda.device_count():  # not a visible GPU: loading says so
        return "float32"
    if torch.cuda.get_device_capability(index)[0] >= 8:  # Ampere and newer compute in bfloat16 natively
        return "bfloat16"
    return "float32"


def _cuda_index(load: LoadOptions) -> int:
    if load.device_map is not None:
        gpus = sorted(int(k) for k in (load.max_memory or {}) if k.isdigit())
        return gpus[0] if gpus else 0
    _, _, index = load.device.strip().lower().partition(":")
    return int(index) if index.isdigit() else 0


def main_device(device_map: Mapping[str, Any]) -> str:
    """accelerate's main device of a placement (``hf_device_map``): the first one that is not cpu or disk
    (GPU indices as cuda:N), else cpu. Offloaded layers compute there, and the model's inputs go there."""
    for d in device_map.values():
        if d not in ("cpu", "disk"):
            return f"cuda:{d}" if isinstance(d, int) else str(d)
    return "cpu"


def params_per_device(model: Any, device_map: Mapping[str, Any]) -> dict[str, int]:
    """Parameters on each device of a placement (GPU indices as "0", "1", ...; "cpu"; "disk"), each module's
    parameters under the longest ``hf_device_map`` entry that contains it."""
    out: dict[str, int] = {}
    for name, p in model.named_parameters():
        owner = max((k for k in device_map if k == "" or name == k or name.startswith(k + ".")), key=len, default=None)
        device = "cpu" if owner is None else str(device_map[owner])
        out[device] = out.get(device, 0) + int(p.numel())
    return dict(sorted(out.items()))


def placement_of(model: Any, dtype: str, device: torch.device | None) -> Placement:
    """A loaded model's placement: on ``device``, or (``None``) as accelerate placed it (``hf_device_map``)."""
    if device is not None:
        return Placement(dtype=dtype, device=str(device))
    device_map: Mapping[str, Any] = getattr(model, "hf_device_map", None) or {"": "cpu"}
    return Placement(dtype=dtype, device=main_device(device_map), device_map=params_per_device(model, device_map))


def recorded_placement(load: LoadOptions, loaded: Placement | None = None) -> dict[str, Any]:
    """A member's placement fields in the report: the resolved dtype and the kind of device it computes on —
    what its unit keys hold, so the same whether its units were computed or served from the result store —
    and, when it was loaded this run under ``device_map``, the parameters per device."""
    return {
        "dtype": loaded.dtype if loaded is not None else resolve_dtype(load),
        "device": compute_device_type(load),
        "device_map": None if loaded is None else loaded.device_map,
    }
