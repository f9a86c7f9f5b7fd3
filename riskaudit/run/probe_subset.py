"""Smaller scans: a subset of the probes (``scan --probes``) and the first N items of each (``scan --limit``).

A limited probe is a copy whose item list is cut, so its content hash (and with it every store key) differs
from the full probe's: a smoke run can never be served as, or stored as, a full one.
"""

from __future__ import annotations

from collections.abc import Sequence

from riskaudit.errors import RiskauditError
from riskaudit.probes.base import Probe

__all__ = ["limit_probe", "select_probes"]

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


def limit_probe(probe: Probe, n: int) -> Probe:
    """``probe`` scoring only its first ``n`` items (:meth:`~riskaudit.probes.base.Probe.limited`): the first
    ``n`` occupations of a bias probe; at most ``n`` documents, held-out documents and canaries per duplication
    count of the memorization suite. Its content hash folds the limit in, so its store units are its own."""
    if n < 1:
        raise RiskauditError("--limit must be at least 1")
    return probe.limited(n)
