"""The lab: a whole mesh on one Linux machine, in namespaces, with real WireGuard."""

import typer

app = typer.Typer(
    help="Run a mesh on this machine in network namespaces with real WireGuard.",
    no_args_is_help=True,
)
