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
    from clan_wireguard import failover, lab, vars_cli

    app.command(
        "generate",
        help="Vars generators: write one generator's files into an output directory.",
        # The generators parse their own arguments (see clan_wireguard.generate);
        # this entry only lists them and hands everything over.
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(_generate)
    app.add_typer(vars_cli.app, name="vars")
    app.add_typer(lab.app, name="lab")
    app.add_typer(failover.app, name="failover")


def _generate(context: typer.Context) -> None:
    from clan_wireguard import generate

    raise typer.Exit(generate.main(context.args))


def main() -> None:
    _register()
    try:
        app()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
