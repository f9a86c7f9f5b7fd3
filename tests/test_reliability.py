"""Reliability and security (issue 8): interruption and resume, Ctrl-C, determinism, NaN/Inf per member,
no leaks of canary secrets, and the bad-input catalogue (one line, exit 2, nothing written)."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from riskaudit.reporting.report import read_report
from riskaudit.run.store import STORE_FILENAME
from tests.conftest import REPO, DemoScanned, Scanned, assert_one_line_error, run_cli, run_cli_here
from tests.tiny import build_tiny_model, write_tiny_family

DEMO = REPO / "riskaudit" / "zoo" / "demo"
DEMO_MEMBERS = "demo-50k,demo-150k,demo-400k"


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "RISKAUDIT_CACHE_DIR": tempfile.mkdtemp(prefix="riskaudit-test-cache-"),
    }


def _scan_args(cache: Path, out: Path) -> list[str]:
    return ["scan", "--family", "demo", "--members", DEMO_MEMBERS, "--cache-dir", str(cache), "--out", str(out), "-q"]


def _stored_units(cache: Path) -> int:
    db = cache / STORE_FILENAME
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5) as conn:
            return int(conn.execute("SELECT count(*) FROM units").fetchone()[0])
    except sqlite3.Error:
        return 0


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_and_wait_for_a_unit(cache: Path, out: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskaudit", *_scan_args(cache, out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
        # A job started in the background by a non-interactive shell (as CI may be) inherits SIGINT as
        # ignored, and Python then never raises KeyboardInterrupt: give the scan a normal Ctrl-C.
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 300
    while _stored_units(cache) == 0:
        if proc.poll() is not None:
            pytest.fail(f"scan ended (rc {proc.returncode}) before any unit was stored: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no unit stored within 300 s")
        time.sleep(0.05)
    return proc


def _comparable(path: Path) -> dict[str, Any]:
    """The report without what legitimately differs between runs (timestamps, timings, command line)."""
    report = read_report(path)
    members = [
        m.model_dump(mode="json", exclude={"load_seconds": True, "placement": True, "probes": {"__all__": {"seconds"}}})
        for m in report.members
    ]
    return {
        "members": members,
        "analysis": None if report.analysis is None else report.analysis.model_dump(mode="json"),
        "sidecar": None if report.sidecar is None else (report.sidecar.rows, report.sidecar.sha256),
        "probes": [p.model_dump(mode="json") for p in report.probes],
        "notes": report.notes,
        "seed": report.run.seed,
    }


@pytest.mark.slow
@pytest.mark.xdist_group("demo-scan")
def test_sigkill_mid_scan_then_rerun_equals_an_uninterrupted_scan(tmp_path: Path, demo_scan: DemoScanned) -> None:
    """A scan killed after its first stored unit, then run again, gives the report of an uninterrupted scan.

    The uninterrupted scan's units are the session's demo scan's (every member computed cold in one run, same
    seed and options): the reference is a scan of the same three members over a copy of its store, which serves
    every unit (nothing is recomputed) and then analyses them as a fresh scan does."""
    cache, out = tmp_path / "cache", tmp_path / "out" / "r.json"
    proc = _start_and_wait_for_a_unit(cache, out)
    proc.kill()  # SIGKILL: no handler, no cleanup
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    n_before = _stored_units(cache)
    assert n_before > 0
    # nothing half-written: no report, no sidecar, no temp file
    assert not out.parent.exists() or list(out.parent.iterdir()) == []

    resumed = run_cli_here(*_scan_args(cache, out))
    assert resumed.returncode == 0, resumed.stderr
    assert _stored_units(cache) > n_before  # the rest was computed; the stored units were reused

    ref_out, ref_cache = tmp_path / "ref" / "r.json", tmp_path / "ref-cache"
    shutil.copytree(demo_scan.cache, ref_cache)
    ref = run_cli_here(*_scan_args(ref_cache, ref_out))
    assert ref.returncode == 0, ref.stderr
    assert all(m.placement is None for m in read_report(ref_out).members)  # served whole from the demo scan's units
    assert _comparable(out) == _comparable(ref_out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.items.jsonl", "r.json", "r.replicates.npz"]
    rep = "r.replicates.npz"  # the paired replicates too: the resumed scan's analysis rests on the same numbers
    assert (out.parent / rep).read_bytes() == (ref_out.parent / rep).read_bytes()


@pytest.mark.slow
def test_ctrl_c_keeps_stored_units_and_says_how_to_resume(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out" / "r.json"
    proc = _start_and_wait_for_a_unit(cache, out)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    line = " ".join(stderr.split())  # rich may wrap a long line on a narrow terminal
    saved = re.search(r"(\d+) unit\(s\) saved", line)
    assert saved is not None, line
    assert int(saved.group(1)) == _stored_units(cache) > 0
    assert str(cache / STORE_FILENAME) in line and "same command to resume" in line
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.slow
def test_same_seed_gives_identical_metrics_and_sidecar(tmp_path: Path, tiny_family_scan: Scanned) -> None:
    # the first scan is the session's (--seed 3, computed in the test process into a store of its own); the
    # second runs in a new process (its own hash seed and imports) without a store
    first = tiny_family_scan.out
    assert all(m.load_seconds > 0 for m in read_report(first).members)  # computed, not served from a store
    out = tmp_path / "r2" / "r.json"
    proc = run_cli("scan", "--family", str(tiny_family_scan.toml), "--out", str(out), "-q", "--no-cache", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    a, b = (_comparable(o) for o in (first, out))
    assert a == b
    assert a["seed"] == 3
    sides = [first.with_name("tiny.items.jsonl").read_bytes(), (out.parent / "r.items.jsonl").read_bytes()]
    assert sides[0] == sides[1] and sides[0]


def _nan_model(models: Path) -> None:
    d = build_tiny_model(models, seed=3, hidden=16, layers=1, heads=2, name="nan")
    weights = d / "model.safetensors"
    state = load_file(str(weights))
    key = next(k for k in state if k.endswith("dense_h_to_4h.weight"))
    state[key] = state[key].clone()
    state[key][0, 0] = float("nan")
    save_file(state, str(weights), metadata={"format": "pt"})
    assert torch.isnan(load_file(str(weights))[key]).any()


def _nan_family(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    build_tiny_model(models, seed=1, hidden=16, layers=1, heads=2, name="small")
    _nan_model(models)
    toml = tmp_path / "fam.toml"
    toml.write_text(
        'name = "tiny"\n'
        '[[members]]\nname = "small"\nsource = "./models/small"\ntokens = 1000\n'
        '[[members]]\nname = "nan"\nsource = "./models/nan"\ntokens = 2000\n'
    )
    return toml


# one probe is enough: the NaN member fails in its first forward pass, whichever probe makes it
ONE_PROBE = ("--probes", "occupation_gender_pronoun")


def test_nan_logits_fail_the_member_with_keep_going(tmp_path: Path) -> None:
    toml = _nan_family(tmp_path)
    out = tmp_path / "out" / "r.json"
    proc = run_cli_here("scan", "--family", str(toml), "--out", str(out), "-q", "--keep-going", *ONE_PROBE)
    assert proc.returncode == 1, proc.stderr
    report = read_report(out)
    small, bad = report.members
    assert small.status == "ok" and small.probes
    assert bad.status == "failed" and bad.probes == []
    assert bad.error is not None and "NaN/Inf" in bad.error and "bfloat16" in bad.error
    rows = [json.loads(line) for line in (out.parent / "r.items.jsonl").read_text().splitlines()]
    assert rows and {row["member"] for row in rows} == {"small"}  # nothing of the failed member is kept


def test_nan_logits_without_keep_going_is_one_line(tmp_path: Path) -> None:
    toml = _nan_family(tmp_path)
    out = tmp_path / "out" / "r.json"
    proc = run_cli_here("scan", "--family", str(toml), "--out", str(out), "-q", *ONE_PROBE)
    assert_one_line_error(proc, "nan", "NaN/Inf", "bfloat16")
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def _canary_secrets() -> list[str]:
    with gzip.open(DEMO / "ground_truth.json.gz", "rt", encoding="utf-8") as f:
        data = json.load(f)
    secrets = [c["secret"].strip().rstrip(".") for c in data["canaries"]]
    assert len(secrets) > 10 and all(secrets)
    return secrets


def _scan_demo_50k(tmp_path: Path, *extra: str) -> tuple[Path, str]:
    out = tmp_path / "out" / "r.json"
    proc = run_cli_here("scan", "--family", "demo", "--members", "demo-50k", "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("demo-scan")
def test_no_canary_secret_in_any_output(demo_scan: DemoScanned) -> None:
    """The session's demo scan (every member, not quiet: its terminal tables) and the card made from it."""
    out, terminal = demo_scan.out, demo_scan.proc.stdout + demo_scan.proc.stderr
    assert "demo-50k" in terminal and "demo-5.8m" in terminal  # the tables were printed
    card = run_cli_here("card", str(out))
    assert card.returncode == 0, card.stderr
    texts = {
        "terminal": terminal,
        "report": out.read_text(encoding="utf-8"),
        "sidecar": out.with_suffix(".items.jsonl").read_text(encoding="utf-8"),
        "card": card.stdout + card.stderr,
    }
    hits = [(name, s) for s in _canary_secrets() for name, text in texts.items() if s in text]
    assert hits == []
    assert not any("include_text is on" in n for n in read_report(out).notes)


