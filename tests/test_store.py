"""The result store: exact keying (no answer served to another model), round trips, atomicity, errors."""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import riskaudit.run.weights as weights_mod
from riskaudit.analysis.metric import MetricResult
from riskaudit.errors import ModelLoadError, RiskauditError
from riskaudit.models.base import LoadOptions
from riskaudit.probes.base import ItemRecord, ProbeResult
from riskaudit.run.store import CACHE_DIR_ENV, STORE_FILENAME, ResultStore, default_store_path, store_path
from riskaudit.run.unit_key import ModelInfo, ModelKey, UnitKey, unit_options_hash
from riskaudit.run.weights import is_pinned, weights_fingerprint

REPO = Path(__file__).resolve().parent.parent
DEMO_50K = REPO / "riskaudit" / "zoo" / "demo" / "members" / "demo-50k"
COMMIT_A = "a" * 40
COMMIT_B = "0123456789abcdef0123456789abcdef01234567"


# --------------------------------------------------------------------------------------------------
# helpers


def _result(probe_id: str = "probe_a", probe_hash: str = "h" * 64, value: float = 0.25) -> ProbeResult:
    return ProbeResult(
        probe_id=probe_id,
        probe_hash=probe_hash,
        metrics=[
            MetricResult(
                name="gap",
                value=value,
                ci_low=value - 0.1,
                ci_high=value + 0.1,
                n_items=3,
                direction="higher_is_riskier",
                baseline=0.0,
                kind="continuous",
                description="a metric",
            ),
            MetricResult(
                name="flag",
                value=None,
                n_items=3,
                direction="two_sided",
                baseline=0.5,
                kind="discrete",
                companion="gap",
            ),
        ],
        records=[
            ItemRecord(
                probe=probe_id,
                item_id=f"item-{i}",
                attrs={"occupation": "nurse", "n": i, "pct": 0.1 * i, "none": None},
                values={"gap": 0.1 * i - 1e-17, "big": 1e300, "inf": math.inf, "tiny": 5e-324},
            )
            for i in range(3)
        ],
        notes=["a note", "ünïcödé note"],
        replicates={"gap": [0.1, None, 0.30000000000000004], "flag": []},
    )


def _key(**overrides: Any) -> UnitKey:
    fields: dict[str, Any] = {
        "model_id": "EleutherAI/pythia-70m",
        "revision": "step1000",
        "weights_hash": f"hf:EleutherAI/pythia-70m@{COMMIT_A}",
        "dtype": "float32",
        "probe_id": "probe_a",
        "probe_hash": "h" * 64,
        "unit_options_hash": "o" * 64,
    }
    fields.update(overrides)
    return UnitKey(**fields)


def _assert_same_result(got: ProbeResult | None, want: ProbeResult) -> None:
    assert got is not None
    assert got.probe_id == want.probe_id and got.probe_hash == want.probe_hash
    assert got.metrics == want.metrics
    assert got.records == want.records
    assert got.notes == want.notes
    assert got.replicates == want.replicates
    assert got.model_dump_json() == want.model_dump_json()


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with ResultStore(tmp_path / "cache" / STORE_FILENAME) as s:
        yield s


def _model_dir(tmp_path: Path, name: str = "model") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "gpt_neox"}')
    (d / "tokenizer.json").write_text('{"vocab": 1}')
    (d / "model.safetensors").write_bytes(b"\x01" * 4096)
    return d


# --------------------------------------------------------------------------------------------------
# round trip


def test_same_key_hits_with_identical_result(store: ResultStore) -> None:
    res = _result()
    key = _key()
    assert store.get(key) is None
    store.put(key, res, seconds=1.5)
    _assert_same_result(store.get(key), res)
    # an equal key built separately hits too
    _assert_same_result(store.get(UnitKey(**key.model_dump())), res)
    got = store.get(key)
    assert got is not None and got.records[0].values["inf"] == math.inf
    assert isinstance(got.records[1].attrs["n"], int) and isinstance(got.records[1].attrs["pct"], float)


