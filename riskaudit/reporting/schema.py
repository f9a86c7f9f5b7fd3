"""The JSON Schema of the report, generated from the pydantic models (the source of truth).

A copy is committed at ``reports/schema/report.schema.json``; a test fails when it drifts from the models.
Regenerate it with ``python -m riskaudit.reporting.schema`` (or
``riskaudit schema --out reports/schema/report.schema.json``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from riskaudit.reporting.report import SCHEMA_VERSION, Report

__all__ = ["COMMITTED_SCHEMA", "report_json_schema", "report_schema_text", "write_report_schema"]

COMMITTED_SCHEMA = Path(__file__).resolve().parents[2] / "reports" / "schema" / "report.schema.json"  # repo root


def report_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a report, with the schema version it describes."""
    schema = Report.model_json_schema(mode="validation")
    head: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "riskaudit report",
        "description": (
            f"A riskaudit scan report, schema_version {SCHEMA_VERSION}. Strict JSON: numbers are finite "
            "(no NaN or Infinity). Readers refuse a newer major version."
        ),
        "x-schema-version": SCHEMA_VERSION,
    }
    return {**head, **{k: v for k, v in schema.items() if k not in ("title", "description")}}


def report_schema_text() -> str:
    """The schema as stable, pretty-printed JSON text (what is committed)."""
    return json.dumps(report_json_schema(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_report_schema(path: Path = COMMITTED_SCHEMA) -> Path:
    """Write the schema to ``path`` (default: the committed copy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_schema_text(), encoding="utf-8")
    return path


if __name__ == "__main__":  # python -m riskaudit.reporting.schema [PATH]
    out = write_report_schema(Path(sys.argv[1]) if len(sys.argv) > 1 else COMMITTED_SCHEMA)
    print(out)
