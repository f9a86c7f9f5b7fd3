"""``riskaudit probes list`` and ``riskaudit probes validate``: the probe definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from riskaudit.cli.common import ProbeDirOption, WideOption, out_console, print_tables, table_width
from riskaudit.errors import RiskauditError

probes_app = typer.Typer(
    help="Probe definitions (data in probes/ and in your --probe-dir directories).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@probes_app.command("list")
def probes_list(
    probe_dir: ProbeDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    wide: WideOption = False,
) -> None:
    """List the probe definitions: built-in first, then those in --probe-dir."""
    from riskaudit.probes.registry import list_probe_files
    from riskaudit.reporting.render import probes_table

    infos = list_probe_files(probe_dir or [])
    if as_json:
        out_console.print_json(data=[i.model_dump(mode="json") for i in infos])
        return
    print_tables(probes_table(infos, table_width(wide)), wide)


@probes_app.command("validate")
def probes_validate(
    path: Annotated[
        Path | None,
        typer.Argument(help="A probe YAML file, or a directory of them (default: every known probe file)."),
    ] = None,
    probe_dir: ProbeDirOption = None,
) -> None:
    """Validate probe files; a malformed file ends in one line naming the file, the field and the problem."""
    from riskaudit.probes.registry import ProbeInfo, list_probe_files, validate_probe_file

    infos: list[ProbeInfo]
    if path is None:
        infos = list_probe_files(probe_dir or [])
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise RiskauditError(f"{path}: a directory with no probe files (*.yaml, *.yml)")
        infos = [validate_probe_file(f) for f in files]
    else:
        infos = [validate_probe_file(path)]
    for info in infos:
        if not info.handled:
            raise RiskauditError(f"{info.path}: kind: unknown probe kind {info.kind!r}")
        out_console.print(f"ok  {info.id} ({info.kind})  {info.path}", markup=False, highlight=False)
