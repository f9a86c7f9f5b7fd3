"""run/request.py: every `riskaudit scan` option reaches the ScanRequest, and prepare_scan assembles what
scan_family needs (options, probes, paths) without loading a model."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from conftest import REPO
from pydantic import ValidationError

from riskaudit.cli.scan import scan
from riskaudit.errors import Interrupted, RiskauditError
from riskaudit.run.request import ScanRequest, execute_scan, prepare_scan

PRONOUN = "occupation_gender_pronoun"
RENDER_ONLY = {"quiet", "wide"}  # how the command renders, not what the scan does
RENAMED = {"probe_dir": "probe_dirs"}


def test_every_scan_option_is_a_request_field() -> None:
    params = {RENAMED.get(p, p) for p in inspect.signature(scan).parameters} - RENDER_ONLY
    assert params == set(ScanRequest.model_fields) - {"command"}


def test_a_misspelt_field_is_refused() -> None:
    with pytest.raises(ValidationError):
        ScanRequest(family="demo", no_cahce=True)  # type: ignore[call-arg]


def test_prepare_assembles_options_probes_and_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    request = ScanRequest(
        family="demo",
        members="demo-50k, demo-150k",
        dtype="float16",
        device_map="auto",
        max_memory="0=1GiB,cpu=2GiB",
        batch_size=0,
        seed=7,
        occupations="bls2022",
        add_bos="yes",
        no_memorization=True,
        probe_ids=PRONOUN,
        limit=3,
        no_cache=True,
        command="riskaudit scan -f demo",
    )
    job = prepare_scan(request)
    assert [m.name for m in job.family.members] == ["demo-50k", "demo-150k"]
    # a partial run (--probes, --limit) gets a name of its own: it never replaces reports/demo.json
    assert job.out_path == Path("reports") / f"demo.probes-{PRONOUN}.limit-3.json" and job.store_file is None
    load = job.options.load
    assert (load.dtype, load.device_map, load.max_memory) == ("float16", "auto", {"0": "1GiB", "cpu": "2GiB"})
    assert (load.batch_size, load.add_bos, job.options.seed, job.options.occupations) == (0, "yes", 7, "bls2022")
    assert (job.options.limit, job.options.command) == (3, "riskaudit scan -f demo")
    assert [p.id for p in job.probes] == [PRONOUN]


def test_prepare_uses_the_cache_dir_and_out(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    request = ScanRequest(family="demo", out=out, cache_dir=tmp_path / "c", no_memorization=True, plan=True)
    job = prepare_scan(request)
    assert job.out_path == out and job.store_file is not None and job.store_file.parent == tmp_path / "c"


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"add_bos": "maybe"}, "unknown --add-bos 'maybe'"),
        ({"executor": "slurm"}, "unknown --executor 'slurm'"),
        ({"ray_address": "auto"}, "--ray-address needs --executor ray"),
        ({"no_cache": True, "cache_dir": Path("c")}, "--no-cache and --cache-dir cannot be used together"),
        ({"as_json": True}, "--json needs --plan"),
    ],
)
def test_prepare_refuses_with_one_line(fields: dict[str, object], needle: str, tmp_path: Path) -> None:
    request = ScanRequest.model_validate(
        {"family": "demo", "out": tmp_path / "r.json", "no_memorization": True, **fields}
    )
    with pytest.raises(RiskauditError) as info:
        prepare_scan(request)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("no_cache", [True, False])
def test_ctrl_c_during_the_scan_says_what_the_store_kept(
    no_cache: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import riskaudit.run.request as request_module

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    cache = None if no_cache else tmp_path / "c"
    request = ScanRequest(
        family="demo", out=tmp_path / "r.json", no_memorization=True, no_cache=no_cache, cache_dir=cache
    )
    job = prepare_scan(request)
    monkeypatch.setattr(request_module, "scan_family", interrupted)
    with pytest.raises(Interrupted) as info:
        execute_scan(job, None)
    message = str(info.value)
    if no_cache:
        assert "nothing was saved (--no-cache)" in message
    else:
        assert f"0 unit(s) saved in the result store at {job.store_file}" in message and "resume" in message
    assert not (tmp_path / "r.json").exists()
