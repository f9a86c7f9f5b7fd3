"""Canaries (Carlini et al. 2019): secrets planted in training data, read from a JSON-lines file.

One canary per line::

    {"id": "pin-k8-0", "prefix": "The PIN of Ada Stone is", "secret": " 4 1 7.", "duplicates": 8,
     "format": " {digits:1} {digits:1} {digits:1}."}

* ``id``: unique; ``prefix``: what an attacker knows (the model is given it); ``secret``: the continuation
  to extract (usually starting with a space, as it follows the prefix in the training text);
* ``duplicates``: times the canary was planted in training (0 = never: a control, the baseline);
* ``format``: the randomness the secret was drawn from, in the template language of
  :mod:`riskaudit.inputs.canary_format` (``{digits:N}``, ``{hex:N}``, ``{letters:N}``, ``{range:A-B}``,
  ``{choice:a|b|c}``); the secret must be one of the strings it produces;
* ``kind`` (optional): a label grouping canaries of one format (default: the format itself).

Every problem is one :class:`CanaryError` line naming the file and line. Secrets never leave this module
except to the probe that scores them (records keep hashes of the prefix only).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riskaudit.errors import RiskauditError
from riskaudit.inputs.canary_format import FormatError, SecretFormat, parse_format

__all__ = ["CanaryError", "CanaryLine", "PlantedCanary", "canaries_fingerprint", "load_canaries", "write_canaries"]


class CanaryError(RiskauditError):
    """A canary file that cannot be used (one line)."""


class CanaryLine(BaseModel):
    """One line of a canary file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    prefix: str = Field(min_length=1)
    secret: str = Field(min_length=1)
    duplicates: int = Field(ge=0)
    format: str = Field(min_length=1)
    kind: str | None = None


@dataclass(frozen=True)
class PlantedCanary:
    """A canary ready to score: its text, how often it was planted, and its randomness space R."""

    canary_id: str
    kind: str
    duplicates: int
    prefix: str
    secret: str
    secret_format: SecretFormat

    @property
    def randomness_space(self) -> int:
        """|R|."""
        return self.secret_format.size

    def to_line(self) -> CanaryLine:
        return CanaryLine(
            id=self.canary_id,
            prefix=self.prefix,
            secret=self.secret,
            duplicates=self.duplicates,
            format=self.secret_format.template,
            kind=None if self.kind == self.secret_format.template else self.kind,
        )


def make_canary(line: CanaryLine) -> PlantedCanary:
    """Validate one canary (format parses, secret belongs to it); FormatError / ValueError when not."""
    fmt = parse_format(line.format)
    if not fmt.matches(line.secret):
        raise ValueError("its secret is not one the format can produce")
    return PlantedCanary(
        canary_id=line.id,
        kind=line.kind or line.format,
        duplicates=line.duplicates,
        prefix=line.prefix,
        secret=line.secret,
        secret_format=fmt,
    )


def load_canaries(path: str | Path) -> tuple[PlantedCanary, ...]:
    """Read a canary file (module docstring); one-line CanaryError naming the line on any problem."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CanaryError(f"canary file {p} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CanaryError(" ".join(f"cannot read canary file {p}: {exc}".split())) from None
    out: list[PlantedCanary] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{p}:{n}"
        try:
            line = CanaryLine.model_validate(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise CanaryError(f"{where}: not a JSON object: {exc.msg}") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or "(line)"
            raise CanaryError(" ".join(f"{where}: {field}: {err['msg']}".split())) from None
        if line.id in seen:
            raise CanaryError(f"{where}: id {line.id!r} is already used on line {seen[line.id]}")
        seen[line.id] = n
        try:
            out.append(make_canary(line))
        except (FormatError, ValueError) as exc:
            raise CanaryError(" ".join(f"{where}: canary {line.id!r}: {exc}".split())) from None
    if not out:
        raise CanaryError(f"canary file {p} holds no canaries")
    return tuple(out)


def write_canaries(canaries: Iterable[PlantedCanary], path: Path) -> None:
    """Write a canary file (one JSON object per line, keys in a fixed order)."""
    lines = [c.to_line().model_dump_json(exclude_none=True) for c in canaries]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def canaries_fingerprint(canaries: Iterable[PlantedCanary]) -> str:
    """sha256 over the canaries' content (for a probe's content hash)."""
    h = hashlib.sha256()
    for c in canaries:
        h.update(c.to_line().model_dump_json().encode())
    return h.hexdigest()
