"""All terminal rendering: rich tables and progress. The only module (with cli.py) that writes to the console."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from riskaudit.families import Family, ModelSpec
from riskaudit.probes.base import MetricResult
from riskaudit.report import MemberReport, Report

# Headline metrics per probe (id -> [(metric, column title)]), shown in the scan table and the analysis
# summary; every metric stays in the JSON report. Probes not listed show their first metrics.
HEADLINES: dict[str, tuple[tuple[str, str], ...]] = {
    "occupation_gender_pronoun": (
        ("stereotype_correlation_pearson", "BLS r (Pearson)"),
        ("stereotype_correlation_spearman", "BLS ρ (Spearman)"),
        ("stereotype_agreement", "agreement"),
        ("stereotype_slope", "slope"),
        ("male_default", "male default"),
        ("gap_magnitude", "|gap|"),
    ),
    "occupation_gender_coreference": (
        ("coref_accuracy_pro", "accuracy pro"),
        ("coref_accuracy_anti", "accuracy anti"),
        ("coref_accuracy_gap", "accuracy gap"),
        ("coref_margin_gap", "margin gap (nats)"),
    ),
    "occupation_gender_minimal_pairs": (
        ("stereotype_preference", "stereotypical preferred"),
        ("stereotype_preference_deviation", "|p − 0.5|"),
        ("shared_token_margin", "shared-token margin"),
    ),
    "occupation_gender_free_generation": (
        ("generation_correlation_pearson", "BLS r (Pearson)"),
        ("generation_agreement", "agreement"),
        ("generation_female_share", "female share"),
    ),
    "memorization": (
        ("canary_exact_extraction", "canary extraction"),
        ("canary_token_accuracy", "canary token acc."),
        ("canary_mean_suffix_logprob", "canary log-prob"),
        ("canary_exposure_exact", "exposure exact (bits)"),
        ("canary_exposure_skewnorm", "exposure skew-normal est. (bits)"),
        ("canary_exposure_empirical", "exposure empirical (bits)"),
        ("text_exact_extraction", "text extraction"),
        ("mia_auc_loss", "MIA AUC (loss)"),
        ("canary_mia_auc_ref_ratio", "canary MIA AUC (ref.)"),
    ),
}
_DEFAULT_HEADLINES = 6


def headline_metrics(report: Report) -> dict[str, tuple[tuple[str, str], ...]]:
    """Probe id -> headline (metric, title) pairs for the probes present in ``report``, in report order."""
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for m in report.members:
        for p in m.probes:
            if p.probe_id in out:
                continue
            if p.probe_id in HEADLINES:
                out[p.probe_id] = HEADLINES[p.probe_id]
            else:
                names = [x.name for x in p.metrics if "[" not in x.name][:_DEFAULT_HEADLINES]
                out[p.probe_id] = tuple((n, n) for n in names)
    return out


def human_count(x: float | None) -> str:
    if x is None:
        return "?"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            v = x / div
            return f"{v:.3g}{suffix}"
    return f"{x:.0f}"


def sci(x: float | None) -> str:
    return "?" if x is None else f"{x:.2e}"


def metric_cell(m: MetricResult | None) -> str:
    if m is None or m.value is None:
        return "–"
    if m.ci_low is None or m.ci_high is None:
        return f"{m.value:+.2f}"
    return f"{m.value:+.2f} [{m.ci_low:+.2f}, {m.ci_high:+.2f}]"


def _span(xs: Sequence[float], fmt: Callable[[float | None], str]) -> str:
    return f"{fmt(min(xs))} – {fmt(max(xs))}" if xs else "?"


def families_table(families: Sequence[Family]) -> Table:
    t = Table(title="Built-in model families", title_justify="left")
    for col in ("family", "members", "params (total)", "params (non-emb.)", "train tokens", "FLOPs 6·N·D", "N"):
        t.add_column(col, justify="left" if col in ("family", "N") else "right")
    for f in families:
        ms = f.members
        pt = [m.params_total for m in ms if m.params_total is not None]
        pn = [m.params_nonembedding for m in ms if m.params_nonembedding is not None]
        tk = sorted({m.train_tokens for m in ms if m.train_tokens is not None})
        fl = [x for x in (f.member_flops(m) for m in ms) if x is not None]
        t.add_row(
            f.name,
            str(len(ms)),
            _span(pt, human_count),
            _span(pn, human_count),
            _span(tk, human_count) if len(tk) > 1 else (human_count(tk[0]) if tk else "not disclosed"),
            _span(fl, sci),
            f.flops_basis,
        )
    return t


def family_table(family: Family) -> Table:
    t = Table(title=f"{family.name}: {family.description}".strip(": "), title_justify="left")
    for col in (
        "member",
        "source",
        "revision",
        "params (total)",
        "params (non-emb.)",
        "train tokens",
        f"FLOPs 6·N·D (N={family.flops_basis})",
        "notes",
    ):
        t.add_column(col, overflow="fold")
    for m in family.members:
        t.add_row(
            m.name,
            m.source,
            m.revision or "",
            human_count(m.params_total),
            human_count(m.params_nonembedding),
            human_count(m.train_tokens),
            sci(family.member_flops(m)),
            m.notes,
        )
    return t


def _metric(member: MemberReport, probe_id: str, name: str) -> MetricResult | None:
    for p in member.probes:
        if p.probe_id != probe_id:
            continue
        for m in p.metrics:
            if m.name == name:
                return m
    return None


def scan_tables(report: Report) -> list[Table]:
    """One table per probe: member scale, then the probe's headline metrics ± 95% bootstrap CI."""
    tables: list[Table] = []
    for probe_id, headlines in headline_metrics(report).items():
        t = Table(
            title=f"riskaudit scan — family {report.family.name} — {probe_id} (95% bootstrap CIs)",
            title_justify="left",
        )
        for col in ("member", "params", "tokens", "FLOPs"):
            t.add_column(col, justify="right" if col != "member" else "left")
        for _, title in headlines:
            t.add_column(title, justify="right")
        for m in report.members:
            if m.status != "ok":
                t.add_row(
                    m.name,
                    human_count(m.params_total),
                    human_count(m.train_tokens),
                    sci(m.flops),
                    Text(f"failed: {m.error}", style="red"),
                )
                continue
            t.add_row(
                m.name,
                human_count(m.params_total),
                human_count(m.train_tokens),
                sci(m.flops),
                *(metric_cell(_metric(m, probe_id, name)) for name, _ in headlines),
            )
        tables.append(t)
    if not tables:  # every member failed before any probe ran
        t = Table(title=f"riskaudit scan — family {report.family.name}", title_justify="left")
        for col in ("member", "status"):
            t.add_column(col)
        for m in report.members:
            t.add_row(m.name, Text(m.status if m.error is None else f"{m.status}: {m.error}"))
        tables.append(t)
    return tables


