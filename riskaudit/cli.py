"""The ``riskaudit`` command line: parse → call core → render. Thin on purpose."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from riskaudit import __version__
from riskaudit.errors import RiskauditError

app = typer.Typer(
    name="riskaudit",
    help="Audit occupation–gender bias and training-data memorization across a language-model family, "
    "and see how each risk grows with training compute.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
zoo_app = typer.Typer(
    help="The built-in demo family (a tiny GPT-NeoX family trained by riskaudit).", no_args_is_help=True
)
app.add_typer(zoo_app, name="zoo")

out_console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        out_console.print(f"riskaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise RiskauditError("--revisions needs at least one revision, e.g. step1000,step143000")
    return items


@app.command()
def families(
    name: Annotated[
        str | None, typer.Argument(help="Show one family's members (a built-in name or a TOML path).")
    ] = None,
    revisions: Annotated[
        str | None, typer.Option(help="Comma-separated checkpoints, e.g. step1000,step143000.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the built-in families (members, parameters, training tokens, FLOPs = 6·N·D)."""
    from riskaudit.families import builtin_families, load_family
    from riskaudit.render import families_table, family_table

    if name is None:
        fams = list(builtin_families().values())
        if as_json:
            out_console.print_json(data=[f.model_dump(mode="json") for f in fams])
        else:
            out_console.print(families_table(fams))
            if not any(f.name == "demo" for f in fams):
                out_console.print("demo: not built yet (run `riskaudit zoo build`)")
        return
    fam = load_family(name, _split(revisions))
    if as_json:
        out_console.print_json(data=fam.model_dump(mode="json"))
    else:
        out_console.print(family_table(fam))


