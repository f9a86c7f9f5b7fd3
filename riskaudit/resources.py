"""Locate data shipped with the package (works from a source checkout, an editable and a wheel install)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

CACHE_DIR_ENV = "RISKAUDIT_CACHE_DIR"  # overrides the platform cache directory (the CLI's --cache-dir wins)


def default_cache_dir() -> Path:
    """``$RISKAUDIT_CACHE_DIR`` if set, else the platform's user cache dir for riskaudit (the result store's
    directory, and the canonical benchmarks' files rebuilt from the hub under ``benchmarks/``)."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("riskaudit"))


def package_data_dir() -> Path:
    """riskaudit/data: facts copied from shared/data (families, occupations) with their sources."""
    return Path(str(resources.files("riskaudit") / "data"))


def probe_data_dir() -> Path:
    """riskaudit/probe_data: the built-in probe definitions (YAML data, no code). In the repository it is a link
    to the top-level ``probes/``; a wheel holds the files themselves."""
    return Path(str(resources.files("riskaudit") / "probe_data"))


def demo_dir() -> Path:
    """The shipped demo family: tokenizer, member weights, ground truth."""
    return Path(str(resources.files("riskaudit.zoo") / "demo"))


PACKAGE_SCHEME = "riskaudit:"  # a path inside the installed package, as reports record it


def portable_source(source: str) -> str:
    """A member's source as a report records it: a path inside the riskaudit package (the demo family's
    weights) as ``riskaudit:zoo/demo/members/<name>``, so that a report carries no absolute path of the machine
    that made it; anything else (a hub id, a path the user's family TOML gave) unchanged."""
    path = Path(source)
    if not path.is_absolute():
        return source
    root = Path(str(resources.files("riskaudit"))).resolve()
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return source
    return PACKAGE_SCHEME + rel.as_posix()
