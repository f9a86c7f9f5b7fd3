"""Probe definitions (YAML in ``probes/``): shared strict pydantic building blocks (template and spec
bases), the pronoun spec, a YAML loader and content hashes. The run-time plumbing shared by the
occupation-based probes is in :mod:`riskaudit.probes.common`.

Any malformed file raises :class:`~riskaudit.errors.ProbeError` with one line naming the file, the
field (``templates[2].text``) and the problem.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from riskaudit.errors import ProbeError
from riskaudit.inputs.occupations import Table

# {occupation} -> "nurse"; {a_occupation} -> "a nurse" / "an engineer"; {A_occupation} -> "A nurse".
PLACEHOLDERS: tuple[str, ...] = ("occupation", "a_occupation", "A_occupation")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_WORD_RE = re.compile(r"^\S+$")

Gender = Literal["female", "male"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def field_error(field: str, problem: str) -> PydanticCustomError:
    """A validation error that names a sub-field (``templates[1].text``) in the one-line ProbeError."""
    return PydanticCustomError("spec_field", "{field}: {problem}", {"field": field, "problem": problem})


_field_error = field_error


def check_id(v: str, what: str = "id") -> str:
    if not _ID_RE.match(v):
        raise ValueError(f"{what} {v!r} must match {_ID_RE.pattern}")
    return v


def placeholders_of(text: str, allowed: Iterable[str]) -> list[str]:
    """The ``{name}`` placeholders of ``text`` in order; ValueError on malformed braces or unknown names."""
    allowed = tuple(allowed)
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"malformed braces in {text!r}: {exc}") from None
    names: list[str] = []
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            known = ", ".join("{" + p + "}" for p in allowed)
            raise ValueError(f"unknown placeholder {shown} in {text!r} (allowed: {known})")
        names.append(name)
    return names


def check_template_text(text: str, allowed: Iterable[str]) -> list[str]:
    """Shared checks of a template string (non-empty, no trailing whitespace); returns its placeholders."""
    if not text.strip():
        raise ValueError("empty template")
    if text != text.rstrip():
        raise ValueError("template must not end with whitespace (a continuation carries its leading space)")
    names = placeholders_of(text, allowed)
    if not set(names) & set(PLACEHOLDERS):
        raise ValueError(f"template {text!r} has no occupation placeholder")
    return names


def is_plain_fill(v: str) -> bool:
    """Whether ``v`` may be filled into a template as is: non-empty, no surrounding whitespace, no braces."""
    return bool(v.strip()) and v == v.strip() and "{" not in v and "}" not in v


def split_template(text: str, name: str) -> tuple[str, str]:
    """Split a (validated) template at the first ``{name}``: two format strings, before and after it."""
    before: list[str] = []
    after: list[str] = []
    found = False
    for literal, field, _, _ in string.Formatter().parse(text):
        (after if found else before).append(literal.replace("{", "{{").replace("}", "}}"))
        if field is None:
            continue
        if field == name and not found:
            found = True
            continue
        (after if found else before).append("{" + field + "}")
    if not found:
        raise ValueError(f"no {{{name}}} in {text!r}")
    return "".join(before), "".join(after)


def noun_values(word: str, key: str = "occupation") -> dict[str, str]:
    """``{key}``, ``{a_key}`` ("a nurse" / "an engineer") and ``{A_key}`` ("A nurse") for one noun."""
    article = "an" if word[:1].lower() in tuple("aeiou") else "a"
    return {key: word, f"a_{key}": f"{article} {word}", f"A_{key}": f"{article.capitalize()} {word}"}


def stereotype_gender(pct_female: float) -> Gender | None:
    """The majority gender of an occupation by its % female (None at exactly 50%)."""
    if pct_female > 50.0:
        return "female"
    if pct_female < 50.0:
        return "male"
    return None


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


class TemplateBase(_Strict):
    """What every template kind shares: an ``id`` and a ``text`` whose placeholders are checked.

    A kind sets ``placeholders`` (the names its text may use) and adds its own checks of the placeholders
    in :meth:`check_names`; ``id_label`` names the id in error messages.
    """

    id_label: ClassVar[str] = "template id"
    placeholders: ClassVar[tuple[str, ...]] = PLACEHOLDERS

    id: str
    text: str

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        return check_id(v, cls.id_label)

    @field_validator("text")
    @classmethod
    def _check_text(cls, v: str) -> str:
        cls.check_names(v, check_template_text(v, cls.placeholders))
        return v

    @classmethod
    def check_names(cls, text: str, names: list[str]) -> None:
        """Kind-specific checks of the placeholders ``names`` of ``text`` (raise ValueError); none by default."""


class OccupationTemplate(TemplateBase):
    """A template whose only placeholders are the occupation's."""

    def render(self, occupation: str) -> str:
        """The text for one occupation."""
        return self.text.format(**noun_values(occupation))


