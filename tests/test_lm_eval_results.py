"""``riskaudit analyze DIR``: lm-evaluation-harness results files (0.4 schema and the older one the Pythia
repository keeps), placed on the family table's scale axes, stderr as item noise, the normal analysis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from riskaudit.analysis.config import AnalysisConfig
from riskaudit.analysis.lm_eval_series import lm_eval_series
from riskaudit.analysis.resampling import prepare_series
from riskaudit.inputs.family_spec import Family, ModelSpec
from riskaudit.inputs.family_table import table_families
from riskaudit.inputs.lm_eval_results import read_results_file, resolve_model
from riskaudit.inputs.revisions import PYTHIA_TOKENS_PER_STEP
from tests.conftest import run_cli_here

SIZES = ["70m", "160m", "410m", "1b", "1.4b", "2.8b"]
PARAMS = {"70m": 70426624, "160m": 162322944, "410m": 405334016, "1b": 1011781632}
FINAL_TOKENS = 299892736000


def new_file(
    model: str,
    results: dict[str, dict[str, Any]],
    *,
    revision: str | None = None,
    n: int = 1508,
    args_as_string: bool = False,
) -> dict[str, Any]:
    """A results file as lm-evaluation-harness 0.4.13 writes it (``lm_eval --output_path``; the keys and their
    shapes as in a real run on a demo member: the CLI records ``model_args`` as a dict, ``simple_evaluate``
    called with a string keeps the string)."""
    args: str | dict[str, str] = {"pretrained": model, "dtype": "float32"}
    if revision:
        args["revision"] = revision
    if args_as_string:
        args = f"pretrained={model},dtype=float32" + (f",revision={revision}" if revision else "")
    return {
        "results": {
            task: {"name": task, "alias": task, "sample_len": n, **metrics} for task, metrics in results.items()
        },
        "group_subtasks": {task: [] for task in results},
        "configs": {task: {"task": task, "num_fewshot": 0} for task in results},
        "versions": {task: 1.0 for task in results},
        "n-shot": {task: 0 for task in results},
        "higher_is_better": {task: {m.partition(",")[0]: False for m in metrics} for task, metrics in results.items()},
        "n-samples": {task: {"original": n, "effective": n} for task in results},
        "config": {
            "model": "hf",
            "model_args": args,
            "model_num_parameters": 1,
            "model_revision": revision or "main",
            "batch_size": "auto",
            "bootstrap_iters": 100000,
        },
        "git_hash": "abc1234",
        "date": 1700000000.0,
        "model_source": "hf",
        "model_name": model,
        "model_name_sanitized": model.replace("/", "__"),
    }


def old_file(model_args: str, results: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A results file in the older schema the Pythia repository keeps (``evals/pythia-v1/*/zero-shot/``)."""
    return {
        "results": results,
        "versions": {task: 0 for task in results},
        "config": {
            "model": "hf-causal",
            "model_args": model_args,
            "num_fewshot": 0,
            "batch_size": 16,
            "device": "cuda:0",
            "no_cache": True,
            "limit": None,
            "bootstrap_iters": 100000,
            "description_dict": {},
        },
    }


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


def crows(p: float, s: float, ld: float = 3.4) -> dict[str, float]:
    return {
        "pct_stereotype,none": p,
        "pct_stereotype_stderr,none": s,
        "likelihood_diff,none": ld,
        "likelihood_diff_stderr,none": 0.09,
    }


# ---------------------------------------------------------------------------------------------- parsing


