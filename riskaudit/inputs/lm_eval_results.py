"""lm-evaluation-harness results files: reading them and placing each on a family's scale axes.

``riskaudit analyze DIR`` reads every ``*.json`` under DIR (recursively); each must be one model's (or one
checkpoint's) aggregated results, in either schema lm-evaluation-harness has written:

* 0.4.x (``lm_eval --output_path``, ``results_<timestamp>.json``): ``results: {task: {"acc,none": x,
  "acc_stderr,none": s, "alias": …, "sample_len": n, …}}``, the model in ``model_name`` or
  ``config.model_args`` (``pretrained=…,revision=…``, a string or a dict), ``config.model_revision``,
  ``n-shot``, ``n-samples: {task: {original, effective}}``. A metric with a filter other than ``none`` is
  named ``metric,filter`` (``exact_match,strict-match``); a stderr of ``"N/A"`` is no stderr.
* 0.3 and older (as the Pythia repository keeps them under ``evals/``): ``results: {task: {"acc": x,
  "acc_stderr": s}}``, ``config: {model_args: "pretrained=EleutherAI/pythia-v1.1-160m,revision=step143000",
  num_fewshot: 0}``. ``EleutherAI/pythia-v1.1-X`` is the pre-release name of ``EleutherAI/pythia-X``.
* the BigScience fork with prompts (the Pythia repository's ``evals/bias-evals/winobias/``): ``results`` is a
  list of ``{task_name, prompt_name, em, em_stderr, …}`` (or only ``table_results``); the task is
  ``task_name+prompt_name``, the fork's own key. Run by GPT-NeoX's ``evaluate.py``, such a file's
  ``model_args`` is the training config: no model name, the checkpoint in ``iteration``.

A file that is not JSON, has no ``results`` object, or holds a value that is not a number raises
:class:`~riskaudit.errors.RiskauditError` with one line naming the file and what is wrong. Files that name no
model (GPT-NeoX evaluation dumps, whose ``model_args`` is the training config) are returned with
``model=None``; placing them is :func:`resolve_model`'s job, which knows the built-in families table (and any
family TOML given) and returns None for a model it does not know.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riskaudit.errors import RiskauditError
from riskaudit.inputs.family_spec import Family, ModelSpec
from riskaudit.inputs.revisions import PYTHIA_FINAL_STEP, PYTHIA_TOKENS_PER_STEP, parse_step

__all__ = [
    "LmEvalRun",
    "LmEvalValue",
    "ResolvedModel",
    "read_results_dir",
    "read_results_file",
    "resolve_model",
]

_PYTHIA_FAMILIES = frozenset({"pythia", "pythia-deduped"})
_V11 = re.compile(r"^(eleutherai/)pythia-v1\.1-", re.IGNORECASE)  # pre-release name of the Pythia suite
_META_KEYS = frozenset({"alias", "name", "sample_len", "sample_count", "samples"})


class _Config(BaseModel):
    """``config`` of a results file: only what riskaudit reads; everything else is allowed and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: Any = None
    model_args: Any = None
    model_revision: Any = None
    num_fewshot: Any = None


class _ResultsFile(BaseModel):
    """The boundary shape of an lm-evaluation-harness results file (0.4 and older)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    results: dict[str, dict[str, Any]]
    config: _Config | None = None
    model_name: str | None = None
    n_shot: dict[str, Any] | None = Field(default=None, alias="n-shot")
    n_samples: dict[str, Any] | None = Field(default=None, alias="n-samples")


@dataclass(frozen=True)
class LmEvalValue:
    """One metric of one task: ``<task>.<metric>`` in riskaudit's naming."""

    task: str
    metric: str  # "acc", "pct_stereotype", "exact_match,strict-match"
    value: float
    stderr: float | None = None
    n: int | None = None  # documents evaluated, when the file says

    @property
    def name(self) -> str:
        return f"{self.task}.{self.metric}"


@dataclass
class LmEvalRun:
    """One results file: the model (and checkpoint) it evaluated and its metric values."""

    path: Path
    model: str | None  # hub id or path as lm-eval recorded it; None when the file names no model
    revision: str | None
    num_fewshot: dict[str, int]  # task → shots (when the file says)
    values: list[LmEvalValue] = field(default_factory=list)


