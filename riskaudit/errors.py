"""User-facing errors.

Every bad input ends in a :class:`RiskauditError`; the CLI prints its message on one line and exits
with code 2 (no traceback). Core modules raise, never print.
"""

from __future__ import annotations


class RiskauditError(Exception):
    """An error caused by the user's input or environment, reported as one line, exit code 2."""

    exit_code = 2


class FamilyError(RiskauditError):
    """Unknown family, malformed family TOML, bad revision list."""


class ModelLoadError(RiskauditError):
    """A member could not be loaded (no hub access, missing path, unsafe weights, bad tokenizer)."""


class ProbeError(RiskauditError):
    """A probe definition is malformed or cannot be run on a model."""


class Interrupted(RiskauditError):
    """The user pressed Ctrl-C; the message says what was kept and how to resume (exit code 130)."""

    exit_code = 130
