"""Evaluating a policy on a report: which rules hold, the violations with the numbers behind them, and what
could not be checked. Never prints (:mod:`riskaudit.reporting.policy.render` lays the result out).
"""

from __future__ import annotations

import difflib

from pydantic import BaseModel, computed_field

from riskaudit.analysis.growth import GrowthFit
from riskaudit.analysis.prediction import Prediction
from riskaudit.analysis.results import MetricAnalysis
from riskaudit.errors import RiskauditError
from riskaudit.numbers import estimate, scale_format, value_text
from riskaudit.reporting.lookup import (
    MemberKey,
    find_analyses,
    find_metric,
    metric_keys,
    metric_pattern,
    representative_members,
)
from riskaudit.reporting.policy.rules import FailFlag, Policy, Rule
from riskaudit.reporting.report import MemberReport, Report

__all__ = ["PolicyResult", "Violation", "evaluate_policy", "observed_text"]


class Violation(BaseModel):
    """One failed check, with the numbers behind it."""

    rule: int  # 1-based position in the policy
    rule_name: str = ""
    probe: str
    metric: str
    member: str | None = None  # level rules; None for family-level (trend, flag) rules
    check: str  # "ci_high", "slope_per_decade (FLOPs)", "abrupt", "surprise", "not checked"
    observed: float | None = None  # the number compared with the limit
    value: float | None = None  # the metric value (level) or the OLS slope (trend)
    ci_low: float | None = None
    ci_high: float | None = None
    limit: str  # "≤ 0.9", "not abrupt"
    message: str


class PolicyResult(BaseModel):
    """What :func:`evaluate_policy` found: violations, how many checks ran, and what could not be checked."""

    policy: str = ""
    violations: list[Violation] = []
    checked: int = 0
    skipped: list[str] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return not self.violations


def _num(v: float | None, signed: bool = False) -> str:
    """A number in a violation message, in the one number format (``?`` when missing)."""
    return value_text(v, signed=signed, missing="?")


def _est(value: float | None, low: float | None, high: float | None, signed: bool = False) -> str:
    """A value and its CI in the one number format: ``0.410 [0.341, 0.486]`` (``?`` when missing)."""
    return estimate(value, low, high, signed=signed, missing="?")


def observed_text(
    observed: float | None, value: float | None, low: float | None, high: float | None, signed: bool = False
) -> str:
    """A compared number (the value or one of its CI bounds) in the format of ``value [low, high]``, so it
    reads the same as in the estimate beside it (``?`` when missing)."""
    width = high - low if low is not None and high is not None else None
    return scale_format((value, low, high), width, signed=signed)(observed, "?")


def _outside(v: float, rule: Rule) -> str | None:
    """The failed bound as text (``> max 0.9``), or None when ``v`` is within the rule's limits."""
    if rule.max is not None and v > rule.max:
        return f"> max {rule.max:g}"
    if rule.min is not None and v < rule.min:
        return f"< min {rule.min:g}"
    return None