def _fail(path: Path, message: str) -> RiskauditError:
    return RiskauditError(f"{path}: {message}")


def _args_dict(model_args: Any) -> dict[str, str]:
    """``pretrained=X,revision=Y`` (or a dict) → {key: value}; anything else → {}."""
    if isinstance(model_args, Mapping):
        return {str(k): str(v) for k, v in model_args.items() if isinstance(v, (str, int, float))}
    if isinstance(model_args, str):
        out: dict[str, str] = {}
        for part in model_args.split(","):
            key, sep, value = part.partition("=")
            if sep:
                out[key.strip()] = value.strip()
        return out
    return {}


def _number(path: Path, where: str, raw: Any, *, stderr: bool) -> float | None:
    if stderr and (raw is None or (isinstance(raw, str) and raw.strip().upper() in {"N/A", "NA", ""})):
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise _fail(path, f"{where}: {raw!r} is not a number")
    v = float(raw)
    if not math.isfinite(v):
        if stderr:
            return None
        raise _fail(path, f"{where}: {raw!r} is not a finite number")
    if stderr and v < 0:
        raise _fail(path, f"{where}: a standard error cannot be negative ({v:g})")
    return v


def _n_samples(raw: Mapping[str, Any] | None, task: str, metrics: Mapping[str, Any]) -> int | None:
    entry = (raw or {}).get(task)
    n: Any = entry.get("effective") if isinstance(entry, Mapping) else None
    if n is None:
        n = metrics.get("sample_len")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


def _prompted_rows(path: Path, rows: list[Any]) -> dict[str, dict[str, Any]]:
    """The BigScience fork's ``results`` list (one row per task and prompt) → ``{"task+prompt": metrics}``,
    the fork's own ``table_results`` keys; the rows' text fields are left out."""
    out: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("task_name"), str):
            raise _fail(path, f"results[{i}]: expected an object with a 'task_name' (lm-evaluation-harness schema)")
        prompt = row.get("prompt_name")
        task = f"{row['task_name']}+{prompt}" if isinstance(prompt, str) and prompt else row["task_name"]
        if task in out:
            raise _fail(path, f"results[{i}]: task {task!r} appears twice")
        out[task] = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return out