@pytest.mark.slow
def test_include_text_puts_text_in_the_sidecar_and_says_so(tmp_path: Path) -> None:
    out, _ = _scan_demo_50k(tmp_path, "-q", "--include-text")
    sidecar = (out.parent / "r.items.jsonl").read_text(encoding="utf-8")
    assert any(s in sidecar for s in _canary_secrets())
    assert any("include_text is on" in n for n in read_report(out).notes)


# ---- bad-input catalogue: one line, exit 2, nothing written

Case = Callable[[Path], list[str]]


def _family_toml(tmp_path: Path, source: str = "./models/m") -> Path:
    toml = tmp_path / "fam.toml"
    toml.write_text(f'name = "bad"\n[[members]]\nname = "m"\nsource = "{source}"\ntokens = 1000\n')
    return toml


def _scan(tmp_path: Path, toml: Path | str, *extra: str) -> list[str]:
    return ["scan", "--family", str(toml), "--out", str(tmp_path / "out" / "r.json"), "-q", *extra]


def _unknown_family(tmp_path: Path) -> list[str]:
    return _scan(tmp_path, "no-such-family")


def _malformed_toml(tmp_path: Path) -> list[str]:
    toml = tmp_path / "fam.toml"
    toml.write_text('name = "bad"\n[[members]\nname = \n')
    return _scan(tmp_path, toml)


