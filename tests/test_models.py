"""The model layer on tiny random GPT-NeoX models built in the test (no network)."""

from __future__ import annotations

import json
import math
import random
import shutil
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny import SENTENCES, build_tiny_model  # tests/ is on sys.path (pytest rootdir-less import)
from transformers import AutoModelForCausalLM, AutoTokenizer

from riskaudit.errors import ModelLoadError, RiskauditError
from riskaudit.models import LoadOptions, ModelHandle, load_model
from riskaudit.models.hf import HFModel, NumericalError

HIDDEN, LAYERS = 32, 2


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models run ~100x faster on one thread when the CPU is shared; restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), hidden=HIDDEN, layers=LAYERS)


@pytest.fixture(scope="module")
def m1(model_dir: Path) -> Iterator[HFModel]:
    with load_model(str(model_dir), None, LoadOptions(batch_size=1)) as m:
        yield m


@pytest.fixture(scope="module")
def m16(model_dir: Path) -> Iterator[HFModel]:
    with load_model(str(model_dir), None, LoadOptions(batch_size=16)) as m:
        yield m


@pytest.fixture(scope="module")
def raw(model_dir: Path) -> tuple[torch.nn.Module, object]:
    """The same checkpoint loaded directly with transformers, for hand computations."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    return model, AutoTokenizer.from_pretrained(model_dir)


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Context/continuation pairs of varied lengths, some with trailing context whitespace, some empty."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    for k in range(n):
        words = " ".join(rng.sample(SENTENCES, rng.randint(1, 3))).split(" ")
        cut = rng.randint(1, len(words) - 1)
        ctx, cont = " ".join(words[:cut]), " ".join(words[cut:])
        if k % 5 == 0:
            ctx, cont = ctx + " ", cont  # trailing whitespace in the context
        else:
            cont = " " + cont
        if k % 13 == 0:
            ctx = ""
        pairs.append((ctx, cont[: rng.randint(3, 40)]))
    return pairs


def manual_loglik(raw: tuple[torch.nn.Module, object], ctx: list[int], cont: list[int]) -> tuple[float, bool]:
    """One unbatched forward pass, log_softmax + gather."""
    model, _ = raw
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    n = len(cont)
    sel = logits[len(ctx) - 1 : len(ctx) - 1 + n]
    lp = torch.log_softmax(sel, -1).gather(-1, torch.tensor(cont)[:, None]).sum().item()
    greedy = bool((sel.argmax(-1) == torch.tensor(cont)).all())
    return lp, greedy


def manual_greedy(raw: tuple[torch.nn.Module, object], prefix: list[int], n_new: int) -> list[int]:
    """Greedy decoding by repeated full forward passes (no cache, no padding)."""
    model, _ = raw
    ids = list(prefix)
    with torch.no_grad():
        for _ in range(n_new):
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            ids.append(int(logits.argmax()))
    return ids[len(prefix) :]


# ------------------------------------------------------------------------------------------ scoring


def test_handle_properties(m16: HFModel, model_dir: Path) -> None:
    handle: ModelHandle = m16  # static protocol conformance
    assert handle.name == str(model_dir)
    assert m16.vocab_size == 320
    assert m16.max_length == 128
    assert m16.dtype == "float32"
    assert m16.device == "cpu"
    ids = m16.encode("The nurse said that she")
    assert ids and m16.decode(ids) == "The nurse said that she"


def test_loglikelihood_batch_invariant(m1: HFModel, m16: HFModel) -> None:
    pairs = make_pairs(40)
    r1, r16 = m1.loglikelihood(pairs), m16.loglikelihood(pairs)
    assert len(r1) == len(r16) == 40
    diff = max(abs(a.logprob - b.logprob) for a, b in zip(r1, r16, strict=True))
    assert diff <= 1e-4, diff
    assert [a.n_tokens for a in r1] == [b.n_tokens for b in r16]
    assert [a.is_greedy for a in r1] == [b.is_greedy for b in r16]
    assert len({r.n_tokens for r in r1}) > 5  # lengths really vary
    assert all(r.logprob < 0 for r in r1)


def test_token_stats_batch_invariant(m1: HFModel, m16: HFModel) -> None:
    rng = random.Random(1)
    seqs, plens = [], []
    for _ in range(40):
        n = rng.randint(2, 60)
        seqs.append([rng.randrange(3, 320) for _ in range(n)])
        plens.append(rng.randint(0, n - 1))
    s1, s16 = m1.token_stats(seqs, plens), m16.token_stats(seqs, plens)
    for a, b, seq, p in zip(s1, s16, seqs, plens, strict=True):
        assert a.logprobs.shape == b.logprobs.shape == (len(seq) - p,)
        assert np.max(np.abs(a.logprobs - b.logprobs)) <= 1e-4
        assert np.array_equal(a.argmax_match, b.argmax_match)


def test_loglikelihood_matches_hand_computation(m16: HFModel, raw: tuple[torch.nn.Module, object]) -> None:
    tok = raw[1]

    def enc(s: str) -> list[int]:
        return list(tok(s, add_special_tokens=False)["input_ids"])  # type: ignore[operator]

    cases = [("The nurse said that", " she would"), ("A teacher reads", " a book"), ("It was the", " best")]
    results = m16.loglikelihood(cases)
    for (ctx, cont), res in zip(cases, results, strict=True):
        whole, c = enc(ctx + cont), enc(ctx)
        lp, greedy = manual_loglik(raw, c, whole[len(c) :])
        assert res.n_tokens == len(whole) - len(c)
        assert abs(res.logprob - lp) < 1e-5
        assert res.is_greedy == greedy
    # empty context: conditioned on the BOS/EOS token
    (res,) = m16.loglikelihood([("", "The doctor")])
    lp, _ = manual_loglik(raw, [m16.prefix_token_id], enc("The doctor"))
    assert abs(res.logprob - lp) < 1e-5 and res.n_tokens == len(enc("The doctor"))


def test_trailing_whitespace_moves_to_continuation(m16: HFModel, raw: tuple[torch.nn.Module, object]) -> None:
    tok = raw[1]
    a, b = m16.loglikelihood([("The nurse said that ", "she"), ("The nurse said that", " she")])
    assert a == b  # identical token sequences
    ctx = list(tok("The nurse said that ", add_special_tokens=False)["input_ids"])  # type: ignore[operator]
    naive, _ = manual_loglik(raw, ctx, list(tok("she", add_special_tokens=False)["input_ids"]))  # type: ignore[operator]
    assert abs(naive - a.logprob) > 1e-3  # the naive split really differs


def test_order_preserved(m16: HFModel) -> None:
    pairs = make_pairs(30, seed=3)
    base = m16.loglikelihood(pairs)
    perm = list(range(30))
    random.Random(5).shuffle(perm)
    shuffled = m16.loglikelihood([pairs[i] for i in perm])
    for j, i in enumerate(perm):
        assert abs(shuffled[j].logprob - base[i].logprob) < 1e-5
        assert shuffled[j].n_tokens == base[i].n_tokens


def test_left_truncation(model_dir: Path, raw: tuple[torch.nn.Module, object]) -> None:
    with load_model(str(model_dir), None, LoadOptions(max_length=16, batch_size=4)) as m:
        ctx = " ".join(SENTENCES[:3])
        (res,) = m.loglikelihood([(ctx, " The end")])
        c, k = m.encode(ctx), m.encode(ctx + " The end")
        k = k[len(c) :]
        full = (c + k)[-17:]
        lp, _ = manual_loglik(raw, full[: len(full) - len(k)], k)
        assert abs(res.logprob - lp) < 1e-5
        seq = m.encode(ctx)
        (st,) = m.token_stats([seq], [len(seq) - 5])
        assert st.logprobs.shape == (5,)
        kept = seq[-16:]
        model = raw[0]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([kept])).logits[0]
        ref = torch.log_softmax(logits[-6:-1], -1).gather(-1, torch.tensor(kept[-5:])[:, None])[:, 0]
        assert np.allclose(st.logprobs, ref.numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------ extraction


def test_exact_extraction_agrees_with_greedy(m1: HFModel, m16: HFModel) -> None:
    rng = random.Random(7)
    text = m16.encode(" ".join(SENTENCES))
    prefixes = [text[s : s + rng.randint(2, 14)] for s in rng.sample(range(len(text) - 15), 24)]
    n_new = 8
    own = m1.greedy(prefixes, n_new)
    suffixes: list[list[int]] = []
    for k, g in enumerate(own):
        if k % 3 == 0:
            suffixes.append(g)  # the model's own greedy continuation: extracted
        elif k % 3 == 1:
            suffixes.append([*g[:-1], (g[-1] + 1) % m16.vocab_size])  # all but the last token
        else:
            suffixes.append([rng.randrange(3, 320) for _ in range(n_new)])
    seqs = [p + s for p, s in zip(prefixes, suffixes, strict=True)]
    stats = m16.token_stats(seqs, [len(p) for p in prefixes])
    verdict_tf = [s.exact_match for s in stats]
    regen = m16.greedy(prefixes, n_new)
    verdict_gen = [r == s for r, s in zip(regen, suffixes, strict=True)]
    assert verdict_tf == verdict_gen
    assert sum(verdict_tf) == 8 and not all(verdict_tf)
    # nearly-extracted items: every token but the last is the argmax
    for k in range(1, 24, 3):
        assert stats[k].argmax_match[:-1].all() and not stats[k].argmax_match[-1]


def test_greedy_batched_equals_single(m1: HFModel, m16: HFModel, raw: tuple[torch.nn.Module, object]) -> None:
    rng = random.Random(11)
    prefixes = [[rng.randrange(3, 320) for _ in range(rng.randint(1, 20))] for _ in range(20)] + [[]]
    batched = m16.greedy(prefixes, 10)
    single = [m1.greedy([p], 10)[0] for p in prefixes]
    assert batched == single
    assert all(len(g) == 10 for g in batched)
    for p, g in list(zip(prefixes, batched, strict=True))[:5]:
        assert g == manual_greedy(raw, p, 10)  # left padding + KV cache == plain argmax loop
    assert m16.greedy(prefixes[:3], 0) == [[], [], []]


def test_greedy_ignores_model_eos(tmp_path: Path, model_dir: Path) -> None:
    """EOS neither stops decoding nor is suppressed: exactly n_new argmax tokens."""
    with load_model(str(model_dir), None, LoadOptions()) as m:
        prefix = m.encode("The nurse said")
        ref = m.greedy([prefix], 12)[0]
    d = tmp_path / "eos"
    shutil.copytree(model_dir, d)
    for fname in ("config.json", "generation_config.json"):
        cfg = json.loads((d / fname).read_text())
        cfg["eos_token_id"] = ref[0]  # the first generated token is "EOS" for transformers
        (d / fname).write_text(json.dumps(cfg))
    with load_model(str(d), None, LoadOptions()) as m:
        assert m.greedy([prefix], 12)[0] == ref


# ------------------------------------------------------------------------------------------ loading


def test_n_params_counted(model_dir: Path, m16: HFModel, tmp_path: Path) -> None:
    tensors = load_file(str(model_dir / "model.safetensors"))
    total = sum(t.numel() for t in tensors.values())
    emb = tensors["gpt_neox.embed_in.weight"].numel() + tensors["embed_out.weight"].numel()
    assert m16.n_params.total == total
    assert m16.n_params.nonembedding == total - emb
    h = HIDDEN
    assert m16.n_params.nonembedding == LAYERS * (12 * h * h + 13 * h) + 2 * h  # GPT-NeoX formula
    tied_dir = build_tiny_model(tmp_path, tie_embeddings=True, name="tied")
    with load_model(str(tied_dir), None, LoadOptions()) as tied:
        assert tied.n_params.total == total - 320 * h  # the shared matrix counted once
        assert tied.n_params.nonembedding == m16.n_params.nonembedding


def test_pickle_refused_unless_allowed(tmp_path: Path, m16: HFModel) -> None:
    d = build_tiny_model(tmp_path, save_safetensors=False, name="pickled")
    assert not (d / "model.safetensors").exists()
    with pytest.raises(ModelLoadError, match="--allow-pickle") as ei:
        load_model(str(d), None, LoadOptions())
    assert "\n" not in str(ei.value)
    with load_model(str(d), None, LoadOptions(allow_pickle=True)) as m:
        pairs = make_pairs(5)
        a, b = m.loglikelihood(pairs), m16.loglikelihood(pairs)  # same seed → same weights
        assert max(abs(x.logprob - y.logprob) for x, y in zip(a, b, strict=True)) < 1e-5


def test_truncated_safetensors(tmp_path: Path) -> None:
    d = build_tiny_model(tmp_path)
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        load_model(str(d), None, LoadOptions())
    f.write_bytes(b"\x00" * 5)
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        load_model(str(d), None, LoadOptions())


def test_missing_path() -> None:
    with pytest.raises(ModelLoadError, match="does not exist") as ei:
        load_model("/nonexistent/riskaudit/model", None, LoadOptions())
    assert "/nonexistent/riskaudit/model" in str(ei.value)


def _connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, float | None]]:
    """Every connection attempted from here on, (address, socket timeout); each is refused at once.

    Left out: huggingface_hub's (≥ 2.4) fetch of its agent-harness registry, which it makes once per process
    when it first builds request headers, in local-files-only mode too (bounded by its own 3 s timeout, cached
    on disk for a day, skipped under HF_HUB_OFFLINE). It downloads nothing of the model; whether it happens in
    this test depends on which test this process ran first."""
    tried: list[tuple[object, float | None]] = []

    def connect(self: socket.socket, address: object) -> None:
        if not any("_detect_agent" in frame.filename for frame in traceback.extract_stack()):
            tried.append((address, self.gettimeout()))
        raise ConnectionRefusedError(111, "refused (test)")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return tried


def test_hub_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tried = _connections(monkeypatch)
    with pytest.raises(ModelLoadError) as ei:
        load_model("riskaudit-test/no-such-model-xyz", "step1000", LoadOptions())
    assert tried == []  # fails fast: offline, not one connection is attempted
    msg = str(ei.value)
    assert "'riskaudit-test/no-such-model-xyz' (revision step1000)" in msg
    assert "Hugging Face Hub" in msg and "HF cache" in msg and "local path" in msg
    assert "\n" not in msg


def test_hub_unreachable_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    for var in ("http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    tried = _connections(monkeypatch)
    with pytest.raises(ModelLoadError, match="no network access to the Hugging Face Hub"):
        load_model("riskaudit-test/no-such-model-xyz", None, LoadOptions())
    # fails fast: one quick, bounded probe of the endpoint, then no download attempts and no retries
    assert len(tried) == 1 and tried[0][0] == ("127.0.0.1", 9), tried
    timeout = tried[0][1]
    assert timeout is not None and 0 < timeout <= 3


def test_remote_code_refused(tmp_path: Path) -> None:
    d = build_tiny_model(tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "riskaudit-custom"
    cfg["auto_map"] = {
        "AutoConfig": "configuration_x.XConfig",
        "AutoModelForCausalLM": "modeling_x.XForCausalLM",
    }
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="--trust-remote-code"):
        load_model(str(d), None, LoadOptions())


def test_tokenizer_missing_or_broken(tmp_path: Path) -> None:
    d = build_tiny_model(tmp_path, with_tokenizer=False, name="notok")
    with pytest.raises(ModelLoadError, match="tokenizer"):
        load_model(str(d), None, LoadOptions())
    d = build_tiny_model(tmp_path, name="badtok")
    (d / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="tokenizer"):
        load_model(str(d), None, LoadOptions())


def test_bad_options(model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="dtype"):
        load_model(str(model_dir), None, LoadOptions(dtype="float8"))
    with pytest.raises(ModelLoadError, match="device"):
        load_model(str(model_dir), None, LoadOptions(device="tpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            load_model(str(model_dir), None, LoadOptions(device="cuda"))


def test_half_precision_scores_in_float32(model_dir: Path, m16: HFModel) -> None:
    pairs = make_pairs(10)
    ref = m16.loglikelihood(pairs)
    with load_model(str(model_dir), None, LoadOptions(dtype="bfloat16")) as m:
        assert m.dtype == "bfloat16"
        res = m.loglikelihood(pairs)
    for a, b in zip(res, ref, strict=True):
        assert np.isfinite(a.logprob)
        assert abs(a.logprob - b.logprob) < 0.1 * max(1, b.n_tokens)


def test_nan_logits_raise_numerical_error(tmp_path: Path, model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        model.get_output_embeddings().weight[5, 0] = float("nan")
    d = tmp_path / "nan"
    model.save_pretrained(d)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(d)
    with load_model(str(d), None, LoadOptions()) as m:
        with pytest.raises(NumericalError, match="bfloat16") as ei:
            m.loglikelihood([("The nurse", " said")])
        assert isinstance(ei.value, RiskauditError)
        with pytest.raises(NumericalError):
            m.token_stats([[5, 6, 7]], [1])
        with pytest.raises(NumericalError):
            m.greedy([[5, 6, 7]], 2)


def test_close(model_dir: Path) -> None:
    m = load_model(str(model_dir), None, LoadOptions(), name="tiny-70m")
    assert m.name == "tiny-70m"
    m.close()
    assert m.closed
    with pytest.raises(RuntimeError, match="closed"):
        m.loglikelihood([("a", " b")])
    m.close()  # idempotent


def test_sample_is_seeded_batch_invariant_and_order_preserving(m1: HFModel, m16: HFModel) -> None:
    prefixes = [m16.encode(s)[: 3 + k % 5] for k, s in enumerate(SENTENCES)] * 2
    a = m16.sample(prefixes, 8, seed=3)
    assert len(a) == len(prefixes) and all(len(x) == 8 for x in a)
    assert a == m16.sample(prefixes, 8, seed=3)  # same seed -> same tokens
    assert a == m1.sample(prefixes, 8, seed=3)  # batch size does not matter
    assert a != m16.sample(prefixes, 8, seed=4)
    # row i is seeded from (seed, i): a prefix list's first rows give the same tokens alone
    assert m16.sample(prefixes[:3], 8, seed=3) == a[:3]
    # repeated prefixes (rows 0 and len/2) get different random streams
    assert a[0] != a[len(SENTENCES)]
    # top-k = 1 and a tiny temperature both reduce to greedy decoding
    greedy = m16.greedy(prefixes, 8)
    assert m16.sample(prefixes, 8, seed=5, top_k=1) == greedy
    assert m16.sample(prefixes, 8, seed=5, temperature=1e-6) == greedy
    assert m16.sample(prefixes[:2], 0, seed=1) == [[], []]
    for bad in ({"temperature": 0.0}, {"top_k": 0}, {"seed": -1}):
        with pytest.raises(ValueError):
            m16.sample(prefixes[:1], 2, **{"seed": 0, **bad})


def test_sample_follows_the_softmax(m16: HFModel, raw: tuple[torch.nn.Module, object]) -> None:
    """The empirical first-token distribution matches softmax(logits / T) (Gumbel-max is exact)."""
    model, _ = raw
    prefix = m16.encode(SENTENCES[0])[:4]
    n = 1200
    with torch.no_grad():
        logits = model(torch.tensor([prefix])).logits[0, -1].double()
    for temperature in (1.0, 2.0):
        probs = torch.softmax(logits / temperature, dim=-1).numpy()
        firsts = np.array([s[0] for s in m16.sample([prefix] * n, 1, seed=11, temperature=temperature)])
        top = np.argsort(probs)[::-1][:3]
        for tok in top:
            p = float(probs[tok])
            freq = float(np.mean(firsts == tok))
            assert abs(freq - p) < 4.5 * math.sqrt(p * (1 - p) / n) + 1e-3, (temperature, tok, freq, p)
    # top-k restricts the support to the k most likely tokens
    firsts = {s[0] for s in m16.sample([prefix] * 200, 1, seed=2, top_k=3)}
    assert firsts <= set(int(t) for t in np.argsort(logits.numpy())[::-1][:3])
