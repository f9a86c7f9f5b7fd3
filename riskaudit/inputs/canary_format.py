"""The randomness format of a canary's secret: a small template language (Carlini et al. 2019's R).

A template is literal text with slots; the secret must be one of the strings the template can produce,
and R (the randomness space exposure is measured against) is every combination of slot values:

=====================  ===================================================  ==========
slot                   produces                                             |values|
=====================  ===================================================  ==========
``{digits:N}``         N decimal digits                                     10^N
``{hex:N}``            N lowercase hexadecimal digits                       16^N
``{letters:N}``        N lowercase ASCII letters                            26^N
``{range:A-B}``        an integer from A to B (inclusive), no leading zero  B − A + 1
``{choice:a|b|c}``     one of the listed options (an option may be empty;   options
                       a repeated option counts once per listing)
=====================  ===================================================  ==========

``{{`` and ``}}`` stand for literal braces. Example: the demo's spaced access codes are
``" {digits:1} {digits:1} … {digits:1}."`` (|R| = 10^10) and its ID numbers
``" {choice:A|B|…}{choice:A|B|…}-{digits:4}-{digits:4}."``.

|R| counts slot combinations; when two combinations spell the same string (possible with ``choice``),
that string counts as often as it is spelled, as in a generator that draws each slot uniformly.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import string
from dataclasses import dataclass
from functools import cached_property

__all__ = ["FormatError", "SecretFormat", "Slot", "parse_format"]

_SLOT_RE = re.compile(r"\{(digits|hex|letters|range|choice):([^{}]*)\}")
_ALPHABETS = {"digits": string.digits, "hex": "0123456789abcdef", "letters": string.ascii_lowercase}
_MAX_WIDTH = 64


class FormatError(ValueError):
    """A template that cannot be parsed (one line)."""


@dataclass(frozen=True)
class Slot:
    """One random part of a secret: the strings it can take, each drawn with equal probability."""

    kind: str
    arg: str
    width: int = 0  # digits / hex / letters: characters
    options: tuple[str, ...] = ()  # range / choice: every value, in order

    @property
    def size(self) -> int:
        if self.options:
            return len(self.options)
        return int(len(_ALPHABETS[self.kind]) ** self.width)

    def values(self) -> list[str]:
        if self.options:
            return list(self.options)
        return ["".join(t) for t in itertools.product(_ALPHABETS[self.kind], repeat=self.width)]

    def sample(self, rng: random.Random) -> str:
        if self.options:
            return self.options[rng.randrange(len(self.options))]
        alphabet = _ALPHABETS[self.kind]
        return "".join(alphabet[rng.randrange(len(alphabet))] for _ in range(self.width))

    def pattern(self) -> str:
        if self.options:
            return "(?:" + "|".join(re.escape(o) for o in sorted(set(self.options), key=len, reverse=True)) + ")"
        cls = {"digits": "[0-9]", "hex": "[0-9a-f]", "letters": "[a-z]"}[self.kind]
        return f"{cls}{{{self.width}}}"


def _slot(kind: str, arg: str) -> Slot:
    if kind in _ALPHABETS:
        if not arg.isdigit() or not 1 <= int(arg) <= _MAX_WIDTH:
            raise FormatError(f"{{{kind}:{arg}}}: the width must be a whole number from 1 to {_MAX_WIDTH}")
        return Slot(kind, arg, width=int(arg))
    if kind == "range":
        m = re.fullmatch(r"(\d+)-(\d+)", arg)
        if m is None or int(m.group(1)) > int(m.group(2)):
            raise FormatError(f"{{range:{arg}}}: expected A-B with whole numbers A <= B, e.g. {{range:10-99}}")
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi - lo >= 10**7:
            raise FormatError(f"{{range:{arg}}}: at most 10,000,000 values; combine {{digits:N}} slots instead")
        return Slot(kind, arg, options=tuple(str(i) for i in range(lo, hi + 1)))
    options = tuple(arg.split("|"))
    if len(options) < 2:
        raise FormatError(f"{{choice:{arg}}}: give at least two options separated by |")
    return Slot(kind, arg, options=options)


@dataclass(frozen=True)
class SecretFormat:
    """A parsed template: literal text between slots (``literals`` has one more entry than ``slots``)."""

    template: str
    literals: tuple[str, ...]
    slots: tuple[Slot, ...]

    @property
    def size(self) -> int:
        """|R|: the number of slot combinations."""
        return math.prod(s.size for s in self.slots)

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        parts = [re.escape(self.literals[0])]
        for slot, lit in zip(self.slots, self.literals[1:], strict=True):
            parts.append(slot.pattern())
            parts.append(re.escape(lit))
        return re.compile("".join(parts), re.DOTALL)

    def matches(self, secret: str) -> bool:
        """Whether the template can produce ``secret``."""
        return self._regex.fullmatch(secret) is not None

    def sample(self, rng: random.Random) -> str:
        """One secret drawn uniformly from R (each slot uniformly, independently)."""
        out = [self.literals[0]]
        for slot, lit in zip(self.slots, self.literals[1:], strict=True):
            out.append(slot.sample(rng))
            out.append(lit)
        return "".join(out)

    def enumerate(self, limit: int) -> list[str]:
        """Every member of R (one string per slot combination); FormatError when |R| > ``limit``."""
        if self.size > limit:
            raise FormatError(f"format {self.template!r} has {self.size} secrets, more than {limit} to enumerate")
        out = []
        for combo in itertools.product(*(s.values() for s in self.slots)):
            parts = [self.literals[0]]
            for value, lit in zip(combo, self.literals[1:], strict=True):
                parts.append(value)
                parts.append(lit)
            out.append("".join(parts))
        return out


def parse_format(template: str) -> SecretFormat:
    """Parse a template (module docstring); a malformed one raises a one-line FormatError."""
    literals: list[str] = []
    slots: list[Slot] = []
    buf: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if template.startswith("{{", i) or template.startswith("}}", i):
            buf.append(ch)
            i += 2
            continue
        if ch == "}":
            raise FormatError(f"format {template!r}: unmatched '}}' at position {i} (write '}}}}' for a brace)")
        if ch == "{":
            m = _SLOT_RE.match(template, i)
            if m is None:
                raise FormatError(
                    f"format {template!r}: bad slot at position {i}; expected {{digits:N}}, {{hex:N}}, "
                    "{letters:N}, {range:A-B} or {choice:a|b|c} (write '{{' for a brace)"
                )
            literals.append("".join(buf))
            buf = []
            slots.append(_slot(m.group(1), m.group(2)))
            i = m.end()
            continue
        buf.append(ch)
        i += 1
    literals.append("".join(buf))
    if not slots:
        raise FormatError(f"format {template!r} has no random slot, so its secret is not secret")
    return SecretFormat(template=template, literals=tuple(literals), slots=tuple(slots))
