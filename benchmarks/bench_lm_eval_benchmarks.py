"""riskaudit's CrowS-Pairs and Winogender probes vs lm-evaluation-harness's own task configs, same model, same files.

lm-eval 0.4.13's registered tasks ``crows_pairs_english``, ``crows_pairs_english_gender`` and ``winogender_all``
are run as lm-eval defines them (prompt, choices, metrics, filters), with only the dataset swapped for the local
official files: ``dataset_path: csv`` on ``crows_pairs_anonymized.csv`` as published, and for Winogender a CSV in
the hub dataset's schema (``oskarvanderwal/winogender``: sentence, pronoun, occupation, participant, gender,
label) that this script writes from ``all_sentences.tsv``, ``templates.tsv`` and ``occupations-stats.tsv`` with
riskaudit's own reader. riskaudit's probes read the same files. Per architecture of the test matrix
(tests/archs.py; tiny random models built offline) it prints the largest per-item log-likelihood difference
(every sentence / choice; must be <= 1e-4 nats) and whether every aggregate is identical (same value to 1e-9).

    python benchmarks/bench_lm_eval_benchmarks.py --data DIR [--archs gpt-neox,llama,gemma] [--vocab 8192]
        [--init-std 0.02]

``--vocab N``: each architecture's tokenizer (same kind, same special tokens) is trained with N entries on the
demo family's 18,132 training stories instead of the test matrix's 360 entries on a few sentences, so that a
CrowS-Pairs sentence is tens of tokens, as with a real tokenizer, not 150-300 (lm-eval sums a sentence's
log-probabilities in float32: its rounding grows with the sum, ~6e-5 nats per step at 850 nats). ``--init-std``:
the random models' initializer range; the test matrix's 0.2 makes peaked logits (~20 nats a token), 0.02
(transformers' default) about ln(vocab) a token, the scale of a real model's loss.

DIR holds ``crows_pairs/crows_pairs_anonymized.csv`` and ``winogender/{all_sentences,templates,
occupations-stats}.tsv`` (or the files directly). Needs ``pip install lm-eval accelerate``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

TOL = 1e-4
TASKS = ("crows_pairs_english", "crows_pairs_english_gender", "winogender_all")


def hub_schema_csv(items: list[Any], out: Path) -> Path:
    """Winogender as lm-eval's hub dataset lays it out, from riskaudit's reading of the official files."""
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sentid", "sentence", "pronoun", "occupation", "participant", "gender", "target", "label"])
        for it in items:
            target = it.participant if it.label else it.occupation
            w.writerow([it.sentid, it.sentence, it.pronoun, it.occupation, it.participant, it.gender, target, it.label])
    return out


def lm_eval_run(lm: Any, specs: list[dict[str, Any]]) -> dict[str, tuple[dict[str, float], list[list[float]]]]:
    """task -> (aggregate metrics, per-doc choice log-likelihoods in document order)."""
    from lm_eval import evaluator
    from lm_eval.tasks import TaskManager

    # lm-eval's own registered task (its YAML, prompt, metrics, filters) with only the dataset overridden; an
    # inline dict passed to simple_evaluate would be a new task without the registered YAML's fields
    tm = TaskManager()
    tasks = [tm._factory.build(tm._entry(s["task"]), overrides=s, registry=tm._index) for s in specs]
    out = evaluator.simple_evaluate(model=lm, tasks=tasks, log_samples=True, bootstrap_iters=0, verbosity="ERROR")
    res: dict[str, tuple[dict[str, float], list[list[float]]]] = {}
    for task, metrics in out["results"].items():
        agg = {k.split(",")[0]: float(v) for k, v in metrics.items() if "," in k and "stderr" not in k}
        docs = sorted(out["samples"][task], key=lambda s: s["doc_id"])
        res[task] = (agg, [[float(r[0]) for r in s["filtered_resps"]] for s in docs])
    return res


def ours_run(model: Any, probes: dict[str, Any]) -> dict[str, tuple[dict[str, float], list[list[float]]]]:
    """The same shape from riskaudit's probe results (metrics and per-item records)."""
    res: dict[str, tuple[dict[str, float], list[list[float]]]] = {}
    crows = probes["crows_pairs"].run(model)
    metric = {m.name: m.value for m in crows.metrics}
    gender = [
        r for r, p in zip(crows.records, probes["crows_pairs"].items(), strict=True) if p.bias_type.startswith("gender")
    ]
    for task, recs in (("crows_pairs_english", crows.records), ("crows_pairs_english_gender", gender)):
        agg = {k: float(metric[f"{task}.{k}"]) for k in ("likelihood_diff", "pct_stereotype")}
        res[task] = (agg, [[r.values["ll_sent_more"], r.values["ll_sent_less"]] for r in recs])
    wino = probes["winogender"].run(model)
    agg = {"acc": float(next(m.value for m in wino.metrics if m.name == "winogender_all.acc"))}
    res["winogender_all"] = (agg, [[r.values["ll_occupation"], r.values["ll_participant"]] for r in wino.records])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="directory of the official files")
    ap.add_argument("--archs", default="gpt-neox,llama,gemma", help="comma-separated architectures of tests/archs.py")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--vocab", type=int, default=None, help="train each tokenizer with this many entries on the demo "
                    "corpus (default: the test matrix's 360-entry tokenizers)")  # fmt: skip
    ap.add_argument("--init-std", type=float, default=None, help="the random models' initializer range (default: "
                    "the test matrix's 0.2, peaked logits of ~20 nats a token; 0.02, transformers' default, gives "
                    "~ln(vocab) a token, the scale of a real model's loss)")  # fmt: skip
    args = ap.parse_args()
    try:
        from lm_eval.models.huggingface import HFLM
    except ImportError as exc:
        print(f"lm-evaluation-harness is not installed ({exc}); install it with: pip install lm-eval accelerate")
        sys.exit(0)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo / "tests"))
    import archs
    from archs import build_arch

    archs.POSITIONS = 512  # the test matrix's 128 positions are too few for CrowS-Pairs with a 360-token vocabulary
    if args.init_std is not None:
        archs.INIT_STD = args.init_std
    if args.vocab is not None:
        import gzip
        import json

        with gzip.open(repo / "riskaudit" / "zoo" / "demo" / "train_documents.json.gz") as f:
            stories = json.loads(f.read())
        corpus = [*archs.SENTENCES, *archs.EXTRA_SENTENCES, *stories]

        def _train_on_corpus(tok: Any, specials: list[str], vocab_size: int = 360) -> Any:
            trainer = archs.trainers.BpeTrainer(
                vocab_size=args.vocab,
                special_tokens=specials,
                initial_alphabet=archs.pre_tokenizers.ByteLevel.alphabet()
                if isinstance(tok.pre_tokenizer, archs.pre_tokenizers.ByteLevel)
                else [],
                show_progress=False,
            )
            tok.train_from_iterator(corpus, trainer=trainer)
            return tok

        archs._train = _train_on_corpus

    from riskaudit.models import LoadOptions, load_model
    from riskaudit.probes.registry import load_benchmark_probes

    found, missing = load_benchmark_probes([], [args.data])
    missing = [n for n in missing if n.benchmark in ("crows_pairs", "winogender")]  # the two compared here
    if missing:
        print("\n".join(n.message for n in missing))
        sys.exit(2)
    probes = {p.id: p for p in found}
    tmp = Path(tempfile.mkdtemp(prefix="riskaudit-lm-eval-benchmarks-"))
    wino_csv = hub_schema_csv(probes["winogender"].items(), tmp / "winogender_hub_schema.csv")
    crows_csv = next(d for d in (args.data / "crows_pairs", args.data) if (d / "crows_pairs_anonymized.csv").is_file())
    data_files = {
        "crows_pairs_english": crows_csv / "crows_pairs_anonymized.csv",
        "crows_pairs_english_gender": crows_csv / "crows_pairs_anonymized.csv",
        "winogender_all": wino_csv,
    }
    specs = [
        {"task": t, "dataset_path": "csv", "dataset_name": None, "dataset_kwargs": {"data_files": {"test": str(p)}}}
        for t, p in data_files.items()
    ]
    for arch in args.archs.split(","):
        path = build_arch(arch, tmp / "models")
        with load_model(str(path), None, LoadOptions(batch_size=args.batch_size, device=args.device)) as model:
            ours = ours_run(model, probes)
            add_bos = model.add_bos
        kw = {"add_bos_token": True} if add_bos else {}
        lm = HFLM(pretrained=str(path), device=args.device, dtype="float32", batch_size=args.batch_size, **kw)
        theirs = lm_eval_run(lm, specs)
        worst, worst_rel, same = 0.0, 0.0, True
        for task in TASKS:
            (agg_o, ll_o), (agg_t, ll_t) = ours[task], theirs[task]
            if len(ll_o) != len(ll_t):
                raise SystemExit(f"{arch} {task}: {len(ll_o)} items here, {len(ll_t)} in lm-eval")
            pairs = [(a, b) for xo, xt in zip(ll_o, ll_t, strict=True) for a, b in zip(xo, xt, strict=True)]
            diff = max(abs(a - b) for a, b in pairs)
            rel = max(abs(a - b) / max(abs(b), 1e-12) for a, b in pairs)
            longest = max(abs(b) for _, b in pairs)
            # discrete aggregates (shares of items) must be equal; likelihood_diff, a mean of log-likelihood
            # differences, within the per-item tolerance
            equal = all(
                agg_o[k] == agg_t[k] if k in ("pct_stereotype", "acc") else abs(agg_o[k] - agg_t[k]) <= TOL
                for k in agg_t
            )
            worst, worst_rel, same = max(worst, diff), max(worst_rel, rel), same and equal
            shown = ", ".join(f"{k} {agg_o[k]:.6f} / {agg_t[k]:.6f}" for k in sorted(agg_t))
            print(
                f"{arch:9} vocab {args.vocab or 360} std {archs.INIT_STD} {task:28} n={len(ll_o):5}  "
                f"max |diff| {diff:.2e} nats (relative {rel:.1e}; largest |ll| {longest:.0f} nats)  {shown}  "
                f"equal={equal}"
            )
        met = worst <= TOL and same
        print(
            f"RESULT name=lm_eval_benchmarks_{arch} vocab={args.vocab or 360} init_std={archs.INIT_STD} "
            f"max_diff={worst:.2e} max_rel_diff={worst_rel:.1e} target=<={TOL} "
            f"aggregates_equal={same} add_bos={add_bos} met={'yes' if met else 'no'}"
        )
        del lm


if __name__ == "__main__":
    main()
