"""``riskaudit zoo build``: re-create the demo family (corpus, tokenizer, members, checkpoints) from a seed.

Everything is written into a staging directory next to the target and moved into place member by
member, so an interrupted build keeps the members it finished and a rerun resumes after them.
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from pydantic import BaseModel

from riskaudit.errors import RiskauditError
from riskaudit.inputs.occupations import load_occupations
from riskaudit.inputs.zoo_manifest import CheckpointEntry, DemoManifest, MemberEntry
from riskaudit.zoo.canary_plant import Canary, canary_format
from riskaudit.zoo.corpus import Corpus, CorpusConfig, build_corpus
from riskaudit.zoo.train import MemberConfig, TrainConfig, count_params, pack, train_member, train_tokenizer
from riskaudit.zoo.verify import bias_check, extraction_check

# Six GPT-NeoX members spaced ~3x apart in parameters (learning rates from DEMO-FAMILY-NOTES.md).
DEFAULT_MEMBERS: tuple[MemberConfig, ...] = (
    MemberConfig(name="demo-50k", d_model=12, n_layers=2, n_heads=2, lr=8e-3),
    MemberConfig(name="demo-150k", d_model=32, n_layers=2, n_heads=2, lr=6e-3),
    MemberConfig(name="demo-400k", d_model=64, n_layers=3, n_heads=4, lr=4e-3),
    MemberConfig(name="demo-1.3m", d_model=128, n_layers=4, n_heads=4, lr=3e-3),
    MemberConfig(name="demo-3m", d_model=192, n_layers=5, n_heads=6, lr=2e-3),
    MemberConfig(name="demo-5.8m", d_model=256, n_layers=6, n_heads=8, lr=2e-3),
)
CHECKPOINT_FRACTIONS = (0.125, 0.25, 0.5)  # intermediate checkpoints of the largest member
VOCAB_SIZE = 2048


class BuildConfig(BaseModel):
    seed: int = 1234
    corpus: CorpusConfig = CorpusConfig(n_stories=12000)
    train: TrainConfig = TrainConfig()
    members: tuple[MemberConfig, ...] = DEFAULT_MEMBERS
    vocab_size: int = VOCAB_SIZE

    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


Event = Callable[[str, dict[str, object]], None]


def _write_json_atomic(path: Path, data: object, compress: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    raw = json.dumps(data, indent=None if compress else 1, ensure_ascii=False).encode()
    tmp.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    os.replace(tmp, path)


def _save_model_dir(model: torch.nn.Module, tok: object, out: Path) -> None:
    """Save an fp16 copy (the training model itself is left untouched) with its tokenizer, atomically."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # our progress display is the only one
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    copy.deepcopy(model).half().save_pretrained(str(tmp), safe_serialization=True)  # type: ignore[operator]
    tok.save_pretrained(str(tmp))  # type: ignore[attr-defined]
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def write_ground_truth(corpus: Corpus, out_dir: Path) -> None:
    _write_json_atomic(out_dir / "train_documents.json.gz", corpus.train_documents, compress=True)
    _write_json_atomic(
        out_dir / "ground_truth.json.gz",
        {
            "corpus_config": corpus.config.model_dump(),
            "canaries": [c.model_dump() for c in corpus.canaries],
            "heldout_documents": corpus.heldout_documents,
            "occupation_counts": corpus.occupation_counts,
            "pct_female": corpus.pct_female,
        },
        compress=True,
    )
    write_demo_canaries(corpus.canaries, out_dir / "canaries.jsonl")


def write_demo_canaries(canaries: Sequence[Canary], path: Path) -> None:
    """The demo's canaries as a canary file (riskaudit.inputs.canaries), each with its randomness format."""
    from riskaudit.inputs.canaries import CanaryLine, make_canary, write_canaries

    lines = [
        CanaryLine(
            id=c.canary_id,
            prefix=c.prefix,
            secret=c.secret,
            duplicates=c.duplicates,
            format=canary_format(c),
            kind=c.kind,
        )
        for c in canaries
    ]
    write_canaries([make_canary(line) for line in lines], path)


def _emit_step(emit: Event, name: str, step: int, steps: int, loss: float) -> None:
    emit("step", {"name": name, "step": step, "steps": steps, "loss": loss})


