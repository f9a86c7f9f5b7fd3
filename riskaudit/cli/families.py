"""``riskaudit families``: the built-in families, or one family's members and checkpoints."""

from __future__ import annotations

from typing import Annotated

import typer

from riskaudit.cli.common import WideOption, out_console, print_tables, table_width


def families(
    name: Annotated[
        str | None, typer.Argument(help="Show one family's members (a built-in name or a TOML path).")
    ] = None,
    revisions: Annotated[
        str | None, typer.Option(help="Comma-separated checkpoints, e.g. step1000,step143000.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    wide: WideOption = False,
) -> None:
    """List the built-in families (members, parameters, training tokens, FLOPs = 6·N·D), or one family's members
    and checkpoints."""
    from riskaudit.inputs.families import builtin_families, load_family
    from riskaudit.reporting.render import families_table, family_table
    from riskaudit.run.request import split_revisions

    if name is None:
        fams = list(builtin_families().values())
        if as_json:
            out_console.print_json(data=[f.model_dump(mode="json") for f in fams])
        else:
            print_tables(families_table(fams, table_width(wide)), wide)
            if not any(f.name == "demo" for f in fams):
                out_console.print("demo: not built yet (run `riskaudit zoo build`)")
        return
    fam = load_family(name, split_revisions(revisions))
    if as_json:
        out_console.print_json(data=fam.model_dump(mode="json"))
    else:
        print_tables(family_table(fam, table_width(wide)), wide)