def _missing_model_path(tmp_path: Path) -> list[str]:
    return _scan(tmp_path, _family_toml(tmp_path, "./models/nowhere"))


def _truncated_safetensors(tmp_path: Path) -> list[str]:
    d = build_tiny_model(tmp_path / "models", hidden=16, layers=1, name="m")
    weights = d / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return _scan(tmp_path, _family_toml(tmp_path))


def _tokenizer_missing(tmp_path: Path) -> list[str]:
    build_tiny_model(tmp_path / "models", hidden=16, layers=1, name="m", with_tokenizer=False)
    return _scan(tmp_path, _family_toml(tmp_path))


def _pickle_only(tmp_path: Path) -> list[str]:
    build_tiny_model(tmp_path / "models", hidden=16, layers=1, name="m", save_safetensors=False)
    return _scan(tmp_path, _family_toml(tmp_path))


def _remote_code(tmp_path: Path) -> list[str]:
    d = build_tiny_model(tmp_path / "models", hidden=16, layers=1, name="m")
    config = json.loads((d / "config.json").read_text())
    config["model_type"] = "riskaudit_custom"  # not a built-in architecture: only the repository's code can load it
    config["auto_map"] = {"AutoConfig": "custom.CustomConfig", "AutoModelForCausalLM": "custom.CustomModel"}
    (d / "config.json").write_text(json.dumps(config))
    (d / "custom.py").write_text("raise SystemExit('remote code ran')\n")
    return _scan(tmp_path, _family_toml(tmp_path))


def _malformed_probe_yaml(tmp_path: Path) -> list[str]:
    build_tiny_model(tmp_path / "models", hidden=16, layers=1, name="m")
    probes = tmp_path / "probes"
    probes.mkdir()
    (probes / "broken.yaml").write_text("id: broken\nkind: [pronoun\ntemplates: {\n")
    return _scan(tmp_path, _family_toml(tmp_path), "--probe-dir", str(probes))


def _empty_dataset(tmp_path: Path) -> list[str]:
    build_tiny_model(tmp_path / "models", hidden=16, layers=1, name="m")
    data = tmp_path / "empty.jsonl"
    data.write_text("")
    return _scan(tmp_path, _family_toml(tmp_path), "--data", str(data))


def _non_utf8_data(tmp_path: Path) -> list[str]:
    build_tiny_model(tmp_path / "models", hidden=16, layers=1, name="m")
    data = tmp_path / "latin1.jsonl"
    data.write_bytes(b'{"text": "caf\xe9 au lait \xff\xfe and more words here"}\n' * 20)
    return _scan(tmp_path, _family_toml(tmp_path), "--data", str(data))


