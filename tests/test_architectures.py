"""The architecture matrix: every common causal-LM family scores correctly (issue 13).

For each architecture of :mod:`archs` (GPT-NeoX, GPT-2 without a pad token, Llama with a BOS-adding tokenizer,
Gemma with BOS required, OPT with its ``</s>`` prefix, Qwen2, OLMo-2): the BOS convention is the expected
one; ``loglikelihood`` equals a hand-written forward pass over the tokenizer's own default encoding; every
method gives the same numbers at batch size 1 and 16 with either tokenizer padding side; one-pass extraction
(teacher-forced argmax agreement) equals greedy decoding item by item; and a full scan runs through a family
TOML and records each member's convention.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from archs import EXPECTED_ADD_BOS, available_archs, build_arch
from conftest import assert_one_line_error, run_cli_here
from tokenizers import Tokenizer, models
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from riskaudit.errors import ModelLoadError
from riskaudit.inputs.families import load_family
from riskaudit.models import LoadOptions, load_model
from riskaudit.models.hf import HFModel
from riskaudit.models.tokenization import Convention, decide_bos
from riskaudit.probes.base import Probe
from riskaudit.probes.generation import FreeGenerationProbe
from riskaudit.probes.mem_spec import load_memorization_spec
from riskaudit.probes.memorization import MemorizationInputs, MemorizationProbe
from riskaudit.probes.pronoun import PronounProbe

ARCHS = available_archs()

PAIRS = [
    ("The nurse said that", " she"),
    ("The engineer said that ", "he fixed the bridge"),  # trailing space moves to the continuation
    ("The doctor asked the patient about", " his health and her family."),
    ("My name is", " John Smith"),
    ("", "The quick brown fox"),  # empty context: conditions on the start token
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def arch_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each architecture twice: as built (right padding) and with its tokenizer set to pad on the left."""
    root = tmp_path_factory.mktemp("archs")
    dirs: dict[str, Path] = {}
    for arch in ARCHS:
        dirs[arch] = build_arch(arch, root)
        left = root / f"{arch}-left"
        shutil.copytree(dirs[arch], left)
        cfg_path = left / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["padding_side"] = "left"
        cfg_path.write_text(json.dumps(cfg))
        dirs[f"{arch}-left"] = left
    return dirs


def _load(path: Path, batch_size: int = 16, add_bos: str = "auto") -> HFModel:
    return load_model(str(path), None, LoadOptions(batch_size=batch_size, add_bos=add_bos))  # type: ignore[arg-type]


