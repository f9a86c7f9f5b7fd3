"""The store's code fingerprint covers every ``.py`` file of the riskaudit package, not only the run layer's: a
scoring fix in probes/ or analysis/ must make the next scan recompute (docs/store.md, "The code fingerprint")."""

from __future__ import annotations

import hashlib
from pathlib import Path

import riskaudit
from riskaudit.run.unit_key import RESULT_FORMAT, code_fingerprint

PACKAGE = Path(riskaudit.__file__).resolve().parent


def test_code_fingerprint_hashes_every_module_of_the_package() -> None:
    h = hashlib.sha256(f"riskaudit {riskaudit.__version__} format {RESULT_FORMAT}\n".encode())
    files = [f for f in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in f.relative_to(PACKAGE).as_posix()]
    assert {f.relative_to(PACKAGE).parts[0] for f in files} >= {"probes", "analysis", "models", "run", "cli"}
    for f in files:
        data = f.read_bytes()
        h.update(f"{f.relative_to(PACKAGE).as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    assert code_fingerprint() == h.hexdigest()
