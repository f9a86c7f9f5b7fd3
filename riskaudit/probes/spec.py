"""The pronoun probe definition (YAML in ``probes/``): strict pydantic models, a loader and a content hash.

Any malformed file raises :class:`~riskaudit.errors.ProbeError` with one line naming the file, the
field (``templates[2].text``) and the problem.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from riskaudit.errors import ProbeError

# {occupation} -> "nurse"; {a_occupation} -> "a nurse" / "an engineer"; {A_occupation} -> "A nurse".
PLACEHOLDERS: tuple[str, ...] = ("occupation", "a_occupation", "A_occupation")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_WORD_RE = re.compile(r"^\S+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _field_error(field: str, problem: str) -> PydanticCustomError:
    return PydanticCustomError("spec_field", "{field}: {problem}", {"field": field, "problem": problem})


PronounForms = dict[str, list[str]]  # grammatical form -> pronouns, e.g. {"subject": ["she"], ...}


class PronounSets(_Strict):
    """Each side's pronouns by grammatical form (``subject``, ``object``, ``possessive``, ...).

    The pronouns listed for a template's slot are summed in probability (log-sum-exp).
    """

    female: PronounForms = Field(min_length=1)
    male: PronounForms = Field(min_length=1)

    @field_validator("female", "male")
    @classmethod
    def _check_words(cls, forms: PronounForms) -> PronounForms:
        for form, words in forms.items():
            if not words:
                raise _field_error(form, "empty pronoun list")
            for w in words:
                if not _WORD_RE.match(w):
                    raise _field_error(form, f"pronoun {w!r} must be one word without spaces")
            if len(set(words)) != len(words):
                raise _field_error(form, "duplicate pronoun")
        return forms


class Template(_Strict):
    """A context the pronoun continues; ``slot`` names the grammatical form(s) that may come next.

    A slot may list several forms where several are grammatical (after "told", both "told her/him"
    and "told her/his ..." fit; "her" serves both, so the male side must sum "him" and "his").
    """

    id: str
    text: str
    slot: tuple[str, ...] = Field(min_length=1)
    note: str = ""  # the shape: where the pronoun falls relative to the occupation

    @field_validator("slot", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(f"template id {v!r} must match {_ID_RE.pattern}")
        return v

    @field_validator("text")
    @classmethod
    def _check_text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("empty template")
        if v != v.rstrip():
            raise ValueError("template must not end with whitespace (the pronoun carries its leading space)")
        try:
            parsed = list(string.Formatter().parse(v))
        except ValueError as exc:
            raise ValueError(f"malformed braces in {v!r}: {exc}") from None
        names = []
        for _, name, spec, conv in parsed:
            if name is None:
                continue
            if name not in PLACEHOLDERS or spec or conv:
                shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
                allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                raise ValueError(f"unknown placeholder {shown} in {v!r} (allowed: {allowed})")
            names.append(name)
        if not names:
            raise ValueError(f"template {v!r} has no occupation placeholder")
        return v

    def render(self, occupation: str) -> str:
        """The context for one occupation."""
        article = "an" if occupation[:1].lower() in tuple("aeiou") else "a"
        return self.text.format(
            occupation=occupation,
            a_occupation=f"{article} {occupation}",
            A_occupation=f"{article.capitalize()} {occupation}",
        )


class ProbeSettings(_Strict):
    bootstrap_resamples: int = Field(default=2000, ge=10, le=100_000)
    seed: int = Field(default=0, ge=0)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    occupation_table: Literal["bls2015", "bls2022"] = "bls2015"


class PronounProbeSpec(_Strict):
    """A pronoun-gap probe: gap g(o,t) = log P(female pronoun | ctx) − log P(male pronoun | ctx)."""

    id: str
    kind: Literal["pronoun"] = "pronoun"
    version: int = Field(ge=1)
    description: str
    provenance: str = ""
    pronouns: PronounSets
    templates: list[Template] = Field(min_length=1)
    settings: ProbeSettings = ProbeSettings()

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(f"probe id {v!r} must match {_ID_RE.pattern}")
        return v

    @model_validator(mode="after")
    def _check_cross(self) -> PronounProbeSpec:
        f_forms, m_forms = set(self.pronouns.female), set(self.pronouns.male)
        if f_forms != m_forms:
            only = sorted(f_forms ^ m_forms)
            raise _field_error("pronouns", f"female and male sets must list the same forms; differ in {only}")
        seen: set[str] = set()
        for i, t in enumerate(self.templates):
            if t.id in seen:
                raise _field_error(f"templates[{i}].id", f"duplicate template id {t.id!r}")
            seen.add(t.id)
            for form in t.slot:
                if form not in f_forms:
                    raise _field_error(
                        f"templates[{i}].slot", f"unknown slot {form!r} (known: {', '.join(sorted(f_forms))})"
                    )
        return self

    def forms_for(self, template: Template) -> tuple[list[str], list[str]]:
        """The (female, male) pronouns of a template's slot forms, each listed once, in order."""

        def words(side: PronounForms) -> list[str]:
            return list(dict.fromkeys(w for form in template.slot for w in side[form]))

        return words(self.pronouns.female), words(self.pronouns.male)

    def canonical_json(self) -> str:
        """Sorted-key compact JSON of the whole spec (the input of :meth:`content_hash`)."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )

    def content_hash(self) -> str:
        """sha256 hex digest of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    keys: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} at line {mark.line + 1}", key_node.start_mark
            )
        keys.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _describe(err: Any) -> str:
    loc = tuple(err["loc"])
    if err["type"] == "spec_field":
        ctx = err["ctx"]
        field = ".".join(p for p in (_loc(loc) if loc else "", str(ctx["field"])) if p)
        return f"{field}: {ctx['problem']}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{_loc(loc)}: {msg}"


def parse_probe_spec(data: Any, source: str) -> PronounProbeSpec:
    """Validate already-parsed YAML; ``source`` names the file in the error."""
    if not isinstance(data, dict):
        raise ProbeError(f"{source}: (top level): expected a mapping, got {type(data).__name__}")
    try:
        return PronounProbeSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        extra = len(errors) - 1
        more = f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra else ""
        raise ProbeError(_one_line(f"{source}: {_describe(errors[0])}{more}")) from None


def load_probe_spec(path: str | Path) -> PronounProbeSpec:
    """Read and validate a pronoun probe YAML file; any problem is a one-line :class:`ProbeError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeError(_one_line(f"{p}: cannot read probe definition: {exc}")) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProbeError(_one_line(f"{p}: invalid YAML{where}: {problem}")) from None
    return parse_probe_spec(data, str(p))
