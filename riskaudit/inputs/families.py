"""Model families: the built-in table, user TOML families, checkpoints (revisions) as a second axis.

Built-in families come from ``riskaudit/data/families.tsv`` (a verbatim copy of the sourced table):
pythia, pythia-deduped, gpt2, gpt-neo, gpt-j, opt, cerebras-gpt, olmo, olmo-2, smollm2, qwen2.5, with
members in increasing size order. GPT-J is its own one-member family "gpt-j" (as labelled in the table:
a different architecture and training run from GPT-Neo, though the same tokenizer and corpus). The
``demo`` family is read lazily from the shipped manifest ``riskaudit/zoo/demo/manifest.json``.

Numbers in the table are messy strings ("0.49B", "~180B (corpus size; ...)", "2.22E+09 Pile",
"NA (not disclosed)"); :func:`parse_quantity` reads the leading number. The original string is kept
in ``ModelSpec.notes`` whenever it is more than a bare number, "~" marks the spec ``approximate``,
and the table's source column becomes ``ModelSpec.source_ref``.

FLOPs follow 6·N·D (Kaplan et al. 2020). When D (training tokens) is unknown — GPT-2 — the family
still lists but its FLOPs are ``None`` (``Family.flops_known`` is False).

User families are TOML files::

    name = "my-family"             # optional: defaults to the file's stem
    description = "..."            # optional
    flops_basis = "total"          # or "nonembedding" (which N enters 6·N·D); default "total"
    tokens_per_step = 2097152      # optional: needed for `--revisions` ("stepN" → N × tokens_per_step)
    add_bos = "auto"               # optional: "yes" | "no" | "auto" (BOS convention; also per member)

    [[members]]                    # one table per member, listed in the order you want them
    name = "small"                 # unique within the family; no "@"
    source = "EleutherAI/pythia-70m"   # hub id, or a local path (see below)
    revision = "step143000"        # optional hub revision
    params = 70426624              # optional: counted from the loaded weights when absent
    params_nonembedding = 18915328 # optional
    tokens = 299892736000          # training tokens seen; or `step` (+ `tokens_per_step` here or
                                   # on the family); `step` is inferred from a "stepN" revision
    replicate_of = "small"         # optional: members sharing this label are seed replicates of one size;
                                   # the analysis averages them and uses their spread as a noise floor
    notes = "..."                  # optional

Numbers may also be written as strings with a K/M/B/T suffix ("70M", "300B"). A ``source`` is a local
path when it is absolute, starts with "." or "~", has more than one "/", or exists relative to the
TOML file's directory (relative paths resolve against that directory); otherwise it is a hub id.

Revisions (``load_family(name, revisions=[...])``) expand each member into one spec per checkpoint,
named like "70m@step1000", sorted by step; "main" (the final weights) keeps the member's own name, so it
is the same member, with the same store units, as without ``--revisions``:

* pythia / pythia-deduped: any published checkpoint (step0, 1, 2, 4, ..., 512, 1000..143000 every
  1000, or "main" = step143000); tokens seen = step × 2,097,152 (1024 sequences × 2048 tokens per
  step; Biderman et al. 2023).
* demo: the manifest's checkpoint revisions (plus "main" = final); they apply to the member(s) that
  have checkpoints, the other members stay at their final weights.
* a TOML family: needs the family-level ``tokens_per_step``; "main" keeps each member as declared
  (its own ``revision`` and ``tokens``); members with a local source cannot take revisions.

Every problem raises :class:`~riskaudit.errors.FamilyError` with a one-line message.
"""

from __future__ import annotations

import csv
import os
import re
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from riskaudit import resources
from riskaudit.errors import FamilyError
from riskaudit.inputs.training_data import DEMO_DATASET, PYTHIA_DEDUPED_DATA, PYTHIA_STANDARD_DATA, TrainingData
from riskaudit.models.base import AddBos