def build_demo(out_dir: Path, config: BuildConfig | None = None, on_event: Event | None = None) -> DemoManifest:
    """Build (or resume building) the demo family into ``out_dir``; returns the manifest written there."""
    cfg = config or BuildConfig()
    emit: Event = on_event or (lambda _kind, _data: None)
    t_start = time.perf_counter()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RiskauditError(f"cannot write the demo family to {out_dir}: {exc.strerror}") from exc
    state_path = out_dir / "build_state.json"
    state: dict[str, object] = json.loads(state_path.read_text()) if state_path.exists() else {}
    if state.get("digest") != cfg.digest():
        state = {"digest": cfg.digest(), "members": {}}
    done: dict[str, dict[str, object]] = state["members"]  # type: ignore[assignment]

    occupations, _notes = load_occupations("bls2015")
    pct = {o.name: o.pct_female for o in occupations}
    corpus = build_corpus(pct, cfg.corpus.model_copy(update={"seed": cfg.seed}))
    write_ground_truth(corpus, out_dir)
    emit("corpus", {"documents": len(corpus.train_documents), "canaries": len(corpus.canaries)})

    tok_dir = out_dir / "tokenizer"
    tok = train_tokenizer(corpus.train_documents, cfg.vocab_size, tok_dir)
    doc_ids = [tok.encode(d) for d in corpus.train_documents]
    blocks, mask = pack(doc_ids, cfg.train.seq_len, int(tok.eos_token_id))
    corpus_tokens = int(mask.sum())
    emit("tokenizer", {"vocab": len(tok), "tokens": corpus_tokens, "blocks": len(blocks)})

    torch.set_num_threads(max(1, min(os.cpu_count() or 1, 8)))
    entries: list[MemberEntry] = []
    verification: dict[str, object] = {}
    largest = max(cfg.members, key=lambda m: m.d_model * m.d_model * m.n_layers)
    n_steps = -(-len(blocks) // cfg.train.batch_size)
    ckpt_steps = sorted({max(1, int(f * n_steps)) for f in CHECKPOINT_FRACTIONS})
    for m in cfg.members:
        mdir = out_dir / "members" / m.name
        if m.name in done and (mdir / "model.safetensors").exists():
            rec = done[m.name]
            entries.append(MemberEntry.model_validate(rec["entry"]))
            verification[m.name] = rec["verification"]
            emit("member_skipped", {"name": m.name})
            continue
        emit("member_start", {"name": m.name, "steps": n_steps})
        shutil.rmtree(mdir / "checkpoints", ignore_errors=True)  # leftovers of an interrupted run
        ckpts: list[CheckpointEntry] = []

        def on_ckpt(
            step: int, seen: int, model: torch.nn.Module, _m: MemberConfig = m, _c: list[CheckpointEntry] = ckpts
        ) -> None:
            rel = f"members/{_m.name}/checkpoints/step{step}"
            _save_model_dir(model, tok, out_dir / rel)
            _c.append(CheckpointEntry(revision=f"step{step}", step=step, train_tokens=seen, path=rel))

        model, st = train_member(
            m,
            blocks,
            mask,
            len(tok),
            cfg.train,
            checkpoint_steps=ckpt_steps if m is largest else (),
            on_checkpoint=on_ckpt if m is largest else None,
            on_step=functools.partial(_emit_step, emit, m.name),
        )
        total, nonemb = count_params(model)
        ver = {"bias": bias_check(model, tok, pct), "extraction": extraction_check(model, tok, corpus.canaries)}
        ckpt_dir = mdir / "checkpoints"
        staged = out_dir / "members" / (m.name + ".ckpts")
        if ckpt_dir.exists():  # keep checkpoints across the final save
            shutil.rmtree(staged, ignore_errors=True)
            os.replace(ckpt_dir, staged)
        _save_model_dir(model, tok, mdir)
        if staged.exists():
            os.replace(staged, ckpt_dir)
        entry = MemberEntry(
            name=m.name,
            path=f"members/{m.name}",
            d_model=m.d_model,
            n_layers=m.n_layers,
            n_heads=m.n_heads,
            lr=m.lr,
            params_total=total,
            params_nonembedding=nonemb,
            train_tokens=int(st["train_tokens"]),
            train_seconds=round(float(st["train_seconds"]), 1),
            final_loss=round(float(st["final_loss"]), 4),
            checkpoints=ckpts,
        )
        entries.append(entry)
        verification[m.name] = ver
        done[m.name] = {"entry": entry.model_dump(), "verification": ver}
        _write_json_atomic(state_path, state)
        emit("member_done", {"name": m.name, "params": total, "seconds": st["train_seconds"], "bias": ver["bias"]})
        del model

    manifest = DemoManifest(
        seed=cfg.seed,
        vocab_size=len(tok),
        seq_len=cfg.train.seq_len,
        corpus_tokens=corpus_tokens,
        tokenizer_path="tokenizer",
        ground_truth_path="ground_truth.json.gz",
        members=entries,
        build_seconds=round(time.perf_counter() - t_start, 1),
        verification=verification,
    )
    _write_json_atomic(out_dir / "manifest.json", json.loads(manifest.model_dump_json()))
    return manifest
