"""Vars for a whole instance without clan, in clan's on-disk layout."""

import typer

app = typer.Typer(
    help="Vars for a whole instance without clan, in clan's on-disk layout.", no_args_is_help=True
)
