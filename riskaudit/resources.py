"""Locate data shipped with the package (works from a source checkout, an editable and a wheel install)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_data_dir() -> Path:
    """riskaudit/data: facts copied from shared/data (families, occupations) with their sources."""
    return Path(str(resources.files("riskaudit") / "data"))


def probe_data_dir() -> Path:
    """The built-in probe definitions (top-level ``probes/`` in the repository; the package
    ``riskaudit.probe_data`` once installed). A checkout used without installing (``PYTHONPATH``) has no
    such package, so the repository's ``probes/`` is used."""
    try:
        return Path(str(resources.files("riskaudit.probe_data")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "probes"


def demo_dir() -> Path:
    """The shipped demo family: tokenizer, member weights, ground truth."""
    return Path(str(resources.files("riskaudit.zoo") / "demo"))