@app.command()
def scan(
    family: Annotated[
        str, typer.Option("--family", "-f", help="A built-in family (see `riskaudit families`) or a family TOML file.")
    ],
    revisions: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated checkpoints to scan as a second scale "
            "axis, e.g. step1000,step143000 (pythia: tokens = step × 2,097,152)."
        ),
    ] = None,
    members: Annotated[str | None, typer.Option(help="Comma-separated subset of member names to scan.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Report path (default: reports/<family>.json); the per-item sidecar goes next to it (.items.jsonl).",
        ),
    ] = None,
    dtype: Annotated[str, typer.Option(help="float32 | float16 | bfloat16.")] = "float32",
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N | mps | auto.")] = "cpu",
    batch_size: Annotated[int, typer.Option(min=1, help="Sequences per forward pass.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed for sampling and bootstrap.")] = 0,
    occupations: Annotated[str, typer.Option(help="Occupation table: bls2015 | bls2022.")] = "bls2015",
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle", help="Allow pickled (.bin/.pt) weights. Unsafe: unpickling can run arbitrary code."
        ),
    ] = False,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Run Python code shipped in a model repository.")
    ] = False,
    keep_going: Annotated[
        bool,
        typer.Option("--keep-going", help="Record members that fail to load and go on (default: stop at the first)."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """Audit every member of a family and write a JSON report."""
    from riskaudit.families import load_family
    from riskaudit.models import DTYPES, LoadOptions
    from riskaudit.render import ScanProgress, scan_table
    from riskaudit.report import write_report
    from riskaudit.scan import ScanOptions, run_scan

    if dtype not in DTYPES:
        raise RiskauditError(f"unknown --dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if occupations not in ("bls2015", "bls2022"):
        raise RiskauditError(f"unknown --occupations {occupations!r}: expected bls2015 or bls2022")
    fam = load_family(family, _split(revisions))
    if members is not None:
        wanted = [m.strip() for m in members.split(",") if m.strip()]
        fam = fam.model_copy(update={"members": [fam.member(w) for w in wanted]})
    out_path = out if out is not None else Path("reports") / f"{fam.name}.json"
    _check_writable(out_path)
    options = ScanOptions(
        load=LoadOptions(
            dtype=dtype,
            device=device,
            batch_size=batch_size,
            allow_pickle=allow_pickle,
            trust_remote_code=trust_remote_code,
        ),
        seed=seed,
        occupations=occupations,
        keep_going=keep_going,
        command=" ".join(["riskaudit", *sys.argv[1:]]),
    )
    if quiet:
        report, rows = run_scan(fam, options)
    else:
        with ScanProgress(err_console, len(fam.members)) as progress:
            report, rows = run_scan(fam, options, events=progress)
    report = write_report(report, out_path, rows)
    out_console.print(scan_table(report))
    side = report.sidecar.path if report.sidecar else "-"
    out_console.print(f"report: {out_path}  (per-item records: {side})")
    if any(m.status != "ok" for m in report.members):
        raise typer.Exit(1)


def _check_writable(path: Path) -> None:
    """Fail before any work when the report cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.exists() and path.is_dir():
        raise RiskauditError(f"--out {path} is a directory; give a file path such as {path}/report.json")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise RiskauditError(f"cannot write the report to {path}: {probe} is not writable")


@zoo_app.command("build")
def zoo_build(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Where to build (default: the package's riskaudit/zoo/demo, which `--family demo` reads).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the corpus, tokenizer order and initialisation.")] = 1234,
) -> None:
    """Re-create the demo family from a seed: corpus, tokenizer, 6 members and checkpoints (~15 min on 2 cores).

    Interrupted builds resume: finished members are kept.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from riskaudit.render import human_count
    from riskaudit.resources import demo_dir
    from riskaudit.zoo.build import BuildConfig, build_demo

    target = out or demo_dir()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err_console,
    )
    tasks: dict[str, TaskID] = {}

    def on_event(kind: str, data: dict[str, object]) -> None:
        name = str(data.get("name", ""))
        if kind == "corpus":
            err_console.print(f"corpus: {data['documents']} training documents, {data['canaries']} canaries")
        elif kind == "tokenizer":
            err_console.print(f"tokenizer: vocabulary {data['vocab']}, {data['tokens']} training tokens")
        elif kind == "member_skipped":
            err_console.print(f"{name}: already built, kept")
        elif kind == "member_start":
            tasks[name] = progress.add_task(name, total=int(str(data["steps"])), info="")
        elif kind == "step":
            progress.update(
                tasks[name],
                completed=int(str(data["step"])),
                info=f"loss {float(str(data['loss'])):.3f}",
            )
        elif kind == "member_done":
            bias = data["bias"]
            r = bias["pearson"] if isinstance(bias, dict) else float("nan")
            err_console.print(
                f"{name}: {human_count(float(str(data['params'])))} params, "
                f"{float(str(data['seconds'])):.0f} s, pronoun–BLS r = {r:.2f}"
            )

    with progress:
        manifest = build_demo(target, BuildConfig(seed=seed), on_event=on_event)
    out_console.print(
        f"demo family written to {target} ({len(manifest.members)} members, {manifest.build_seconds:.0f} s)"
    )


@app.command("probes")
def probes_list() -> None:
    """List the built-in probe definitions."""
    from rich.table import Table

    from riskaudit.probes.pronoun import PronounProbe

    probe = PronounProbe.load()
    t = Table(title="Built-in probes", title_justify="left")
    for col in ("id", "templates", "occupations", "content hash"):
        t.add_column(col)
    t.add_row(probe.id, str(len(probe.spec.templates)), str(len(probe.occupations)), probe.content_hash()[:16])
    out_console.print(t)


def main() -> None:
    """Console entry point: every RiskauditError is one line on stderr and exit code 2."""
    from riskaudit.render import print_error

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # DEMO-FAMILY-NOTES: avoids 5-10x slowdowns on shared cores
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        rc = app(standalone_mode=False)
    except RiskauditError as exc:
        print_error(err_console, str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print_error(err_console, "interrupted; nothing half-written was kept (reports are written atomically)")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)
