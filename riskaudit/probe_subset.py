"""Smaller scans: a subset of the probes (``scan --probes``) and the first N items of each (``scan --limit``).

A limited probe is a copy whose item list is cut, so its content hash (and with it every store key) differs
from the full probe's: a smoke run can never be served as, or stored as, a full one.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from riskaudit.errors import RiskauditError
from riskaudit.probes.base import Probe

__all__ = ["limit_probe", "select_probes"]

# run-config fields of the memorization suite that count items (documents, held-out documents, canaries per
# duplication count); any probe whose ``config`` has some of them is limited through them
_ITEM_COUNTS = ("n_documents", "n_heldout", "max_canaries_per_dup")

def select_probes(probes: Sequence[Probe], ids: Sequence[str]) -> list[Probe]:
    """The probes named in ``ids`` (scan order kept); a one-line error naming the unknown id and the known ones."""
    known = [p.id for p in probes]
    wanted = [i.strip() for i in ids if i.strip()]
    if not wanted:
        raise RiskauditError("--probes needs at least one probe id, e.g. --probes occupation_gender_pronoun")
    for i in wanted:
        if i not in known:
            raise RiskauditError(f"--probes: no probe {i!r} in this scan; probes: {', '.join(known)}")
    return [p for p in probes if p.id in wanted]


def _first_per_duplicates(canaries: Sequence[Any], n: int) -> tuple[Any, ...]:
    """The first ``n`` canaries of each duplication count (so every count stays represented)."""
    seen: dict[object, int] = {}
    kept = []
    for c in canaries:
        key = getattr(c, "duplicates", None)
        if seen.get(key, 0) < n:
            seen[key] = seen.get(key, 0) + 1
            kept.append(c)
    return tuple(kept)


def limit_probe(probe: Probe, n: int) -> Probe:
    """A copy of ``probe`` that scores only its first ``n`` items: the first ``n`` occupations of a bias probe;
    at most ``n`` documents, held-out documents and canaries per duplication count of the memorization suite.

    The copy's content hash is the original's with the limit folded in, so its store units are its own.
    """
    if n < 1:
        raise RiskauditError("--limit must be at least 1")
    limited: Any = copy.copy(probe)
    occupations = getattr(probe, "occupations", None)
    config = getattr(probe, "config", None)
    if isinstance(occupations, list):
        limited.occupations = occupations[:n]
    elif isinstance(config, BaseModel) and any(f in type(config).model_fields for f in _ITEM_COUNTS):
        fields = [f for f in _ITEM_COUNTS if f in type(config).model_fields]
        update = {f: n if getattr(config, f) is None else min(int(getattr(config, f)), n) for f in fields}
        limited.config = config.model_copy(update=update)
        data = getattr(probe, "data", None)
        if dataclasses.is_dataclass(data) and not isinstance(data, type) and hasattr(data, "canaries"):
            limited.data = dataclasses.replace(data, canaries=_first_per_duplicates(data.canaries, n))
    else:
        raise RiskauditError(f"--limit: probe {probe.id!r} has no item list riskaudit knows how to cut")
    full_hash = limited.content_hash()

    def content_hash() -> str:
        return hashlib.sha256(f"{full_hash}|limit={n}".encode()).hexdigest()

    limited.content_hash = content_hash
    result: Probe = limited
    return result