def test_reads_the_04_schema(tmp_path: Path) -> None:
    doc = new_file(
        "EleutherAI/pythia-160m",
        {
            "crows_pairs_english": crows(0.5617, 0.0121),
            "gsm8k": {"exact_match,strict-match": 0.02, "exact_match_stderr,strict-match": "N/A"},
        },
        revision="step1000",
        args_as_string=True,
    )
    run = read_results_file(write(tmp_path / "results_2024-05-01T10-00-00.json", doc))
    assert run.model == "EleutherAI/pythia-160m" and run.revision == "step1000"
    assert run.num_fewshot == {"crows_pairs_english": 0, "gsm8k": 0}
    by_name = {v.name: v for v in run.values}
    assert set(by_name) == {
        "crows_pairs_english.pct_stereotype",
        "crows_pairs_english.likelihood_diff",
        "gsm8k.exact_match,strict-match",  # a filter other than "none" stays in the name
    }
    ps = by_name["crows_pairs_english.pct_stereotype"]
    assert (ps.value, ps.stderr, ps.n) == (0.5617, 0.0121, 1508)
    assert by_name["gsm8k.exact_match,strict-match"].stderr is None  # "N/A": no stderr


def test_reads_the_pythia_repository_schema(tmp_path: Path) -> None:
    doc = old_file(
        "use_accelerate=True,pretrained=EleutherAI/pythia-v1.1-410m-deduped,revision=step143000",
        {
            "crows_pairs_english": {
                "likelihood_difference": 3.3,
                "likelihood_difference_stderr": 0.09,
                "pct_stereotype": 0.583,
                "pct_stereotype_stderr": 0.012,
            },
            "lambada_openai": {"ppl": 10.5, "ppl_stderr": 0.3, "acc": 0.52, "acc_stderr": 0.007},
        },
    )
    run = read_results_file(write(tmp_path / "410m-deduped_step143000.json", doc))
    assert run.model == "EleutherAI/pythia-v1.1-410m-deduped" and run.revision == "step143000"
    assert {v.name: (v.value, v.stderr, v.n) for v in run.values}["crows_pairs_english.pct_stereotype"] == (
        0.583,
        0.012,
        None,
    )
    assert {v.name for v in run.values} == {
        "crows_pairs_english.likelihood_difference",
        "crows_pairs_english.pct_stereotype",
        "lambada_openai.ppl",
        "lambada_openai.acc",
    }
    # the pre-release name of the Pythia suite is the member of the deduped family; step 143000 is the member
    where = resolve_model(run.model or "", run.revision, list(table_families().values()))
    assert where is not None
    assert (where.family, where.name, where.params, where.tokens) == (
        "pythia-deduped",
        "410m",
        405334016.0,
        float(143000 * PYTHIA_TOKENS_PER_STEP),
    )


def test_params_and_tokens_from_the_family_table() -> None:
    fams = list(table_families().values())
    main = resolve_model("EleutherAI/pythia-70m", None, fams)
    assert main is not None and (main.family, main.name, main.params, main.tokens, main.step) == (
        "pythia",
        "70m",
        70426624.0,
        FINAL_TOKENS,
        None,
    )
    ckpt = resolve_model("EleutherAI/pythia-1b-deduped", "step1000", fams)
    assert ckpt is not None and (ckpt.family, ckpt.name, ckpt.base, ckpt.tokens, ckpt.step) == (
        "pythia-deduped",
        "1b@step1000",
        "1b",
        1000.0 * 2_097_152,
        1000,
    )
    bare = resolve_model("pythia-2.8b", "main", fams)  # a local path's last component, unique in the table
    assert bare is not None and bare.name == "2.8b" and bare.family == "pythia"
    gpt2 = resolve_model("openai-community/gpt2-medium", None, fams)
    assert gpt2 is not None and gpt2.tokens is None and gpt2.params == 354823168.0  # tokens not disclosed
    other = resolve_model("facebook/opt-125m", "step5", fams)  # no checkpoint schedule known: tokens unknown
    assert other is not None and other.tokens is None and other.note and "unknown" in other.note
    assert resolve_model("EleutherAI/pythia-v1.1-1b-bf16", None, fams) is None
    assert resolve_model("someone/else-7b", None, fams) is None
    # a user's family (searched first) places it; its declared revision is the member itself
    spec = ModelSpec(family="mine", name="1b-bf16", source="EleutherAI/pythia-v1.1-1b-bf16", revision="step143000",
                     params_total=1011781632, train_tokens=3e11)  # fmt: skip
    mine = Family(name="mine", members=[spec])
    bf16 = resolve_model("EleutherAI/pythia-v1.1-1b-bf16", "step143000", [mine, *fams])
    assert bf16 is not None and (bf16.family, bf16.name, bf16.tokens) == ("mine", "1b-bf16", 3e11)


