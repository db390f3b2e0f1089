"""``clan-wireguard failover``: the failover agent and a look at its state."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from clan_wireguard.errors import UserError
from clan_wireguard.failover_run import DEFAULT_STATE_DIR

app = typer.Typer(
    help="Failover agent: keeps names reachable when a controller goes down.",
    no_args_is_help=True,
)


@app.command(
    "run",
    help="Run the agent: probe the controllers, move a dead controller's subnet.",
    # The agent parses its own arguments (clan_wireguard.failover_run); this
    # entry only lists it and hands everything over.
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def run(context: typer.Context) -> None:
    from clan_wireguard import failover_run

    raise typer.Exit(failover_run.main(context.args))


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