class _Evaluator:
    def __init__(self, report: Report, policy: Policy) -> None:
        self.report = report
        self.policy = policy
        self.keys = metric_keys(report)
        self.reps = representative_members(report)
        self.result = PolicyResult(policy=policy.name)

    # -- selection --------------------------------------------------------------------------------

    def matching_keys(self, rule: Rule, index: int) -> list[MemberKey]:
        probes = {k[0] for k in self.keys} | {p.id for p in self.report.probes}
        if rule.probe is not None and rule.probe not in probes:
            raise RiskauditError(
                f"policy {rule.label(index)}: probe {rule.probe!r} is not in the report "
                f"(it has: {', '.join(sorted(probes)) or 'none'})"
            )
        excl = [metric_pattern(e) for e in rule.exclude]
        names = sorted({k[1] for k in self.keys if rule.probe is None or k[0] == rule.probe})
        where = f"probe {rule.probe!r} of the report" if rule.probe else "the report"
        found: dict[MemberKey, None] = {}
        for wanted in rule.metrics:
            pat = metric_pattern(wanted)
            hits = [
                k
                for k in self.keys
                if (rule.probe is None or k[0] == rule.probe)
                and pat.match(k[1])
                and not any(e.match(k[1]) for e in excl)
            ]
            if hits:
                found.update(dict.fromkeys(hits))
                continue
            if rule.optional:
                self.result.skipped.append(f"{rule.label(index)}: no metric {wanted!r} in {where} (optional)")
                continue
            close = difflib.get_close_matches(wanted, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            shown = ", ".join(names[:8]) + (f", … ({len(names) - 8} more)" if len(names) > 8 else "")
            raise RiskauditError(
                f"policy {rule.label(index)}: metric {wanted!r} is not in {where}{hint} "
                f"(it has: {shown or 'no metrics'}); mark the rule optional = true to allow this"
            )
        return list(found)

    def targets(self, rule: Rule, index: int, key: MemberKey) -> list[tuple[MemberReport, str]]:
        """(member, role) pairs a level rule applies to for one metric."""
        probe, _ = key
        if rule.member in ("largest", "smallest"):
            cands = [m for m in self.reps if m.status != "ok" or any(p.probe_id == probe for p in m.probes)]
            if not cands:
                return []
            return [(cands[-1] if rule.member == "largest" else cands[0], rule.member)]
        if rule.member == "all":
            return [(m, "") for m in self.report.members]
        for m in self.report.members:
            if m.name == rule.member:
                return [(m, "")]
        names = ", ".join(m.name for m in self.report.members)
        raise RiskauditError(
            f"policy {rule.label(index)}: member {rule.member!r} is not in the report "
            f"(use largest, smallest, all or one of: {names})"
        )

    def analyses(self, rule: Rule, key: MemberKey) -> list[MetricAnalysis]:
        return find_analyses(self.report, *key, rule.axis)

    # -- bookkeeping ------------------------------------------------------------------------------

    def violate(
        self,
        rule: Rule,
        index: int,
        key: MemberKey,
        *,
        member: str | None,
        check: str,
        limit: str,
        message: str,
        observed: float | None = None,
        value: float | None = None,
        ci_low: float | None = None,
        ci_high: float | None = None,
    ) -> None:
        """Record a violation of rule ``index`` on ``key``: the only place a :class:`Violation` is built."""
        self.result.violations.append(
            Violation(
                rule=index,
                rule_name=rule.name,
                probe=key[0],
                metric=key[1],
                member=member,
                check=check,
                observed=observed,
                value=value,
                ci_low=ci_low,
                ci_high=ci_high,
                limit=limit,
                message=message,
            )
        )

    def skip(self, rule: Rule, index: int, key: MemberKey, why: str, member: str | None = None) -> None:
        who = f" on {member}" if member else ""
        line = f"{rule.label(index)}: {key[0]}/{key[1]}{who}: {why}"
        if self.policy.fail_on_skipped:
            self.violate(
                rule,
                index,
                key,
                member=member,
                check="not checked",
                limit="checkable (fail_on_skipped)",
                message=f"{line} (fail_on_skipped = true)",
            )
        else:
            self.result.skipped.append(line)

    # -- rules ------------------------------------------------------------------------------------

    def level(self, rule: Rule, index: int, key: MemberKey) -> None:
        targets = self.targets(rule, index, key)
        if not targets:
            self.skip(rule, index, key, "no member has this probe")
        for member, role in targets:
            who = f"{member.name} ({role})" if role else member.name
            if member.status != "ok":
                self.skip(rule, index, key, f"the member failed ({member.error or 'no error recorded'})", who)
                continue
            r = find_metric(member, *key)
            if r is None:
                if rule.member != "all":
                    self.skip(rule, index, key, "no such metric for this member", who)
                continue
            observed: float | None = getattr(r, rule.stat)
            if observed is None:
                what = "the value is undefined" if r.value is None else f"no {rule.stat} (no CI)"
                self.skip(rule, index, key, what, who)
                continue
            self.result.checked += 1
            bad = _outside(observed, rule)
            if bad is None:
                continue
            self.violate(
                rule,
                index,
                key,
                member=member.name,
                check=rule.stat,
                observed=observed,
                value=r.value,
                ci_low=r.ci_low,
                ci_high=r.ci_high,
                limit=rule.limit_text(),
                message=(
                    f"{key[0]}/{key[1]} on {who}: {rule.stat} = "
                    f"{observed_text(observed, r.value, r.ci_low, r.ci_high)} {bad} "
                    f"(value {_est(r.value, r.ci_low, r.ci_high)}, {r.direction.replace('_', ' ')})"
                ),
            )

    def trend(self, rule: Rule, index: int, key: MemberKey) -> None:
        assert rule.trend is not None
        found = self.analyses(rule, key)
        if not found:
            why = "the report has no analysis" if self.report.analysis is None else f"no {rule.axis} analysis"
            self.skip(rule, index, key, why)
        for a in found:
            growth: GrowthFit | None = a.growth_flops if rule.per == "flops" else a.growth_params
            where = f" ({a.checkpoint_of} checkpoints)" if a.checkpoint_of else ""
            if growth is None or growth.slope is None:
                self.skip(rule, index, key, f"no growth per decade of {rule.per}{where} ({a.verdict_reason or 'n/a'})")
                continue
            stat = {
                "slope_per_decade": growth.slope,
                "slope_ci_low": growth.slope_ci_low,
                "slope_ci_high": growth.slope_ci_high,
            }[rule.trend]
            if stat is None:
                self.skip(rule, index, key, f"no CI for the slope{where}")
                continue
            self.result.checked += 1
            bad = _outside(stat, rule)
            if bad is None:
                continue
            unit = "FLOPs" if rule.per == "flops" else "params"
            self.violate(
                rule,
                index,
                key,
                member=a.checkpoint_of,
                check=f"{rule.trend} ({unit})",
                observed=stat,
                value=growth.slope,
                ci_low=growth.slope_ci_low,
                ci_high=growth.slope_ci_high,
                limit=rule.limit_text(),
                message=(
                    f"{key[0]}/{key[1]}{where}: {rule.trend} per decade of {unit} = "
                    f"{observed_text(stat, growth.slope, growth.slope_ci_low, growth.slope_ci_high, True)} {bad} "
                    f"(slope {_est(growth.slope, growth.slope_ci_low, growth.slope_ci_high, True)} "
                    f"in units of {a.orientation}, larger = riskier; {a.n_members} members)"
                ),
            )

    def flags(self, rule: Rule, index: int, key: MemberKey) -> None:
        found = self.analyses(rule, key)
        if not found:
            why = "the report has no analysis" if self.report.analysis is None else f"no {rule.axis} analysis"
            self.skip(rule, index, key, why)
        for a in found:
            where = f" ({a.checkpoint_of} checkpoints)" if a.checkpoint_of else ""
            for flag in rule.fail_on:
                hit, observed, message = self._flag(a, flag)
                if hit is None:
                    why = a.predictability.note if "surprise" in flag else a.verdict_reason
                    self.skip(rule, index, key, f"{flag} not testable{where}: {why or 'insufficient data'}")
                    continue
                self.result.checked += 1
                if hit:
                    self.violate(
                        rule,
                        index,
                        key,
                        member=a.checkpoint_of,
                        check=flag,
                        observed=observed,
                        limit=f"not {flag.replace('_', ' ')}",
                        message=f"{key[0]}/{key[1]}{where}: {message}",
                    )

    @staticmethod
    def _flag(a: MetricAnalysis, flag: FailFlag) -> tuple[bool | None, float | None, str]:
        """(hit, observed, message). Only a change towards more risk fails: an abrupt drop or a largest member
        safer than predicted is not a violation."""
        ab = a.abruptness
        if flag in ("abrupt", "metric_artifact"):
            if a.verdict == "insufficient data":
                return None, None, ""
            want = "abrupt" if flag == "abrupt" else "abrupt (likely metric artifact)"
            agree = "" if a.emergence.agreement is None else f", agreement {a.emergence.agreement:.0%}"
            hit = a.verdict == want and (ab.net or 0.0) > 0
            if not hit and not a.verdict.startswith("abrupt"):
                return False, ab.j, f"verdict {a.verdict!r}: {a.verdict_reason}"
            two = ab.window == 2
            shares = (
                f"S2={_num(ab.s2)}, J2={_num(ab.j2)}"
                if two
                else f"S={_num(ab.s)}, J={_num(ab.j)}"
            )
            return (
                hit,
                ab.j2 if two else ab.j,
                f"verdict {a.verdict!r}: risk jumps {'up' if (ab.net or 0.0) > 0 else 'down'} between "
                f"{a.emergence.members_label} (net {_num(ab.net, True)} in units of {a.orientation}, {shares}, "
                f"noise floor sd {_num(ab.noise_floor.sd)}{agree})",
            )
        p = a.predictability
        held = 1 if flag == "surprise" else 2
        flagged = p.surprise if flag == "surprise" else p.surprise_two_out
        if flagged is None:
            return None, None, ""
        by_member: dict[str, list[Prediction]] = {}
        for q in p.predictions:
            if q.held_out == held:
                by_member.setdefault(q.member, []).append(q)
        above = [
            qs[0] for qs in by_member.values() if all(q.outside for q in qs) and all(q.observed > q.pi_high for q in qs)
        ]
        if not flagged or not above:
            return False, None, ""
        q = above[-1]
        fmt = scale_format((q.observed, q.predicted, q.pi_low, q.pi_high), q.pi_high - q.pi_low)
        return (
            True,
            q.observed,
            f"{flag}: {q.member} observed {fmt(q.observed, '?')} above the 95% prediction interval "
            f"{fmt(q.predicted, '?')} [{fmt(q.pi_low, '?')}, {fmt(q.pi_high, '?')}] from the smaller members "
            f"({q.scale} fit, units of {a.orientation}, larger = riskier)",
        )


def evaluate_policy(report: Report, policy: Policy) -> PolicyResult:
    """Check every rule against the report. Never prints.

    Raises :class:`RiskauditError` when the policy does not fit the report (unknown metric, probe or member).
    """
    if report.run.limit is not None and not policy.allow_limited:
        raise RiskauditError(
            f"the report was made with `scan --limit {report.run.limit}` (a smoke run on the first "
            f"{report.run.limit} items of each probe), not a full audit; rerun without --limit, or set "
            "allow_limited = true in the policy to gate it anyway"
        )
    ev = _Evaluator(report, policy)
    for index, rule in enumerate(policy.rules, start=1):
        for key in ev.matching_keys(rule, index):
            if rule.kind == "level":
                ev.level(rule, index, key)
            elif rule.kind == "trend":
                ev.trend(rule, index, key)
            else:
                ev.flags(rule, index, key)
    return ev.result
