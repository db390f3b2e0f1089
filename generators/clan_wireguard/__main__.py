"""Entry point of ``clan-wireguard`` (and ``python -m clan_wireguard``).

``generate`` and ``failover run`` are dispatched here, before typer is
imported: clan runs each vars generator as a fresh process, and importing
typer costs more than the generator's own work; the failover agent runs for
as long as the machine, and typer with all it loads would double its
memory. Everything else goes to the typer application in
``clan_wireguard.cli``.
"""

import sys


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[:1] == ["generate"]:
        from clan_wireguard.generate import main as generate_main

        sys.exit(generate_main(arguments[1:]))
    if arguments[:2] == ["failover", "run"]:
        from clan_wireguard.failover_run import main as failover_run_main

        sys.exit(failover_run_main(arguments[2:]))
    from clan_wireguard.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
