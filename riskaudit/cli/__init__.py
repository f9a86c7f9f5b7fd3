"""The ``riskaudit`` command line: parse, call the layers below, render. Nothing imports it.

:func:`main` is the console entry point (``riskaudit = "riskaudit.cli:main"``).
"""

from riskaudit.cli.root import app, main

__all__ = ["app", "main"]