def test_round_trip_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILENAME
    res = _result()
    with ResultStore(path) as s:
        s.put(_key(), res)
    with ResultStore(path) as s:
        _assert_same_result(s.get(_key()), res)
        assert s.stats().n_units == 1


def test_nan_round_trips(store: ResultStore) -> None:
    res = _result()
    res.records[0].values["nan"] = math.nan
    store.put(_key(), res)
    got = store.get(_key())
    assert got is not None and math.isnan(got.records[0].values["nan"])


def test_replicates_round_trip_bit_for_bit(store: ResultStore) -> None:
    import struct

    reps: list[float | None] = [0.1, None, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308, None]
    res = _result()
    res.replicates = {"gap": reps, "empty": [], "all_none": [None, None]}
    store.put(_key(), res)
    got = store.get(_key())
    assert got is not None and set(got.replicates) == {"gap", "empty", "all_none"}
    assert got.replicates["empty"] == [] and got.replicates["all_none"] == [None, None]
    bits = [None if v is None else struct.pack("<d", v) for v in got.replicates["gap"]]
    assert bits == [None if v is None else struct.pack("<d", v) for v in reps]


def test_real_probe_result_round_trips(store: ResultStore) -> None:
    """A real probe run on the shipped demo-50k member comes back identical, replicates included."""
    from riskaudit.models import load_model
    from riskaudit.probes.registry import load_bias_probes

    probe = next(p for p in load_bias_probes() if p.id == "occupation_gender_minimal_pairs")
    with load_model(str(DEMO_50K), None, LoadOptions(batch_size=64), name="demo-50k") as model:
        res = probe.run(model)
    assert res.replicates and res.records
    key = UnitKey(
        model_id=str(DEMO_50K),
        weights_hash=store.weights_fingerprint(str(DEMO_50K), None),
        dtype="float32",
        probe_id=probe.id,
        probe_hash=probe.content_hash(),
        unit_options_hash=unit_options_hash(LoadOptions(), seed=0),
    )
    store.put(key, res)
    _assert_same_result(store.get(key), res)


# --------------------------------------------------------------------------------------------------
# keying: a different model, weights, dtype or probe is never served a stored answer


@pytest.mark.parametrize(
    "field,other",
    [
        ("model_id", "EleutherAI/pythia-160m"),
        ("revision", "step2000"),
        ("revision", None),
        ("weights_hash", f"hf:EleutherAI/pythia-70m@{COMMIT_B}"),
        ("dtype", "bfloat16"),
        ("probe_id", "probe_b"),
        ("probe_hash", "g" * 64),
        ("unit_options_hash", "p" * 64),
    ],
)
def test_any_key_field_change_is_a_miss_and_a_separate_entry(store: ResultStore, field: str, other: Any) -> None:
    base = _key()
    changed = _key(**{field: other})
    assert changed.digest() != base.digest()
    store.put(base, _result(value=0.25))
    assert store.get(changed) is None, f"a different {field} was served another unit's result"
    res_other = _result(probe_id=changed.probe_id, probe_hash=changed.probe_hash, value=0.75)
    store.put(changed, res_other)
    assert store.stats().n_units == 2
    _assert_same_result(store.get(base), _result(value=0.25))
    _assert_same_result(store.get(changed), res_other)


def test_digest_is_canonical_and_unambiguous() -> None:
    assert _key().digest() == _key().digest()
    # field boundaries cannot be shifted (the digest is over canonical JSON, not a joined string)
    a = _key(model_id="org/m", revision="x|float32")
    b = _key(model_id="org/m|x", revision="float32")
    assert a.digest() != b.digest()
    assert _key(revision=None).digest() != _key(revision="None").digest() != _key(revision="").digest()


def test_key_validation() -> None:
    with pytest.raises(ValueError):
        _key(model_id="")
    with pytest.raises(ValueError):
        UnitKey(**{**_key().model_dump(), "colour": "blue"})
    with pytest.raises(ValueError):  # frozen
        _key().dtype = "float16"  # type: ignore[misc]


