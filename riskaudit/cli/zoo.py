"""``riskaudit zoo build``: re-create the built-in demo family from a seed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskaudit.cli.common import err_console, out_console

zoo_app = typer.Typer(
    help="The built-in demo family (a tiny GPT-NeoX family trained by riskaudit).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


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

    from riskaudit.numbers import human_count
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
