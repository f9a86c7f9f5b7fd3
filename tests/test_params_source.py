"""Declared vs counted parameters: a family's declared size more than 1% off the loaded weights' count is
reported beside it with a note, and the report and the analysis use the counted figure unless the family asks
for the declared one (``params_source = "declared"``). Seen: a Pythia member served from a cache that held other
weights was reported with the table's 14,067,712 parameters while the weights had 52,944."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import build_tiny_model

from riskaudit.errors import FamilyError
from riskaudit.inputs.families import load_family
from riskaudit.models import LoadOptions, load_model
from riskaudit.reporting.reanalysis import series_from_report
from riskaudit.reporting.report import Report
from riskaudit.run.scan import ProbeOptions, ScanOptions, build_probes, run_scan
from riskaudit.run.store import ResultStore

WRONG = 14_067_712  # the table's Pythia-14m figure, far from a tiny model's weights
TOKENS = 1_000_000


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("params-models")
    counts: dict[str, int] = {}
    for i, (name, hidden) in enumerate((("small", 16), ("big", 32))):
        build_tiny_model(root, seed=i, hidden=hidden, layers=1, heads=2, name=name)
        with load_model(str(root / name), None, LoadOptions()) as m:
            counts[name] = m.n_params_total
    return root, counts


def _family_toml(root: Path, small_params: int, extra: str = "") -> Path:
    path = root / f"fam-{small_params}-{abs(hash(extra))}.toml"
    path.write_text(
        f'name = "sized"\n{extra}'
        f'[[members]]\nname = "small"\nsource = "{root / "small"}"\nparams = {small_params}\ntokens = {TOKENS}\n'
        f'[[members]]\nname = "big"\nsource = "{root / "big"}"\ntokens = {TOKENS}\n'
    )
    return path


def _scan(toml: Path, store: ResultStore | None = None) -> Report:
    family = load_family(str(toml))
    probes = build_probes(family.name, ProbeOptions(memorization=False))[:1]  # one bias probe: seconds
    report, _ = run_scan(family, ScanOptions(load=LoadOptions(batch_size=8)), probes=probes, store=store)
    return report


def _series_params(report: Report) -> dict[str, float | None]:
    series = series_from_report(report)[0]  # every series of a report places the members alike
    return dict(zip(series.members, series.params, strict=True))


def test_a_wrong_declared_size_is_reported_beside_the_count_and_the_count_is_used(
    models: tuple[Path, dict[str, int]],
) -> None:
    root, counts = models
    report = _scan(_family_toml(root, WRONG))
    small, big = report.members
    assert small.params_total == counts["small"] and small.params_counted
    assert (small.params_declared, small.params_weights) == (WRONG, counts["small"])
    assert small.flops == pytest.approx(6.0 * counts["small"] * TOKENS)
    assert big.params_total == counts["big"] and big.params_declared is None and big.params_weights is None
    notes = [n for n in report.notes if "declares" in n]
    assert notes == [
        f"small: the family declares {WRONG:,} parameters but the loaded weights have {counts['small']:,}; the "
        "report and the analysis use the weights' count — see members[].params_declared"
    ]
    assert _series_params(report)["small"] == counts["small"]  # the analysis sees the counted figure


def test_params_source_declared_uses_the_declared_figure_and_keeps_the_count(
    models: tuple[Path, dict[str, int]],
) -> None:
    root, counts = models
    report = _scan(_family_toml(root, WRONG, 'params_source = "declared"\n'))
    small, big = report.members
    assert small.params_total == WRONG and not small.params_counted
    assert (small.params_declared, small.params_weights) == (WRONG, counts["small"])
    assert small.flops == pytest.approx(6.0 * WRONG * TOKENS)
    assert big.params_total == counts["big"] and big.params_counted  # nothing declared: counted
    assert any('use the declared count (params_source = "declared")' in n for n in report.notes)
    assert _series_params(report)["small"] == WRONG


def test_a_declared_size_within_one_percent_is_not_noted(models: tuple[Path, dict[str, int]]) -> None:
    root, counts = models
    close = counts["small"] + counts["small"] // 200  # 0.5% off
    report = _scan(_family_toml(root, close))
    small = report.members[0]
    assert small.params_total == counts["small"] and small.params_counted
    assert small.params_declared is None and small.params_weights is None
    assert not any("declares" in n for n in report.notes)


def test_a_member_served_from_the_store_reports_the_same(
    models: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    root, _ = models
    toml = _family_toml(root, WRONG)
    with ResultStore(tmp_path / "results.sqlite") as store:
        cold = _scan(toml, store)
        warm = _scan(toml, store)  # every unit and the family product from the store: nothing loaded
    fields = ("params_total", "params_counted", "params_declared", "params_weights", "flops")
    assert [[getattr(m, f) for f in fields] for m in warm.members] == [
        [getattr(m, f) for f in fields] for m in cold.members
    ]
    assert warm.notes == cold.notes


def test_toml_params_source_is_validated_and_per_member(tmp_path: Path) -> None:
    toml = tmp_path / "f.toml"
    toml.write_text(
        'params_source = "declared"\n'
        '[[members]]\nname = "a"\nsource = "x/a"\ntokens = 1e9\n'
        '[[members]]\nname = "b"\nsource = "x/b"\ntokens = 1e9\nparams_source = "counted"\n'
    )
    assert [m.params_source for m in load_family(str(toml)).members] == ["declared", "counted"]
    toml.write_text('params_source = "guessed"\n[[members]]\nname = "a"\nsource = "x/a"\ntokens = 1e9\n')
    with pytest.raises(FamilyError, match="params_source"):
        load_family(str(toml))