def _tasks(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    results = data.get("results")
    if results is None and isinstance(data.get("table_results"), dict):
        results = list(data["table_results"].values())  # a BigScience-fork dump without 'results'
    if results is None:
        raise _fail(path, "not an lm-evaluation-harness results file: no top-level 'results' object")
    if isinstance(results, list):
        return _prompted_rows(path, results)
    if not isinstance(results, dict):
        kind = type(results).__name__
        raise _fail(path, f"'results' is a {kind}, not an object of task → metrics (lm-evaluation-harness schema)")
    return results


def read_results_file(path: Path) -> LmEvalRun:
    """One results file (RiskauditError, one line naming the file, when it is not one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise _fail(path, "not a UTF-8 text file") from None
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except OSError as exc:
        raise _fail(path, f"cannot read: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise _fail(path, "not an lm-evaluation-harness results file: no top-level 'results' object")
    data = {**data, "results": _tasks(path, data)}
    if "config" not in data and isinstance(data.get("model_args"), dict):
        data["config"] = {"model_args": data["model_args"]}  # a BigScience-fork dump without 'config'
    try:
        parsed = _ResultsFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise _fail(path, f"'{loc}': {err['msg']}") from None
    cfg = parsed.config or _Config()
    args = _args_dict(cfg.model_args)
    model = parsed.model_name or args.get("pretrained") or args.get("model") or args.get("path")
    if model is None and isinstance(cfg.model, str) and "/" in cfg.model:
        model = cfg.model  # a model object's _name_or_path
    revision = args.get("revision") or (cfg.model_revision if isinstance(cfg.model_revision, str) else None)
    if revision is None and isinstance(cfg.model_args, dict) and isinstance(cfg.model_args.get("iteration"), int):
        revision = f"step{cfg.model_args['iteration']}"  # GPT-NeoX's evaluate.py: the training config
    shots: dict[str, int] = {}
    for task in parsed.results:
        n_shot = (parsed.n_shot or {}).get(task, cfg.num_fewshot)
        if isinstance(n_shot, int) and not isinstance(n_shot, bool):
            shots[task] = n_shot
    run = LmEvalRun(path=path, model=model.strip() if model else None, revision=revision, num_fewshot=shots)
    for task, metrics in parsed.results.items():
        n = _n_samples(parsed.n_samples, task, metrics)
        for key, raw in metrics.items():
            base, _, filt = key.partition(",")
            if base in _META_KEYS or base.endswith("_stderr") or raw is None:
                continue  # not a metric, a metric's stderr, or a metric not measured (null)
            value = _number(path, f"results.{task}.{key}", raw, stderr=False)
            assert value is not None
            skey = f"{base}_stderr" + (f",{filt}" if filt else "")
            stderr = _number(path, f"results.{task}.{skey}", metrics[skey], stderr=True) if skey in metrics else None
            metric = base if filt in ("", "none") else f"{base},{filt}"
            run.values.append(LmEvalValue(task=task, metric=metric, value=value, stderr=stderr, n=n))
    if not run.values:
        raise _fail(path, "'results' holds no numeric metric")
    return run


def read_results_dir(root: Path) -> list[LmEvalRun]:
    """Every ``*.json`` under ``root`` (recursively, sorted by path), each one results file."""
    files = sorted(p for p in root.rglob("*.json") if p.is_file())
    if not files:
        raise RiskauditError(f"{root}: no *.json files (lm-evaluation-harness results) under this directory")
    return [read_results_file(p) for p in files]


# --------------------------------------------------------------------------------------------------
# placing a model on the scale axes


@dataclass(frozen=True)
class ResolvedModel:
    """A results file's model placed in a family: the member (checkpoint) label, its params and tokens."""

    family: str
    base: str  # the member's own name ("160m")
    name: str  # "160m", or "160m@step1000" for a checkpoint other than the final one
    params: float | None
    tokens: float | None
    step: int | None
    note: str | None = None  # why the tokens are unknown, when they are


def _key(model: str) -> str:
    return _V11.sub(r"\1pythia-", model.strip().rstrip("/")).lower()


def _index(families: Iterable[Family]) -> dict[str, tuple[Family, ModelSpec]]:
    index: dict[str, tuple[Family, ModelSpec]] = {}
    basenames: dict[str, list[tuple[Family, ModelSpec]]] = {}
    for fam in families:
        for spec in fam.members:
            if "@" in spec.name:  # an expanded checkpoint
                continue
            index.setdefault(_key(spec.source), (fam, spec))
            basenames.setdefault(_key(spec.source).rsplit("/", 1)[-1], []).append((fam, spec))
    for base, hits in basenames.items():
        if len(hits) == 1:
            index.setdefault(base, hits[0])
    return index


def resolve_model(model: str, revision: str | None, families: Sequence[Family]) -> ResolvedModel | None:
    """The member ``model`` (a hub id, or its last path component) is, in the first family that has it; None
    when no family does. A ``stepN`` revision of a Pythia member scales its tokens to N × 2,097,152; the
    final step (143000) is the member itself. Another family's checkpoint keeps its params, tokens unknown."""
    hit = _index(families).get(_key(model))
    if hit is None:
        hit = _index(families).get(_key(model).rsplit("/", 1)[-1])
    if hit is None:
        return None
    fam, spec = hit
    params = float(spec.params_total) if spec.params_total is not None else None
    rev = (revision or "").strip()
    if rev in ("", "main") or rev == spec.revision:
        return ResolvedModel(fam.name, spec.name, spec.name, params, spec.train_tokens, None)
    step = parse_step(rev)
    if fam.name in _PYTHIA_FAMILIES and step is not None:
        name = spec.name if step == PYTHIA_FINAL_STEP else f"{spec.name}@{rev}"
        return ResolvedModel(fam.name, spec.name, name, params, float(step * PYTHIA_TOKENS_PER_STEP), step)
    note = f"{spec.name}@{rev}: tokens seen at this revision unknown (riskaudit knows Pythia's schedule only)"
    return ResolvedModel(fam.name, spec.name, f"{spec.name}@{rev}", params, None, step, note)