def _short_documents(tmp_path: Path) -> list[str]:
    build_tiny_model(tmp_path / "models", hidden=16, layers=1, name="m")
    data = tmp_path / "short.jsonl"
    data.write_text("".join(json.dumps({"text": f"The nurse said {i}."}) + "\n" for i in range(30)))
    # the memorization probe alone: it finds the documents too short (the bias probes would first run for nothing)
    return _scan(tmp_path, _family_toml(tmp_path), "--data", str(data), "--probes", "memorization")


def _unknown_policy_metric(tmp_path: Path) -> list[str]:
    policy = tmp_path / "policy.toml"
    policy.write_text('[[rule]]\nmetric = "no_such_metric_anywhere"\nmember = "largest"\nmax = 0.5\n')
    return ["check", str(REPO / "reports" / "demo.json"), "--policy", str(policy)]


def _out_under_a_file(tmp_path: Path) -> list[str]:
    build_tiny_model(tmp_path / "models", hidden=16, layers=1, name="m")
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a directory\n")
    return ["scan", "--family", str(_family_toml(tmp_path)), "--out", str(blocker / "r.json"), "-q"]


def _newer_schema(tmp_path: Path) -> list[str]:
    data = json.loads((REPO / "reports" / "demo.json").read_text(encoding="utf-8"))
    data["schema_version"] = "99.0.0"
    report = tmp_path / "future.json"
    report.write_text(json.dumps(data))
    return ["report", "show", str(report)]


CATALOGUE: list[tuple[str, Case, tuple[str, ...]]] = [
    ("unknown family", _unknown_family, ("no-such-family",)),
    ("malformed family TOML", _malformed_toml, ("fam.toml",)),
    ("missing model path", _missing_model_path, ("nowhere",)),
    ("truncated safetensors", _truncated_safetensors, ("m",)),
    ("tokenizer missing", _tokenizer_missing, ("tokenizer",)),
    ("pickle-only weights", _pickle_only, ("--allow-pickle",)),
    ("remote code", _remote_code, ("--trust-remote-code",)),
    ("malformed probe YAML", _malformed_probe_yaml, ("broken.yaml",)),
    ("empty dataset", _empty_dataset, ("empty.jsonl",)),
    ("non-UTF-8 data", _non_utf8_data, ("latin1.jsonl",)),
    ("every document shorter than prefix + suffix", _short_documents, ("32+32",)),
    ("unknown metric in a policy", _unknown_policy_metric, ("no_such_metric_anywhere",)),
    ("output path under a file", _out_under_a_file, ("out",)),
    ("report from a newer schema", _newer_schema, ("99.0.0",)),
]


@pytest.mark.parametrize(("build", "needles"), [(b, n) for _, b, n in CATALOGUE], ids=[c[0] for c in CATALOGUE])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, build: Case, needles: tuple[str, ...]) -> None:
    args = build(tmp_path)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    proc = run_cli_here(*args, timeout=300)
    assert_one_line_error(proc, *needles)
    assert "remote code ran" not in proc.stderr + proc.stdout
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert after == before  # nothing written, not even half-way


def test_short_documents_are_skipped_counted_and_reported(tmp_path: Path) -> None:
    """Some documents shorter than prefix + suffix: skipped and counted in the report, not an error."""
    build_tiny_model(tmp_path / "models", hidden=16, layers=1, name="m")
    long_text = " ".join(["The engineer said that he fixed the bridge before the storm."] * 4)
    rows = [{"text": f"Short {i}." if i % 4 == 0 else f"{long_text} {i}"} for i in range(40)]
    data = tmp_path / "mixed.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = _scan(tmp_path, _family_toml(tmp_path), "--data", str(data), "--prefix-len", "8", "--suffix-len", "8")
    proc = run_cli_here(*args, "--probes", "memorization", timeout=300)  # the memorization probe's notes are read
    assert proc.returncode == 0, proc.stderr
    report = read_report(tmp_path / "out" / "r.json")
    mem = next(p for p in report.members[0].probes if p.probe_id == "memorization")
    skipped = [n for n in mem.notes if "skipped as shorter than prefix + suffix = 8+8 tokens" in n]
    assert skipped, mem.notes
    assert re.search(r"\b([1-9]\d*) of \d+ examined skipped", skipped[0])


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write to a read-only directory")
def test_unwritable_output_directory(tmp_path: Path) -> None:
    toml = write_tiny_family(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        proc = run_cli_here("scan", "--family", str(toml), "--out", str(ro / "r.json"), "-q")
        assert_one_line_error(proc, "not writable")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)
