"""Failover agent: keeps names reachable when a controller goes down."""

import typer

app = typer.Typer(
    help="Failover agent: keeps names reachable when a controller goes down.", no_args_is_help=True
)
