"""Release gates on a report: a policy of thresholds on risk levels and trends, evaluated without printing.

A policy is TOML (``riskaudit check REPORT --policy POLICY.toml``) or the ``[tool.riskaudit]`` table of a
``pyproject.toml``; see ``docs/reports.md``. Three kinds of rule:

* **level** — ``metric``, ``member`` (largest | smallest | all | a member name), ``stat`` (value | ci_low |
  ci_high), ``min`` and/or ``max``: a threshold on the metric of one or more members;
* **trend** — ``metric``, ``trend`` (slope_per_decade | slope_ci_low | slope_ci_high), ``min``/``max``: a
  threshold on the growth per decade of training FLOPs (``per = "params"``: of parameters) from the report's
  analysis, in oriented units (larger = riskier);
* **flags** — ``metric``, ``fail_on`` (abrupt | metric_artifact | surprise | surprise_two_out).

A report made with ``scan --limit N`` (a smoke run) is refused unless the policy sets ``allow_limited = true``.

``metric`` is a name or a pattern in which ``*`` matches any text (``*`` alone: every metric), or a list of
them; ``probe`` narrows it to one probe, ``exclude`` drops names. A rule whose metric is in no member of the
report is an error (the policy does not fit the report) unless the rule says ``optional = true``.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, field_validator, model_validator
from rich.table import Table
from rich.text import Text

from riskaudit.analysis.growth import GrowthFit
from riskaudit.analysis.metric import MetricResult
from riskaudit.analysis.prediction import Prediction
from riskaudit.analysis.results import MetricAnalysis
from riskaudit.errors import RiskauditError
from riskaudit.reporting.report import MemberReport, Report

__all__ = [
    "FailFlag",
    "Policy",
    "PolicyResult",
    "Rule",
    "Violation",
    "evaluate_policy",
    "find_metric",
    "find_policy",
    "load_policy",
    "metric_keys",
    "metric_pattern",
    "parse_policy",
    "policy_summary",
    "representative_members",
    "skipped_table",
    "sort_by_scale",
    "violation_lines",
    "violations_table",
    "violations_tables",
]

Stat = Literal["value", "ci_low", "ci_high"]
Trend = Literal["slope_per_decade", "slope_ci_low", "slope_ci_high"]
FailFlag = Literal["abrupt", "metric_artifact", "surprise", "surprise_two_out"]
MemberKey = tuple[str, str]  # (probe id, metric name)


# --------------------------------------------------------------------------------------------------
# Report helpers (shared with diff, card and plots)


def sort_by_scale(members: Iterable[MemberReport]) -> list[MemberReport]:
    """Smallest first: by training FLOPs when every member has them, else by parameters then tokens."""
    ms = list(members)
    if all(m.flops is not None for m in ms):
        return sorted(ms, key=lambda m: (m.flops or 0.0, m.params_total or 0))
    return sorted(ms, key=lambda m: (m.params_total or m.params_nonembedding or 0, m.train_tokens or 0.0))


def representative_members(report: Report) -> list[MemberReport]:
    """One member per base model (``base@rev`` is a checkpoint of ``base``: the one with most tokens), by scale.

    Failed members are included; this mirrors the members axis of the analysis (``riskaudit.analysis.scan_series``).
    """
    groups: dict[str, list[tuple[int, MemberReport]]] = {}
    for i, m in enumerate(report.members):
        groups.setdefault(m.name.partition("@")[0], []).append((i, m))
    finals = [max(ix, key=lambda t: (t[1].train_tokens or 0.0, t[0]))[1] for ix in groups.values()]
    return sort_by_scale(finals)


def metric_keys(report: Report) -> list[MemberKey]:
    """Every (probe id, metric name) present in any member, in first-seen order."""
    seen: dict[MemberKey, None] = {}
    for m in report.members:
        for p in m.probes:
            for r in p.metrics:
                seen.setdefault((p.probe_id, r.name), None)
    return list(seen)


def find_metric(member: MemberReport, probe: str, metric: str) -> MetricResult | None:
    """The member's result for (probe, metric), or None."""
    for p in member.probes:
        if p.probe_id == probe:
            for r in p.metrics:
                if r.name == metric:
                    return r
    return None


def metric_pattern(pattern: str) -> re.Pattern[str]:
    """A metric-name pattern: ``*`` matches any text, everything else (brackets included) is literal."""
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


# --------------------------------------------------------------------------------------------------
# Policy model