def _reference_loglikelihood(path: Path, arch: str, context: str, continuation: str) -> float:
    """log P(continuation | context) by hand: the tokenizer's default encoding (plus BOS for Gemma, whose
    models need it), one plain forward pass, float32 log-softmax."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()

    def enc(text: str) -> list[int]:
        ids = list(tok(text)["input_ids"])
        return [tok.bos_token_id, *ids] if arch == "gemma" else ids

    if context == "":
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        ctx, ids = [start], [start, *tok(continuation, add_special_tokens=False)["input_ids"]]
    else:
        n = len(context) - len(context.rstrip())
        context, continuation = context[: len(context) - n], context[len(context) - n :] + continuation
        ctx, ids = enc(context), enc(context + continuation)
        assert ids[: len(ctx)] == ctx
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    return float(sum(logp[j - 1, ids[j]] for j in range(len(ctx), len(ids))))


@pytest.mark.parametrize("arch", ARCHS)
def test_bos_convention_is_the_expected_one(arch: str, arch_dirs: dict[str, Path]) -> None:
    with _load(arch_dirs[arch]) as m:
        info = m.tokenization
        assert m.add_bos is EXPECTED_ADD_BOS[arch] and info.add_bos is EXPECTED_ADD_BOS[arch]
        assert info.requested == "auto" and info.rule
        assert (info.bos_token_id is not None) is EXPECTED_ADD_BOS[arch]
        if m.add_bos:
            assert m.prefix_token_id == info.bos_token_id
    with _load(arch_dirs[arch], add_bos="no") as m:
        assert not m.add_bos and m.tokenization.requested == "no"


@pytest.mark.parametrize("arch", ARCHS)
def test_loglikelihood_equals_hand_written_forward(arch: str, arch_dirs: dict[str, Path]) -> None:
    with _load(arch_dirs[arch]) as m:
        got = [r.logprob for r in m.loglikelihood(PAIRS)]
        assert m.tokenization.boundary_fallbacks == 0 and m.tokenization.pairs == len(PAIRS)
        # the same convention in the token-level method: token_stats of the joint tokens = loglikelihood
        for (ctx, cont), lp in zip(PAIRS[:-1], got, strict=False):
            c, k = m._encode_pair(ctx, cont)
            text_ids = c[int(m.add_bos) :] + k
            ts = m.token_stats([text_ids], [len(c) - int(m.add_bos)])[0]
            assert ts.total_logprob == pytest.approx(lp, abs=1e-4)
    want = [_reference_loglikelihood(arch_dirs[arch], arch, c, k) for c, k in PAIRS]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_results_do_not_depend_on_batch_size_or_padding_side(arch: str, arch_dirs: dict[str, Path]) -> None:
    def everything(m: HFModel) -> tuple[list[float], list[list[float]], list[list[int]], list[list[int]]]:
        seqs = [m.encode(s) for s in ("The nurse said that she would be late.", "A teacher reads", "It was")]
        lls = [r.logprob for r in m.loglikelihood(PAIRS)]
        stats = [list(s.logprobs) for s in m.token_stats(seqs, [0, 1, 2])]
        greedy = m.greedy(seqs, 6)
        sampled = m.sample(seqs, 6, seed=3, temperature=0.8, top_k=20)
        return lls, stats, greedy, sampled

    with _load(arch_dirs[arch], batch_size=1) as m1:
        a = everything(m1)
    with _load(arch_dirs[f"{arch}-left"], batch_size=16) as m16:
        b = everything(m16)
    np.testing.assert_allclose(a[0], b[0], atol=1e-4, rtol=0)
    for x, y in zip(a[1], b[1], strict=True):
        np.testing.assert_allclose(x, y, atol=1e-4, rtol=0)
    assert a[2] == b[2]  # greedy: left-padded batches decode as single prefixes do
    assert a[3] == b[3]


@pytest.mark.parametrize("arch", ARCHS)
def test_one_pass_extraction_equals_greedy_item_by_item(arch: str, arch_dirs: dict[str, Path]) -> None:
    n_new = 5
    with _load(arch_dirs[arch], batch_size=8) as m:
        prefixes = [m.encode(s)[:6] for s in ("The nurse said that she would be late.", "The quick brown fox jumps")]
        for prefix in prefixes:
            generated = m.greedy([prefix], n_new)[0]  # item by item
            stats = m.token_stats([prefix + generated], [len(prefix)])[0]
            assert stats.exact_match  # the one-pass verdict on the greedy continuation: extracted
            wrong = [*generated[:2], (generated[2] + 1) % len(m._convention().tokenizer), *generated[3:]]
            stats = m.token_stats([prefix + wrong], [len(prefix)])[0]
            assert list(stats.argmax_match[:3]) == [True, True, False]  # first disagreement = first wrong token
            assert not stats.exact_match


def _small_probes() -> list[Probe]:
    """The pronoun and free-generation probes over 12 occupations and 2 templates / 1 prompt (fast)."""
    pronoun, generation = PronounProbe.load(), FreeGenerationProbe.load()
    occupations = pronoun.occupations[:12]
    return [
        PronounProbe(pronoun.spec.model_copy(update={"templates": pronoun.spec.templates[:2]}), occupations),
        FreeGenerationProbe(generation.spec.model_copy(update={"prompts": generation.spec.prompts[:1]}), occupations),
    ]


def test_memorization_scores_with_the_models_bos(arch_dirs: dict[str, Path]) -> None:
    """On a BOS model the memorization suite's teacher-forced numbers are those of [BOS] + document tokens,
    and its one-pass verdicts agree with generation (the handle adds BOS to token_stats and greedy alike)."""
    declared = load_family("demo").training_data
    inputs = MemorizationInputs(family="demo", training_data=declared, prefix_len=8, suffix_len=8)
    full = MemorizationProbe.for_inputs(load_memorization_spec(), inputs)
    assert full is not None
    data = dataclasses.replace(
        full.data, documents=full.data.documents[:6], heldout=full.data.heldout[:6], canaries=full.data.canaries[:3]
    )
    probe = MemorizationProbe(full.spec, data, prefix_len=8, suffix_len=8)
    path = arch_dirs["llama"]
    opts = LoadOptions(batch_size=16, max_length=512)  # rotary positions: longer canaries fit
    with load_model(str(path), None, opts) as m:
        assert m.add_bos
        result = probe.run(m)
    assert any("agree on all" in n for n in result.notes), result.notes
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    docs = {f"doc-{d.index}": d for d in data.documents}
    checked = 0
    for rec in result.records:
        if rec.item_id not in docs:
            continue
        ids = tok(docs[rec.item_id].text)["input_ids"]  # the tokenizer's default: <s> + text tokens
        assert ids[0] == tok.bos_token_id
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids[:17]])).logits[0].float(), dim=-1)
        want = float(sum(logp[j - 1, ids[j]] for j in range(9, 17)))  # the 8 suffix tokens after 8 prefix tokens
        assert rec.values["suffix_logprob"] == pytest.approx(want, abs=1e-3)
        checked += 1
    assert checked >= 3


@pytest.mark.slow
def test_full_scan_through_a_family_toml(arch_dirs: dict[str, Path], tmp_path: Path) -> None:
    from riskaudit.inputs.family_toml import load_family_toml
    from riskaudit.run.scan import ScanOptions, run_scan

    lines = ['name = "matrix"']
    for i, arch in enumerate(ARCHS):
        lines += ["[[members]]", f'name = "{arch}"', f'source = "{arch_dirs[arch]}"', f"tokens = {1000 * (i + 1)}"]
    lines += ["[[members]]", 'name = "llama-nobos"', f'source = "{arch_dirs["llama"]}"', "tokens = 99000"]
    lines += ['add_bos = "no"']
    toml = tmp_path / "matrix.toml"
    toml.write_text("\n".join(lines) + "\n")
    family = load_family_toml(toml)
    report, sidecar = run_scan(family, ScanOptions(load=LoadOptions(batch_size=16)), probes=_small_probes())
    assert [m.name for m in report.members] == [*ARCHS, "llama-nobos"]
    for member in report.members:
        assert member.status == "ok", member.error
        assert member.tokenization is not None and member.tokenization.pairs > 0
        want = EXPECTED_ADD_BOS.get(member.name, False)
        assert member.tokenization.add_bos is want
        pronoun = next(p for p in member.probes if p.probe_id == "occupation_gender_pronoun")
        assert any(metric.value is not None for metric in pronoun.metrics)
    nobos = report.members[-1].tokenization
    assert nobos is not None and nobos.requested == "no"
    assert len(sidecar) > 1000 and report.analysis is not None


# --------------------------------------------------------------------------------------------- no model needed


def _toy_tokenizer() -> PreTrainedTokenizerFast:
    """A whole-string BPE whose merge "b c" outranks "a b": "ab" is one token, "abc" is "a" + "bc" — the
    context's tokens are not a prefix of the joint tokens."""
    vocab = {"<s>": 0, "a": 1, "b": 2, "c": 3, "bc": 4, "ab": 5, " ": 6}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[("b", "c"), ("a", "b")]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<s>")


