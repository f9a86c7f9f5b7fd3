"""The memorization suite's definition (``probes/memorization.yaml``): settings as data, validated."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from riskaudit.errors import ProbeError
from riskaudit.resources import probe_data_dir

SPEC_FILE = "memorization.yaml"
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")

# --------------------------------------------------------------------------------------------- definition


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExtractionSettings(_Strict):
    prefix_len: int = Field(default=32, ge=1, le=8192)
    suffix_len: int = Field(default=32, ge=1, le=8192)
    n_documents: int = Field(default=1000, ge=1)
    n_heldout: int = Field(default=1000, ge=0)
    pool_factor: int = Field(default=10, ge=1)
    n_samples: int = Field(default=100, ge=1)
    document_boundary: bool = True


class MembershipSettings(_Strict):
    min_k_percent: float = Field(default=20.0, gt=0.0, le=100.0)
    fpr: float = Field(default=0.01, gt=0.0, lt=1.0)
    max_tokens: int = Field(default=256, ge=2)


class ExposureSettings(_Strict):
    n_candidates: int = Field(default=64, ge=3)
    exact_max_space: int = Field(default=1024, ge=2)
    max_canaries_per_dup: int | None = Field(default=None, ge=1)  # None: every canary


class DemoOverrides(_Strict):
    prefix_len: int | None = Field(default=None, ge=1)
    suffix_len: int | None = Field(default=None, ge=1)
    n_documents: int | None = Field(default=None, ge=1)
    n_heldout: int | None = Field(default=None, ge=0)
    n_candidates: int | None = Field(default=None, ge=3)
    max_canaries_per_dup: int | None = Field(default=None, ge=1)


class StatsSettings(_Strict):
    bootstrap_resamples: int = Field(default=2000, ge=10, le=100_000)
    seed: int = Field(default=0, ge=0)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)


class RunConfig(_Strict):
    """The settings one run uses (the spec with the demo overrides and the CLI's lengths applied)."""

    prefix_len: int
    suffix_len: int
    n_documents: int
    n_heldout: int
    pool_factor: int
    n_samples: int
    document_boundary: bool
    min_k_percent: float
    fpr: float
    max_tokens: int
    n_candidates: int
    exact_max_space: int
    max_canaries_per_dup: int | None
    bootstrap_resamples: int
    seed: int
    alpha: float


class MemorizationSpec(_Strict):
    """The memorization suite's definition (``probes/memorization.yaml``)."""

    id: str
    kind: Literal["memorization"] = "memorization"
    version: int = Field(ge=1)
    description: str
    provenance: str = ""
    extraction: ExtractionSettings = ExtractionSettings()
    membership: MembershipSettings = MembershipSettings()
    exposure: ExposureSettings = ExposureSettings()
    demo: DemoOverrides = DemoOverrides()
    settings: StatsSettings = StatsSettings()

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError(f"probe id {v!r} must match {_ID_RE.pattern}")
        return v

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def content_hash(self) -> str:
        """sha256 of the canonical definition (as the bias kinds' ``content_hash``)."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def resolve(
        self,
        demo: bool = False,
        prefix_len: int | None = None,
        suffix_len: int | None = None,
        n_candidates: int | None = None,
    ) -> RunConfig:
        """Settings for one run: demo overrides when ``demo``, then explicit values (``--prefix-len``,
        ``--exposure-candidates``)."""
        ex, d = self.extraction, self.demo

        def pick(explicit: int | None, demo_value: int | None, default: int) -> int:
            if explicit is not None:
                return explicit
            return demo_value if demo and demo_value is not None else default

        for name, v in (("prefix length", prefix_len), ("suffix length", suffix_len)):
            if v is not None and v < 1:
                raise ProbeError(f"probe {self.id}: {name} must be at least 1 token (got {v})")
        if n_candidates is not None and n_candidates < 3:
            raise ProbeError(f"probe {self.id}: --exposure-candidates must be at least 3 (got {n_candidates})")
        return RunConfig(
            prefix_len=pick(prefix_len, d.prefix_len, ex.prefix_len),
            suffix_len=pick(suffix_len, d.suffix_len, ex.suffix_len),
            n_documents=pick(None, d.n_documents, ex.n_documents),
            n_heldout=pick(None, d.n_heldout, ex.n_heldout),
            pool_factor=ex.pool_factor,
            n_samples=ex.n_samples,
            document_boundary=ex.document_boundary,
            min_k_percent=self.membership.min_k_percent,
            fpr=self.membership.fpr,
            max_tokens=self.membership.max_tokens,
            n_candidates=pick(n_candidates, d.n_candidates, self.exposure.n_candidates),
            exact_max_space=self.exposure.exact_max_space,
            max_canaries_per_dup=(
                d.max_canaries_per_dup
                if demo and d.max_canaries_per_dup is not None
                else self.exposure.max_canaries_per_dup
            ),
            bootstrap_resamples=self.settings.bootstrap_resamples,
            seed=self.settings.seed,
            alpha=self.settings.alpha,
        )


def default_spec_path() -> Path:
    return probe_data_dir() / SPEC_FILE


def load_memorization_spec(path: str | Path | None = None) -> MemorizationSpec:
    """Read and validate the suite's YAML (default: the shipped one); problems are one-line ProbeErrors."""
    p = Path(path) if path is not None else default_spec_path()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeError(" ".join(f"{p}: cannot read probe definition: {exc}".split())) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProbeError(" ".join(f"{p}: invalid YAML{where}: {problem}".split())) from None
    return parse_memorization_spec(data, str(p))


def parse_memorization_spec(data: Any, source: str) -> MemorizationSpec:
    """Validate an already-read definition; problems are one-line ProbeErrors naming ``source`` and the field."""
    if not isinstance(data, dict):
        raise ProbeError(f"{source}: (top level): expected a mapping, got {type(data).__name__}")
    try:
        return MemorizationSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        msg = " ".join(str(err["msg"]).removeprefix("Value error, ").split())
        raise ProbeError(f"{source}: {loc}: {msg}{more}") from None
