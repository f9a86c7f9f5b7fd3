"""Inputs: what an audit reads before any model runs.

Owns the family definitions (built-in table, family TOML, the demo zoo's manifest), the occupation
statistics (BLS % female), the memorization data (training data a family declares, user datasets, canary
files and their secret formats, the Megatron/Pythia token reader), and lm-evaluation-harness results files
(placed on a family's scale axes). It may import only the foundation
(``riskaudit.errors``, ``riskaudit.resources``) and ``riskaudit.models`` (load options, hub reachability);
never probes, the analysis, reporting, the run layer or the CLI.
"""