__all__ = [
    "BUILTIN_FAMILY_NAMES",
    "FLOPS_BASES",
    "PYTHIA_TOKENS_PER_STEP",
    "Family",
    "FlopsBasis",
    "ModelSpec",
    "ParsedQuantity",
    "builtin_families",
    "builtin_family_names",
    "demo_family",
    "load_family",
    "load_family_toml",
    "parse_quantity",
    "pythia_checkpoint_steps",
    "read_family_table",
]

FlopsBasis = Literal["total", "nonembedding"]
FLOPS_BASES: tuple[str, ...] = ("total", "nonembedding")

PYTHIA_TOKENS_PER_STEP = 1024 * 2048  # 2,097,152 tokens per optimizer step (Biderman et al. 2023)
PYTHIA_FINAL_STEP = 143_000

# Families of the table, in display order; GPT-J is kept apart from GPT-Neo as the table labels it.
_TABLE_FAMILIES: dict[str, str] = {
    "pythia": "EleutherAI Pythia (standard Pile, 300B tokens); 154 checkpoints per member",
    "pythia-deduped": "EleutherAI Pythia trained on the deduplicated Pile (~1.5 epochs, 300B tokens)",
    "gpt2": "OpenAI GPT-2 (WebText); training tokens not disclosed, so FLOPs are unknown",
    "gpt-neo": "EleutherAI GPT-Neo (Pile)",
    "gpt-j": "EleutherAI GPT-J 6B (Pile); a one-member family, separate from GPT-Neo",
    "opt": "Meta OPT (~180B-token corpus); tokens seen not disclosed per model, FLOPs approximate",
    "cerebras-gpt": "Cerebras-GPT (Pile, Chinchilla-style 20 tokens/parameter)",
    "olmo": "AI2 OLMo (Dolma); mixed releases of 1B and 7B",
    "olmo-2": "AI2 OLMo 2",
    "smollm2": "Hugging Face SmolLM2",
    "qwen2.5": "Alibaba Qwen2.5 base models (parameter counts rounded as on the cards; up to 18T tokens)",
}
DEMO_FAMILY = "demo"
BUILTIN_FAMILY_NAMES: tuple[str, ...] = (*_TABLE_FAMILIES, DEMO_FAMILY)
_PYTHIA_FAMILIES = frozenset({"pythia", "pythia-deduped"})
_TRAINING_DATA: dict[str, TrainingData] = {"pythia": PYTHIA_STANDARD_DATA, "pythia-deduped": PYTHIA_DEDUPED_DATA}


# --------------------------------------------------------------------------------------------------
# Specs


class ModelSpec(BaseModel):
    """One member of a family (or one checkpoint of a member).

    FLOPs follow the 6·N·D approximation (Kaplan et al. 2020): N = params, D = training tokens seen.
    ``flops`` uses the family's ``flops_basis`` ("total" or "nonembedding" parameters).
    """

    model_config = ConfigDict(frozen=True)

    family: str
    name: str  # short member label, e.g. "70m" or "demo-50k"; with a revision: "70m@step1000"
    source: str  # hub id ("EleutherAI/pythia-70m") or local directory path
    revision: str | None = None  # for a local source (demo checkpoints) only a label: source is the dir
    params_total: int | None = None
    params_nonembedding: int | None = None
    train_tokens: float | None = None  # tokens seen at this revision
    step: int | None = None  # training step, when the revision is a checkpoint
    notes: str = ""
    source_ref: str = ""  # where the numbers come from
    approximate: bool = False  # some number behind this spec is approximate ("~" in the source)
    replicate_of: str | None = None  # members sharing this label are seed replicates of one size
    add_bos: AddBos | None = None  # the family TOML's BOS convention (None: the scan's --add-bos)

    @property
    def flops_total(self) -> float | None:
        """6 · params_total · train_tokens, or None when either is unknown."""
        return _six_nd(self.params_total, self.train_tokens)

    @property
    def flops_nonembedding(self) -> float | None:
        """6 · params_nonembedding · train_tokens, or None when either is unknown."""
        return _six_nd(self.params_nonembedding, self.train_tokens)

    def flops(self, basis: str = "total") -> float | None:
        """Training FLOPs on the given parameter basis ("total" or "nonembedding")."""
        if basis == "total":
            return self.flops_total
        if basis == "nonembedding":
            return self.flops_nonembedding
        raise FamilyError(f"unknown FLOPs basis {basis!r}: expected one of {', '.join(FLOPS_BASES)}")

    @property
    def display_name(self) -> str:
        """``family/name``, e.g. "pythia/70m@step1000"."""
        return f"{self.family}/{self.name}"


