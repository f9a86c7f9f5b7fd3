"""Memorization and training-data extraction suite: does the model reproduce its training data?

Per item (a training document cut into a k-token prefix and an m-token suffix, or a canary's prefix and
secret), from ONE teacher-forced forward pass (``ModelHandle.token_stats``) with log p_t of each true
suffix token and whether it is the argmax:

* **exact extraction** (Carlini et al. 2021, 2022; Biderman et al. 2023): greedy decoding from the prefix
  reproduces the suffix ⇔ the true token is the argmax at every suffix position. The generate-based path
  (``ModelHandle.greedy``, KV cache) is run as well and both verdicts are kept in the records; they must
  agree item by item (a note reports any disagreement, which only a near-tie in the logits can cause).
* **memorization score** (Biderman et al. 2023, Pythia): share of greedily generated suffix tokens equal to
  the truth, position by position (needs the generation).
* continuous companions: **mean suffix log-prob** (1/m) Σ log p_t; **token accuracy** (share of positions
  whose true token is the argmax); **longest match** (leading positions reproduced before the first error,
  as a share of m); **extraction probability** p = Π p_t and **1 − (1 − p)^n** — the chance that n
  temperature-1 samples contain the suffix ((n, p)-discoverable extraction, Hayes et al. 2024).
* **canary exposure** (Carlini et al. 2019): exact, skew-normal estimate and empirical, each under its own
  name (:mod:`riskaudit.probes.exposure`); canaries and their randomness formats come from a canary file
  (:mod:`riskaudit.inputs.canaries`).
* **membership inference** (loss, zlib ratio, Min-K% Prob, reference-model ratio; ROC-AUC and TPR at 1%
  FPR): :mod:`riskaudit.probes.membership`.

What it runs on (:class:`MemorizationInputs`, :meth:`MemorizationProbe.for_inputs`): the family's declared
training data (:mod:`riskaudit.inputs.training_data`) unless ``--data`` replaces it, plus ``--canaries``. Settings
live in :mod:`riskaudit.probes.mem_spec`, the items (canaries, training and held-out documents) in
:mod:`riskaudit.probes.mem_items`, per-item statistics in :mod:`riskaudit.probes.extraction`, the
reduction to metrics in :mod:`riskaudit.probes.mem_metrics`, the family-level metrics in
:mod:`riskaudit.probes.mem_family`.

Every rate is split by duplication count when the data says how often a text was seen
(``canary_exact_extraction[dup=32]``). Family-level metrics — the reference-model ratio (the smallest member
is the reference) and the precision / recall of "memorized by a smaller member" predicting "memorized by the
largest" (Biderman et al. 2023) — are added by :meth:`MemorizationProbe.finalize_family`.

Baselines are what a model that does not memorize would score: for planted canaries the never-planted
control canaries (duplicates = 0), for training text the held-out text, both measured on the same model;
without such a counterpart, 0 for rates, −ln |V| for log-probs, log2 e for exposure.

Records never hold text, secrets or token ids in clear — only sha256 hashes (of whole documents, or of a
canary's public prefix; never of a low-entropy secret), lengths and positions — unless ``include_text`` is
set, which adds the text and says so in the notes.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from riskaudit.errors import ProbeError
from riskaudit.inputs.canaries import canaries_fingerprint, load_canaries
from riskaudit.inputs.data_sampling import load_memorization_data, load_training_data
from riskaudit.inputs.memdata import DataError, DataOptions, MemorizationData
from riskaudit.inputs.training_data import TrainingData
from riskaudit.models.base import ModelHandle, TokenStats
from riskaudit.probes import exposure as expo
from riskaudit.probes import membership as mia
from riskaudit.probes.base import ItemRecord, ProbeResult, ProgressFn
from riskaudit.probes.extraction import (
    ExtractionStats,
    chunked_greedy,
    chunked_token_stats,
    extraction_stats,
    memorization_score,
    prob_at_least_once,
)
from riskaudit.probes.mem_family import finalize_family
from riskaudit.probes.mem_items import MemItem, select_items
from riskaudit.probes.mem_metrics import compute_metrics
from riskaudit.probes.mem_spec import (
    DemoOverrides,
    ExposureSettings,
    ExtractionSettings,
    MembershipSettings,
    MemorizationSpec,
    RunConfig,
    StatsSettings,
    default_spec_path,
    load_memorization_spec,
)

__all__ = [
    "DemoOverrides",
    "ExposureSettings",
    "ExtractionSettings",
    "ExtractionStats",
    "MembershipSettings",
    "MemorizationProbe",
    "MemorizationSpec",
    "RunConfig",
    "StatsSettings",
    "compute_metrics",
    "default_spec_path",
    "extraction_stats",
    "load_memorization_spec",
    "memorization_score",
    "prob_at_least_once",
]

NO_DATA_NOTE = "memorization not audited: no training data"


class MemorizationInputs(BaseModel):
    """What the memorization suite of one scan runs on: the family's declared training data unless
    ``--data`` replaces it, plus ``--canaries``; nothing at all with ``--no-memorization``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str = ""
    model: str = ""  # the first member's source (named when the training data cannot be loaded)
    training_data: TrainingData | None = None  # declared by the family
    data: DataOptions | None = None  # --data
    canaries: str | None = None  # --canaries FILE
    prefix_len: int | None = None
    suffix_len: int | None = None
    exposure_candidates: int | None = None  # --exposure-candidates N
    include_text: bool = False
    enabled: bool = True  # False: --no-memorization



