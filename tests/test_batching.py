"""Batching: shared-context scoring, automatic batch size, batch-size independence."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import build_tiny_model  # tests/ is on sys.path (pytest rootdir-less import)
from transformers import AutoModelForCausalLM

from riskaudit.models import LoadOptions, load_model
from riskaudit.models.autobatch import (
    AUTO_BATCH_CAP,
    activation_bytes_per_token,
    cpu_auto_batch_size,
    floor_pow2,
)
from riskaudit.models.hf import HFModel

TOL = 1e-5

CONTEXTS = [
    "The nurse said that",
    "The engineer said that",
    "The manager thanked the receptionist because",
    "My name is John Smith and my phone number is",
]
SINGLE = [" she", " he", " they", " it"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), hidden=32, layers=2)


def _load(model_dir: Path, batch_size: int | None) -> HFModel:
    return load_model(str(model_dir), None, LoadOptions(batch_size=batch_size))


@pytest.fixture(scope="module")
def m1(model_dir: Path) -> Iterator[HFModel]:
    with _load(model_dir, 1) as m:
        yield m


def _mixed_pairs(m: HFModel) -> list[tuple[str, str]]:
    """Shared single-token, unshared single-token, multi-token and empty continuations, interleaved."""
    singles = [(c, w) for c in CONTEXTS for w in SINGLE if len(m.encode(c + w)) - len(m.encode(c)) == 1]
    assert len(singles) >= 8
    multi = [
        ("The nurse said that", " she would be late"),
        ("The doctor asked the patient", " about his health"),
        ("", "The quick brown fox"),
        ("The engineer said that ", "he fixed the bridge"),  # trailing space moves to the continuation
    ]
    unshared = [("It was the best of times, it was the", " worst"), ("The quick brown", " fox")]
    empty = [("The nurse said", "")]
    pairs: list[tuple[str, str]] = []
    pools = [singles, multi, unshared, empty]
    while any(pools):
        for pool in pools:
            if pool:
                pairs.append(pool.pop(0))
    return pairs


def _reference(model_dir: Path, m: HFModel, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
    """Independent per-pair reference: one unpadded forward per pair with plain transformers."""
    raw = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    out: list[tuple[float, bool]] = []
    for ctx, cont in pairs:
        c, k = m._encode_pair(ctx, cont)
        if not k:
            out.append((0.0, True))
            continue
        ids = torch.tensor([(c + k)[:-1]])
        with torch.inference_mode():
            logits = raw(input_ids=ids).logits[0, -len(k) :].float()
        lp = torch.log_softmax(logits, -1)[torch.arange(len(k)), torch.tensor(k)]
        greedy = bool((logits.argmax(-1) == torch.tensor(k)).all())
        out.append((float(lp.double().sum()), greedy))
    return out


def test_shared_context_matches_per_pair_path(model_dir: Path, m1: HFModel) -> None:
    pairs = _mixed_pairs(m1)
    ref = _reference(model_dir, m1, pairs)
    per_pair = [m1.loglikelihood([p])[0] for p in pairs]  # each pair alone: the unshared path
    for bs in (1, 2, 3, 16, None):
        with _load(model_dir, bs) as m:
            got = m.loglikelihood(pairs)
        assert len(got) == len(pairs)
        for (lp, greedy), r, alone, (ctx, cont) in zip(ref, got, per_pair, pairs, strict=True):
            assert abs(r.logprob - lp) <= TOL, (bs, ctx, cont)
            assert abs(r.logprob - alone.logprob) <= TOL, (bs, ctx, cont)
            assert r.is_greedy == greedy == alone.is_greedy
            assert r.n_tokens == alone.n_tokens == len(m1._encode_pair(ctx, cont)[1])


def test_order_preserved_under_permutation(model_dir: Path, m1: HFModel) -> None:
    pairs = _mixed_pairs(m1)
    base = m1.loglikelihood(pairs)
    perm = np.random.default_rng(0).permutation(len(pairs))
    with _load(model_dir, 4) as m:
        shuffled = m.loglikelihood([pairs[i] for i in perm])
    for j, i in enumerate(perm):
        assert abs(shuffled[j].logprob - base[i].logprob) <= TOL
        assert shuffled[j].n_tokens == base[i].n_tokens


def test_single_token_continuations_share_one_forward(model_dir: Path) -> None:
    with _load(model_dir, 64) as m:
        pairs = [(c, w) for c in CONTEXTS for w in SINGLE if len(m._encode_pair(c, w)[1]) == 1]
        n_ctx = len({c for c, _ in pairs})
        rows: list[int] = []
        forward = m._forward

        def counting(seqs: Sequence[Sequence[int]], keep: Sequence[int] | None = None) -> torch.Tensor:
            rows.append(len(seqs))
            return forward(seqs, keep=keep)

        m._forward = counting  # type: ignore[method-assign]
        m.loglikelihood(pairs)
        assert sum(rows) == n_ctx < len(pairs)
        rows.clear()
        multi = [("The nurse said that", " she would be late"), ("The nurse said that", " he would be late")]
        m.loglikelihood(multi)
        assert sum(rows) == 2  # multi-token continuations: one sequence each


def test_logits_to_keep_fallback_gives_same_values(model_dir: Path) -> None:
    with _load(model_dir, 4) as m:
        pairs = _mixed_pairs(m)
        kept = m.loglikelihood(pairs)
        m._logits_to_keep = False  # a model whose forward has no logits_to_keep: select after the full pass
        full = m.loglikelihood(pairs)
    for a, b in zip(kept, full, strict=True):
        assert abs(a.logprob - b.logprob) <= TOL and a.is_greedy == b.is_greedy


def test_duplicate_pairs_and_empty_input(m1: HFModel) -> None:
    assert m1.loglikelihood([]) == []
    r = m1.loglikelihood([("The nurse said that", " she")] * 3)
    assert r[0] == r[1] == r[2]


def test_token_stats_batch_size_independent(model_dir: Path, m1: HFModel) -> None:
    seqs = [m1.encode(s) for s in ("The nurse said that she would be late.", "It was the best of times.", "A")]
    prefix = [3, 0, 1]
    ref = m1.token_stats(seqs, prefix)
    with _load(model_dir, None) as m:
        got = m.token_stats(seqs, prefix)
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=TOL)
        assert (a.argmax_match == b.argmax_match).all()


# ------------------------------------------------------------------------------------ automatic batch size


def testfloor_pow2() -> None:
    assert [floor_pow2(n) for n in (0, 1, 2, 3, 4, 255, 256, 257)] == [1, 1, 2, 2, 4, 128, 256, 256]


def test_cpu_auto_batch_size_estimate() -> None:
    per_tok = activation_bytes_per_token(hidden=4, layers=2, vocab=10)
    assert per_tok == (4 * 2 * 16 + 2 * 10) * 4 == 592
    # budget = available × fraction; per sequence = len × per_tok
    kw = {"hidden": 4, "layers": 2, "vocab": 10, "fraction": 1.0}
    assert cpu_auto_batch_size(10, available_bytes=592 * 10 * 8, **kw) == 8  # exactly 8 fit
    assert cpu_auto_batch_size(10, available_bytes=592 * 10 * 8 - 1, **kw) == 4  # 7.99 → 4
    assert cpu_auto_batch_size(10, available_bytes=592 * 10 * 13, **kw) == 8  # 13 → largest power of 2
    assert cpu_auto_batch_size(10, available_bytes=1, **kw) == 1  # never below 1
    assert cpu_auto_batch_size(1, available_bytes=10**15, **kw) == AUTO_BATCH_CAP  # capped
    assert cpu_auto_batch_size(1, available_bytes=10**15, cap=100, **kw) == 64
    assert cpu_auto_batch_size(20, available_bytes=592 * 10 * 8, **kw) == 4  # twice as long → half
    kw_quarter = {**kw, "fraction": 0.25}
    assert cpu_auto_batch_size(10, available_bytes=592 * 10 * 32, **kw_quarter) == 8


def test_auto_batch_size_found_once_and_remembered(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import riskaudit.models.autobatch as autobatch

    calls: list[int] = []

    def fake_ram() -> int:
        calls.append(1)
        per_seq = 64 * activation_bytes_per_token(hidden=32, layers=2, vocab=m.vocab_size)
        return int(per_seq * 16 / autobatch.CPU_MEMORY_FRACTION)  # 16 sequences of 64 tokens fit

    with _load(model_dir, 0) as m:
        monkeypatch.setattr(autobatch, "available_ram_bytes", fake_ram)
        assert m.batch_size is None
        assert m.batch_size_for(64) == 16
        assert m.batch_size == 16
        assert m.batch_size_for(32) == 16  # shorter workload: remembered
        assert m.batch_size_for(64) == 16
        assert m.batch_size_for(128) == 8  # longer workload: found again
        assert len(calls) == 1  # available memory read once
    with _load(model_dir, 7) as m:
        assert m.batch_size == 7 and m.batch_size_for(10_000) == 7


def test_negative_batch_size_rejected(model_dir: Path) -> None:
    from riskaudit.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="batch size"):
        _load(model_dir, -1)


def test_batched_encoding_matches_single(m1: HFModel) -> None:
    pairs = [
        ("", "The nurse"),
        (" ", "she"),
        ("The nurse said that ", "she"),
        ("The nurse said that", " she"),
        ("The nurse said that  \n", "he was"),
        ("The nurse", ""),
        ("", ""),
    ]
    assert m1._encode_pairs(pairs) == [m1._encode_pair(c, k) for c, k in pairs]
