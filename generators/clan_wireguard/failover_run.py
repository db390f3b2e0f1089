"""``clan-wireguard failover run``: the agent's own command line.

Parsed with argparse and dispatched before typer is imported (see
``clan_wireguard.__main__``): the agent runs for as long as the machine
does, one per peer and instance, and typer with everything it loads would
double its memory and make a hundred agents take seconds to start.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from clan_wireguard.errors import UserError
from clan_wireguard.lean_command import OneLineArgumentParser, run_command

PROGRAM = "clan-wireguard failover run"
DEFAULT_STATE_DIR = Path("/run/clan-wireguard")


def _at_least(minimum: float, kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is below the minimum {minimum}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROGRAM,
        description=(
            "Probe the controllers and move a dead controller's subnet to a live one. "
            "Runs in the foreground until SIGTERM or SIGINT, then restores the plan's "
            "allowed IPs."
        ),
        allow_abbrev=False,
    )
    parser.add_argument(
        "--plan", required=True, type=Path, help="this machine's plan for one instance, as JSON"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where the agent writes <interface>.json (default {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--interval",
        type=_at_least(0.1, float),
        default=1.0,
        help="seconds between probes (default 1)",
    )
    parser.add_argument(
        "--down-after",
        type=_at_least(1, int),
        default=3,
        help="missed probes in a row before a controller is down (default 3)",
    )
    parser.add_argument(
        "--up-after",
        type=_at_least(1, int),
        default=2,
        help="replies in a row before a controller is up again (default 2)",
    )
    return parser


def run(arguments: argparse.Namespace) -> None:
    from clan_wireguard.failover_agent import FailoverAgent, Thresholds
    from clan_wireguard.icmp_probe import EchoProber
    from clan_wireguard.plan import Plan

    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    plan = Plan.load(arguments.plan)
    state_dir: Path = arguments.state_dir
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        lock = (state_dir / f"{plan.interface}.lock").open("w")
    except OSError as error:
        raise UserError(f"--state-dir {state_dir}: {error.strerror}") from error
    # Two agents on one interface would undo each other's moves.
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        raise UserError(
            f"another failover agent already runs for interface '{plan.interface}' "
            f"(it holds {lock.name})"
        ) from error
    thresholds = Thresholds(
        interval=arguments.interval, down_after=arguments.down_after, up_after=arguments.up_after
    )
    agent = FailoverAgent(
        plan=plan,
        prober=EchoProber(interface=plan.interface),
        thresholds=thresholds,
        state_file=state_dir / f"{plan.interface}.json",
    )
    logging.getLogger("clan_wireguard.failover").info(
        "watching %s on %s: probe every %ss, down after %d misses, up after %d replies",
        ", ".join(c.name for c in agent.failover.controllers),
        plan.interface,
        thresholds.interval,
        thresholds.down_after,
        thresholds.up_after,
    )
    agent.run()


def main(argv: Sequence[str]) -> int:
    """Run the agent with ``argv``; return the exit status."""
    return run_command(build_parser(), run, argv)
