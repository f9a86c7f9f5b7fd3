"""The paired bootstrap replicates of a scan, persisted beside the report so that re-analysis is exact.

The scaling analysis resamples items with one index matrix per (seed, item count), so row b of every member
uses the same items (paired). A report alone only holds each metric's CI; re-analysing it from the CIs would
draw independent parametric resamples and give other CIs and verdicts. So the scan writes the replicates
to ``<report>.replicates.npz`` (referenced with its sha256 from the report) and analyses exactly what it
writes: ``riskaudit analyze REPORT.json`` then reproduces the stored analysis bit for bit.

Format: a NumPy ``.npz`` (read with ``allow_pickle=False``: no code runs on load) holding ``index``, a JSON
string ``[[member, probe, metric, length], ...]``, and ``values``, a float32 matrix with one row per index
entry (NaN for an undefined replicate, padded with NaN past ``length``). float32 keeps the file small; the
scan analyses the float32 values, so nothing differs between the scan and a re-analysis.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Mapping
from typing import cast

import numpy as np
import numpy.typing as npt

from riskaudit.errors import RiskauditError

__all__ = [
    "ProbeReplicates",
    "ScanReplicates",
    "count_series",
    "decode_replicates",
    "encode_replicates",
    "replicates_path_for",
]

ProbeReplicates = dict[str, dict[str, list[float | None]]]  # probe id → metric → paired bootstrap replicates
ScanReplicates = dict[str, ProbeReplicates]  # member name → its probes' replicates


def replicates_path_for(report_path: str) -> str:
    """``demo.json`` → ``demo.replicates.npz`` (a file name beside the report)."""
    stem = report_path[:-5] if report_path.endswith(".json") else report_path
    return stem + ".replicates.npz"


def encode_replicates(reps: Mapping[str, Mapping[str, Mapping[str, list[float | None]]]]) -> bytes:
    """The ``.npz`` bytes of every member's replicates (deterministic: sorted keys, fixed zip timestamps)."""
    index: list[list[str | int]] = []
    rows: list[list[float | None]] = []
    for member in sorted(reps):
        for probe in sorted(reps[member]):
            for metric in sorted(reps[member][probe]):
                values = reps[member][probe][metric]
                index.append([member, probe, metric, len(values)])
                rows.append(values)
    width = max((len(r) for r in rows), default=0)
    mat = np.full((len(rows), width), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        mat[i, : len(r)] = [math.nan if v is None else v for v in r]
    buf = io.BytesIO()
    # np.savez_compressed stamps the current time into the zip: write the members ourselves, deterministically
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in (("index", np.array(json.dumps(index, separators=(",", ":")))), ("values", mat)):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            payload = io.BytesIO()
            np.save(payload, arr, allow_pickle=False)
            zf.writestr(info, payload.getvalue())
    return buf.getvalue()


def _load(data: bytes, label: str, with_values: bool) -> tuple[list[list[str | int]], npt.NDArray[np.float64] | None]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:  # members are read only when accessed
            index = json.loads(str(npz["index"]))
            mat = np.asarray(npz["values"], dtype=np.float64) if with_values else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise RiskauditError(f"{label}: not a riskaudit replicates file ({exc})") from None
    if not isinstance(index, list):
        raise RiskauditError(f"{label}: not a riskaudit replicates file (no index)")
    return index, mat


def count_series(data: bytes, label: str = "replicates") -> int:
    """How many (member, probe, metric) series the file holds, read from its index alone."""
    return len(_load(data, label, with_values=False)[0])


def decode_replicates(data: bytes, label: str = "replicates") -> ScanReplicates:
    """The replicates written by :func:`encode_replicates` (RiskauditError, one line, when unreadable)."""
    index, mat = _load(data, label, with_values=True)
    assert mat is not None
    if len(index) != mat.shape[0]:
        raise RiskauditError(f"{label}: index and values disagree")
    out: ScanReplicates = {}
    for (member, probe, metric, length), row in zip(index, mat, strict=True):
        vals = cast(list[float], row[: int(length)].tolist())
        out.setdefault(str(member), {}).setdefault(str(probe), {})[str(metric)] = [
            None if math.isnan(v) else v for v in vals
        ]
    return out
