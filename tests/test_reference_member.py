"""Issue 22 item 9: the reference member of a ratio-to-reference metric is not a data point of its own
reference. Its ratio is 1 for every item (AUC 0.5 by construction), so it gets no value, the analysis leaves it
out of growth, abruptness and prediction, and a one-member family reports no ratio at all."""

from __future__ import annotations

import numpy as np

from riskaudit.analysis.family import analyze_family
from riskaudit.analysis.scan_series import MemberPoint, series_from_scan
from riskaudit.probes.base import ItemRecord, ProbeResult
from riskaudit.probes.mem_family import finalize_family
from riskaudit.probes.mem_spec import RunConfig

CFG = RunConfig(
    prefix_len=8,
    suffix_len=8,
    n_documents=40,
    n_heldout=40,
    pool_factor=2,
    n_samples=1,
    document_boundary=True,
    min_k_percent=20.0,
    fpr=0.01,
    max_tokens=64,
    n_candidates=4,
    exact_max_space=1000,
    max_canaries_per_dup=None,
    bootstrap_resamples=200,
    seed=0,
    alpha=0.05,
)


def _member(k: int, rng: np.random.Generator) -> ProbeResult:
    """Member k: training documents and planted canaries lose loss with k; held-out documents and
    never-planted canaries do not."""
    records = []
    for i in range(40):
        records.append(ItemRecord(probe="memorization", item_id=f"d{i}", attrs={"group": "document"},
                                  values={"loss": 3.0 - 0.4 * k + 0.2 * rng.standard_normal(), "exact": 0.0}))
        records.append(ItemRecord(probe="memorization", item_id=f"h{i}", attrs={"group": "heldout"},
                                  values={"loss": 3.0 + 0.2 * rng.standard_normal()}))
        dup = 0 if i % 2 else 4
        records.append(ItemRecord(probe="memorization", item_id=f"c{i}", attrs={"group": "canary", "duplicates": dup},
                                  values={"loss": 3.0 - (0.3 * k if dup else 0.0) + 0.2 * rng.standard_normal(),
                                          "exact": 0.0}))
    return ProbeResult(probe_id="memorization", probe_hash="x", metrics=[], records=records)


def _names(r: ProbeResult) -> set[str]:
    return {m.name for m in r.metrics if "ref_ratio" in m.name}


def test_the_reference_member_has_no_ratio_to_itself() -> None:
    rng = np.random.default_rng(0)
    results = finalize_family("memorization", CFG, [_member(k, rng) for k in range(4)])
    ref, *others = results
    assert _names(ref) == set()  # was canary_mia_auc_ref_ratio = 0.5 and mia_auc_ref_ratio = 0.5
    assert all("ref_ratio" not in r.values for r in ref.records)
    assert any("this member is the reference member" in n for n in ref.notes)
    assert all("canary_mia_auc_ref_ratio" in _names(r) and "mia_auc_ref_ratio" in _names(r) for r in others)
    # idempotent
    again = finalize_family("memorization", CFG, results)
    assert [_names(r) for r in again] == [_names(r) for r in results]

    points = [MemberPoint(name=f"m{k}", params=10.0 ** (6 + k), tokens=1e9) for k in range(4)]
    series = series_from_scan("fam", points, [{"memorization": r.metrics} for r in results],
                              [{"memorization": r.replicates} for r in results])
    fa = analyze_family(series)
    a = next(a for a in fa.metrics if a.metric == "canary_mia_auc_ref_ratio")
    assert a.members == ["m1", "m2", "m3"] and a.n_members == 3
    assert all(p.member != "m0" for p in a.predictability.predictions)
    assert a.emergence.pair is None or "m0" not in a.emergence.pair


def test_a_one_member_family_reports_no_ratio() -> None:
    (only,) = finalize_family("memorization", CFG, [_member(0, np.random.default_rng(1))])
    assert _names(only) == set()  # was 0.5
