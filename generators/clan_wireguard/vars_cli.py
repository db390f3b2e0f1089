"""Vars for a whole instance without clan, in clan's on-disk layout."""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Vars for a whole instance without clan, in clan's on-disk layout.",
    no_args_is_help=True,
)


@app.command("generate")
def generate(
    inventory: Annotated[
        Path,
        typer.Option(help="inventory file: one instance as in clan.nix, plus instanceName"),
    ],
    vars_dir: Annotated[
        Path,
        typer.Option(
            help="where to keep the vars: DIR/vars/per-machine (public), DIR/secrets/per-machine"
        ),
    ],
    regenerate: Annotated[
        list[str] | None,
        typer.Option(metavar="MACHINE", help="regenerate this machine's vars (repeatable)"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="print nothing on success")] = False,
) -> None:
    """Generate the keys, prefixes and suffixes of every machine of an instance.

    Values already present are kept, unless their machine is named with
    --regenerate; new prefixes and suffixes avoid those already present.
    """
    from clan_wireguard.vars_store import generate_instance

    report = generate_instance(inventory, vars_dir, regenerate or ())
    if not quiet:
        for line in report.summary():
            print(line)