class Family(BaseModel):
    """A named, ordered list of members; ``flops_basis`` picks the N of 6·N·D."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    flops_basis: str = "total"  # "total" | "nonembedding": which N enters 6·N·D
    members: list[ModelSpec]
    training_data: TrainingData | None = None  # audited for memorization by default (None: not declared)

    @field_validator("flops_basis")
    @classmethod
    def _check_basis(cls, value: str) -> str:
        if value not in FLOPS_BASES:
            raise ValueError(f"flops_basis must be one of {', '.join(FLOPS_BASES)}, not {value!r}")
        return value

    def member_flops(self, member: ModelSpec) -> float | None:
        """The member's training FLOPs on this family's basis (None when unknown)."""
        return member.flops(self.flops_basis)

    @property
    def flops_known(self) -> bool:
        """True when every member's FLOPs are known on this family's basis."""
        return all(self.member_flops(m) is not None for m in self.members)

    def select(self, names: Sequence[str]) -> Family:
        """The family restricted to ``names``, in family order. A plain member name selects the member with
        every checkpoint it was expanded into (``--members demo-5.8m --revisions ...``); ``name@main`` is the
        plain name (the same weights). FamilyError for a name that matches nothing."""
        keep: set[str] = set()
        for raw in names:
            name = raw.strip()
            if name.endswith("@main"):  # exactly the final weights
                name = name.removesuffix("@main")
                hits = [m.name for m in self.members if m.name == name]
            else:
                hits = [m.name for m in self.members if m.name == name or m.name.partition("@")[0] == name]
            if not hits:
                self.member(name)  # raises with the list of members
            keep.update(hits)
        return self.model_copy(update={"members": [m for m in self.members if m.name in keep]})

    def member(self, name: str) -> ModelSpec:
        """The member called ``name`` (FamilyError when absent)."""
        for m in self.members:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.members)
        raise FamilyError(f"family {self.name!r} has no member {name!r}; members: {known}")


def _six_nd(params: int | None, tokens: float | None) -> float | None:
    if params is None or tokens is None:
        return None
    return 6.0 * params * tokens


# --------------------------------------------------------------------------------------------------
# Messy numbers


@dataclass(frozen=True)
class ParsedQuantity:
    """A number read from a messy string: value (None for NA), approximate flag, the original text."""

    value: float | None
    approximate: bool
    raw: str
    remark: str  # whatever followed the number, stripped ("(UNVERIFIED)", "Pile (20 tok/param)")

    @property
    def is_bare(self) -> bool:
        """True when the string was just a number (nothing worth keeping in notes)."""
        return not self.approximate and not self.remark and self.value is not None

    def as_int(self) -> int | None:
        """The value rounded to an integer (parameter counts)."""
        return None if self.value is None else round(self.value)


_SUFFIXES: dict[str, int] = {
    "k": 10**3,
    "thousand": 10**3,
    "m": 10**6,
    "million": 10**6,
    "b": 10**9,
    "g": 10**9,
    "billion": 10**9,
    "t": 10**12,
    "trillion": 10**12,
}
_NUMBER_RE = re.compile(
    r"""^\s*(?P<approx>[~≈])?\s*
    (?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)
    (?P<exp>[eE][+-]?\d+)?
    (?:(?P<word>\s*(?:thousand|million|billion|trillion))\b|(?P<letter>[KkMmBbGgTt])(?![A-Za-z]))?
    (?P<rest>.*)$""",
    re.VERBOSE | re.DOTALL | re.IGNORECASE,
)
_NA_RE = re.compile(r"^\s*(?:(?:n/?a|nan|none|null|unknown|-|—|\?)(?![A-Za-z0-9])|$)", re.IGNORECASE)


def parse_quantity(text: str) -> ParsedQuantity:
    """Read the leading number of ``text`` ("0.49B", "2.22E+09 Pile", "~180B (...)", "NA (...)").

    A K/M/B/T suffix (or thousand/million/billion/trillion) scales the number, thousands separators
    are allowed, "~" marks it approximate, and NA/N/A/unknown/empty gives ``value=None``. Raises
    ValueError when the text neither starts with a number nor says NA.
    """
    match = _NUMBER_RE.match(text)
    if match is None:
        if _NA_RE.match(text):
            rest = _NA_RE.sub("", text, count=1).strip()
            return ParsedQuantity(value=None, approximate=False, raw=text, remark=rest)
        raise ValueError(f"no leading number in {text!r}")
    try:
        value = Decimal(match["num"].replace(",", "") + (match["exp"] or ""))
    except InvalidOperation as exc:  # pragma: no cover - the regex only admits valid decimals
        raise ValueError(f"bad number in {text!r}") from exc
    suffix = (match["word"] or match["letter"] or "").strip().lower()
    if suffix:
        value *= _SUFFIXES[suffix]
    return ParsedQuantity(value=float(value), approximate=bool(match["approx"]), raw=text, remark=match["rest"].strip())


# --------------------------------------------------------------------------------------------------
# The built-in table


def _table_path() -> Path:
    return resources.package_data_dir() / "families.tsv"


def read_family_table(path: Path | None = None) -> list[ModelSpec]:
    """Every row of the families table as a ModelSpec (table order; FamilyError on a bad row)."""
    path = path or _table_path()
    return list(_read_table_cached(str(path)))


@lru_cache(maxsize=4)
def _read_table_cached(path: str) -> tuple[ModelSpec, ...]:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    except OSError as exc:
        raise FamilyError(f"cannot read the families table {path}: {exc.strerror or exc}") from exc
    specs = []
    for lineno, row in enumerate(rows, start=2):
        try:
            specs.append(_row_to_spec(row))
        except (KeyError, ValueError) as exc:
            raise FamilyError(f"{path}:{lineno}: bad row: {exc}") from exc
    return tuple(specs)


def _row_to_spec(row: dict[str, str]) -> ModelSpec:
    fields = {col: parse_quantity(row[col]) for col in ("params_total", "params_nonembedding", "train_tokens")}
    remarks = [f"{col} as published: {q.raw.strip()!r}" for col, q in fields.items() if not q.is_bare]
    if fields["train_tokens"].value is None:
        remarks.append("training tokens unknown: FLOPs unknown")
    approximate = any(q.approximate for q in fields.values())
    if approximate:
        remarks.append("approximate ('~') numbers")
    notes = "; ".join(part for part in (row["notes"].strip(), *remarks) if part)
    return ModelSpec(
        family=row["family"].strip(),
        name=row["member"].strip(),
        source=row["hf_id"].strip(),
        params_total=fields["params_total"].as_int(),
        params_nonembedding=fields["params_nonembedding"].as_int(),
        train_tokens=fields["train_tokens"].value,
        notes=notes,
        source_ref=row["source"].strip(),
        approximate=approximate,
    )


def _size_key(spec: ModelSpec) -> tuple[bool, int]:
    return (spec.params_total is None, spec.params_total or 0)


def _table_families() -> dict[str, Family]:
    by_family: dict[str, list[ModelSpec]] = {}
    for spec in read_family_table():
        by_family.setdefault(spec.family, []).append(spec)
    names = [*_TABLE_FAMILIES, *sorted(set(by_family) - set(_TABLE_FAMILIES))]
    return {
        name: Family(
            name=name,
            description=_TABLE_FAMILIES.get(name, ""),
            members=sorted(by_family[name], key=_size_key),  # stable: ties keep table order
            training_data=_TRAINING_DATA.get(name),
        )
        for name in names
        if name in by_family
    }


def builtin_family_names() -> list[str]:
    """Names of all built-in families, "demo" included (whether or not it is built)."""
    extra = sorted({s.family for s in read_family_table()} - set(_TABLE_FAMILIES))
    return [*_TABLE_FAMILIES, *extra, DEMO_FAMILY]


def builtin_families() -> dict[str, Family]:
    """All built-in families by name; "demo" only when its manifest exists (see :func:`demo_family`)."""
    families = _table_families()
    if (resources.demo_dir() / "manifest.json").is_file():
        families[DEMO_FAMILY] = demo_family()
    return families


# --------------------------------------------------------------------------------------------------
# Revisions


def pythia_checkpoint_steps() -> tuple[int, ...]:
    """Pythia's 154 published checkpoint steps: 0, 1, 2, 4, ..., 512, then 1000..143000 every 1000."""
    return (0, *(2**i for i in range(10)), *range(1000, PYTHIA_FINAL_STEP + 1, 1000))


