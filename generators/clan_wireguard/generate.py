"""Vars generators: write one generator's files into an output directory."""

import typer

app = typer.Typer(
    help="Vars generators: write one generator's files into an output directory.",
    no_args_is_help=True,
)