# --------------------------------------------------------------------------------------------- the probe


class MemorizationProbe:
    """The memorization suite over one data set (implements the ``Probe`` protocol, plus a family hook)."""

    def __init__(
        self,
        spec: MemorizationSpec,
        data: MemorizationData,
        *,
        include_text: bool = False,
        prefix_len: int | None = None,
        suffix_len: int | None = None,
        n_candidates: int | None = None,
    ) -> None:
        if not data.documents and not data.canaries:
            raise ProbeError(f"probe {spec.id}: the data has no documents and no canaries")
        self.spec = spec
        self.id = spec.id
        self.data = data
        self.include_text = include_text
        self.limit: int | None = None  # scan --limit (see limited)
        self.config = spec.resolve(
            demo=data.is_demo, prefix_len=prefix_len, suffix_len=suffix_len, n_candidates=n_candidates
        )

    @classmethod
    def for_inputs(cls, spec: MemorizationSpec, inputs: MemorizationInputs) -> MemorizationProbe | None:
        """The suite for a family (see :class:`MemorizationInputs`); None when there is nothing to audit."""
        if not inputs.enabled:
            return None
        canaries = load_canaries(inputs.canaries) if inputs.canaries else None
        cfg = spec.resolve(prefix_len=inputs.prefix_len, suffix_len=inputs.suffix_len)
        limit = max(cfg.n_documents, cfg.n_heldout) * cfg.pool_factor
        if inputs.data is not None:
            mdata = load_memorization_data(inputs.data, seed=spec.settings.seed, limit=limit)
        elif inputs.training_data is not None:
            decl = inputs.training_data
            if canaries is not None:  # --canaries replaces the canaries the family declares
                decl = decl.model_copy(update={"canaries": None})
            try:
                mdata = load_training_data(decl, seed=spec.settings.seed, n_documents=cfg.n_documents, limit=limit)
            except DataError as exc:
                reason = str(exc).split(": ", 1)[-1].split("; use local", 1)[0]
                how = (
                    "download its document.idx and document-*.bin shards into a directory and pass it with --data DIR"
                    if decl.layout == "megatron"
                    else "provide it as a pre-filled Hugging Face datasets cache (HF_HOME or HF_DATASETS_CACHE, with "
                    "HF_HUB_OFFLINE=1) or as local files with --data"
                )
                raise DataError(
                    f"cannot load training data {decl.dataset!r} of family {inputs.family!r} to audit model "
                    f"{inputs.model!r}: {reason}; {how}, or skip memorization with --no-memorization"
                ) from None
        else:
            mdata = MemorizationData(name="canaries", documents=())
        if canaries is not None:
            fp = hashlib.sha256((mdata.fingerprint + canaries_fingerprint(canaries)).encode()).hexdigest()
            note = f"canaries: {len(canaries)} from {Path(inputs.canaries or '').name}"
            mdata = dataclasses.replace(mdata, canaries=canaries, fingerprint=fp, notes=(*mdata.notes, note))
        if not mdata.documents and not mdata.canaries:
            return None
        return cls(
            spec,
            mdata,
            include_text=inputs.include_text,
            prefix_len=inputs.prefix_len,
            suffix_len=inputs.suffix_len,
            n_candidates=inputs.exposure_candidates,
        )

    @property
    def description(self) -> str:
        return self.spec.description.strip()

    def limited(self, n: int) -> MemorizationProbe:
        """A copy over at most ``n`` documents, ``n`` held-out documents and ``n`` canaries per duplication count
        (``scan --limit``)."""
        cfg = self.config
        out = copy.copy(self)
        cap = n if cfg.max_canaries_per_dup is None else min(cfg.max_canaries_per_dup, n)
        counts = {"n_documents": min(cfg.n_documents, n), "n_heldout": min(cfg.n_heldout, n)}
        out.config = cfg.model_copy(update={**counts, "max_canaries_per_dup": cap})
        seen: dict[int, int] = {}
        kept = []
        for c in self.data.canaries:
            if seen.get(c.duplicates, 0) < n:
                seen[c.duplicates] = seen.get(c.duplicates, 0) + 1
                kept.append(c)
        out.data = dataclasses.replace(self.data, canaries=tuple(kept))
        out.limit = n
        return out

    def content_hash(self) -> str:
        """sha256 of the spec, the resolved settings, the data's fingerprint, the text option (and the
        ``--limit``, when one was given)."""
        payload: dict[str, object] = {
            "spec": json.loads(self.spec.canonical_json()),
            "config": self.config.model_dump(mode="json"),
            "data": self.data.fingerprint,
            "include_text": self.include_text,
        }
        if self.limit is not None:
            payload["limit"] = self.limit
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # ---- run

    def run(self, model: ModelHandle, progress: ProgressFn | None = None) -> ProbeResult:
        """Score every item in one teacher-forced pass, generate greedily once, reduce to metrics."""
        cfg = self.config
        notes: list[str] = list(self.data.notes)
        # a model whose convention adds BOS gets it in front of every input (the document boundary); else the
        # boundary is the prefix token (BOS, else EOS) when the settings ask for one. Packed sequences (cut from
        # the packed token stream, as Pythia's) get no boundary: they are scored as stored
        boundary = cfg.document_boundary and not self.data.packed
        ctx: list[int] = [model.prefix_token_id] if boundary and not model.add_bos else []
        starts = bool(ctx) or model.add_bos  # the first token is scored (conditioned on BOS or the boundary)
        items = select_items(self.id, self.data, cfg, model, len(ctx) + int(model.add_bos), notes)

        # one scoring job per item (all its tokens) and per exposure candidate (its suffix only)
        seqs: list[list[int]] = []
        plens: list[int] = []
        for it in items:
            seqs.append(ctx + it.ids)
            plens.append(len(ctx) if starts else 1)
        cand_at: list[tuple[int, int]] = []
        for k, it in enumerate(items):
            for c in it.candidates:
                cand_at.append((k, len(seqs)))
                seqs.append(ctx + it.ids[: it.prefix_len] + c)
                plens.append(len(ctx) + it.prefix_len)
        gen_canary = [k for k, it in enumerate(items) if it.group == "canary"]
        gen_docs = [k for k, it in enumerate(items) if it.group == "document"]
        total = len(seqs) + len(gen_canary) + len(gen_docs)
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        if progress is not None:
            progress(0, total)
        stats_all = chunked_token_stats(model, seqs, plens, tick)
        generated: dict[int, list[int] | None] = dict.fromkeys(range(len(items)))
        gen_items = [*gen_canary, *gen_docs]
        outs = chunked_greedy(
            model,
            [ctx + items[k].ids[: items[k].prefix_len] for k in gen_items],
            [items[k].suffix_len for k in gen_items],
            tick,
        )
        generated.update(zip(gen_items, outs, strict=True))

        offset = 0 if starts else 1  # logprobs[j] belongs to ids[j + offset]
        cand_lls: dict[int, list[float]] = {}
        for k, j in cand_at:
            cand_lls.setdefault(k, []).append(stats_all[j].total_logprob)
        records: list[ItemRecord] = []
        n_disagree = 0
        for k, it in enumerate(items):
            rec = self._record(model, it, stats_all[k], offset, generated[k], cand_lls.get(k, []))
            n_disagree += int("exact_generate" in rec.values and rec.values["exact_generate"] != rec.values["exact"])
            records.append(rec)
        n_gen = len(gen_canary) + len(gen_docs)
        if n_disagree:
            notes.append(
                f"one-pass and generate-based exact-extraction verdicts disagree on {n_disagree} of {n_gen} "
                "items (near-ties in the logits); metrics use the one-pass verdict"
            )
        elif n_gen:
            notes.append(
                f"one-pass and generate-based exact-extraction verdicts agree on all {n_gen} generated items "
                "(canaries and training documents; held-out documents are scored in one pass only)"
            )
        if self.include_text:
            notes.append(
                "include_text is on: the records hold training text, canary secrets and generated text in clear"
            )
        collector = compute_metrics(records, cfg, vocab_size=model.vocab_size)
        return ProbeResult(
            probe_id=self.id,
            probe_hash=self.content_hash(),
            metrics=collector.metrics,
            records=records,
            notes=[*notes, *collector.notes],
            replicates=collector.replicates,
        )


    def _record(
        self,
        model: ModelHandle,
        it: MemItem,
        ts: TokenStats,
        offset: int,
        gen: list[int] | None,
        cand_lls: list[float],
    ) -> ItemRecord:
        cfg = self.config
        lp, am = ts.logprobs, ts.argmax_match
        s = it.prefix_len - offset
        ex = extraction_stats(lp[s : s + it.suffix_len], am[s : s + it.suffix_len], cfg.n_samples)
        truth = it.ids[it.prefix_len : it.prefix_len + it.suffix_len]
        text = model.decode(it.ids)
        values: dict[str, float] = {
            "exact": float(ex.exact),
            "token_accuracy": ex.token_accuracy,
            "mean_suffix_logprob": ex.mean_logprob,
            "suffix_logprob": ex.sum_logprob,
            "longest_match": float(ex.longest_match),
            "longest_match_share": ex.longest_match / ex.n_tokens,
            "extraction_prob": ex.extraction_prob,
            "extraction_prob_n": ex.extraction_prob_n,
            "loss": mia.loss(lp),
            "zlib_ratio": mia.zlib_ratio(lp, text),
            "min_k_prob": mia.min_k_prob(lp, cfg.min_k_percent),
        }
        attrs: dict[str, str | int | float | None] = {
            "group": it.group,
            "kind": it.kind,
            "duplicates": it.duplicates,
            "member": None if it.member is None else int(it.member),
            "n_tokens": len(it.ids),
            "prefix_tokens": it.prefix_len,
            "suffix_tokens": it.suffix_len,
            "sha256": it.sha256,
        }
        if it.canary is not None:
            attrs["randomness_space"] = float(it.canary.randomness_space)
        if it.canary is not None and len(cand_lls) >= 3 and it.method is not None:
            ll = ex.sum_logprob
            size = it.canary.randomness_space
            if it.method == "exact":
                values["exposure_exact"] = expo.exposure_exact(ll, cand_lls, size)
            else:
                values["exposure_skewnorm"] = expo.exposure_skewnorm(ll, cand_lls, size)
                values["exposure_empirical"] = expo.exposure_empirical(ll, cand_lls)
                attrs["exposure_bound"] = expo.exposure_bound(len(cand_lls))
            attrs["exposure_method"] = it.method
            attrs["n_candidates"] = len(cand_lls)
        if gen is not None:
            gen = gen[: it.suffix_len]
            values["exact_generate"] = float(gen == truth)
            values["memorization_score"] = memorization_score(gen, truth)
            misses = [t for t, (g, x) in enumerate(zip(gen, truth, strict=True)) if g != x]
            attrs["first_mismatch_generate"] = misses[0] if misses else -1
        if self.include_text:
            attrs["prefix_text"] = model.decode(it.ids[: it.prefix_len])
            attrs["suffix_text"] = model.decode(truth)
            if gen is not None:
                attrs["generated_text"] = model.decode(gen)
        values = {key: v for key, v in values.items() if math.isfinite(v)}
        return ItemRecord(probe=self.id, item_id=it.item_id, attrs=attrs, values=values)

    # ---- family level

    def finalize_family(self, results: list[ProbeResult]) -> list[ProbeResult]:
        """Family-level metrics, given this probe's results on every member in scan order (smallest first):
        :func:`riskaudit.probes.mem_family.finalize_family`."""
        return finalize_family(self.id, self.config, results)
