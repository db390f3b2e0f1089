"""Commands that start without typer: ``generate`` and ``failover run``.

Both are started often or live long (clan runs a generator per machine as a
fresh process; an agent runs per peer for as long as the machine), so they
parse their arguments with argparse instead of loading typer. Their errors
look like every other error of ``clan-wireguard``: one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from clan_wireguard.errors import UserError

# Not imported from typing, whose import alone is a good part of a
# generator's run time; type checkers treat this name the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


class OneLineArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse's own format adds a usage block.
        self.exit(2, f"error: {self.prog}: {message}; see --help\n")


def run_command(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], None],
    argv: Sequence[str],
) -> int:
    """Parse ``argv`` and run; a ``UserError`` becomes one line and status 1."""
    arguments = parser.parse_args(list(argv))
    try:
        run(arguments)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
