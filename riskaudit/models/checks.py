"""Security and integrity checks of a local model directory, before transformers reads it: safetensors only
(pickled weights can run code when loaded) unless allowed, headers consistent with the file sizes, a
tokenizer present."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from riskaudit.errors import ModelLoadError
from riskaudit.models.base import LoadOptions
from riskaudit.models.load_errors import one_line

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


def check_local_dir(path: Path, options: LoadOptions, label: str) -> None:
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
        return f"unreadable header: {one_line(exc)}"
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
