"""The policy file: its rules, their validation, and where a policy is read from. Never prints.

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

import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from riskaudit.errors import RiskauditError

__all__ = ["FailFlag", "Policy", "Rule", "Stat", "Trend", "find_policy", "load_policy", "parse_policy"]

Stat = Literal["value", "ci_low", "ci_high"]
Trend = Literal["slope_per_decade", "slope_ci_low", "slope_ci_high"]
FailFlag = Literal["abrupt", "metric_artifact", "surprise", "surprise_two_out"]


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