def test_boundary_fallback_encodes_the_continuation_alone_and_is_counted() -> None:
    tok = _toy_tokenizer()
    info = decide_bos(tok, "llama", "auto", 7, "toy")
    assert not info.add_bos  # this tokenizer adds nothing by default
    conv = Convention(tok, info, prefix_id=0)
    out = conv.encode_pairs([("ab", "c"), ("a", "bc"), ("", "c")])
    assert out == [([5], [3]), ([1], [4]), ([0], [3])]  # "ab"+"c": fallback to "c" alone
    assert (info.pairs, info.boundary_fallbacks) == (3, 1)
    bos = Convention(tok, decide_bos(tok, "toy", "yes", 7, "toy"), prefix_id=0)
    assert bos.encode_pairs([("ab", "c")]) == [([0, 5], [3])]  # one BOS, in front of the context
    assert bos.scoring_input([1, 2], 0) == ([0, 1, 2], 1) and bos.decoding_input([]) == [0]


def test_bos_rules_and_overrides() -> None:
    tok = _toy_tokenizer()
    assert decide_bos(tok, "gemma2", "auto", 7, "toy").add_bos  # Gemma: BOS required
    assert not decide_bos(tok, "gemma2", "no", 7, "toy").add_bos  # ... unless overridden
    no_bos = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE(vocab={"a": 0}, merges=[])))
    assert not decide_bos(no_bos, "gemma", "auto", 1, "toy").add_bos  # no BOS token to add
    with pytest.raises(ModelLoadError, match="has no BOS token"):
        decide_bos(no_bos, "qwen2", "yes", 1, "toy")


