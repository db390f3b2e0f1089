"""``clan-wireguard failover``: the failover agent and a look at its state."""

from __future__ import annotations

import fcntl
import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from clan_wireguard.errors import UserError

app = typer.Typer(
    help="Failover agent: keeps names reachable when a controller goes down.",
    no_args_is_help=True,
)

DEFAULT_STATE_DIR = Path("/run/clan-wireguard")


@app.command()
def run(
    plan: Annotated[Path, typer.Option(help="This machine's plan for one instance, as JSON.")],
    state_dir: Annotated[
        Path, typer.Option(help="Where the agent writes <interface>.json with its state.")
    ] = DEFAULT_STATE_DIR,
    interval: Annotated[float, typer.Option(help="Seconds between probes.", min=0.1)] = 1.0,
    down_after: Annotated[
        int, typer.Option(help="Missed probes in a row before a controller is down.", min=1)
    ] = 3,
    up_after: Annotated[
        int, typer.Option(help="Replies in a row before a controller is up again.", min=1)
    ] = 2,
) -> None:
    """Probe the controllers and move a dead controller's subnet to a live one.

    Runs in the foreground until SIGTERM or SIGINT, then restores the plan's
    allowed IPs.
    """
    from clan_wireguard.failover_agent import FailoverAgent, Thresholds
    from clan_wireguard.icmp_probe import EchoProber
    from clan_wireguard.plan import Plan

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    loaded = Plan.load(plan)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--state-dir {state_dir}: {error.strerror}") from error
    # Two agents on one interface would undo each other's moves.
    lock = (state_dir / f"{loaded.interface}.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        raise UserError(
            f"another failover agent already runs for interface '{loaded.interface}' "
            f"(it holds {lock.name})"
        ) from error
    agent = FailoverAgent(
        plan=loaded,
        prober=EchoProber(interface=loaded.interface),
        thresholds=Thresholds(interval=interval, down_after=down_after, up_after=up_after),
        state_file=state_dir / f"{loaded.interface}.json",
    )
    logging.getLogger("clan_wireguard.failover").info(
        "watching %s on %s: %s",
        ", ".join(c.name for c in loaded.failover.controllers) if loaded.failover else "",
        loaded.interface,
        f"probe every {interval}s, down after {down_after} misses, up after {up_after} replies",
    )
    agent.run()


@app.command()
def status(
    state_dir: Annotated[
        Path, typer.Option(help="The agent's state directory.")
    ] = DEFAULT_STATE_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw state.")] = False,
) -> None:
    """Show each controller's health as the agents on this machine see it."""
    files = sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []
    if not files:
        raise UserError(f"no failover agent state in {state_dir} (is the agent running here?)")
    for path in files:
        state = json.loads(path.read_text())
        if as_json:
            print(json.dumps(state, indent=2))
            continue
        age = time.time() - state["updated"]
        running = "running" if state["running"] else "stopped"
        print(f"{state['interface']} ({state['instance']}, {state['machine']}): agent {running}")
        for controller in state["controllers"]:
            since = time.time() - controller["since"]
            carrier = controller["subnetCarriedBy"]
            via = "" if carrier == controller["name"] else f", its subnet via {carrier}"
            print(f"  {controller['name']:<20} {controller['health']:<8} for {since:.0f}s{via}")
        print(f"  (state written {age:.0f}s ago)")