def test_put_refuses_a_result_of_another_probe(store: ResultStore) -> None:
    with pytest.raises(ValueError, match="probe_b"):
        store.put(_key(), _result(probe_id="probe_b"))
    with pytest.raises(ValueError):
        store.put(_key(), _result(probe_hash="x" * 64))
    assert store.stats().n_units == 0


def test_changed_weights_file_at_same_path_is_a_miss(store: ResultStore, tmp_path: Path) -> None:
    """Same directory, same file name and size, even the same mtime: new contents ⇒ new weights hash ⇒ miss."""
    d = _model_dir(tmp_path)
    fp1 = store.weights_fingerprint(str(d), None)
    key1 = _key(model_id=str(d), revision=None, weights_hash=fp1)
    store.put(key1, _result())
    weights = d / "model.safetensors"
    st = weights.stat()
    weights.write_bytes(b"\x02" * 4096)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # hide the change from size and mtime
    fp2 = store.weights_fingerprint(str(d), None)
    assert fp2 != fp1
    key2 = _key(model_id=str(d), revision=None, weights_hash=fp2)
    assert store.get(key2) is None
    assert store.get(key1) is not None  # the old weights' entry stays, addressable only with the old hash


def test_probe_text_change_is_a_miss(store: ResultStore, tmp_path: Path) -> None:
    """Editing one template of a probe file changes its content hash, so no stored result is served."""
    from riskaudit.probes.registry import load_bias_probes

    text = (REPO / "probes" / "minimal_pairs.yaml").read_text()
    builtin_id = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("id:"))
    hashes = []
    for i, variant in enumerate([text, text.replace("in the city.", "in the town.", 1)]):
        d = tmp_path / f"probes{i}"
        d.mkdir()
        (d / "mine.yaml").write_text(variant.replace(f"id: {builtin_id}", "id: my_pairs", 1))
        probe = next(p for p in load_bias_probes([d]) if p.id == "my_pairs")
        hashes.append(probe.content_hash())
    assert "in the town." not in text and hashes[0] != hashes[1]
    store.put(_key(probe_id="my_pairs", probe_hash=hashes[0]), _result("my_pairs", hashes[0]))
    assert store.get(_key(probe_id="my_pairs", probe_hash=hashes[1])) is None
    assert store.get(_key(probe_id="my_pairs", probe_hash=hashes[0])) is not None


def test_unit_options_hash() -> None:
    base = unit_options_hash(LoadOptions(), seed=0)
    assert base == unit_options_hash(LoadOptions(), seed=0)
    assert unit_options_hash(LoadOptions(batch_size=3), seed=0) == base  # batching does not change results
    assert unit_options_hash(LoadOptions(device="cuda:1"), seed=0) == unit_options_hash(
        LoadOptions(device="cuda"), seed=0
    )
    for other in (
        unit_options_hash(LoadOptions(), seed=1),
        unit_options_hash(LoadOptions(device="cuda"), seed=0),
        unit_options_hash(LoadOptions(max_length=64), seed=0),
        unit_options_hash(LoadOptions(trust_remote_code=True), seed=0),
        unit_options_hash(LoadOptions(), seed=0, extra={"k": 1}),
    ):
        assert other != base


# --------------------------------------------------------------------------------------------------
# weights fingerprints


