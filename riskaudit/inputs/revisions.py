"""Checkpoints as a second axis of a family: revision names, Pythia's published checkpoint schedule, and
the expansion of each member into one spec per checkpoint.

Revisions (``load_family(name, revisions=[...])``) expand each member into one spec per checkpoint,
named like "70m@step1000", sorted by step; "main" (the final weights) keeps the member's own name, so it
is the same member, with the same store units, as without ``--revisions``:

* pythia / pythia-deduped: any published checkpoint (step0, 1, 2, 4, ..., 512, 1000..143000 every
  1000, or "main" = step143000); tokens seen = step × 2,097,152 (1024 sequences × 2048 tokens per
  step; Biderman et al. 2023).
* demo: the manifest's checkpoint revisions (plus "main" = final); they apply to the member(s) that
  have checkpoints, the other members stay at their final weights (:mod:`riskaudit.inputs.demo_family`).
* a TOML family: needs the family-level ``tokens_per_step``; "main" keeps each member as declared
  (its own ``revision`` and ``tokens``); members with a local source cannot take revisions.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from riskaudit.errors import FamilyError
from riskaudit.inputs.family_spec import Family

__all__ = [
    "PYTHIA_TOKENS_PER_STEP",
    "expand_pythia",
    "expand_toml",
    "normalise_revisions",
    "parse_step",
    "pythia_checkpoint_steps",
    "revision_sort_key",
]

PYTHIA_TOKENS_PER_STEP = 1024 * 2048  # 2,097,152 tokens per optimizer step (Biderman et al. 2023)
PYTHIA_FINAL_STEP = 143_000



def pythia_checkpoint_steps() -> tuple[int, ...]:
    """Pythia's 154 published checkpoint steps: 0, 1, 2, 4, ..., 512, then 1000..143000 every 1000."""
    return (0, *(2**i for i in range(10)), *range(1000, PYTHIA_FINAL_STEP + 1, 1000))


_STEP_RE = re.compile(r"^step(\d+)$")


def parse_step(revision: str) -> int | None:
    match = _STEP_RE.match(revision.strip())
    return int(match.group(1)) if match else None


def normalise_revisions(revisions: Sequence[str]) -> list[str]:
    """Strip, drop empties and duplicates (first occurrence wins)."""
    seen: list[str] = []
    for rev in revisions:
        rev = rev.strip()
        if rev and rev not in seen:
            seen.append(rev)
    return seen


def expand_pythia(family: Family, revisions: Sequence[str]) -> Family:
    valid = set(pythia_checkpoint_steps())
    steps: dict[int, str] = {}
    for rev in revisions:
        step = PYTHIA_FINAL_STEP if rev == "main" else parse_step(rev)
        if step is None or step not in valid:
            raise FamilyError(
                f"{family.name} has no checkpoint {rev!r}: published checkpoints are step0, step1, step2, "
                f"step4, ..., step512 and step1000..step{PYTHIA_FINAL_STEP} every 1000 (or main)"
            )
        steps.setdefault(step, rev)
    members = [
        member.model_copy(
            update={
                # main is the member itself: the same name and revision as without --revisions, so the same
                # weights are the same store units and `diff` sees the same member
                "name": member.name if label == "main" else f"{member.name}@{label}",
                "revision": None if label == "main" else label,
                "step": step,
                "train_tokens": float(step * PYTHIA_TOKENS_PER_STEP),
            }
        )
        for member in family.members
        for step, label in sorted(steps.items())
    ]
    return family.model_copy(update={"members": members})


def revision_sort_key(rev: str) -> tuple[int, str]:
    step = parse_step(rev)
    return (step if step is not None else sys.maxsize, rev)


def expand_toml(family: Family, revisions: Sequence[str], tokens_per_step: int, label: str) -> Family:
    steps: list[tuple[int | None, str]] = []
    for rev in revisions:
        step = None if rev == "main" else parse_step(rev)
        if rev != "main" and step is None:
            raise FamilyError(f"{label}: revision {rev!r}: expected 'stepN' or 'main'")
        steps.append((step, rev))
    members = []
    for member in family.members:
        expanded = []
        for step, rev in steps:
            if step is None:  # main: the member as declared (its own name and revision, if any)
                expanded.append(member)
            else:
                expanded.append(
                    member.model_copy(
                        update={
                            "name": f"{member.name}@{rev}",
                            "revision": rev,
                            "step": step,
                            "train_tokens": float(step * tokens_per_step),
                        }
                    )
                )
        members.extend(sorted(expanded, key=lambda s: s.train_tokens or 0.0))
    return family.model_copy(update={"members": members})
