"""The demo family's manifest (riskaudit/zoo/demo/manifest.json): what was trained, how, and where."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CheckpointEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    revision: str  # "step300"
    step: int
    train_tokens: int  # tokens seen at this step
    path: str  # relative to the demo directory


class MemberEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # "demo-50k"
    path: str  # relative to the demo directory; a HF model directory (config.json, model.safetensors, tokenizer)
    d_model: int
    n_layers: int
    n_heads: int
    lr: float
    params_total: int
    params_nonembedding: int
    train_tokens: int  # tokens seen (non-padding) over the whole run
    train_seconds: float
    final_loss: float
    checkpoints: list[CheckpointEntry] = []


class DemoManifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    seed: int
    vocab_size: int
    seq_len: int
    corpus_tokens: int
    tokenizer_path: str
    ground_truth_path: str
    members: list[MemberEntry]
    build_seconds: float
    verification: dict[str, object] = {}