def test_local_fingerprint_covers_weights_config_and_tokenizer(tmp_path: Path) -> None:
    d = _model_dir(tmp_path)
    fp = weights_fingerprint(str(d), None)
    assert fp.startswith("sha256:") and is_pinned(fp)
    assert weights_fingerprint(str(d), "any-label") == fp  # a local revision is a label; the key keeps it
    (d / "README.md").write_text("docs")
    (d / "optimizer.pt").write_bytes(b"state")  # trainer state, not loaded
    assert weights_fingerprint(str(d), None) == fp
    for name, data in [("config.json", '{"model_type": "llama"}'), ("tokenizer.json", '{"vocab": 2}')]:
        old = (d / name).read_text()
        (d / name).write_text(data)
        assert weights_fingerprint(str(d), None) != fp, name
        (d / name).write_text(old)
    assert weights_fingerprint(str(d), None) == fp
    (d / "pytorch_model.bin").write_bytes(b"pickled")
    assert weights_fingerprint(str(d), None) != fp
    (d / "pytorch_model.bin").unlink()
    (d / "model.safetensors").rename(d / "model-00001-of-00001.safetensors")  # names are hashed
    assert weights_fingerprint(str(d), None) != fp
    # same contents in another directory: same fingerprint (the key's model_id still tells them apart)
    (d / "model-00001-of-00001.safetensors").rename(d / "model.safetensors")
    copy = tmp_path / "copy"
    shutil.copytree(d, copy)
    (copy / "README.md").unlink()
    assert weights_fingerprint(str(copy), None) == fp


def test_fingerprint_cache_avoids_rehashing(store: ResultStore, tmp_path: Path, monkeypatch: Any) -> None:
    d = _model_dir(tmp_path)
    calls: list[str] = []
    real = weights_mod.sha256_file

    def counting(path: Path) -> str:
        calls.append(path.name)
        return real(path)

    monkeypatch.setattr(weights_mod, "sha256_file", counting)
    fp = store.weights_fingerprint(str(d), None)
    assert sorted(calls) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert fp == weights_fingerprint(str(d), None)  # same value with or without the cache
    calls.clear()
    assert store.weights_fingerprint(str(d), None) == fp
    assert calls == []  # stat only
    (d / "model.safetensors").write_bytes(b"\x03" * 4096)
    calls.clear()
    assert store.weights_fingerprint(str(d), None) != fp
    assert calls == ["model.safetensors"]
    assert store.stats().n_fingerprints == 3


def _fake_hub_cache(root: Path, repo: str, refs: dict[str, str]) -> Path:
    base = root / ("models--" + repo.replace("/", "--"))
    for ref, commit in refs.items():
        (base / "refs").mkdir(parents=True, exist_ok=True)
        (base / "refs" / ref).write_text(commit)
        snap = base / "snapshots" / commit
        snap.mkdir(parents=True, exist_ok=True)
        (snap / "config.json").write_text("{}")
    return root


def test_hub_fingerprint_uses_the_resolved_commit(tmp_path: Path) -> None:
    cache = _fake_hub_cache(tmp_path / "hub", "org/model", {"main": COMMIT_A, "step1000": COMMIT_B})
    assert weights_fingerprint("org/model", None, hub_cache=cache) == f"hf:org/model@{COMMIT_A}"
    assert weights_fingerprint("org/model", "main", hub_cache=cache) == f"hf:org/model@{COMMIT_A}"
    assert weights_fingerprint("org/model", "step1000", hub_cache=cache) == f"hf:org/model@{COMMIT_B}"
    assert weights_fingerprint("org/model", COMMIT_B, hub_cache=cache) == f"hf:org/model@{COMMIT_B}"
    # main moves to a new commit: a new fingerprint, so the old results are not served
    (cache / "models--org--model" / "refs" / "main").write_text(COMMIT_B)
    assert weights_fingerprint("org/model", None, hub_cache=cache) == f"hf:org/model@{COMMIT_B}"
    # not in the cache: the revision name, which is only pinned when it is a commit hash
    fallback = weights_fingerprint("org/other", "step5", hub_cache=cache)
    assert fallback == "hub:org/other@step5" and not is_pinned(fallback)
    assert weights_fingerprint("org/other", None, hub_cache=cache) == "hub:org/other@main"
    assert is_pinned(weights_fingerprint("org/other", COMMIT_A, hub_cache=cache))
    assert is_pinned(f"hf:org/model@{COMMIT_A}")


def test_missing_or_unreadable_local_paths(tmp_path: Path) -> None:
    fp = weights_fingerprint(str(tmp_path / "nope" / "model"), None)
    assert fp.startswith("missing:") and not is_pinned(fp)
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert weights_fingerprint(str(f), None).startswith("missing:")
    if os.geteuid() != 0:
        d = _model_dir(tmp_path)
        (d / "model.safetensors").chmod(0)
        with pytest.raises(ModelLoadError, match="fingerprint"):
            weights_fingerprint(str(d), None)