class Template(OccupationTemplate):
    """A context the pronoun continues; ``slot`` names the grammatical form(s) that may come next.

    A slot may list several forms where several are grammatical (after "told", both "told her/him"
    and "told her/his ..." fit; "her" serves both, so the male side must sum "him" and "his").
    """

    slot: tuple[str, ...] = Field(min_length=1)
    note: str = ""  # the shape: where the pronoun falls relative to the occupation

    @field_validator("slot", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v


class ProbeSettings(_Strict):
    bootstrap_resamples: int = Field(default=2000, ge=10, le=100_000)
    seed: int = Field(default=0, ge=0)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    occupation_table: Table = "bls2015"


class SpecBase(_Strict):
    """Fields every probe definition has; subclasses add ``kind`` (a Literal) and their own content."""

    id: str
    version: int = Field(ge=1)
    description: str
    provenance: str = ""
    settings: ProbeSettings = ProbeSettings()

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        return check_id(v, "probe id")

    def canonical_json(self) -> str:
        """Sorted-key compact JSON of the whole spec (the input of :meth:`content_hash`)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def content_hash(self) -> str:
        """sha256 hex digest of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


def unique_ids(ids: Sequence[str], field: str) -> None:
    """Raise a field error naming the first duplicate id (``field`` like ``templates``)."""
    seen: set[str] = set()
    for i, tid in enumerate(ids):
        if tid in seen:
            raise _field_error(f"{field}[{i}].id", f"duplicate id {tid!r}")
        seen.add(tid)


class UniqueIdsSpec(SpecBase):
    """A spec whose lists named in ``id_lists`` hold items (templates, prompts) with unique ids."""

    id_lists: ClassVar[tuple[str, ...]] = ("templates",)

    @model_validator(mode="after")
    def _check_unique_ids(self) -> Self:
        for field in self.id_lists:
            unique_ids([item.id for item in getattr(self, field)], field)
        return self


class PronounProbeSpec(SpecBase):
    """A pronoun-gap probe: gap g(o,t) = log P(female pronoun | ctx) − log P(male pronoun | ctx)."""

    kind: Literal["pronoun"] = "pronoun"
    pronouns: PronounSets
    templates: list[Template] = Field(min_length=1)

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


# --------------------------------------------------------------------------------------------- YAML loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
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


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file (safe loader, duplicate keys rejected); any problem is a one-line ProbeError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeError(_one_line(f"{p}: cannot read probe definition: {exc}")) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProbeError(_one_line(f"{p}: invalid YAML{where}: {problem}")) from None


SpecT = TypeVar("SpecT", bound=SpecBase)


def parse_spec(spec_type: type[SpecT], data: Any, source: str) -> SpecT:
    """Validate already-parsed YAML against ``spec_type``; ``source`` names the file in the error."""
    if not isinstance(data, dict):
        raise ProbeError(f"{source}: (top level): expected a mapping, got {type(data).__name__}")
    try:
        return spec_type.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        extra = len(errors) - 1
        more = f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra else ""
        raise ProbeError(_one_line(f"{source}: {_describe(errors[0])}{more}")) from None


def load_spec(spec_type: type[SpecT], path: str | Path) -> SpecT:
    """Read and validate a probe YAML file of one kind; any problem is a one-line :class:`ProbeError`."""
    return parse_spec(spec_type, read_yaml(path), str(Path(path)))


def parse_probe_spec(data: Any, source: str) -> PronounProbeSpec:
    """Validate an already-parsed pronoun probe definition."""
    return parse_spec(PronounProbeSpec, data, source)


def load_probe_spec(path: str | Path) -> PronounProbeSpec:
    """Read and validate a pronoun probe YAML file; any problem is a one-line :class:`ProbeError`."""
    return load_spec(PronounProbeSpec, path)
