"""The ``clan-wireguard`` command line: one sub-command group per concern."""

import faulthandler
import importlib
import signal
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


def _click_exceptions(name: str) -> tuple[type[Exception], ...]:
    """Exception classes called ``name`` of the click typer uses.

    typer >= 0.26 carries its own copy of click; older ones use click. Both
    are looked at, so the command behaves the same with either.
    """
    found: list[type[Exception]] = []
    for module_name in ("typer._click.exceptions", "click.exceptions", "typer"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        kind = getattr(module, name, None)
        if isinstance(kind, type) and issubclass(kind, Exception):
            found.append(kind)
    return tuple(found)


def main() -> None:
    # `kill -USR1 <pid>` prints where every thread of a long-running command
    # (a lab, a check) is, for a person wondering why it waits.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    _register()
    usage_errors = _click_exceptions("ClickException")
    aborts = _click_exceptions("Abort")
    help_shown = _click_exceptions("NoArgsIsHelpError")
    try:
        # Not standalone: click would print usage errors in a framed box;
        # every error of this command is one line.
        status = app(standalone_mode=False)
    except help_shown as shown:
        print(getattr(shown, "format_message", shown.__str__)(), file=sys.stderr)
        sys.exit(2)
    except usage_errors as error:
        context = getattr(error, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        message = getattr(error, "format_message", error.__str__)()
        print(f"error: {message}{hint}", file=sys.stderr)
        sys.exit(getattr(error, "exit_code", 2))
    except aborts:
        sys.exit(130)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)