def test_stderr_becomes_the_ci_and_the_resampling_sd(tmp_path: Path) -> None:
    for size, p in zip(SIZES[:4], [0.52, 0.55, 0.58, 0.61], strict=True):
        write(
            tmp_path / size / "results.json",
            new_file(f"EleutherAI/pythia-{size}", {"crows_pairs_english": crows(p, 0.01)}),
        )
    series, notes = lm_eval_series(tmp_path)
    assert notes == []
    ps = next(s for s in series if s.metric == "crows_pairs_english.pct_stereotype")
    assert ps.family == "pythia" and ps.probe == "crows_pairs_english" and ps.members == SIZES[:4]
    assert ps.params == [float(PARAMS[m]) for m in SIZES[:4]] and ps.tokens == [FINAL_TOKENS] * 4
    assert ps.flops[0] == pytest.approx(6 * PARAMS["70m"] * FINAL_TOKENS)
    assert ps.ci_low is not None and ps.ci_high is not None
    assert ps.ci_low[0] == pytest.approx(0.52 - 1.959964 * 0.01) and ps.ci_high[0] == pytest.approx(
        0.52 + 1.959964 * 0.01
    )
    assert ps.rate and ps.kind == "discrete" and ps.baseline == 0.5 and ps.n_items == [1508] * 4
    ld = next(s for s in series if s.metric == "crows_pairs_english.likelihood_diff")
    assert not ld.rate and ld.kind == "continuous" and ld.baseline == 0.0
    prep = prepare_series(ps, AnalysisConfig(seed=1, n_resamples=4000))
    assert prep.method == "normal from CI" and prep.raw_reps is not None
    assert np.std(prep.raw_reps, axis=0) == pytest.approx([0.01] * 4, rel=0.05)  # sd = the file's stderr