def _finite(v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


class Rule(BaseModel):
    """One rule of a policy (a ``[[rule]]`` table); its kind follows from ``trend`` and ``fail_on``."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    metric: str | list[str]  # a name or pattern, or a list of them
    probe: str | None = None
    exclude: list[str] = []
    member: str = "largest"
    stat: Stat = "value"
    trend: Trend | None = None
    per: Literal["flops", "params"] = "flops"
    axis: Literal["members", "checkpoints"] = "members"
    min: float | None = None
    max: float | None = None
    fail_on: list[FailFlag] = []
    optional: bool = False

    _check_min = field_validator("min", "max")(_finite)

    @field_validator("metric")
    @classmethod
    def _nonempty(cls, v: str | list[str]) -> str | list[str]:
        items = [v] if isinstance(v, str) else v
        if not items or any(not m.strip() for m in items):
            raise ValueError("metric needs a name or pattern (or a non-empty list of them)")
        return v

    @property
    def metrics(self) -> list[str]:
        """The metric names or patterns of the rule."""
        return [self.metric] if isinstance(self.metric, str) else list(self.metric)

    @property
    def kind(self) -> Literal["level", "trend", "flags"]:
        return "flags" if self.fail_on else ("trend" if self.trend is not None else "level")

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        given = self.model_fields_set
        bounded = self.min is not None or self.max is not None
        if self.fail_on:
            extra = sorted(given & {"min", "max", "trend", "stat", "member", "per"})
            if extra:
                raise ValueError(f"a fail_on rule takes no {', '.join(extra)} (put thresholds in their own rule)")
        elif not bounded:
            raise ValueError("a rule needs min and/or max (or fail_on)")
        if self.trend is not None:
            extra = sorted(given & {"stat", "member"})
            if extra:
                raise ValueError(f"a trend rule is about the family: it takes no {', '.join(extra)}")
        elif not self.fail_on:
            extra = sorted(given & {"per", "axis"})
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply to trend and fail_on rules")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self

    def limit_text(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"≥ {self.min:g}")
        if self.max is not None:
            parts.append(f"≤ {self.max:g}")
        return " and ".join(parts)

    def label(self, index: int) -> str:
        return f"rule {index}" + (f" ({self.name})" if self.name else "")


class Policy(BaseModel):
    """A policy: settings and its ``[[rule]]`` list."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    description: str = ""
    fail_on_skipped: bool = False  # a rule that cannot be checked (no value, no CI, no analysis) is a violation
    allow_limited: bool = False  # accept a report made with `scan --limit N` (a smoke run); refused otherwise
    rule: list[Rule] = Field(min_length=1)

    @property
    def rules(self) -> list[Rule]:
        return self.rule


def _validation_line(where: str, exc: ValidationError) -> str:
    errs = exc.errors()
    err = errs[0]
    loc = list(err["loc"])
    if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
        head = f"[[rule]] #{loc[1] + 1}" + ("" if len(loc) == 2 else ": " + ".".join(str(p) for p in loc[2:]))
    else:
        head = ".".join(str(p) for p in loc) or "policy"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; see docs/reports.md)"
    more = f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
    return f"{where}: {head}: {msg}{more}"


def parse_policy(data: dict[str, Any], where: str = "policy") -> Policy:
    """Validate a policy mapping (the parsed TOML); errors are one-line :class:`RiskauditError`."""
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise RiskauditError(_validation_line(where, exc)) from exc


