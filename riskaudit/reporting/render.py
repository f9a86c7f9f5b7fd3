"""All terminal rendering: rich tables and progress. The only module (with cli.py) that writes to the console."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from riskaudit.analysis.metric import MetricResult
from riskaudit.inputs.family_spec import Family, ModelSpec
from riskaudit.numbers import human_count, sci
from riskaudit.probes.registry import ProbeInfo
from riskaudit.reporting.layout import Cell, Column, ci_cell, fit_tables
from riskaudit.reporting.lookup import find_metric
from riskaudit.reporting.report import MemberReport, Report

# Headline metrics per probe (id -> [(metric, column header)]), shown in the scan table and the analysis
# summary; every metric stays in the JSON report (and in `--wide`). Probes not listed show their first metrics.
HEADLINES: dict[str, tuple[tuple[str, str], ...]] = {
    "occupation_gender_pronoun": (
        ("stereotype_correlation_pearson", "BLS r"),
        ("stereotype_correlation_spearman", "BLS ρ"),
        ("stereotype_agreement", "agreement"),
        ("stereotype_slope", "slope"),
        ("male_default", "male default"),
        ("gap_magnitude", "|gap|"),
    ),
    "occupation_gender_coreference": (
        ("coref_accuracy_pro", "acc. pro"),
        ("coref_accuracy_anti", "acc. anti"),
        ("coref_accuracy_gap", "acc. gap"),
        ("coref_margin_gap", "margin gap"),
    ),
    "occupation_gender_minimal_pairs": (
        ("stereotype_preference", "p(stereo)"),
        ("stereotype_preference_deviation", "|p − 0.5|"),
        ("shared_token_margin", "margin"),
    ),
    "occupation_gender_free_generation": (
        ("generation_correlation_pearson", "BLS r"),
        ("generation_agreement", "agreement"),
        ("generation_female_share", "female share"),
    ),
    "crows_pairs": (
        ("crows_pairs_english.pct_stereotype", "pct stereo"),
        ("crows_pairs_english.likelihood_diff", "lik. diff"),
        ("crows_pairs_english_gender.pct_stereotype", "gender pct"),
        ("crows_pairs_english_gender.likelihood_diff", "gender diff"),
        ("crows_pairs_english.shared_token_pct_stereotype", "shared pct"),
    ),
    "winogender": (
        ("winogender_all.acc", "acc all"),
        ("winogender_male.acc", "acc male"),
        ("winogender_female.acc", "acc female"),
        ("winogender_neutral.acc", "acc neutral"),
        ("winogender_gotcha.acc", "acc gotcha"),
        ("winogender_bls.resolution_r", "BLS r"),
    ),
    "memorization": (
        ("canary_exact_extraction", "canary extr."),
        ("canary_token_accuracy", "canary tok. acc."),
        ("canary_mean_suffix_logprob", "canary log-p"),
        ("canary_exposure_exact", "exposure exact"),
        ("canary_exposure_skewnorm", "exposure est."),
        ("text_exact_extraction", "text extr."),
        ("mia_auc_loss", "MIA AUC"),
        ("canary_mia_auc_ref_ratio", "canary MIA AUC"),
    ),
}
# What each abbreviated header means, said once under the table that uses it.
LEGENDS: dict[str, str] = {
    "occupation_gender_pronoun": "BLS r / ρ: Pearson / Spearman correlation of each occupation's female−male "
    "pronoun log-prob gap with logit(BLS % female); agreement: share of occupations whose gap has the sign of "
    "(% female − 50); slope: of the gap on logit(% female); male default: mean gap (< 0: male); |gap|: mean "
    "absolute gap (nats)",
    "occupation_gender_coreference": "acc. pro / anti: accuracy on pro- / anti-stereotypical items; acc. gap: "
    "pro − anti; margin gap: the same on the log-prob margin (nats)",
    "occupation_gender_minimal_pairs": "p(stereo): share of pairs whose stereotypical sentence is preferred (0.5 = "
    "none); margin: mean log-prob margin on the tokens the two sentences share (nats)",
    "occupation_gender_free_generation": "BLS r: correlation of the female share of generated pronouns with BLS % "
    "female; agreement: share of occupations on the BLS side of 50%",
    "crows_pairs": "pct stereo: share of pairs whose more-stereotyping sentence has the higher log-likelihood "
    "(lm-eval crows_pairs_english; 0.5 = none); lik. diff: mean |log-likelihood difference| (nats); gender: "
    "the same on crows_pairs_english_gender; "
    "shared pct: the preference on the words the two sentences share only",
    "winogender": "acc: lm-eval winogender_* accuracy (all, by pronoun, gotcha = pronoun against the occupation's "
    "majority gender; 0.5 = chance); BLS r: Pearson r of (female − male) resolutions to the occupation with BLS % "
    "female (Rudinger et al. 2018 Fig. 3)",
    "memorization": "extr.: exact extraction rate (greedy suffix = true suffix); tok. acc.: teacher-forced token "
    "accuracy; log-p: mean suffix log-prob (nats); exposure in bits (Carlini et al. 2019); MIA AUC: "
    "membership-inference ROC AUC (text: loss; canary: ratio to the smallest member)",
}
_DEFAULT_HEADLINES = 6


def headline_metrics(report: Report, wide: bool = False) -> dict[str, tuple[tuple[str, str], ...]]:
    """Probe id -> (metric, header) pairs for the probes present in ``report``, in report order: the headline
    metrics, or with ``wide`` every metric (breakdowns included) after them."""
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for m in report.members:
        for p in m.probes:
            if p.probe_id in out:
                continue
            if p.probe_id in HEADLINES:  # those the report has (e.g. exact exposure only for enumerable canaries)
                present = {
                    x.name for mm in report.members for pp in mm.probes if pp.probe_id == p.probe_id for x in pp.metrics
                }
                heads = tuple(h for h in HEADLINES[p.probe_id] if h[0] in present)
            else:
                heads = tuple((n, n) for n in [x.name for x in p.metrics if "[" not in x.name][:_DEFAULT_HEADLINES])
            if wide:  # every metric any member has (a reference member lacks its ratio-to-reference metrics)
                every = [
                    x.name for mm in report.members for pp in mm.probes if pp.probe_id == p.probe_id for x in pp.metrics
                ]
                shown = {name for name, _ in heads}
                heads = (*heads, *((n, n) for n in dict.fromkeys(every) if n not in shown))
            out[p.probe_id] = heads
    return out


def metric_cell(m: MetricResult | None) -> str:
    """A metric and its 95% CI in one cell, ``0.810 [0.712, 0.883]``: the same string as on the HTML page and
    the model card (digits by the CI's width, :func:`riskaudit.numbers.estimate`)."""
    if m is None:
        return "–"
    return ci_cell(m.value, m.ci_low, m.ci_high)


def _span(xs: Sequence[float], fmt: Callable[[float | None], str]) -> str:
    if not xs:
        return "?"
    lo, hi = fmt(min(xs)), fmt(max(xs))
    return lo if lo == hi else f"{lo}–{hi}"


def families_table(families: Sequence[Family], width: int | None = None) -> list[Table]:
    cols = (
        Column("family", key=True),
        Column("members", "right"),
        Column("params", "right"),
        Column("non-emb.", "right"),
        Column("train tokens", "right"),
        Column("FLOPs", "right"),
        Column("N"),
    )
    rows: list[list[Cell]] = []
    approx = False
    for f in families:
        ms = f.members
        pt = [m.params_total for m in ms if m.params_total is not None]
        pn = [m.params_nonembedding for m in ms if m.params_nonembedding is not None]
        tk = sorted({m.train_tokens for m in ms if m.train_tokens is not None})
        fl = [x for x in (f.member_flops(m) for m in ms) if x is not None]
        mark = "~" if any(m.approximate for m in ms) else ""
        approx = approx or bool(mark)
        rows.append(
            [
                Text(f.name),
                str(len(ms)),
                _span(pt, human_count),
                _span(pn, human_count),
                mark + _span(tk, human_count) if tk else "not disclosed",
                mark + _span(fl, sci) if fl else "unknown",
                f.flops_basis,
            ]
        )
    caption = (
        "params: total parameters; non-emb.: without the embeddings; FLOPs = 6·N·D (Kaplan et al. 2020) with N "
        "the parameters named in column N and D the training tokens"
    )
    if approx:
        caption += "; ~: approximate (e.g. opt: a ~180B-token corpus, tokens seen per model not disclosed)"
    return fit_tables("Built-in model families", cols, rows, width, caption)


def family_table(family: Family, width: int | None = None) -> list[Table]:
    cols = (
        Column("member", key=True),
        Column("source", wrap=True),
        Column("revision"),
        Column("params", "right"),
        Column("non-emb.", "right"),
        Column("train tokens", "right"),
        Column("FLOPs", "right"),
        Column("notes", wrap=True),
    )
    rows: list[list[Cell]] = [
        [
            Text(m.name),
            Text(m.source),
            Text(m.revision or ""),
            human_count(m.params_total),
            human_count(m.params_nonembedding),
            ("~" if m.approximate else "") + human_count(m.train_tokens),
            ("~" if m.approximate else "") + sci(family.member_flops(m)),
            Text(m.notes),
        ]
        for m in family.members
    ]
    title = f"{family.name}: {family.description}".strip(": ")
    caption = (
        f"FLOPs = 6·N·D with N = {family.flops_basis} parameters; non-emb.: parameters without the embeddings; "
        "a member with checkpoints is scanned at them with --revisions (name@revision; main = the member itself)"
    )
    return fit_tables(title, cols, rows, width, caption)


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.?!])\s", " ".join(text.split()), maxsplit=1)[0]


