"""Release gates on a report: a policy of thresholds on risk levels and trends, evaluated without printing.

Three modules, one concern each: :mod:`~riskaudit.reporting.policy.rules` (the policy file: rules, validation,
loading; the rule kinds are described there), :mod:`~riskaudit.reporting.policy.check` (evaluating a policy on
a report: violations and what could not be checked) and :mod:`~riskaudit.reporting.policy.render` (the
violation tables and the summary line the CLI and the HTML page show). This package re-exports their public
names, so ``from riskaudit.reporting.policy import evaluate_policy`` is the way in.
"""

from riskaudit.reporting.policy.check import PolicyResult, Violation, evaluate_policy
from riskaudit.reporting.policy.render import (
    policy_summary,
    skipped_table,
    violation_lines,
    violations_table,
    violations_tables,
)
from riskaudit.reporting.policy.rules import FailFlag, Policy, Rule, find_policy, load_policy, parse_policy

__all__ = [
    "FailFlag",
    "Policy",
    "PolicyResult",
    "Rule",
    "Violation",
    "evaluate_policy",
    "find_policy",
    "load_policy",
    "parse_policy",
    "policy_summary",
    "skipped_table",
    "violation_lines",
    "violations_table",
    "violations_tables",
]
