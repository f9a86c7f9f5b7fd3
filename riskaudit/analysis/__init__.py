"""The analysis: numbers in, verdicts out, with no model and no file format in sight.

Owns the metric shape every probe produces (:mod:`.metric`), the bootstrap statistics the probes use
(:mod:`.stats`), paired replicates and their encoding (:mod:`.replicates`), the scaling analysis of a
family — its input (:mod:`.series`, built from a scan by :mod:`.scan_series` or from the CSV points a user
brings from another harness by :mod:`.points`, or from lm-evaluation-harness results files by
:mod:`.lm_eval_series`), resampling (:mod:`.resampling`), growth per decade of FLOPs
(:mod:`.growth`), the abrupt/emergence rule (:mod:`.abrupt`), prediction (:mod:`.prediction`), verdict
text (:mod:`.verdicts`), the result shapes (:mod:`.results`, settings in :mod:`.config`) and the
orchestration (:mod:`.family`).
It may import the foundation and ``riskaudit.inputs``; never models, probes, reporting, run or the CLI.
"""