def test_demo_member_fingerprint_is_stable() -> None:
    fp = weights_fingerprint(str(DEMO_50K), None)
    assert fp == weights_fingerprint(str(DEMO_50K), None)
    assert fp != weights_fingerprint(str(DEMO_50K.parent / "demo-150k"), None)


# --------------------------------------------------------------------------------------------------
# model facts, stats, clear, location


def test_model_info(store: ResultStore) -> None:
    mk = _key().model
    assert isinstance(mk, ModelKey) and store.get_model_info(mk) is None
    store.put_model_info(mk, ModelInfo(params_total=70_426_624, params_nonembedding=18_915_328))
    assert store.get_model_info(mk) == ModelInfo(params_total=70_426_624, params_nonembedding=18_915_328)
    assert store.get_model_info(_key(weights_hash="sha256:other").model) is None
    assert store.get_model_info(_key(revision=None).model) is None


def test_stats_and_clear(store: ResultStore) -> None:
    empty = store.stats()
    assert empty.n_units == 0 and empty.schema_version == 1 and empty.oldest_utc is None
    store.put(_key(), _result())
    store.put(_key(dtype="float16"), _result())
    store.put(_key(probe_id="probe_b"), _result(probe_id="probe_b"))
    stats = store.stats()
    assert (stats.n_units, stats.n_models, stats.n_probes, stats.n_records) == (3, 1, 2, 9)
    assert stats.units_by_probe == {"probe_a": 2, "probe_b": 1}
    assert stats.size_bytes > 0 and stats.path == str(store.path)
    assert store.clear() == 3
    assert store.stats().n_units == 0 and store.get(_key()) is None
    store.put(_key(), _result())  # usable after a clear
    assert store.get(_key()) is not None


def test_store_locations(tmp_path: Path, monkeypatch: Any) -> None:
    import platformdirs

    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    assert default_store_path() == Path(platformdirs.user_cache_dir("riskaudit")) / "results.sqlite"
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "env"))
    assert default_store_path() == tmp_path / "env" / "results.sqlite"
    assert store_path(tmp_path / "flag") == tmp_path / "flag" / "results.sqlite"  # --cache-dir wins
    with ResultStore(store_path(tmp_path / "new" / "deep")) as s:  # directories are created
        assert s.path.is_file()
        mode = s._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


# --------------------------------------------------------------------------------------------------
# atomicity


def test_failed_put_leaves_nothing_behind(store: ResultStore) -> None:
    store.put(_key(), _result(value=0.25))

    def boom() -> None:
        raise KeyboardInterrupt

    store._before_commit = boom
    with pytest.raises(KeyboardInterrupt):
        store.put(_key(), _result(value=0.99))  # a replacement, interrupted
    with pytest.raises(KeyboardInterrupt):
        store.put(_key(dtype="float16"), _result())  # a new unit, interrupted
    store._before_commit = None
    _assert_same_result(store.get(_key()), _result(value=0.25))
    assert store.get(_key(dtype="float16")) is None
    assert store.stats().n_units == 1


def test_killed_process_never_leaves_a_half_written_unit(tmp_path: Path) -> None:
    """A process SIGKILLed inside put's transaction (after its writes, before the commit) leaves the store
    exactly as before: the old unit intact, the new one absent, the file readable."""
    path = tmp_path / STORE_FILENAME
    with ResultStore(path) as s:
        s.put(_key(), _result(value=0.25))
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from test_store import _key, _result
        from riskaudit.run.store import ResultStore
        s = ResultStore({str(path)!r})
        s.put(_key(dtype="bfloat16"), _result())  # committed
        s._before_commit = lambda: os.kill(os.getpid(), signal.SIGKILL)
        s.put(_key(), _result(value=0.99))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -9, proc.stderr
    with ResultStore(path) as s:
        _assert_same_result(s.get(_key()), _result(value=0.25))
        assert s.get(_key(dtype="bfloat16")) is not None
        assert s.stats().n_units == 2
        assert s._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --------------------------------------------------------------------------------------------------
