"""The items of the memorization suite: canaries (with their exposure candidates), training documents and
held-out documents, tokenized and cut into prefix and suffix for one model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from riskaudit.errors import ProbeError
from riskaudit.inputs.canaries import PlantedCanary
from riskaudit.inputs.memdata import Document, MemorizationData
from riskaudit.models.base import ModelHandle
from riskaudit.probes import exposure as expo
from riskaudit.probes.mem_spec import RunConfig

__all__ = ["Group", "MemItem", "exposure_selection", "select_items", "suffix_ids"]

Group = Literal["canary", "document", "heldout"]


@dataclass
class MemItem:
    """One item of the suite: a canary (prefix + secret) or a document (k-token prefix + m-token suffix)."""

    item_id: str
    group: Group
    ids: list[int]  # tokens scored (without the boundary token)
    prefix_len: int  # extraction split within ids
    suffix_len: int
    duplicates: int | None
    member: bool | None
    sha256: str
    kind: str | None = None
    canary: PlantedCanary | None = None
    exposure: bool = False
    candidates: list[list[int]] = field(default_factory=list)  # exposure candidates' suffix tokens
    method: expo.ExposureMethod | None = None


def select_items(
    probe_id: str, data: MemorizationData, cfg: RunConfig, model: ModelHandle, n_ctx: int, notes: list[str]
) -> list[MemItem]:
    """Tokenize and select the items: canaries, then training documents, then held-out documents."""
    k, m = cfg.prefix_len, cfg.suffix_len
    max_len = model.max_length
    room: int | None = max_len - n_ctx
    if room is not None and k + m > room:
        raise ProbeError(
            f"probe {probe_id}: prefix + suffix = {k + m} tokens do not fit model {model.name!r} "
            f"(context {max_len}); lower --prefix-len / --suffix-len"
        )
    window = max(k + m, min(cfg.max_tokens, room) if room is not None else cfg.max_tokens)
    vocab: int | None = model.vocab_size
    items: list[MemItem] = []
    with_exposure = exposure_selection(data.canaries, cfg.max_canaries_per_dup)
    for c in data.canaries:
        items.append(_canary_item(model, c, c.canary_id in with_exposure, cfg))
    if data.canaries:
        n_exact = sum(it.method == "exact" for it in items)
        n_est = sum(it.method == "skewnorm" for it in items)
        per_dup = cfg.max_canaries_per_dup
        notes.append(
            f"exposure: {n_exact} canaries ranked exactly among all of R (|R| <= {cfg.exact_max_space}); "
            f"{n_est} estimated from {cfg.n_candidates} sampled candidates each with a fitted skew-normal "
            f"(Carlini et al. 2019), where the candidates alone support at most log2({cfg.n_candidates}+1) = "
            f"{expo.exposure_bound(cfg.n_candidates):.1f} bits (exposure_empirical)"
            + (f"; at most {per_dup} canaries per duplication count (kinds taken in turn)" if per_dup else "")
        )
    kept_docs = examined_docs = 0
    groups: tuple[tuple[Group, Sequence[Document], int], ...] = (
        ("document", data.documents, cfg.n_documents),
        ("heldout", data.heldout, cfg.n_heldout),
    )
    for group, docs, n in groups:
        if not docs or n == 0:
            continue
        kept, skipped, examined = 0, 0, 0
        for doc in docs[: n * cfg.pool_factor]:
            if kept == n:
                break
            examined += 1
            ids = _doc_ids(model, doc, vocab)
            if len(ids) < k + m:
                skipped += 1
                continue
            kept += 1
            prefix = "doc" if group == "document" else "heldout"
            items.append(
                MemItem(
                    item_id=f"{prefix}-{doc.index}",
                    group=group,
                    ids=ids[:window],
                    prefix_len=k,
                    suffix_len=m,
                    duplicates=doc.duplicates,
                    member=group == "document",
                    sha256=doc.sha256(),
                )
            )
        what = "training" if group == "document" else "held-out"
        notes.append(
            f"{what} documents: {kept} used, {skipped} of {examined} examined skipped as shorter than "
            f"prefix + suffix = {k}+{m} tokens"
        )
        if group == "document":
            kept_docs, examined_docs = kept, examined
        if kept < n:
            notes.append(f"{what} documents: only {kept} of the {n} wanted are long enough")
    if data.documents and kept_docs == 0:
        raise ProbeError(
            f"probe {probe_id}: all {examined_docs} training documents examined are shorter than prefix + "
            f"suffix = {k}+{m} tokens for model {model.name!r}; lower --prefix-len / --suffix-len"
        )
    notes.append(
        f"extraction: {k}-token prefix and {m}-token suffix for documents; canaries use their own "
        f"prefix / secret split; membership signals over at most the first {window} tokens"
    )
    return items

def _doc_ids(model: ModelHandle, doc: Document, vocab: int | None) -> list[int]:
    if doc.ids is not None:
        ids = list(doc.ids)
        if vocab is not None and ids and max(ids) >= vocab:
            raise ProbeError(
                f"document at row {doc.index} has token id {max(ids)} outside model {model.name!r}'s "
                f"vocabulary ({vocab}); were the ids made with this model's tokenizer?"
            )
        return ids
    return model.encode(doc.text or "")

def _canary_item(model: ModelHandle, c: PlantedCanary, with_exposure: bool, cfg: RunConfig) -> MemItem:
    pids = model.encode(c.prefix)
    sids = suffix_ids(model, c.prefix, pids, c.secret)
    if not pids or not sids:
        raise ProbeError(f"canary {c.canary_id}: empty prefix or secret after tokenization")
    it = MemItem(
        item_id=c.canary_id,
        group="canary",
        ids=pids + sids,
        prefix_len=len(pids),
        suffix_len=len(sids),
        duplicates=int(c.duplicates),
        member=c.duplicates > 0,
        sha256=hashlib.sha256(c.prefix.encode("utf-8")).hexdigest(),
        kind=c.kind,
        canary=c,
    )
    if with_exposure:
        cands, method = expo.candidate_secrets(
            c.canary_id, c.secret, c.secret_format, cfg.n_candidates, cfg.exact_max_space, cfg.seed
        )
        it.candidates = [suffix_ids(model, c.prefix, pids, s) for s in cands]
        it.method = method
    return it


def exposure_selection(canaries: Sequence[PlantedCanary], per_dup: int | None) -> set[str]:
    """Ids of the canaries whose exposure is measured: all, or the first ``per_dup`` of each duplication
    count taking the kinds in turn (first of each kind, then second of each kind, ...)."""
    if per_dup is None:
        return {c.canary_id for c in canaries}
    chosen: set[str] = set()
    by_dup: dict[int, list[PlantedCanary]] = {}
    for c in canaries:
        by_dup.setdefault(c.duplicates, []).append(c)
    for group in by_dup.values():
        seen: dict[str, int] = {}
        kind_order: dict[str, int] = {}
        keyed = []
        for pos, c in enumerate(group):
            kind_order.setdefault(c.kind, len(kind_order))
            keyed.append((seen.get(c.kind, 0), kind_order[c.kind], pos, c.canary_id))
            seen[c.kind] = seen.get(c.kind, 0) + 1
        chosen.update(cid for *_, cid in sorted(keyed)[:per_dup])
    return chosen


def suffix_ids(model: ModelHandle, prefix: str, prefix_ids: list[int], suffix: str) -> list[int]:
    """The suffix's tokens as they occur after the prefix in the whole text (training tokenization)."""
    whole = model.encode(prefix + suffix)
    if whole[: len(prefix_ids)] == prefix_ids:
        return whole[len(prefix_ids) :]
    return model.encode(suffix)
