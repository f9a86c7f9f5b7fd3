"""The built-in families table: ``riskaudit/data/families.tsv`` (a verbatim copy of the sourced table).

Families: pythia, pythia-deduped, gpt2, gpt-neo, gpt-j, opt, cerebras-gpt, olmo, olmo-2, smollm2, qwen2.5,
with members in increasing size order. GPT-J is its own one-member family "gpt-j" (as labelled in the table:
a different architecture and training run from GPT-Neo, though the same tokenizer and corpus).

Numbers in the table are messy strings ("0.49B", "~180B (corpus size; ...)", "2.22E+09 Pile",
"NA (not disclosed)"); :func:`~riskaudit.inputs.quantities.parse_quantity` reads the leading number. The
original string is kept in ``ModelSpec.notes`` whenever it is more than a bare number, "~" marks the spec
``approximate``, and the table's source column becomes ``ModelSpec.source_ref``.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from riskaudit import resources
from riskaudit.errors import FamilyError
from riskaudit.inputs.family_spec import Family, ModelSpec
from riskaudit.inputs.quantities import parse_quantity
from riskaudit.inputs.training_data import PYTHIA_DEDUPED_DATA, PYTHIA_STANDARD_DATA, TrainingData

__all__ = ["TABLE_FAMILIES", "read_family_table", "table_families"]

# Families of the table, in display order; GPT-J is kept apart from GPT-Neo as the table labels it.
TABLE_FAMILIES: dict[str, str] = {
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
_TRAINING_DATA: dict[str, TrainingData] = {"pythia": PYTHIA_STANDARD_DATA, "pythia-deduped": PYTHIA_DEDUPED_DATA}


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


def table_families() -> dict[str, Family]:
    by_family: dict[str, list[ModelSpec]] = {}
    for spec in read_family_table():
        by_family.setdefault(spec.family, []).append(spec)
    names = [*TABLE_FAMILIES, *sorted(set(by_family) - set(TABLE_FAMILIES))]
    return {
        name: Family(
            name=name,
            description=TABLE_FAMILIES.get(name, ""),
            members=sorted(by_family[name], key=_size_key),  # stable: ties keep table order
            training_data=_TRAINING_DATA.get(name),
        )
        for name in names
        if name in by_family
    }
