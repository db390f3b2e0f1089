"""The ``clan-wireguard`` command line: one sub-command group per concern."""

import sys

import typer

from clan_wireguard.errors import UserError

app = typer.Typer(
    help="WireGuard mesh for clan: vars generators, lab and failover agent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each concern owns a typer sub-app in its own module. Importing them
    # here, not at the top, keeps start-up cheap for the generators, which
    # clan runs as fresh processes.
    from clan_wireguard import failover, generate, lab, vars_cli

    app.add_typer(generate.app, name="generate")
    app.add_typer(vars_cli.app, name="vars")
    app.add_typer(lab.app, name="lab")
    app.add_typer(failover.app, name="failover")


def main() -> None:
    _register()
    try:
        app()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
