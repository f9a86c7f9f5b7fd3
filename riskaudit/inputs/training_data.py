"""What a family declares about its training data, so that scanning it audits memorization by default.

A declaration names a data set (a ``datasets`` hub id or local files; ``builtin:demo`` for the demo
family's shipped corpus), the column with each training sequence (text, or token ids used as given), how
to put rows in training order (``order_column``; absent: row order is training order), how the sequences
were batched, and how to sample them: ``first`` — the first k·batch_size sequences of training order, as
EleutherAI's Pythia memorization evals (Biderman et al. 2023) — or ``uniform`` — a seeded uniform sample.
A canary file (:mod:`riskaudit.inputs.canaries`) may come with it.

A family TOML declares it in a ``[training_data]`` table with these field names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEMO_DATASET", "PYTHIA_DEDUPED_DATA", "PYTHIA_STANDARD_DATA", "TrainingData"]

DEMO_DATASET = "builtin:demo"


class TrainingData(BaseModel):
    """A family's training data, as the family declares it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(min_length=1)  # hub id, local file / directory / glob, or builtin:demo
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    column: str | None = None  # text or token-id column (default: the first known name)
    order_column: str | None = None  # each row's position in training order (None: row order)
    dup_column: str | None = None  # times each sequence occurs in the training data
    label_column: str | None = None  # member / non-member labels, when the data holds held-out rows too
    batch_size: int | None = Field(default=None, ge=1)  # sequences per optimizer step
    sampling: Literal["first", "uniform"] = "first"
    layout: Literal["rows", "megatron"] = "rows"  # rows: a datasets table; megatron: GPT-NeoX document.idx/.bin
    packed: bool = False  # sequences are cut from a packed token stream: no document-boundary token before them
    canaries: str | None = None  # canary JSONL file planted in this data
    reference: str = ""  # where the declaration comes from

    def sampling_note(self, n: int) -> str:
        """How ``n`` sequences are drawn, for the report."""
        if self.sampling == "uniform":
            return f"a seeded uniform sample of {n} training sequences"
        if self.batch_size:
            k = -(-n // self.batch_size)
            return (
                f"the first {k}·{self.batch_size} = {k * self.batch_size} sequences of training order "
                "(as the Pythia memorization evals, Biderman et al. 2023)"
            )
        return f"the first {n} sequences of training order"


# Pythia's pre-tokenized, pre-shuffled training data (Biderman et al. 2023; github.com/EleutherAI/pythia,
# "Exploring the dataset"): EleutherAI/pile-{standard,deduped}-pythia-preshuffled, GPT-NeoX's Megatron format
# (document.idx and document-000NN-of-00020.bin byte shards); item i is the i-th 2049-token training sequence
# and step s trains on items s·1024 … s·1024 + 1023 (utils/batch_viewer.py). The memorization evals score
# the first 32 + 32 tokens of each sequence.
_PYTHIA_REFERENCE = (
    "{repo}: Megatron document.idx + document-*-of-00020.bin, item i = training sequence i (2049 tokens), "
    "1024 per step (github.com/EleutherAI/pythia utils/batch_viewer.py; Biderman et al. 2023)"
)
PYTHIA_STANDARD_DATA = TrainingData(
    dataset="EleutherAI/pile-standard-pythia-preshuffled",
    layout="megatron",
    packed=True,
    batch_size=1024,
    reference=_PYTHIA_REFERENCE.format(repo="EleutherAI/pile-standard-pythia-preshuffled"),
)
PYTHIA_DEDUPED_DATA = TrainingData(
    dataset="EleutherAI/pile-deduped-pythia-preshuffled",
    layout="megatron",
    packed=True,
    batch_size=1024,
    reference=_PYTHIA_REFERENCE.format(repo="EleutherAI/pile-deduped-pythia-preshuffled"),
)