_STEP_RE = re.compile(r"^step(\d+)$")


def _parse_step(revision: str) -> int | None:
    match = _STEP_RE.match(revision.strip())
    return int(match.group(1)) if match else None


def _normalise_revisions(revisions: Sequence[str]) -> list[str]:
    """Strip, drop empties and duplicates (first occurrence wins)."""
    seen: list[str] = []
    for rev in revisions:
        rev = rev.strip()
        if rev and rev not in seen:
            seen.append(rev)
    return seen


def _expand_pythia(family: Family, revisions: Sequence[str]) -> Family:
    valid = set(pythia_checkpoint_steps())
    steps: dict[int, str] = {}
    for rev in revisions:
        step = PYTHIA_FINAL_STEP if rev == "main" else _parse_step(rev)
        if step is None or step not in valid:
            raise FamilyError(
                f"{family.name} has no checkpoint {rev!r}: published checkpoints are step0, step1, step2, "
                f"step4, ..., step512 and step1000..step{PYTHIA_FINAL_STEP} every 1000 (or main)"
            )
        steps.setdefault(step, rev)
    members = [
        member.model_copy(
            update={
                # main is the member itself: the same name and revision as without --revisions, so the same
                # weights are the same store units and `diff` sees the same member
                "name": member.name if label == "main" else f"{member.name}@{label}",
                "revision": None if label == "main" else label,
                "step": step,
                "train_tokens": float(step * PYTHIA_TOKENS_PER_STEP),
            }
        )
        for member in family.members
        for step, label in sorted(steps.items())
    ]
    return family.model_copy(update={"members": members})