def probes_table(infos: Sequence[ProbeInfo], width: int | None = None) -> list[Table]:
    """The probe definitions: id, kind, version, templates, where, content hash, description."""
    cols = (
        Column("id", key=True),
        Column("kind"),
        Column("version", "right"),
        Column("templates", "right"),
        Column("source", wrap=True),
        Column("hash"),
        Column("description", wrap=True),
    )
    rows: list[list[Cell]] = [
        [
            Text(i.id),
            Text(i.kind),
            "" if i.version is None else str(i.version),
            "" if i.n_templates is None else str(i.n_templates),
            Text("built-in" if i.builtin else str(i.path)),
            (i.content_hash or "")[:12],
            Text(_first_sentence(i.description or "")),
        ]
        for i in infos
    ]
    caption = "hash: the first 12 hex digits of the sha256 of the canonical probe definition (the store key)"
    return fit_tables("Probes", cols, rows, width, caption)


def scan_tables(report: Report, width: int | None = None, wide: bool = False) -> list[Table]:
    """One table per probe (split to fit ``width``): member, FLOPs, then each headline metric as a compact
    ``value [95% CI]`` cell; ``wide``: every metric, in one table per probe."""
    tables: list[Table] = []
    limit = " — smoke run (--limit {report.run.limit})" if report.run.limit is not None else ""
    for probe_id, headlines in headline_metrics(report, wide).items():
        cols = [Column("member", key=True), Column("FLOPs", "right", key=True)]
        cols += [Column(title, "right") for _, title in headlines]
        tokens = {m.train_tokens for m in report.members}
        cols += [Column("params", "right", optional=True), Column("tokens", "right", optional=True)]
        rows: list[list[Cell]] = []
        failed = []
        for m in report.members:
            if m.status != "ok":
                failed.append(f"{m.name} failed: {m.error}")
            cells = [
                "failed" if m.status != "ok" else metric_cell(find_metric(m, probe_id, name))
                for name, _ in headlines
            ]
            rows.append([Text(m.name), sci(m.flops), *cells, human_count(m.params_total), human_count(m.train_tokens)])
        caption = ["value [95% bootstrap CI over items]; FLOPs = 6·N·D"]
        if len(tokens) == 1 and not wide:  # one training-token count: said once instead of a column
            cols, rows = cols[:-1], [r[:-1] for r in rows]
            caption.append(f"every member trained on {human_count(next(iter(tokens)))} tokens")
        if probe_id in LEGENDS and not wide:
            caption.append(LEGENDS[probe_id])
        caption.extend(failed)
        title = f"{report.family.name} — {probe_id}{limit.format(report=report)}"
        tables.extend(fit_tables(title, cols, rows, None if wide else width, "; ".join(caption)))
    if not tables:  # every member failed before any probe ran
        t = Table(title=f"riskaudit scan — family {report.family.name}", title_justify="left")
        for col in ("member", "status"):
            t.add_column(col, overflow="fold")
        for m in report.members:
            t.add_row(Text(m.name), Text(m.status if m.error is None else f"{m.status}: {m.error}"))
        tables.append(t)
    return tables


