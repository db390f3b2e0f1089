"""Entry point of ``clan-wireguard`` (and ``python -m clan_wireguard``).

``generate`` is dispatched here, before typer is imported: clan runs each
vars generator as a fresh process, and importing typer costs more than the
generator's own work. Everything else goes to the typer application in
``clan_wireguard.cli``.
"""

import sys


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[:1] == ["generate"]:
        from clan_wireguard.generate import main as generate_main

        sys.exit(generate_main(arguments[1:]))
    from clan_wireguard.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
