"""A policy result as the CLI and the HTML page show it: violation tables, the not-checked list, a one-line
summary and plain message lines. Builds renderables and strings; never prints.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from riskaudit.numbers import estimate, value_text
from riskaudit.reporting.layout import CI_SEP, Cell, Column, breakable, fit_tables
from riskaudit.reporting.policy.check import PolicyResult, Violation, observed_text

__all__ = ["policy_summary", "skipped_table", "violation_lines", "violations_table", "violations_tables"]


def _is_trend(v: Violation) -> bool:
    """A growth per decade (signed, like every growth), not a metric's value."""
    return v.check.startswith(("slope_per_decade", "slope_ci_"))


def _value_cell(v: Violation, sep: str = ", ") -> str:
    """The value [95% CI] in the one number format (the terminal's tables, the page and the card share it)."""
    if v.value is None:
        return "–"
    return estimate(v.value, v.ci_low, v.ci_high, signed=_is_trend(v), missing="?", sep=sep)


def violations_table(result: PolicyResult) -> Table:
    """One row per violation: rule, metric, member, check, observed [CI], limit."""
    t = Table(title=Text(f"policy violations ({len(result.violations)})"), title_justify="left")
    for col in ("rule", "probe / metric", "member", "check", "observed", "value [95% CI]", "limit"):
        t.add_column(col, justify="right" if col in ("observed",) else "left", overflow="fold")
    for v in result.violations:
        t.add_row(
            Text(str(v.rule) + (f" {v.rule_name}" if v.rule_name else "")),
            Text(f"{v.probe}/{v.metric}"),
            Text(v.member or "–"),
            Text(v.check),
            _observed_cell(v),
            _value_cell(v),
            Text(v.limit),
        )
    return t


def violations_tables(result: PolicyResult, width: int | None = None) -> list[Table]:
    """The violations laid out for ``width`` (see :mod:`riskaudit.reporting.layout`): rule number and metric repeated in
    each part, a bold row per probe, rule names said once in the caption."""
    cols = (
        Column("rule", "right", key=True),
        Column("metric", key=True, wrap=True),
        Column("member"),
        Column("check", wrap=True),
        Column("observed", "right"),
        Column("value [95% CI]", "right"),
        Column("limit", wrap=True),
    )
    rows: list[list[Cell]] = []
    probe = None
    for v in result.violations:
        if v.probe != probe:
            rows.append(["", Text(v.probe, style="bold"), "", "", "", "", ""])
            probe = v.probe
        value = _value_cell(v, CI_SEP)
        rows.append(
            [
                str(v.rule),
                Text(breakable(v.metric) if width is not None else v.metric),
                Text(v.member or "–"),
                Text(v.check),
                _observed_cell(v),
                value,
                Text(v.limit),
            ]
        )
    names = {v.rule: v.rule_name for v in result.violations if v.rule_name}
    caption = "rules: " + "; ".join(f"{k} {n}" for k, n in sorted(names.items())) if names else None
    return fit_tables(f"policy violations ({len(result.violations)})", cols, rows, width, caption)


def _observed_cell(v: Violation) -> str:
    """The compared number, labelled when it is not the metric itself (J for an abrupt flag)."""
    if v.observed is None:
        return "–"
    if v.check in ("abrupt", "metric_artifact"):
        return f"J = {value_text(v.observed, missing='?')}"
    if v.value is not None:  # the value or a CI bound: in the format of the value [CI] beside it
        return observed_text(v.observed, v.value, v.ci_low, v.ci_high, _is_trend(v))
    return value_text(v.observed, missing="?")


def skipped_table(result: PolicyResult) -> Table:
    """One row per check that could not be made."""
    t = Table(title=Text(f"not checked ({len(result.skipped)})"), title_justify="left")
    t.add_column("reason", overflow="fold")
    for s in result.skipped:
        t.add_row(Text(s))
    return t


def policy_summary(result: PolicyResult, policy_path: str | None = None) -> str:
    """One line: pass/fail with counts."""
    name = f" {result.policy!r}" if result.policy else ""
    src = f" ({policy_path})" if policy_path else ""
    status = "PASS" if result.passed else "FAIL"
    unchecked = sum(1 for v in result.violations if v.check == "not checked")
    how = f" ({unchecked} of them violations: fail_on_skipped)" if unchecked else ""
    return (
        f"{status}: policy{name}{src}: {result.checked} checks, {len(result.violations)} violation(s), "
        f"{len(result.skipped) + unchecked} not checked{how}"
    )


def violation_lines(violations: Sequence[Violation]) -> list[str]:
    """Plain one-line messages (for logs and CI annotations)."""
    return [f"rule {v.rule}: {v.message}" for v in violations]