def headline_keys(report: Report) -> set[tuple[str, str]]:
    return {(pid, name) for pid, hs in headline_metrics(report).items() for name, _ in hs}


def member_line(index: int, total: int, result: MemberReport, seconds: float, from_store: bool) -> str:
    """One finished member, as a progress line: ``[2/6] demo-150k: ok (3.1 s)``; ``from store`` when nothing
    was computed (the seconds are then those of the original computation)."""
    if result.status != "ok":
        return f"[{index + 1}/{total}] {result.name}: failed: {result.error}"
    when = f"from store, computed in {seconds:.1f} s" if from_store else f"{seconds:.1f} s"
    where = result.placement
    if where is not None and where.executor == "ray" and not from_store:
        node = where.hostname or where.node_ip or "?"
        when += f" on {node}" + (f" [{(where.node_id or '')[:8]}]" if where.node_id else "")
    return f"[{index + 1}/{total}] {result.name}: ok ({when})"


class LineProgress:
    """Progress as plain lines, one per finished step (CI logs, pipes); a :class:`riskaudit.run.scan.ScanEvents`."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    def member_start(self, index: int, total: int, member: ModelSpec) -> None:
        pass

    def probe_progress(self, member: ModelSpec, probe_id: str, done: int, total: int) -> None:
        pass

    def member_done(
        self, index: int, total: int, result: MemberReport, seconds: float, from_store: bool = False
    ) -> None:
        self.console.print(
            member_line(index, total, result, seconds, from_store), markup=False, highlight=False, soft_wrap=True
        )

    def step_done(self, step: str, seconds: float, detail: str = "") -> None:
        extra = f"{detail}, " if detail else ""
        self.console.print(f"{step}: done ({extra}{seconds:.1f} s)", markup=False, highlight=False, soft_wrap=True)


class ScanProgress(LineProgress):
    """Rich live progress for a terminal; finished steps stay as lines above the bars."""

    def __init__(self, console: Console, total_members: int) -> None:
        super().__init__(console)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.family_task: TaskID = self.progress.add_task("members", total=total_members)
        self.item_tasks: dict[str, TaskID] = {}  # members in flight (several at once with --executor ray)

    def __enter__(self) -> ScanProgress:
        self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def member_start(self, index: int, total: int, member: ModelSpec) -> None:
        old = self.item_tasks.pop(member.name, None)
        if old is not None:
            self.progress.remove_task(old)
        self.item_tasks[member.name] = self.progress.add_task(f"  {member.name}: started", total=None)

    def probe_progress(self, member: ModelSpec, probe_id: str, done: int, total: int) -> None:
        task = self.item_tasks.get(member.name)
        if task is not None:
            self.progress.update(task, description=f"  {member.name}: {probe_id}", completed=done, total=total)

    def member_done(
        self, index: int, total: int, result: MemberReport, seconds: float, from_store: bool = False
    ) -> None:
        self.progress.advance(self.family_task)
        task = self.item_tasks.pop(result.name, None)
        if task is not None:
            self.progress.remove_task(task)
        super().member_done(index, total, result, seconds, from_store)


def print_error(console: Console, message: str) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
