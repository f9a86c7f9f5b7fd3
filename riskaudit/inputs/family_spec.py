"""What a family is: :class:`Family`, an ordered list of :class:`ModelSpec` members, and their training FLOPs.

FLOPs follow 6·N·D (Kaplan et al. 2020). When D (training tokens) is unknown — GPT-2 — the family
still lists but its FLOPs are ``None`` (``Family.flops_known`` is False). Families are read by
:mod:`riskaudit.inputs.families` (built-in names, TOML files, revisions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from riskaudit.errors import FamilyError
from riskaudit.inputs.training_data import TrainingData
from riskaudit.models.base import AddBos

__all__ = ["FLOPS_BASES", "PARAMS_TOLERANCE", "Family", "FlopsBasis", "ModelSpec", "ParamsSource", "condense"]

FlopsBasis = Literal["total", "nonembedding"]
FLOPS_BASES: tuple[str, ...] = ("total", "nonembedding")
# Which parameter count a scan reports and analyses: the one counted from the loaded weights (default), or the
# one the family declares (family TOML `params_source = "declared"`).
ParamsSource = Literal["counted", "declared"]
PARAMS_TOLERANCE = 0.01  # declared and counted totals further apart than this (relative) are both reported


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
    params_source: ParamsSource = "counted"  # which parameter count the report and the analysis use

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
    # directories holding the canonical benchmarks' official files (family TOML `benchmark_data`), searched
    # after each --benchmark-data DIR; absolute paths
    benchmark_data: list[str] = []

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


def condense(exc: ValidationError, data: Any) -> str:
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
