"""Probe kinds: each turns a probe definition (data in the top-level ``probes/`` folder) and a model into
per-item records and metrics with bootstrap CIs.

Owns the probe protocol and result shapes (:mod:`.base`), probe specs and the registry of kinds (built-in and
third-party ones found through the ``riskaudit.probe_kinds`` entry-point group), the four bias probes, the
canonical benchmarks over their official files (``bench_*``: CrowS-Pairs, Winogender; :mod:`.benchmark`) and the
memorization suite (extraction, exposure, membership inference). It may import the foundation, ``models``
(the :class:`~riskaudit.models.ModelHandle` protocol), ``inputs`` (occupations, canaries, training data,
benchmark data) and
``analysis`` (metric shapes, bootstrap statistics); never reporting, run or the CLI.
"""
