"""The analysis: numbers in, verdicts out, with no model and no file format in sight.

Owns the metric shape every probe produces (:mod:`.metric`), the bootstrap statistics the probes use
(:mod:`.stats`), paired replicates and their encoding (:mod:`.replicates`), the scaling analysis of a
family — growth per decade of FLOPs, the abrupt/emergence rule, prediction and verdict text
(:mod:`.scaling`, :mod:`.steps`) — and the CSV points a user brings from another harness (:mod:`.points`).
It may import the foundation and ``riskaudit.inputs``; never models, probes, reporting, run or the CLI.
"""