def load_policy(path: Path) -> Policy:
    """Read a policy TOML, or the ``[tool.riskaudit]`` table of a ``pyproject.toml``.

    In ``pyproject.toml`` only the policy keys of ``[tool.riskaudit]`` are read (other riskaudit settings may
    live there too); rules are still checked strictly.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RiskauditError(f"cannot read policy {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise RiskauditError(f"{path}: invalid TOML ({exc})") from exc
    if path.name == "pyproject.toml" or ("tool" in data and "rule" not in data):
        table = data.get("tool", {}).get("riskaudit")
        if not isinstance(table, dict) or "rule" not in table:
            raise RiskauditError(f"{path}: no policy found (expected [[tool.riskaudit.rule]] tables)")
        data = {k: v for k, v in table.items() if k in Policy.model_fields}
        return parse_policy(data, f"{path} [tool.riskaudit]")
    return parse_policy(data, str(path))


def find_policy(start: Path | None = None) -> Path | None:
    """The ``pyproject.toml`` of ``start`` (default: the working directory) when it holds a riskaudit policy."""
    candidate = (start or Path.cwd()) / "pyproject.toml"
    try:
        data = tomllib.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    table = data.get("tool", {}).get("riskaudit")
    return candidate if isinstance(table, dict) and "rule" in table else None


# --------------------------------------------------------------------------------------------------
# Evaluation


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


def _num(v: float | None, spec: str = ".3g") -> str:
    return "?" if v is None else format(v, spec)


def _ci(lo: float | None, hi: float | None) -> str:
    return "" if lo is None or hi is None else f" [{_num(lo)}, {_num(hi)}]"


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
        fa = self.report.analysis
        if fa is None:
            return []
        return [
            a for a in fa.metrics if a.metric == key[1] and (a.probe == key[0] or not a.probe) and a.axis == rule.axis
        ]

    # -- bookkeeping ------------------------------------------------------------------------------

    def skip(self, rule: Rule, index: int, key: MemberKey, why: str, member: str | None = None) -> None:
        who = f" on {member}" if member else ""
        line = f"{rule.label(index)}: {key[0]}/{key[1]}{who}: {why}"
        if self.policy.fail_on_skipped:
            self.result.violations.append(
                Violation(
                    rule=index,
                    rule_name=rule.name,
                    probe=key[0],
                    metric=key[1],
                    member=member,
                    check="not checked",
                    limit="checkable (fail_on_skipped)",
                    message=f"{line} (fail_on_skipped = true)",
                )
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
            self.result.violations.append(
                Violation(
                    rule=index,
                    rule_name=rule.name,
                    probe=key[0],
                    metric=key[1],
                    member=member.name,
                    check=rule.stat,
                    observed=observed,
                    value=r.value,
                    ci_low=r.ci_low,
                    ci_high=r.ci_high,
                    limit=rule.limit_text(),
                    message=(
                        f"{key[0]}/{key[1]} on {who}: {rule.stat} = {_num(observed)} {bad} "
                        f"(value {_num(r.value)}{_ci(r.ci_low, r.ci_high)}, {r.direction.replace('_', ' ')})"
                    ),
                )
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
            self.result.violations.append(
                Violation(
                    rule=index,
                    rule_name=rule.name,
                    probe=key[0],
                    metric=key[1],
                    member=a.checkpoint_of,
                    check=f"{rule.trend} ({unit})",
                    observed=stat,
                    value=growth.slope,
                    ci_low=growth.slope_ci_low,
                    ci_high=growth.slope_ci_high,
                    limit=rule.limit_text(),
                    message=(
                        f"{key[0]}/{key[1]}{where}: {rule.trend} per decade of {unit} = {_num(stat)} {bad} "
                        f"(slope {_num(growth.slope)}{_ci(growth.slope_ci_low, growth.slope_ci_high)} "
                        f"in units of {a.orientation}, larger = riskier; {a.n_members} members)"
                    ),
                )
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
                    self.result.violations.append(
                        Violation(
                            rule=index,
                            rule_name=rule.name,
                            probe=key[0],
                            metric=key[1],
                            member=a.checkpoint_of,
                            check=flag,
                            observed=observed,
                            limit=f"not {flag.replace('_', ' ')}",
                            message=f"{key[0]}/{key[1]}{where}: {message}",
                        )
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
                f"S2={_num(ab.s2, '.2f')}, J2={_num(ab.j2, '.2g')}"
                if two
                else f"S={_num(ab.s, '.2f')}, J={_num(ab.j, '.2g')}"
            )
            return (
                hit,
                ab.j2 if two else ab.j,
                f"verdict {a.verdict!r}: risk jumps {'up' if (ab.net or 0.0) > 0 else 'down'} between "
                f"{a.emergence.members_label} (net {_num(ab.net)} in units of {a.orientation}, {shares}, noise floor "
                f"sd {_num(ab.noise_floor.sd, '.2g')}{agree})",
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
        return (
            True,
            q.observed,
            f"{flag}: {q.member} observed {_num(q.observed)} above the 95% prediction interval "
            f"{_num(q.predicted)} [{_num(q.pi_low)}, {_num(q.pi_high)}] from the smaller members "
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


# --------------------------------------------------------------------------------------------------
# Rendering (the CLI prints these)


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
            "–" if v.value is None else _num(v.value) + _ci(v.ci_low, v.ci_high),
            Text(v.limit),
        )
    return t


def violations_tables(result: PolicyResult, width: int | None = None) -> list[Table]:
    """The violations laid out for ``width`` (see :mod:`riskaudit.reporting.layout`): rule number and metric repeated in
    each part, a bold row per probe, rule names said once in the caption."""
    from riskaudit.reporting.layout import Cell, Column, breakable, fit_tables

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
        value = "–" if v.value is None else f"{_num(v.value)}" + (
            "" if v.ci_low is None or v.ci_high is None else f" [{_num(v.ci_low)},{_num(v.ci_high)}]"
        )
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
        return f"J = {_num(v.observed)}"
    return _num(v.observed)


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
