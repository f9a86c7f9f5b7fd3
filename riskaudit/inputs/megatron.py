"""Read the first training sequences of a GPT-NeoX / Megatron indexed data set (Pythia's training data).

EleutherAI publishes Pythia's pre-tokenized, pre-shuffled training data (EleutherAI/pile-standard-pythia-
preshuffled and EleutherAI/pile-deduped-pythia-preshuffled; github.com/EleutherAI/pythia, "Exploring the
dataset") as one Megatron index ``document.idx`` and the token file ``document.bin`` split into byte shards
``document-00000-of-00020.bin`` … ``document-00020-of-00020.bin`` (their ``utils/unshard_memmap.py`` just
concatenates them). Item i of the index is the i-th training sequence (2049 tokens); step s trains on items
s·1024 … s·1024 + 1023 (``utils/batch_viewer.py``).

The index layout (Megatron-LM's ``MMapIndexedDataset``): the 9-byte magic ``MMIDIDX\\x00\\x00``, version
(uint64 = 1), dtype code (uint8), item count N (uint64), document count (uint64), then N int32 sizes (tokens
per item), N int64 pointers (byte offsets into the token file) and the document index. Only the header, the
first n sizes and pointers and the bytes of the first n items are read, so the first sequences of a
300B-token data set come from a few ranged reads — local files, or the hub through ``HfFileSystem``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from riskaudit.errors import RiskauditError

__all__ = ["MAGIC", "MegatronError", "MegatronSource", "read_first_sequences", "write_indexed"]

MAGIC = b"MMIDIDX\x00\x00"
_HEADER = len(MAGIC) + 8 + 1 + 8 + 8
DTYPES: dict[int, type[np.generic]] = {
    1: np.uint8,
    2: np.int8,
    3: np.int16,
    4: np.int32,
    5: np.int64,
    6: np.float32,
    7: np.float64,
    8: np.uint16,
}
_SHARD_RE = re.compile(r"^(?P<stem>.+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.bin$")


class MegatronError(RiskauditError):
    """An indexed data set that cannot be read (one line)."""


@dataclass(frozen=True)
class MegatronSource:
    """Where an indexed data set's files are: the index and the token file's shards in order (one when
    unsharded), opened through ``opener`` (a local ``open`` or a hub file system's)."""

    index: str
    shards: tuple[str, ...]
    opener: Callable[[str], IO[bytes]]
    size_of: Callable[[str], int]


def _read(f: IO[bytes], offset: int, n: int, what: str) -> bytes:
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        raise MegatronError(f"{what} is truncated (wanted {n} bytes at offset {offset})")
    return data


def read_first_sequences(src: MegatronSource, n: int) -> tuple[list[list[int]], int]:
    """(the first ``n`` items as token-id lists, the number of items in the data set)."""
    with src.opener(src.index) as f:
        head = _read(f, 0, _HEADER, src.index)
        if head[: len(MAGIC)] != MAGIC:
            raise MegatronError(f"{src.index} is not a Megatron index (bad magic); expected a GPT-NeoX document.idx")
        version, code, count, _docs = struct.unpack("<QBQQ", head[len(MAGIC) :])
        if version != 1 or code not in DTYPES:
            raise MegatronError(f"{src.index}: unsupported index version {version} or dtype code {code}")
        n = min(n, count)
        sizes = np.frombuffer(_read(f, _HEADER, 4 * n, src.index), dtype="<i4")
        pointers = np.frombuffer(_read(f, _HEADER + 4 * count, 8 * n, src.index), dtype="<i8")
    dtype = np.dtype(DTYPES[code]).newbyteorder("<")
    bounds: list[tuple[str, int, int]] = []  # shard, first byte, end byte in the concatenated token file
    start = 0
    for shard in src.shards:
        size = src.size_of(shard)
        bounds.append((shard, start, start + size))
        start += size
    out: list[list[int]] = []
    handles: dict[str, IO[bytes]] = {}
    try:
        for size, ptr in zip(sizes.tolist(), pointers.tolist(), strict=True):
            want = int(size) * dtype.itemsize
            chunks: list[bytes] = []
            pos = int(ptr)
            while want > 0:
                hit = next(((s, a, b) for s, a, b in bounds if a <= pos < b), None)
                if hit is None:
                    raise MegatronError(f"item at byte {pos} lies beyond the token file(s) ({start} bytes)")
                shard, a, b = hit
                if shard not in handles:
                    handles[shard] = src.opener(shard)
                take = min(want, b - pos)
                chunks.append(_read(handles[shard], pos - a, take, shard))
                pos += take
                want -= take
            out.append(np.frombuffer(b"".join(chunks), dtype=dtype).astype(np.int64).tolist())
    finally:
        for h in handles.values():
            h.close()
    return out, int(count)


def shard_order(names: list[str], stem: str = "document") -> list[str]:
    """The token file's shards in order (``stem-00000-of-000NN.bin`` …), or ``[stem.bin]`` when unsharded."""
    whole = [x for x in names if x.rsplit("/", 1)[-1] == f"{stem}.bin"]
    if whole:
        return whole
    shards = []
    for x in names:
        m = _SHARD_RE.match(x.rsplit("/", 1)[-1])
        if m and m.group("stem") == stem:
            shards.append((int(m.group("i")), x))
    return [x for _, x in sorted(shards)]


def write_indexed(stem: Any, sequences: list[list[int]], dtype: type[np.generic] = np.uint16, shards: int = 1) -> None:
    """Write ``sequences`` as ``<stem>.idx`` and the token file (``<stem>.bin``, or ``shards`` byte shards
    named as Pythia's) — the layout :func:`read_first_sequences` reads (used by tests)."""
    code = next(k for k, v in DTYPES.items() if v is dtype)
    arrays = [np.asarray(s, dtype=dtype) for s in sequences]
    sizes = np.array([a.size for a in arrays], dtype="<i4")
    pointers = np.concatenate([[0], np.cumsum([a.nbytes for a in arrays])[:-1]]).astype("<i8")
    with open(f"{stem}.idx", "wb") as f:
        f.write(MAGIC + struct.pack("<QBQQ", 1, code, len(arrays), len(arrays) + 1))
        f.write(sizes.tobytes() + pointers.tobytes() + np.arange(len(arrays) + 1, dtype="<i8").tobytes())
    blob = b"".join(a.tobytes() for a in arrays)
    if shards == 1:
        with open(f"{stem}.bin", "wb") as f:
            f.write(blob)
        return
    step = -(-len(blob) // shards)
    for i in range(shards):
        with open(f"{stem}-{i:05d}-of-{shards - 1:05d}.bin", "wb") as f:
            f.write(blob[i * step : (i + 1) * step])