# concurrency


def test_readers_are_not_blocked_by_an_open_write(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILENAME
    with ResultStore(path) as writer, ResultStore(path) as reader, ResultStore(path) as reader2:
        writer.put(_key(), _result())
        writer._conn.execute("BEGIN IMMEDIATE")  # another process mid-write
        writer._conn.execute("DELETE FROM units")
        _assert_same_result(reader.get(_key()), _result())
        _assert_same_result(reader2.get(_key()), _result())
        writer._conn.execute("ROLLBACK")


def test_concurrent_writers_each_with_their_own_store(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILENAME
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            with ResultStore(path) as s:
                for i in range(15):
                    pid = f"p{t}_{i}"
                    s.put(_key(probe_id=pid), _result(probe_id=pid))
                    assert s.get(_key(probe_id=pid)) is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with ResultStore(path) as s:
        assert s.stats().n_units == 60


# --------------------------------------------------------------------------------------------------
# unusable files: one-line errors


def _one_line(exc: pytest.ExceptionInfo[RiskauditError], *needles: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, (n, msg)


def test_corrupt_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILENAME
    path.write_bytes(b"this is not sqlite\n" + os.urandom(4000))
    with pytest.raises(RiskauditError) as exc:
        ResultStore(path)
    _one_line(exc, str(path), "not a riskaudit store or is corrupt", "delete it or pass --cache-dir")


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILENAME
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(RiskauditError) as exc:
        ResultStore(path)
    _one_line(exc, str(path), "not a riskaudit store", "photos", "--cache-dir")
    conn = sqlite3.connect(path)  # untouched
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["photos"]
    conn.close()


def test_store_from_a_newer_riskaudit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILENAME
    with ResultStore(path) as s:
        s._conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RiskauditError) as exc:
        ResultStore(path)
    _one_line(exc, "newer riskaudit", "--cache-dir")


def test_older_schema_is_rebuilt(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / STORE_FILENAME
    with ResultStore(path) as s:
        s.put(_key(), _result())
        s._conn.execute("UPDATE schema_version SET version = 0")
    with ResultStore(path) as s:
        assert s.stats().n_units == 0 and s.stats().schema_version == 1


def test_corrupt_pages_are_reported(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILENAME
    with ResultStore(path) as s:
        for i in range(40):
            s.put(_key(probe_id=f"p{i}"), _result(probe_id=f"p{i}"))
        s._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    for off in range(page, len(data), page):  # trash every page but the header page
        data[off : off + page] = os.urandom(min(page, len(data) - off))
    path.write_bytes(bytes(data))
    with pytest.raises(RiskauditError) as exc, ResultStore(path) as s:
        for i in range(40):
            s.get(_key(probe_id=f"p{i}"))
    _one_line(exc, str(path), "--cache-dir")


def test_undecodable_payload_is_a_miss(store: ResultStore) -> None:
    store.put(_key(), _result())
    store._conn.execute("UPDATE units SET payload = ?", (b"garbage",))
    assert store.get(_key()) is None
    store.put(_key(), _result())
    assert store.get(_key()) is not None


def test_unwritable_locations_are_one_line_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(RiskauditError) as exc:
        ResultStore(blocker / "sub" / STORE_FILENAME)  # the cache dir cannot be created
    _one_line(exc, "cannot use the result store", "--cache-dir", "--no-cache")
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(RiskauditError) as exc:
        ResultStore(tmp_path / "dir.sqlite")  # the store path is a directory
    _one_line(exc, "is a directory", "--cache-dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_cache_dir_is_a_one_line_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(RiskauditError) as exc:
            ResultStore(ro / STORE_FILENAME)
        _one_line(exc, "not writable", "--cache-dir")
    finally:
        ro.chmod(0o700)
