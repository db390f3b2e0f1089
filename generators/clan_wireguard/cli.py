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
    # Each concern owns a typer sub-app in its own module; importing here
    # keeps `clan-wireguard --help` the single index of what exists.
    from clan_wireguard import generate

    app.add_typer(generate.app, name="generate")


def main() -> None:
    _register()
    try:
        app()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
