"""Locate data shipped with the package (works from a source checkout, an editable and a wheel install)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_data_dir() -> Path:
    """riskaudit/data: facts copied from shared/data (families, occupations) with their sources."""
    return Path(str(resources.files("riskaudit") / "data"))


def probe_data_dir() -> Path:
    """The built-in probe definitions (top-level ``probes/`` in the repository)."""
    return Path(str(resources.files("riskaudit.probe_data")))


def demo_dir() -> Path:
    """The shipped demo family: tokenizer, member weights, ground truth."""
    return Path(str(resources.files("riskaudit.zoo") / "demo"))