# --------------------------------------------------------------------------------------------------
# The demo family


def demo_family(revisions: Sequence[str] | None = None, demo_dir: Path | None = None) -> Family:
    """The demo family from ``<demo_dir>/manifest.json`` (default: the shipped demo directory).

    With ``revisions``, members that have checkpoints are expanded (``main`` = final weights); the
    others stay at their final weights.
    """
    from riskaudit.inputs.zoo_manifest import DemoManifest  # lazy: the zoo is optional at import time

    root = (demo_dir or resources.demo_dir()).resolve()
    path = root / "manifest.json"
    if not path.is_file():
        raise FamilyError("the demo family is not built: run `riskaudit zoo build`")
    try:
        manifest = DemoManifest.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise FamilyError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise FamilyError(f"{path}: malformed demo manifest: {_condense(exc, {})}") from exc

    wanted = _normalise_revisions(revisions or [])
    available = {c.revision for m in manifest.members for c in m.checkpoints}
    unknown = [r for r in wanted if r != "main" and r not in available]
    if unknown:
        choices = ", ".join([*sorted(available, key=_revision_sort_key), "main"])
        raise FamilyError(f"demo has no checkpoint {unknown[0]!r}; available revisions: {choices}")

    ref = str(path)
    specs: list[ModelSpec] = []
    for m in sorted(manifest.members, key=lambda m: m.params_total):
        base = ModelSpec(
            family=DEMO_FAMILY,
            name=m.name,
            source=str(root / m.path),
            params_total=m.params_total,
            params_nonembedding=m.params_nonembedding,
            train_tokens=float(m.train_tokens),
            notes=f"d_model={m.d_model}, n_layers={m.n_layers}, n_heads={m.n_heads}, lr={m.lr:g}, "
            f"final_loss={m.final_loss:.4g}"
            + (f"; checkpoints: {', '.join(c.revision for c in m.checkpoints)}" if m.checkpoints else ""),
            source_ref=ref,
        )
        if not wanted or not m.checkpoints:
            specs.append(base)
            continue
        by_rev = {c.revision: c for c in m.checkpoints}
        expanded: list[ModelSpec] = []
        for rev in wanted:
            if rev == "main":  # the final weights: the member itself (same name, same store units)
                expanded.append(base)
            elif rev in by_rev:
                c = by_rev[rev]
                expanded.append(
                    base.model_copy(
                        update={
                            "name": f"{m.name}@{c.revision}",
                            "source": str(root / c.path),
                            "revision": c.revision,
                            "step": c.step,
                            "train_tokens": float(c.train_tokens),
                            "notes": f"checkpoint of {m.name} at step {c.step} ({c.train_tokens:,} tokens seen); "
                            f"d_model={m.d_model}, n_layers={m.n_layers}, n_heads={m.n_heads}; "
                            "training loss not recorded at checkpoints",
                        }
                    )
                )
        specs.extend(sorted(expanded, key=lambda s: s.train_tokens or 0.0))
    return Family(
        name=DEMO_FAMILY,
        description=f"tiny GPT-NeoX family trained locally on a synthetic corpus (seed {manifest.seed}, "
        f"vocab {manifest.vocab_size})",
        members=specs,
        training_data=TrainingData(
            dataset=DEMO_DATASET,
            sampling="uniform",
            canaries=str(root / "canaries.jsonl"),
            reference="riskaudit/zoo/corpus.py (the demo corpus: stories, planted canaries, held-out stories)",
        ),
    )