def test_checkpoints_become_their_own_series(tmp_path: Path) -> None:
    for size in ("70m", "160m"):
        for step, p in ((1000, 0.50), (71000, 0.53), (143000, 0.56 if size == "70m" else 0.58)):
            doc = new_file(f"EleutherAI/pythia-{size}", {"crows_pairs_english": crows(p, 0.01)}, revision=f"step{step}")
            write(tmp_path / f"{size}_step{step}.json", doc)
    series, _ = lm_eval_series(tmp_path, tasks=["crows_pairs_english"])
    layouts = {(s.axis, s.checkpoint_of, tuple(s.members)) for s in series if s.metric.endswith("pct_stereotype")}
    assert layouts == {
        ("members", None, ("70m", "160m")),  # the final step is the member itself
        ("checkpoints", "70m", ("70m@step1000", "70m@step71000", "70m")),
        ("checkpoints", "160m", ("160m@step1000", "160m@step71000", "160m")),
    }
    ck = next(s for s in series if s.checkpoint_of == "70m" and s.metric.endswith("pct_stereotype"))
    assert ck.tokens == [
        1000.0 * PYTHIA_TOKENS_PER_STEP,
        71000.0 * PYTHIA_TOKENS_PER_STEP,
        143000.0 * PYTHIA_TOKENS_PER_STEP,
    ]


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON (line 1"),
        ({"config": {}}, "no top-level 'results' object"),
        ({"results": "x"}, "'results' is a str, not an object"),
        ({"results": [{"prompt_name": "p", "em": 0.5}]}, "results[0]: expected an object with a 'task_name'"),
        ({"results": [{"task_name": "t", "em": 0.5}, {"task_name": "t", "em": 0.4}]}, "task 't' appears twice"),
        (
            {"results": {"crows_pairs_english": {"pct_stereotype,none": "high"}}},
            "results.crows_pairs_english.pct_stereotype,none: 'high' is not a number",
        ),
        (
            {"results": {"t": {"acc": 0.5, "acc_stderr": -0.1}}},
            "results.t.acc_stderr: a standard error cannot be negative",
        ),
        ({"results": {"t": 3}}, "'results.t'"),
        ({"results": {"t": {"alias": "t"}}}, "'results' holds no numeric metric"),
    ],
)
def test_a_malformed_file_is_one_line_naming_it(tmp_path: Path, content: Any, expected: str) -> None:
    write(tmp_path / "ok" / "results.json", new_file("EleutherAI/pythia-70m", {"t": crows(0.5, 0.01)}))
    bad = write(tmp_path / "bad" / "results_x.json", content)
    proc = run_cli_here("analyze", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_unknown_models_are_skipped_with_a_note_and_all_unknown_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.json", new_file("someone/else-7b", {"t": crows(0.6, 0.01)}))
    proc = run_cli_here("analyze", str(tmp_path))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "none of the 1 results files can be placed: 1 name models not in the built-in families table" in proc.stderr
    assert "--family FILE.toml" in proc.stderr

    for size, p in zip(SIZES[:3], [0.52, 0.55, 0.58], strict=True):
        write(tmp_path / f"{size}.json", new_file(f"EleutherAI/pythia-{size}", {"t": crows(p, 0.01)}))
    proc = run_cli_here("analyze", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "someone/else-7b is not in the built-in families table: 1 file(s) skipped" in proc.stderr

    # a family TOML gives the unknown model its params and tokens
    toml = tmp_path.parent / "mine.toml"
    toml.write_text(
        'name = "mine"\n[[members]]\nname = "7b"\nsource = "someone/else-7b"\nparams = "7B"\ntokens = "1T"\n',
        encoding="utf-8",
    )
    proc = run_cli_here("analyze", str(tmp_path), "--family", str(toml), "--json")
    assert proc.returncode == 0, proc.stderr
    fams = {r["family"] for r in json.loads(proc.stdout)["results"]}
    assert fams == {"pythia", "mine"} and "skipped" not in proc.stderr


def test_two_files_for_the_same_model_and_task_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "zero-shot" / "a.json", new_file("EleutherAI/pythia-70m", {"t": crows(0.5, 0.01)}))
    second = write(tmp_path / "five-shot" / "b.json", new_file("EleutherAI/pythia-70m", {"t": crows(0.6, 0.01)}))
    proc = run_cli_here("analyze", str(tmp_path))
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1 and str(second) in line and "is also in" in line
    assert "point analyze at one evaluation per model and checkpoint" in line


def test_tasks_filter(tmp_path: Path) -> None:
    write(tmp_path / "a.json", new_file("EleutherAI/pythia-70m", {"t": crows(0.5, 0.01)}))
    proc = run_cli_here("analyze", str(tmp_path), "--tasks", "nothing_*")
    assert proc.returncode == 2 and "no task matches --tasks nothing_*" in proc.stderr
    proc = run_cli_here("analyze", str(tmp_path / "a.json"), "--tasks", "t")
    assert proc.returncode == 2 and "apply to a directory of lm-evaluation-harness results only" in proc.stderr


# ------------------------------------------------------------------------------------------ end to end


def test_end_to_end_verdicts_follow_from_the_numbers(tmp_path: Path) -> None:
    """Six Pythia sizes in both schemas: a metric rising by 0.03 per member (stderr 0.004) is `smooth` with a
    growth CI above 0; a flat one has `no consistent trend`; one that only the largest member raises rests on
    that member (`one member differs`)."""
    rising = [0.52, 0.55, 0.58, 0.61, 0.64, 0.67]
    flat = [0.55, 0.549, 0.551, 0.55, 0.549, 0.551]
    jump = [0.50, 0.50, 0.50, 0.50, 0.50, 0.90]
    for i, size in enumerate(SIZES):
        if i % 2:  # the Pythia repository's older schema for every other member
            results = {
                "bias": {
                    "pct_stereotype": rising[i],
                    "pct_stereotype_stderr": 0.004,
                    "flat": flat[i],
                    "flat_stderr": 0.004,
                    "jump": jump[i],
                    "jump_stderr": 0.004,
                }
            }
            doc = old_file(f"pretrained=EleutherAI/pythia-v1.1-{size},revision=step143000", results)
        else:
            results = {
                "bias": {
                    "pct_stereotype,none": rising[i],
                    "pct_stereotype_stderr,none": 0.004,
                    "flat,none": flat[i],
                    "flat_stderr,none": 0.004,
                    "jump,none": jump[i],
                    "jump_stderr,none": 0.004,
                }
            }
            doc = new_file(f"EleutherAI/pythia-{size}", results)
        write(tmp_path / f"pythia-{size}" / "results.json", doc)
    proc = run_cli_here("analyze", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    got = {r["metric"]: r for r in doc["results"]}
    assert set(got) == {"bias.pct_stereotype", "bias.flat", "bias.jump"}
    up = got["bias.pct_stereotype"]
    assert up["family"] == "pythia" and up["probe"] == "bias" and up["members"] == SIZES
    assert up["resampling"] == "normal from CI"
    assert up["verdict"] == "smooth" and up["abrupt"] is False and up["surprise"] is False
    assert up["slope_per_decade_flops"]["ci_low"] > 0
    assert got["bias.flat"]["verdict"] == "no consistent trend"
    assert got["bias.jump"]["verdict"] == "one member differs" and "2.8b" in got["bias.jump"]["verdict_reason"]

    tables = run_cli_here("analyze", str(tmp_path), env={"COLUMNS": "120"})
    assert tables.returncode == 0, tables.stderr
    assert "bias.pct_stereotype" in tables.stdout and "smooth" in tables.stdout


def prompted_file(iteration: int, em: dict[str, float]) -> dict[str, Any]:
    """A BigScience-fork dump run by GPT-NeoX's evaluate.py (``evals/bias-evals/winobias/``): ``results`` is a
    list of task × prompt rows and ``model_args`` is the training config (no model name; the step in
    ``iteration``)."""
    rows = []
    for task, value in em.items():
        rows.append(
            {
                "task_name": task,
                "prompt_name": "refers_to",
                "em": value,
                "fixed_answer_choice_list": None,
                "dataset_path": "wino_bias",
                "prompt_original_task": True,
                "comment": "",
                "em_stderr": 0.02,
            }
        )
    table = {f"{r['task_name']}+refers_to": {k: r[k] for k in ("task_name", "prompt_name", "em", "em_stderr")}
             for r in rows}  # fmt: skip
    return {
        "results": rows,
        "versions": {t: 0 for t in em},
        "table_results": table,
        "config": {"model": "neox", "model_args": {"iteration": iteration, "hidden_size": 1024, "seed": 1234},
                   "num_fewshot": 0, "batch_size": 32, "bootstrap_iters": 10000},
    }  # fmt: skip


def test_gpt_neox_prompted_dumps_with_model_assigned_per_directory(tmp_path: Path) -> None:
    for size, base in (("410M", 0.10), ("1.4B", 0.15)):
        for it in (133000, 143000):
            em = {"wino_bias_type1_pro": base + 0.08, "wino_bias_type1_anti": base}
            write(tmp_path / size / f"eval_results_{it}.json", prompted_file(it, em))
    # the intervention dumps keep only table_results and name no model either
    only_table = {"table_results": prompted_file(143000, {"wino_bias_type1_pro": 0.3})["table_results"],
                  "model_args": {"iteration": 143000}}  # fmt: skip
    write(tmp_path / "intervene_7" / "eval_results_410m-deduped_143000.json", only_table)
    run = read_results_file(tmp_path / "410M" / "eval_results_133000.json")
    assert run.model is None and run.revision == "step133000" and run.num_fewshot["wino_bias_type1_pro+refers_to"] == 0
    assert [(v.name, v.value, v.stderr) for v in run.values] == [
        ("wino_bias_type1_pro+refers_to.em", pytest.approx(0.18), 0.02),
        ("wino_bias_type1_anti+refers_to.em", 0.10, 0.02),
    ]
    proc = run_cli_here(
        "analyze", str(tmp_path), "--json", "--model", "410M=EleutherAI/pythia-410m-deduped",
        "--model", "1.4B=EleutherAI/pythia-1.4b-deduped",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    err = " ".join(proc.stderr.split())  # the note wraps at the terminal's width
    assert "3 file(s) name no model" not in err and "1 file(s) name no model" in err
    res = json.loads(proc.stdout)["results"]
    members = {(r["metric"], r["axis"], r["checkpoint_of"]): r["members"] for r in res}
    assert members[("wino_bias_type1_pro+refers_to.em", "members", None)] == ["410m", "1.4b"]
    assert members[("wino_bias_type1_anti+refers_to.em", "checkpoints", "1.4b")] == ["1.4b@step133000", "1.4b"]
    assert {r["family"] for r in res} == {"pythia-deduped"}

    bad = run_cli_here("analyze", str(tmp_path), "--model", "nowhere=EleutherAI/pythia-70m")
    assert bad.returncode == 2 and "nowhere is not a directory" in bad.stderr
    bad = run_cli_here("analyze", str(tmp_path), "--model", "410M")
    assert bad.returncode == 2 and "expected SUBDIR=MODEL" in bad.stderr


def test_winobias_pro_minus_anti_is_derived_per_member(tmp_path: Path) -> None:
    """WinoBias's own measure (the Pythia paper's net bias): pro − anti per member and checkpoint, its stderr
    √(se_pro² + se_anti²), analysed as a continuous series with baseline 0 beside the two halves."""
    gaps = {"410M": 0.02, "1.4B": 0.08}
    for size, gap in gaps.items():
        em = {"wino_bias_type1_pro": 0.30 + gap, "wino_bias_type1_anti": 0.30, "wino_bias_type2_pro": 0.5}
        write(tmp_path / size / "eval_results_143000.json", prompted_file(143000, em))
    proc = run_cli_here(
        "analyze", str(tmp_path), "--json", "--model", "410M=EleutherAI/pythia-410m-deduped",
        "--model", "1.4B=EleutherAI/pythia-1.4b-deduped",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    res = {(r["metric"], r["axis"]): r for r in json.loads(proc.stdout)["results"]}
    net = res[("wino_bias_type1+refers_to.em_pro_minus_anti", "members")]
    assert net["probe"] == "wino_bias_type1+refers_to" and net["kind"] == "continuous"
    assert net["members"] == ["410m", "1.4b"]
    assert not any(m.startswith("wino_bias_type2+") for m, _ in res)  # type 2 has no anti half here
    # the values and the CI of a difference: value ± z·√(0.02² + 0.02²)
    from riskaudit.analysis.lm_eval_series import lm_eval_series

    series, _ = lm_eval_series(tmp_path, [], assign={"410M": "EleutherAI/pythia-410m-deduped",
                                                     "1.4B": "EleutherAI/pythia-1.4b-deduped"})  # fmt: skip
    [s] = [s for s in series if s.metric == "wino_bias_type1+refers_to.em_pro_minus_anti" and s.axis == "members"]
    assert s.values == [pytest.approx(g) for g in gaps.values()] and s.baseline == 0.0 and not s.rate
    half = 1.959964 * (2 * 0.02**2) ** 0.5
    assert s.ci_low == [pytest.approx(g - half, abs=1e-5) for g in gaps.values()]
    assert s.ci_high == [pytest.approx(g + half, abs=1e-5) for g in gaps.values()]
