"""A self-contained HTML audit report: one file that opens anywhere, offline, verdicts first.

Rendered from the report JSON alone (never the per-item sidecar, so no extracted text or canary secret can
reach the page) with a Jinja2 template (``riskaudit/templates/report.html.j2``, autoescaped). Plots are inline
PNG ``data:`` URIs drawn by :func:`riskaudit.reporting.plots.metric_figure`; CSS is inline; there is no
JavaScript and no external resource. The page carries the report's schema version and sha256, so it can be
traced to its JSON.

The page opens with a table of contents (every section and sub-section by its id), every table sits in a
horizontal scroll container whose "↔ scroll" hint shows only while the table is wider than the screen (pure
CSS, see the template), and every measured number is written by :func:`riskaudit.numbers.estimate` /
:func:`riskaudit.numbers.value_text` — the one format the model card writes too.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from riskaudit.analysis.metric import MetricResult
from riskaudit.analysis.results import MetricAnalysis
from riskaudit.numbers import estimate, human_count, scale_format, value_text
from riskaudit.reporting.analysis_notes import (
    SHORT,
    difference_header,
    difference_notes,
    difference_text,
    first_above,
    first_above_note,
    growth_text,
    no_verdict_note,
    resampling_notes,
)
from riskaudit.reporting.lookup import find_metric, member_analysis, representative_members
from riskaudit.reporting.policy import PolicyResult, policy_summary
from riskaudit.reporting.report import ExecutionInfo, MemberReport, Report

__all__ = ["html_path_for", "render_html"]

ProgressFn = Callable[[int, int], None]


def html_path_for(report_path: Path) -> Path:
    """``reports/demo.json`` → ``reports/demo.html``."""
    return report_path.with_suffix(".html")


def _value_ci(r: MetricResult | None) -> str:
    if r is None or r.value is None:
        return "–"
    return estimate(r.value, r.ci_low, r.ci_high)


def _growth(a: MetricAnalysis | None) -> str:
    """``+0.0142 [-0.0266, +0.0443]``, with the Theil–Sen slope in the same format when it disagrees (the
    terminal's string, :func:`riskaudit.reporting.analysis_notes.growth_text`)."""
    return growth_text(None if a is None else a.growth)


def _verdict_text(a: MetricAnalysis, need: int) -> str:
    """The verdict, and for a series without one why: ``insufficient data (2 members; at least 3 needed)``."""
    if a.verdict != SHORT:
        return a.verdict
    return f"{SHORT} ({a.n_members} member{'' if a.n_members == 1 else 's'}; at least {need} needed)"


def _anchor(taken: set[str], *parts: str) -> str:
    """An element id from ``parts`` not in ``taken`` (and added to it): ``probe-memorization``; characters
    outside ``[A-Za-z0-9_-]`` become ``-``, and a clash gets ``-2``, ``-3``, …"""
    base = "-".join(re.sub(r"[^A-Za-z0-9_-]+", "-", p).strip("-") or "x" for p in parts)
    out, n = base, 1
    while out in taken:
        n += 1
        out = f"{base}-{n}"
    taken.add(out)
    return out


def _verdict_class(verdict: str) -> str:
    return {
        "abrupt": "bad",
        "abrupt (likely metric artifact)": "warn",
        "step or steep rise": "warn",
        "smooth": "ok",
        "no consistent trend": "flat",
        "one member differs": "flat",
    }.get(verdict, "muted")


@dataclass
class _Row:
    cells: list[str]
    css: str = ""


@dataclass
class _Table:
    header: list[str]
    rows: list[_Row] = field(default_factory=list)


@dataclass
class _TocEntry:
    href: str
    label: str
    children: list[_TocEntry] = field(default_factory=list)


@dataclass
class _ProbeSection:
    probe_id: str
    anchor: str
    description: str
    metrics: _Table
    analysis: _Table
    analysis_notes: list[str]  # what the analysis table needs said: no verdict, parametric, blank "first >"
    pairs: _Table | None  # series of two members: their difference with its 95% CI
    plots: list[tuple[str, str]]  # (alt text, data URI)
    notes: list[str]
    breakdowns: _Table | None


def _plot_uri(report: Report, probe: str, metric: str) -> str | None:
    from riskaudit.reporting.plots import metric_figure

    fig = metric_figure(report, probe, metric)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, dpi=80, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _analysis_row(name: str, a: MetricAnalysis | None, need: int) -> _Row:
    if a is None:
        return _Row([name, "–", "–", "–", "–", "no analysis", "–"], "muted")
    g = a.growth
    tau = "–" if g is None else value_text(g.kendall_tau, signed=True)
    pair = a.emergence.members_label if a.abruptness.abrupt else "–"
    surprise = {True: "yes", False: "no", None: "–"}[a.predictability.surprise]
    first = first_above(a)[0] if a.verdict != SHORT else "–"
    cells = [name, _growth(a), tau, pair, surprise, _verdict_text(a, need), first]
    return _Row(cells, _verdict_class(a.verdict))


def _analysis_notes(series: list[MetricAnalysis], need: int) -> tuple[_Table | None, list[str]]:
    """The table of two-member differences (None when no series has one) and the notes under the analysis
    table: why a series has no verdict, what the difference is and how its CI was made, parametric
    resamples, why "first > baseline" is blank (the terminal's wording: :mod:`riskaudit.reporting.analysis_notes`)."""
    short = [a for a in series if a.verdict == SHORT]
    judged = [a for a in series if a.verdict != SHORT]
    notes = resampling_notes(series)
    if judged:
        notes.append(first_above_note(judged))
    pairs = None
    if short:
        notes.append(no_verdict_note(need))
        diffs = [a.difference for a in short if a.difference is not None]
        if diffs:
            pairs = _Table(["metric", "larger − smaller", "difference [95% CI]"])
            for a in short:
                if a.difference is not None:
                    d = a.difference
                    pairs.rows.append(_Row([a.metric, difference_header(d), difference_text(d)]))
            params = any(a.x_axis == "params" for a in short if a.difference)
            notes += difference_notes(diffs, axis="FLOPs or parameters" if params else "training FLOPs")
    return pairs, notes


def _sections(report: Report, members: list[MemberReport], progress: ProgressFn | None) -> list[_ProbeSection]:
    from riskaudit.reporting.render import headline_metrics

    heads = headline_metrics(report)
    need = report.analysis.config.min_members if report.analysis is not None else 3
    descriptions = {p.id: p.description for p in report.probes}
    total = sum(len(h) for h in heads.values())
    done = 0
    out = []
    anchors: set[str] = set()
    for probe, metrics in heads.items():
        table = _Table(["member", *(label for _, label in metrics)])
        for m in members:
            table.rows.append(_Row([m.name, *(_value_ci(find_metric(m, probe, name)) for name, _ in metrics)]))
        analysis = _Table(
            [
                "metric",
                "growth / decade FLOPs [95% CI]",
                "Kendall τ",
                "abrupt step",
                "surprise",
                "verdict",
                "first > baseline",
            ]
        )
        plots: list[tuple[str, str]] = []
        analysed: list[MetricAnalysis] = []
        for name, label in metrics:
            a = member_analysis(report, probe, name)
            analysed += [] if a is None else [a]
            analysis.rows.append(_analysis_row(label if label == name else f"{label} ({name})", a, need))
            uri = _plot_uri(report, probe, name)
            if uri is not None:
                plots.append((f"{probe}: {name} across the family", uri))
            done += 1
            if progress is not None:
                progress(done, total)
        shown = {name for name, _ in metrics}
        others = sorted({r.name for m in members for p in m.probes if p.probe_id == probe for r in p.metrics} - shown)
        breakdowns = None
        if others:
            breakdowns = _Table(["metric", *(m.name for m in members), "verdict"])
            for name in others:
                a = member_analysis(report, probe, name)
                cells = [_value_ci(find_metric(m, probe, name)) for m in members]
                breakdowns.rows.append(
                    _Row([name, *cells, a.verdict if a else "–"], _verdict_class(a.verdict) if a else "")
                )
        notes = sorted({n for m in members for p in m.probes if p.probe_id == probe for n in p.notes})
        pairs, notes_of_analysis = _analysis_notes(analysed, need)
        out.append(
            _ProbeSection(
                probe,
                _anchor(anchors, "probe", probe),
                descriptions.get(probe, ""),
                table,
                analysis,
                notes_of_analysis,
                pairs,
                plots,
                notes,
                breakdowns,
            )
        )
    return out


_FLAGGED = ("abrupt", "abrupt (likely metric artifact)", "step or steep rise")


def _flags(report: Report) -> _Table:
    """One row per flag of the analysis: an abrupt change (or a likely metric artifact, or a step) between two
    members, and a surprise (the largest member outside the prediction fitted on the smaller ones)."""
    t = _Table(["metric", "flag", "where", "detail"])
    for a in report.analysis.metrics if report.analysis is not None else []:
        name = f"{a.probe}/{a.metric}" if a.probe else a.metric
        if a.checkpoint_of:
            name += f" ({a.checkpoint_of} checkpoints)"
        em, ab = a.emergence, a.abruptness
        if a.verdict in _FLAGGED:
            way = "up" if (ab.net or 0.0) > 0 else "down"
            if ab.window == 2:
                shares = f"S2 = {value_text(ab.s2)}, J2 = {value_text(ab.j2)}"
            else:
                shares = f"S = {value_text(ab.s)}, J = {value_text(ab.j)}"
            agree = "" if em.agreement is None else f"; {em.agreement:.0%} of resamples agree"
            artifact = a.verdict.endswith("artifact)")
            detail = f"its continuous companion {a.companion} changes smoothly" if artifact else shares + agree
            t.rows.append(_Row([name, f"{a.verdict} ({way})", em.members_label, detail], _verdict_class(a.verdict)))
        if a.predictability.surprise:
            preds = [p for p in a.predictability.predictions if p.held_out == 1 and p.outside]
            where, detail = "largest member", "outside the 95% prediction interval"
            if preds:
                p = preds[0]
                fmt = scale_format((p.observed, p.predicted, p.pi_low, p.pi_high), p.pi_high - p.pi_low)
                side = "above (riskier than)" if p.observed > p.pi_high else "below (safer than)"
                where = p.member
                detail = (
                    f"observed {fmt(p.observed)}, {side} the prediction {fmt(p.predicted)} "
                    f"[{fmt(p.pi_low)}, {fmt(p.pi_high)}] (units of {a.orientation}, larger = riskier)"
                )
            t.rows.append(_Row([name, "surprise", where, detail], "warn"))
    return t


def _toc(sections: list[_ProbeSection], flags: _Table, has_notes: bool) -> list[_TocEntry]:
    """The table of contents: every ``id`` the template gives a section or sub-section, in page order."""
    summary = _TocEntry(
        "#summary",
        "Summary",
        [
            _TocEntry("#headline", "Headline risks"),
            _TocEntry("#flags", f"Flags ({len(flags.rows)})"),
            _TocEntry("#family", "Members"),
        ],
    )
    probes = []
    for s in sections:
        kids = [
            _TocEntry(f"#{s.anchor}-values", "Values per member"),
            _TocEntry(f"#{s.anchor}-analysis", "Scaling analysis"),
        ]
        if s.pairs is not None:
            kids.append(_TocEntry(f"#{s.anchor}-pairs", f"Two members: differences ({len(s.pairs.rows)})"))
        if s.plots:
            kids.append(_TocEntry(f"#{s.anchor}-plots", f"Plots ({len(s.plots)})"))
        if s.breakdowns is not None:
            label = f"Breakdowns and other metrics ({len(s.breakdowns.rows)})"
            kids.append(_TocEntry(f"#{s.anchor}-breakdowns", label))
        if s.notes:
            kids.append(_TocEntry(f"#{s.anchor}-notes", f"Notes ({len(s.notes)})"))
        probes.append(_TocEntry(f"#{s.anchor}", f"Probe {s.probe_id}", kids))
    run = [_TocEntry("#run-notes", "Report notes")] if has_notes else []
    return [summary, *probes, _TocEntry("#run", "Run, versions and data files", run)]


def _summary(report: Report, members: list[MemberReport]) -> _Table:
    """Each probe's headline risks: the largest member's value, growth per decade, verdict (a row of class
    ``group`` opens each probe)."""
    from riskaudit.reporting.render import headline_metrics

    largest = members[-1] if members else None
    t = _Table(["risk", "verdict", f"largest member ({largest.name if largest else '–'})", "growth / decade FLOPs"])
    for probe, metrics in headline_metrics(report).items():
        t.rows.append(_Row([probe], "group"))
        for name, label in metrics:
            a = member_analysis(report, probe, name)
            need = report.analysis.config.min_members if report.analysis is not None else 3
            verdict: str = _verdict_text(a, need) if a is not None else "–"
            if a is not None and (a.verdict.startswith("abrupt") or a.verdict == "step or steep rise"):
                verdict += f" ({a.emergence.members_label})"
            value = _value_ci(find_metric(largest, probe, name)) if largest else "–"
            t.rows.append(_Row([label, verdict, value, _growth(a)], _verdict_class(a.verdict) if a else "muted"))
    return t


def render_html(
    report: Report,
    report_bytes: bytes,
    policy: PolicyResult | None = None,
    policy_path: str | None = None,
    progress: ProgressFn | None = None,
) -> str:
    """The page for ``report`` (``report_bytes``: the JSON file as written, for its sha256)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("riskaudit", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    members = representative_members(report)
    scale = _Table(["member", "parameters", "training tokens", "FLOPs (6·N·D)", "status"])
    for m in report.members:
        status = "ok" if m.status == "ok" else f"failed: {m.error or ''}"
        scale.rows.append(
            _Row(
                [m.name, human_count(m.params_total), human_count(m.train_tokens), human_count(m.flops), status],
                "" if m.status == "ok" else "bad",
            )
        )
    fa = report.analysis
    counts: dict[str, int] = {}
    for a in fa.metrics if fa is not None else []:
        counts[a.verdict] = counts.get(a.verdict, 0) + 1
    run = report.run
    meta = [
        ("riskaudit", run.riskaudit_version),
        ("Python", run.python_version),
        ("torch", run.torch_version or "–"),
        ("transformers", run.transformers_version or "–"),
        ("platform", run.platform),
        ("git commit", run.git_commit or "–"),
        ("device", run.device),
        ("dtype", run.dtype),
        ("seed", str(run.seed)),
        ("executor", _execution_line(run.execution)),
        ("started / finished (UTC)", f"{run.started_utc} / {run.finished_utc or '–'}"),
        ("command", run.command or "–"),
        ("schema version", report.schema_version),
        ("report sha256", hashlib.sha256(report_bytes).hexdigest()),
        ("per-item sidecar", f"{report.sidecar.path} ({report.sidecar.rows} rows)" if report.sidecar else "–"),
        ("replicates", report.replicates.path if report.replicates else "–"),
        ("reference member (family-level metrics)", report.family.reference_member or "–"),
    ]
    sections = _sections(report, members, progress)
    flags = _flags(report)
    template = env.get_template("report.html.j2")
    return template.render(
        report=report,
        scale=scale,
        summary=_summary(report, members),
        sections=sections,
        flags=flags,
        toc=_toc(sections, flags, bool(report.notes)),
        counts=sorted(counts.items()),
        rule=fa.rule if fa is not None else "",
        resampling=resampling_notes(fa.metrics) if fa is not None else [],
        policy=policy,
        policy_line=policy_summary(policy, policy_path) if policy is not None else "",
        meta=meta,
        notes=report.notes,
        verdict_class=_verdict_class,
    )


def _execution_line(ex: ExecutionInfo) -> str:
    """``local on vm`` or ``ray at 10.0.0.1:6379, 2 of 2 nodes ran units: a (3), b (3); 3 retries``."""
    nodes = ", ".join(f"{n.hostname or n.node_ip or '?'} ({len(n.units)})" for n in ex.nodes)
    if ex.executor == "local":
        return f"local on {nodes}" if nodes else "local"
    where = f"ray at {ex.address}" if ex.address else "ray (started by the scan)"
    ran = f", {len(ex.nodes)} of {ex.cluster_nodes} nodes ran units: {nodes}" if ex.nodes else ""
    return f"{where}{ran}; up to {ex.max_retries} retries per unit"