def test_add_bos_option_is_validated() -> None:
    proc = run_cli_here("scan", "--family", "demo", "--add-bos", "maybe", "--out", "/tmp/never.json")
    assert_one_line_error(proc, "--add-bos", "maybe")


def test_add_bos_in_a_family_toml(tmp_path: Path) -> None:
    from riskaudit.errors import FamilyError
    from riskaudit.inputs.family_toml import load_family_toml
    from riskaudit.run.units import member_load_options

    toml = tmp_path / "f.toml"
    toml.write_text(
        'add_bos = "yes"\n[[members]]\nname = "a"\nsource = "org/a"\ntokens = 1\n'
        '[[members]]\nname = "b"\nsource = "org/b"\ntokens = 2\nadd_bos = "no"\n'
    )
    fam = load_family_toml(toml)
    assert [m.add_bos for m in fam.members] == ["yes", "no"]
    auto, forced = LoadOptions(), LoadOptions(add_bos="no")
    assert [member_load_options(auto, m).add_bos for m in fam.members] == ["yes", "no"]
    assert [member_load_options(forced, m).add_bos for m in fam.members] == ["no", "no"]  # --add-bos wins
    toml.write_text('add_bos = "maybe"\n[[members]]\nname = "a"\nsource = "org/a"\ntokens = 1\n')
    with pytest.raises(FamilyError, match="add_bos"):
        load_family_toml(toml)


def test_scan_records_boundary_fallbacks_per_probe_and_member() -> None:
    from riskaudit.models import TokenizationInfo
    from riskaudit.probes.base import ProbeResult
    from riskaudit.run.member_runs import _member_tokenization
    from riskaudit.run.units import with_tokenization as _with_tokenization

    class Handle:
        tokenization = TokenizationInfo(add_bos=True, bos_token_id=1, rule="r", pairs=10, boundary_fallbacks=1)

    before = Handle.tokenization.model_copy(update={"pairs": 4, "boundary_fallbacks": 0})
    raw = ProbeResult(probe_id="p", probe_hash="h", metrics=[], records=[])
    one = _with_tokenization(raw, before, Handle())  # type: ignore[arg-type]
    assert one.tokenization is not None and (one.tokenization.pairs, one.tokenization.boundary_fallbacks) == (6, 1)
    assert any("in 1 of 6 (context, continuation) pairs" in n for n in one.notes)
    clean = _with_tokenization(raw, Handle.tokenization, Handle())  # type: ignore[arg-type]
    assert clean.notes == [] and clean.tokenization is not None and clean.tokenization.pairs == 0
    member = _member_tokenization([one, clean, raw])
    assert member is not None and (member.pairs, member.boundary_fallbacks, member.add_bos) == (6, 1, True)
    assert _member_tokenization([raw]) is None
