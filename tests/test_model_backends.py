"""Model backends by name: a backend defined here (a fake handle with deterministic log-likelihoods) runs a
built-in probe unchanged through ``load_model`` and through the scan's unit of work."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Self

import pytest

from riskaudit.errors import ModelLoadError, RiskauditError
from riskaudit.inputs.family_spec import ModelSpec
from riskaudit.models import DEFAULT_BACKEND, LoadOptions, backend_names, get_backend, load_model, register_backend
from riskaudit.models.backends import unregister_backend
from riskaudit.models.base import (
    BatchHalving,
    LoglikelihoodResult,
    Placement,
    TokenizationInfo,
    TokenStats,
)
from riskaudit.probes.pronoun import MALE_DEFAULT, PronounProbe
from riskaudit.run.units import compute_unit

FEMALE = {"she", "her", "hers", "herself"}


class FakeHandle:
    """log P(continuation | context): a hash of the pair in [-4, -2), plus ``lean`` for a female pronoun."""

    def __init__(self, name: str, lean: float) -> None:
        self.name = name
        self.lean = lean
        self.closed = False
        self.calls = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    vocab_size = 100
    max_length = 64
    add_bos = False
    prefix_token_id = 0
    n_params_total = 1234
    n_params_nonembedding = 234

    @property
    def tokenization(self) -> TokenizationInfo:
        return TokenizationInfo(add_bos=False, rule="fake")

    @property
    def batch_halvings(self) -> list[BatchHalving]:
        return []

    @property
    def placement(self) -> Placement:
        return Placement(dtype="float32", device="cpu")

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        assert not self.closed
        self.calls += 1
        out = []
        for context, continuation in pairs:
            h = int.from_bytes(hashlib.sha256(f"{context}\0{continuation}".encode()).digest()[:4], "big")
            lp = -4.0 + 2.0 * h / 2**32 + (self.lean if continuation.strip() in FEMALE else 0.0)
            out.append(LoglikelihoodResult(lp, 1, False))
        return out

    def encode(self, text: str) -> list[int]:
        return [ord(c) % self.vocab_size for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def token_stats(self, sequences: Sequence[Sequence[int]], prefix_lens: Sequence[int]) -> list[TokenStats]:
        raise NotImplementedError

    def greedy(self, prefixes: Sequence[Sequence[int]], n_new: int) -> list[list[int]]:
        raise NotImplementedError

    def sample(
        self,
        prefixes: Sequence[Sequence[int]],
        n_new: int,
        seed: int,
        temperature: float = 1.0,
        top_k: int | None = None,
    ) -> list[list[int]]:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


LOADED: list[FakeHandle] = []


def fake_loader(source: str, revision: str | None, options: LoadOptions, name: str | None) -> FakeHandle:
    """Source ``fake:LEAN``: a handle leaning ``LEAN`` nats towards the female pronouns."""
    if not source.startswith("fake:"):
        raise ModelLoadError(f"cannot load model {source!r}: not a fake source")
    handle = FakeHandle(name or source, float(source.removeprefix("fake:")))
    LOADED.append(handle)
    return handle


@pytest.fixture
def fake_backend() -> Iterator[str]:
    register_backend("fake", fake_loader)
    LOADED.clear()
    try:
        yield "fake"
    finally:
        unregister_backend("fake")


def test_transformers_is_the_default_backend() -> None:
    assert LoadOptions().backend == DEFAULT_BACKEND == "transformers"
    assert backend_names()[0] == "transformers"
    assert callable(get_backend("transformers"))


def test_unknown_backend_is_one_line_naming_the_registered(fake_backend: str) -> None:
    with pytest.raises(RiskauditError) as err:
        load_model("fake:0", None, LoadOptions(backend="vllm-not-installed"))
    msg = str(err.value)
    assert "\n" not in msg and "'vllm-not-installed'" in msg
    assert "transformers" in msg and "fake" in msg


def test_register_refuses_a_second_loader_under_a_name(fake_backend: str) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_backend("fake", lambda *a: fake_loader(*a))
    register_backend("fake", fake_loader)  # the same loader again: a no-op
    with pytest.raises(ValueError, match="cannot be removed"):
        unregister_backend(DEFAULT_BACKEND)


def test_a_probe_runs_unchanged_on_a_registered_backend(fake_backend: str) -> None:
    probe = PronounProbe.load()
    opts = LoadOptions(backend=fake_backend)
    with load_model("fake:0.8", None, opts, name="leaning") as model:
        assert isinstance(model, FakeHandle) and model.name == "leaning"
        via_backend = probe.run(model)
    assert model.closed and model.calls > 0
    direct = probe.run(FakeHandle("direct", 0.8))  # the same numbers as on the handle built by hand
    assert [r.values for r in via_backend.records] == [r.values for r in direct.records]
    assert via_backend.metrics == direct.metrics

    with load_model("fake:-0.8", None, opts) as other:
        leaning_male = probe.run(other)

    def male_default(result: object) -> float:
        (m,) = [m for m in result.metrics if m.name == MALE_DEFAULT]  # type: ignore[attr-defined]
        assert m.value is not None
        return float(m.value)

    assert male_default(via_backend) - male_default(leaning_male) == pytest.approx(1.6, abs=1e-9)


def test_the_scan_unit_loads_through_the_backend(fake_backend: str) -> None:
    probe = PronounProbe.load()
    member = ModelSpec(family="fakes", name="f1", source="fake:0.3")
    out = compute_unit(member, [probe], LoadOptions(backend=fake_backend), seed=0)
    assert [h.name for h in LOADED] == ["f1"] and LOADED[0].closed
    assert out.params_total == 1234 and out.params_nonembedding == 234
    assert out.results[probe.id].records and out.loaded == Placement(dtype="float32", device="cpu")


def test_a_loader_error_propagates_unchanged(fake_backend: str) -> None:
    with pytest.raises(ModelLoadError, match="not a fake source"):
        load_model("/nope", None, LoadOptions(backend=fake_backend))
