"""Occupations and their share of women, from the project's sourced table ``riskaudit/data/occupations.tsv``.

Two figures are available per occupation:

- ``bls2015``: the % female that the bias datasets themselves ship — Winogender (Rudinger et al. 2018,
  BLS CPS 2015, a few 2016 lines) and WinoBias (Zhao et al. 2018, BLS CPS table cpsaat11; the paper's
  footnote says 2017). Where both datasets list an occupation, the Winogender row is used.
- ``bls2022``: the project's mapping of each occupation to a BLS CPS 2022 Table 11 line; occupations
  without a single line (or with a suppressed value) have no figure and are skipped.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from riskaudit.errors import ProbeError
from riskaudit.resources import package_data_dir

Table = Literal["bls2015", "bls2022"]
Dataset = Literal["winogender", "winobias"]

_DATASET_PREFERENCE: tuple[Dataset, ...] = ("winogender", "winobias")


class Occupation(BaseModel):
    """One occupation with its share of women (in percent, 0–100) and where that figure comes from."""

    model_config = ConfigDict(frozen=True)

    name: str
    pct_female: float = Field(ge=0.0, le=100.0)
    source: str
    dataset: Dataset  # the dataset whose row supplied the name (and, for bls2015, the figure)
    in_datasets: tuple[Dataset, ...] = ()  # every dataset that lists this occupation


def _table_path() -> Path:
    return package_data_dir() / "occupations.tsv"


def _read_rows() -> list[dict[str, str]]:
    with _table_path().open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _fmt(x: float) -> str:
    return f"{x:g}"


def _group_by_name(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Rows per occupation name (table order kept), each group sorted Winogender first."""
    groups: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault(row["occupation"].strip(), []).append(row)
    for group in groups.values():
        group.sort(key=lambda r: _DATASET_PREFERENCE.index(_dataset(r)))
    return groups


def _dataset(row: dict[str, str]) -> Dataset:
    ds = row["dataset"].strip()
    if ds == "winogender":
        return "winogender"
    if ds == "winobias":
        return "winobias"
    raise ProbeError(f"{_table_path()}: occupation {row['occupation']!r}: unknown dataset {ds!r}")


def _float_or_none(text: str) -> float | None:
    text = text.strip()
    if text in ("", "NA"):
        return None
    return float(text.replace(",", ""))


def all_occupation_names() -> list[str]:
    """Every occupation name in the table, once each, in table order (Winogender first, then WinoBias)."""
    return list(_group_by_name(_read_rows()))


def load_occupations(table: Table = "bls2015") -> tuple[list[Occupation], list[str]]:
    """Deduplicated occupations (one per name, table order) with their % female, plus notes for the report.

    ``bls2015`` uses the dataset figures (Rudinger et al. 2018 Winogender; Zhao et al. 2018 WinoBias),
    preferring the Winogender row when both list an occupation. ``bls2022`` uses the project's BLS CPS
    2022 mapping and skips occupations without a figure.
    """
    if table not in ("bls2015", "bls2022"):
        raise ProbeError(f"unknown occupation table {table!r} (known: bls2015, bls2022)")
    groups = _group_by_name(_read_rows())
    occupations: list[Occupation] = []
    notes: list[str] = []
    both: list[str] = []
    skipped: list[str] = []
    loose: list[str] = []
    for name, group in groups.items():
        first = group[0]
        in_datasets = tuple(dict.fromkeys(_dataset(r) for r in group))
        if table == "bls2015":
            pct = _float_or_none(first["pct_female"])
            if pct is None:
                skipped.append(name)
                continue
            source = first["source"].strip()
            if len(group) > 1:
                others = ", ".join(
                    f"{_dataset(r)} {_fmt(v)}" for r in group[1:] if (v := _float_or_none(r["pct_female"])) is not None
                )
                both.append(f"{name} ({_fmt(pct)}; {others})")
        else:
            pct = _float_or_none(first["bls2022_pct_female"])
            if pct is None:
                skipped.append(name)
                continue
            mapping = first["bls2022_mapping"].strip()
            source = f"BLS CPS 2022 Table 11: {first['bls2022_category'].strip()} (mapping: {mapping})"
            if not mapping.startswith(("exact", "close")):
                loose.append(name)
        occupations.append(
            Occupation(name=name, pct_female=pct, source=source, dataset=_dataset(first), in_datasets=in_datasets)
        )
    if both:
        notes.append(
            f"{len(both)} occupations are listed by both Winogender and WinoBias; used the Winogender "
            f"figure: {', '.join(both)}"
        )
    if table == "bls2015":
        notes.append(
            "bls2015 figures are those shipped with Winogender (BLS CPS 2015, some 2016) and WinoBias "
            "(BLS CPS, paper footnote 2017)"
        )
    if skipped:
        notes.append(f"skipped {len(skipped)} occupations with no {table} figure: {', '.join(skipped)}")
    if loose:
        notes.append(f"{len(loose)} occupations map to an aggregate or ambiguous BLS 2022 line: {', '.join(loose)}")
    return occupations, notes