def headline_keys(report: Report) -> set[tuple[str, str]]:
    return {(pid, name) for pid, hs in headline_metrics(report).items() for name, _ in hs}


class ScanProgress:
    """Rich progress display implementing :class:`riskaudit.scan.ScanEvents`."""

    def __init__(self, console: Console, total_members: int) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.family_task: TaskID = self.progress.add_task("members", total=total_members)
        self.item_task: TaskID | None = None

    def __enter__(self) -> ScanProgress:
        self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def member_start(self, index: int, total: int, member: ModelSpec) -> None:
        if self.item_task is not None:
            self.progress.remove_task(self.item_task)
        self.item_task = self.progress.add_task(f"  {member.name}: loading", total=None)

    def probe_progress(self, member: ModelSpec, probe_id: str, done: int, total: int) -> None:
        if self.item_task is not None:
            self.progress.update(
                self.item_task, description=f"  {member.name}: {probe_id}", completed=done, total=total
            )

    def member_done(self, index: int, total: int, result: MemberReport, seconds: float) -> None:
        self.progress.advance(self.family_task)
        if self.item_task is not None:
            self.progress.remove_task(self.item_task)
            self.item_task = None
        secs = seconds + result.load_seconds
        status = "[green]ok[/green]" if result.status == "ok" else f"[red]failed[/red]: {result.error}"
        self.console.print(f"  {result.name}: {status} ({secs:.1f} s)")


def print_error(console: Console, message: str) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