def _revision_sort_key(rev: str) -> tuple[int, str]:
    step = _parse_step(rev)
    return (step if step is not None else sys.maxsize, rev)


# --------------------------------------------------------------------------------------------------
# User TOML families


def _quantity_before(value: Any) -> Any:
    """Accept "70M"-style strings and whole floats (7e10) for numeric TOML fields."""
    if isinstance(value, str):
        parsed = parse_quantity(value)
        if parsed.value is None or parsed.remark or parsed.approximate:
            raise ValueError(f'expected a number (e.g. 70426624 or "70M"), got {value!r}')
        return parsed.value
    return value


def _int_before(value: Any) -> Any:
    value = _quantity_before(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class _TomlMember(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[^@\s]+$")
    source: str = Field(min_length=1)
    revision: str | None = Field(default=None, min_length=1)
    params: int | None = Field(default=None, gt=0)
    params_nonembedding: int | None = Field(default=None, gt=0)
    tokens: float | None = Field(default=None, ge=0)
    step: int | None = Field(default=None, ge=0)
    tokens_per_step: int | None = Field(default=None, gt=0)
    replicate_of: str | None = Field(default=None, min_length=1, pattern=r"^[^@\s]+$")
    notes: str = ""
    add_bos: AddBos | None = None

    @field_validator("params", "params_nonembedding", "step", "tokens_per_step", mode="before")
    @classmethod
    def _ints(cls, value: Any) -> Any:
        return _int_before(value)

    @field_validator("tokens", mode="before")
    @classmethod
    def _floats(cls, value: Any) -> Any:
        return _quantity_before(value)


class _TomlFamily(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    name: str | None = Field(default=None, min_length=1)
    description: str = ""
    flops_basis: FlopsBasis = "total"
    tokens_per_step: int | None = Field(default=None, gt=0)
    add_bos: AddBos | None = None
    members: list[_TomlMember] = Field(min_length=1)
    training_data: dict[str, Any] | None = None

    @field_validator("tokens_per_step", mode="before")
    @classmethod
    def _ints(cls, value: Any) -> Any:
        return _int_before(value)


def _condense(exc: ValidationError, data: Any) -> str:
    """A pydantic ValidationError as one line: "member 'big' field 'tokens': must be ≥ 0; ..."."""
    parts = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "members" and isinstance(loc[1], int):
            index = loc[1]
            name = None
            members = data.get("members") if isinstance(data, dict) else None
            if isinstance(members, list) and index < len(members) and isinstance(members[index], dict):
                name = members[index].get("name")
            where = f"member {name!r}" if isinstance(name, str) else f"member #{index + 1}"
            loc = loc[2:]
        field = ".".join(str(p) for p in loc)
        if field:
            where = f"{where} field {field!r}" if where else f"field {field!r}"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return " ".join("; ".join(parts).split())  # collapse any newlines


def _resolve_source(source: str, base: Path) -> tuple[str, bool]:
    """(source, is_local): local paths become absolute, resolved against ``base``."""
    expanded = os.path.expanduser(source)
    looks_local = (
        os.path.isabs(expanded)
        or source.startswith((".", "~"))
        or source.count("/") > 1
        or "\\" in source
        or (base / source).exists()
    )
    if not looks_local:
        return source, False
    path = Path(expanded)
    return str(path if path.is_absolute() else (base / path).resolve()), True


def load_family_toml(path: str | Path, revisions: Sequence[str] | None = None) -> Family:
    """A user family from a TOML file (format in the module docstring); FamilyError when malformed."""
    path = Path(path)
    label = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FamilyError(f"family file not found: {label}") from exc
    except OSError as exc:
        raise FamilyError(f"cannot read family file {label}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise FamilyError(f"{label}: not UTF-8 text: {exc.reason}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise FamilyError(f"{label}: invalid TOML: {' '.join(str(exc).split())}") from exc
    try:
        spec = _TomlFamily.model_validate(data)
    except ValidationError as exc:
        raise FamilyError(f"{label}: {_condense(exc, data)}") from exc

    name = spec.name or path.stem
    base = path.parent.resolve()
    seen: set[str] = set()
    members: list[tuple[ModelSpec, bool]] = []
    for m in spec.members:
        if m.name in seen:
            raise FamilyError(f"{label}: member {m.name!r}: duplicate member name")
        seen.add(m.name)
        step = m.step if m.step is not None else (_parse_step(m.revision) if m.revision else None)
        per_step = m.tokens_per_step or spec.tokens_per_step
        tokens = m.tokens
        if tokens is None:
            if step is None or per_step is None:
                raise FamilyError(
                    f"{label}: member {m.name!r} field 'tokens': missing (give `tokens`, or `step` "
                    "with `tokens_per_step`)"
                )
            tokens = float(step * per_step)
        if m.params is not None and m.params_nonembedding is not None and m.params_nonembedding > m.params:
            raise FamilyError(f"{label}: member {m.name!r} field 'params_nonembedding': exceeds `params`")
        source, is_local = _resolve_source(m.source, base)
        members.append(
            (
                ModelSpec(
                    family=name,
                    name=m.name,
                    source=source,
                    revision=m.revision,
                    params_total=m.params,
                    params_nonembedding=m.params_nonembedding,
                    train_tokens=tokens,
                    step=step,
                    notes=m.notes,
                    source_ref=str(path.resolve()),
                    replicate_of=m.replicate_of,
                    add_bos=m.add_bos or spec.add_bos,
                ),
                is_local,
            )
        )
    family = Family(
        name=name,
        description=spec.description,
        flops_basis=spec.flops_basis,
        members=[s for s, _ in members],
        training_data=_toml_training_data(spec.training_data, base, label),
    )
    wanted = _normalise_revisions(revisions or [])
    if not wanted:
        return family
    if spec.tokens_per_step is None:
        raise FamilyError(f"{label}: field 'tokens_per_step': required on the family to use --revisions")
    local = [s.name for s, is_local in members if is_local]
    if local:
        raise FamilyError(f"{label}: member {local[0]!r} has a local source: --revisions needs hub members")
    return _expand_toml(family, wanted, spec.tokens_per_step, label)


def _toml_training_data(table: dict[str, Any] | None, base: Path, label: str) -> TrainingData | None:
    """A TOML ``[training_data]`` table (field names of TrainingData); local paths resolve against ``base``."""
    if table is None:
        return None
    try:
        decl = TrainingData.model_validate(table)
    except ValidationError as exc:
        raise FamilyError(f"{label}: training_data: {_condense(exc, table)}") from exc
    update: dict[str, str] = {}
    if decl.canaries is not None:
        update["canaries"] = _resolve_source(decl.canaries, base)[0]
    source, is_local = _resolve_source(decl.dataset, base)
    if is_local:
        update["dataset"] = source
    return decl.model_copy(update=update) if update else decl


def _expand_toml(family: Family, revisions: Sequence[str], tokens_per_step: int, label: str) -> Family:
    steps: list[tuple[int | None, str]] = []
    for rev in revisions:
        step = None if rev == "main" else _parse_step(rev)
        if rev != "main" and step is None:
            raise FamilyError(f"{label}: revision {rev!r}: expected 'stepN' or 'main'")
        steps.append((step, rev))
    members = []
    for member in family.members:
        expanded = []
        for step, rev in steps:
            if step is None:  # main: the member as declared (its own name and revision, if any)
                expanded.append(member)
            else:
                expanded.append(
                    member.model_copy(
                        update={
                            "name": f"{member.name}@{rev}",
                            "revision": rev,
                            "step": step,
                            "train_tokens": float(step * tokens_per_step),
                        }
                    )
                )
        members.extend(sorted(expanded, key=lambda s: s.train_tokens or 0.0))
    return family.model_copy(update={"members": members})


# --------------------------------------------------------------------------------------------------
# Entry point


def _is_family_path(name_or_path: str) -> bool:
    return (
        name_or_path.lower().endswith(".toml")
        or os.sep in name_or_path
        or "/" in name_or_path
        or Path(name_or_path).is_file()
    )


def load_family(name_or_path: str, revisions: list[str] | None = None) -> Family:
    """A built-in family by name, or a user family from a TOML file; ``revisions`` adds checkpoints."""
    wanted = _normalise_revisions(revisions or [])
    names = builtin_family_names()
    name = name_or_path.strip()
    if name not in names and name.lower() in names:
        name = name.lower()
    if name == DEMO_FAMILY:
        return demo_family(wanted)
    if name in names:
        family = _table_families()[name]
        if not wanted:
            return family
        if name in _PYTHIA_FAMILIES:
            return _expand_pythia(family, wanted)
        raise FamilyError(
            f"family {name!r} has no checkpoint schedule in riskaudit: revisions work with "
            f"{', '.join(sorted(_PYTHIA_FAMILIES))}, {DEMO_FAMILY}, or a TOML family with tokens_per_step"
        )
    if _is_family_path(name_or_path):
        return load_family_toml(name_or_path, wanted)
    raise FamilyError(
        f"unknown family {name_or_path!r}; known families: {', '.join(names)} (or a path to a .toml file)"
    )
