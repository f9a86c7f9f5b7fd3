"""Family-level memorization metrics, computed once every member has been scored: the reference-model
ratio (loss / loss of the family's smallest member, Carlini et al. 2021) with its membership-inference
metrics, and the precision / recall of "memorized by a smaller member" predicting "memorized by the
largest" (Biderman et al. 2023)."""

from __future__ import annotations

from riskaudit.analysis import stats
from riskaudit.probes.base import ItemRecord, ProbeResult
from riskaudit.probes.mem_metrics import PREDICTION_PREFIXES, dup_count, membership_metrics, prediction_metrics
from riskaudit.probes.mem_spec import RunConfig

__all__ = ["finalize_family"]


def finalize_family(probe_id: str, cfg: RunConfig, results: list[ProbeResult]) -> list[ProbeResult]:
    """Family-level metrics, given this probe's results on every member in scan order (smallest first).

    Adds to each member but the reference (the smallest) the reference-model ratio (loss / loss of the
    smallest member, Carlini et al. 2021) and its membership-inference metrics. The reference member gets none:
    its ratio is 1 for every item and its AUC 0.5 by construction, not a data point of the series, so it has no
    value and every later stage (growth, abruptness, prediction) leaves it out; a one-member family has no
    ratio at all. To every member but the largest go the precision and recall
    of "exactly extracted by this member" as a predictor of "exactly extracted by the largest"
    (Biderman et al. 2023), over the trained-on items. Idempotent; results of other probes pass through.
    """
    mine = [i for i, r in enumerate(results) if r.probe_id == probe_id]
    if not mine:
        return list(results)
    out = list(results)
    ref = results[mine[0]]
    ref_loss = {r.item_id: r.values["loss"] for r in ref.records if "loss" in r.values}
    largest = results[mine[-1]]
    big = {r.item_id: r.values["exact"] for r in largest.records if _is_planted(r) and "exact" in r.values}
    for pos, i in enumerate(mine):
        res = results[i]
        records = []
        for r in res.records:
            v = {key: x for key, x in r.values.items() if key != "ref_ratio"}
            base = ref_loss.get(r.item_id)
            if pos > 0 and "loss" in v and base is not None and base > 0.0:
                v["ref_ratio"] = v["loss"] / base
            records.append(r.model_copy(update={"values": v}))
        collector = stats.MetricCollector(cfg.bootstrap_resamples, cfg.alpha)
        if pos > 0:
            membership_metrics(collector, records, cfg, ("ref_ratio",))
        notes = [n for n in res.notes if not n.startswith("reference-model ratio")]
        notes.append(
            "reference-model ratio: loss / loss of the family's smallest member"
            + (
                " (this member is the reference member: its ratio would be 1 for every item and its AUC 0.5 by "
                "construction, so the ratio-to-reference metrics have no value here and the scaling analysis "
                "leaves it out)"
                if pos == 0
                else ""
            )
        )
        if i != mine[-1]:
            mine_exact = {
                r.item_id: r.values["exact"] for r in res.records if _is_planted(r) and "exact" in r.values
            }
            prediction_metrics(collector, mine_exact, big, cfg)
        elif len(mine) > 1:
            notes.append("memorization prediction metrics are reported on the smaller members (vs this one)")
        keep = [m for m in res.metrics if not _is_family_metric(m.name)]
        reps = {k: v for k, v in res.replicates.items() if not _is_family_metric(k)}
        out[i] = res.model_copy(
            update={
                "records": records,
                "metrics": [*keep, *collector.metrics],
                "notes": [*notes, *collector.notes],
                "replicates": {**reps, **collector.replicates},
            }
        )
    return out


def _is_family_metric(name: str) -> bool:
    return name.startswith(PREDICTION_PREFIXES) or "ref_ratio" in name


def _is_planted(r: ItemRecord) -> bool:
    """A trained-on extraction item: a planted canary or a training document."""
    g = r.attrs.get("group")
    return g == "document" or (g == "canary" and (dup_count(r) or 0) > 0)
