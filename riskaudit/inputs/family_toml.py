"""User families from TOML files::

    name = "my-family"             # optional: defaults to the file's stem
    description = "..."            # optional
    flops_basis = "total"          # or "nonembedding" (which N enters 6·N·D); default "total"
    tokens_per_step = 2097152      # optional: needed for `--revisions` ("stepN" → N × tokens_per_step)
    add_bos = "auto"               # optional: "yes" | "no" | "auto" (BOS convention; also per member)
    params_source = "counted"      # optional: "counted" (default) | "declared": which parameter count the
                                   # report and the analysis use (also per member)
    benchmark_data = ["./benchmarks"]  # optional: directories of the canonical benchmarks' official files
                                   # (as --benchmark-data: DIR/<benchmark>/<file> or DIR/<file>; relative
                                   # to this file), searched after the command line's

    [[members]]                    # one table per member, listed in the order you want them
    name = "small"                 # unique within the family; no "@"
    source = "EleutherAI/pythia-70m"   # hub id, or a local path (see below)
    revision = "step143000"        # optional hub revision
    params = 70426624              # optional: counted from the loaded weights when absent; a declared
                                   # count more than 1% off the weights' is reported beside it, with a note
    params_nonembedding = 18915328 # optional
    tokens = 299892736000          # training tokens seen; or `step` (+ `tokens_per_step` here or
                                   # on the family); `step` is inferred from a "stepN" revision
    replicate_of = "small"         # optional: members sharing this label are seed replicates of one size;
                                   # the analysis averages them and uses their spread as a noise floor
    notes = "..."                  # optional

Numbers may also be written as strings with a K/M/B/T suffix ("70M", "300B"). A ``source`` is a local
path when it is absolute, starts with "." or "~", has more than one "/", or exists relative to the
TOML file's directory (relative paths resolve against that directory); otherwise it is a hub id.

Revisions of a TOML family need the family-level ``tokens_per_step`` (see :mod:`riskaudit.inputs.revisions`).
Every problem raises :class:`~riskaudit.errors.FamilyError` with a one-line message.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from riskaudit.errors import FamilyError
from riskaudit.inputs.family_spec import Family, FlopsBasis, ModelSpec, ParamsSource, condense
from riskaudit.inputs.quantities import parse_quantity
from riskaudit.inputs.revisions import expand_toml, normalise_revisions, parse_step
from riskaudit.inputs.training_data import TrainingData
from riskaudit.models.base import AddBos

__all__ = ["load_family_toml"]


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
    params_source: ParamsSource | None = None

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
    params_source: ParamsSource = "counted"
    members: list[_TomlMember] = Field(min_length=1)
    training_data: dict[str, Any] | None = None
    benchmark_data: list[str] = []

    @field_validator("tokens_per_step", mode="before")
    @classmethod
    def _ints(cls, value: Any) -> Any:
        return _int_before(value)



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
        raise FamilyError(f"{label}: {condense(exc, data)}") from exc

    name = spec.name or path.stem
    base = path.parent.resolve()
    seen: set[str] = set()
    members: list[tuple[ModelSpec, bool]] = []
    for m in spec.members:
        if m.name in seen:
            raise FamilyError(f"{label}: member {m.name!r}: duplicate member name")
        seen.add(m.name)
        step = m.step if m.step is not None else (parse_step(m.revision) if m.revision else None)
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
                    params_source=m.params_source or spec.params_source,
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
        benchmark_data=_toml_benchmark_data(spec.benchmark_data, base, label),
    )
    wanted = normalise_revisions(revisions or [])
    if not wanted:
        return family
    if spec.tokens_per_step is None:
        raise FamilyError(f"{label}: field 'tokens_per_step': required on the family to use --revisions")
    local = [s.name for s, is_local in members if is_local]
    if local:
        raise FamilyError(f"{label}: member {local[0]!r} has a local source: --revisions needs hub members")
    return expand_toml(family, wanted, spec.tokens_per_step, label)


def _toml_training_data(table: dict[str, Any] | None, base: Path, label: str) -> TrainingData | None:
    """A TOML ``[training_data]`` table (field names of TrainingData); local paths resolve against ``base``."""
    if table is None:
        return None
    try:
        decl = TrainingData.model_validate(table)
    except ValidationError as exc:
        raise FamilyError(f"{label}: training_data: {condense(exc, table)}") from exc
    update: dict[str, str] = {}
    if decl.canaries is not None:
        update["canaries"] = _resolve_source(decl.canaries, base)[0]
    source, is_local = _resolve_source(decl.dataset, base)
    if is_local:
        update["dataset"] = source
    return decl.model_copy(update=update) if update else decl


def _toml_benchmark_data(dirs: list[str], base: Path, label: str) -> list[str]:
    """The ``benchmark_data`` directories, absolute (relative ones against ``base``); each must exist."""
    out = []
    for raw in dirs:
        path = Path(os.path.expanduser(raw))
        path = path if path.is_absolute() else (base / path).resolve()
        if not path.is_dir():
            raise FamilyError(
                f"{label}: benchmark_data: {raw}: no such directory (it holds the benchmarks' official files)"
            )
        out.append(str(path))
    return out
