"""Model families by name or path: a built-in family (the sourced table, :mod:`riskaudit.inputs.family_table`;
the demo zoo, :mod:`riskaudit.inputs.demo_family`) or a user TOML family (:mod:`riskaudit.inputs.family_toml`),
with checkpoints (revisions, :mod:`riskaudit.inputs.revisions`) as a second axis.

A family is a :class:`~riskaudit.inputs.family_spec.Family` of
:class:`~riskaudit.inputs.family_spec.ModelSpec` members. Every problem raises
:class:`~riskaudit.errors.FamilyError` with a one-line message.
"""

from __future__ import annotations

import os
from pathlib import Path

from riskaudit import resources
from riskaudit.errors import FamilyError
from riskaudit.inputs.demo_family import DEMO_FAMILY, demo_family
from riskaudit.inputs.family_spec import Family
from riskaudit.inputs.family_table import TABLE_FAMILIES, read_family_table, table_families
from riskaudit.inputs.family_toml import load_family_toml
from riskaudit.inputs.revisions import expand_pythia, normalise_revisions

__all__ = ["BUILTIN_FAMILY_NAMES", "builtin_families", "builtin_family_names", "load_family"]

BUILTIN_FAMILY_NAMES: tuple[str, ...] = (*TABLE_FAMILIES, DEMO_FAMILY)
_PYTHIA_FAMILIES = frozenset({"pythia", "pythia-deduped"})


def builtin_family_names() -> list[str]:
    """Names of all built-in families, "demo" included (whether or not it is built)."""
    extra = sorted({s.family for s in read_family_table()} - set(TABLE_FAMILIES))
    return [*TABLE_FAMILIES, *extra, DEMO_FAMILY]


def builtin_families() -> dict[str, Family]:
    """All built-in families by name; "demo" only when its manifest exists (see :func:`demo_family`)."""
    families = table_families()
    if (resources.demo_dir() / "manifest.json").is_file():
        families[DEMO_FAMILY] = demo_family()
    return families


def _is_family_path(name_or_path: str) -> bool:
    return (
        name_or_path.lower().endswith(".toml")
        or os.sep in name_or_path
        or "/" in name_or_path
        or Path(name_or_path).is_file()
    )


def load_family(name_or_path: str, revisions: list[str] | None = None) -> Family:
    """A built-in family by name, or a user family from a TOML file; ``revisions`` adds checkpoints."""
    wanted = normalise_revisions(revisions or [])
    names = builtin_family_names()
    name = name_or_path.strip()
    if name not in names and name.lower() in names:
        name = name.lower()
    if name == DEMO_FAMILY:
        return demo_family(wanted)
    if name in names:
        family = table_families()[name]
        if not wanted:
            return family
        if name in _PYTHIA_FAMILIES:
            return expand_pythia(family, wanted)
        raise FamilyError(
            f"family {name!r} has no checkpoint schedule in riskaudit: revisions work with "
            f"{', '.join(sorted(_PYTHIA_FAMILIES))}, {DEMO_FAMILY}, or a TOML family with tokens_per_step"
        )
    if _is_family_path(name_or_path):
        return load_family_toml(name_or_path, wanted)
    raise FamilyError(
        f"unknown family {name_or_path!r}; known families: {', '.join(names)} (or a path to a .toml file)"
    )
