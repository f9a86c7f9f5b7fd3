"""What a family declares about its training data, so that scanning it audits memorization by default.

A declaration names a data set (a ``datasets`` hub id or local files; ``builtin:demo`` for the demo
family's shipped corpus), the column with each training sequence (text, or token ids used as given), how
to put rows in training order (``order_column``; absent: row order is training order), how the sequences
were batched, and how to sample them: ``first`` — the first k·batch_size sequences of training order, as
EleutherAI's Pythia memorization evals (Biderman et al. 2023) — or ``uniform`` — a seeded uniform sample.
A canary file (:mod:`riskaudit.probes.canaries`) may come with it.

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
# "Exploring the dataset"): EleutherAI/pile-{standard,deduped}-pythia-preshuffled hold it in GPT-NeoX's
# Megatron format (document.bin / document.idx, 2049-token sequences; step s trains on sequences
# s·1024 … s·1024 + 1023, as utils/batch_viewer.py reads them). pietrolesci/pile-deduped-pythia-preshuffled
# is the deduplicated one as parquet: uid (training position), batch_idx, token_ids (2049 ids per row).
PYTHIA_DEDUPED_DATA = TrainingData(
    dataset="pietrolesci/pile-deduped-pythia-preshuffled",
    config="default",
    column="token_ids",
    order_column="uid",
    batch_size=1024,
    reference="EleutherAI/pile-deduped-pythia-preshuffled as parquet (uid, batch_idx, token_ids); Biderman et al. 2023",
)
PYTHIA_STANDARD_DATA = TrainingData(
    dataset="EleutherAI/pile-standard-pythia-preshuffled",
    column="token_ids",
    order_column="uid",
    batch_size=1024,
    reference="github.com/EleutherAI/pythia (Exploring the dataset; utils/batch_viewer.py); Biderman et al. 2023. "
    "Published in Megatron format: convert it to parquet with columns uid and token_ids (one 2049-token "
    "sequence per row, uid = training position) and pass it with --data",
)
