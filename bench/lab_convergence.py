"""How long a fresh mesh takes until every pair answers, per bring-up order.

For the spec's size (2 controllers, 3 peers) and a large fleet (2
controllers, 100 peers), the lab is started again and again with each
bring-up order (see ``clan_wireguard.lab.Bringup``):

- staged: every device knows every key before any endpoint is set;
- controllers-first: controllers completely, then peers;
- simultaneous: every machine at once, in no particular order;

and, at the small size, with and without the failover agents (whose probes
renew a controller they find dead). Convergence is the time from the moment
the lab starts its first wireguard-go until the last sampled pair's first
echo reply, by name (ping -D stamps). Nothing is asserted.

    python3 bench/lab_convergence.py [--peers 3 100] [--controllers 2] [--repeat 3]

Needs root. Runs one lab at a time, named bench-convergence.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
from pathlib import Path

from clan_wireguard.lab import Bringup, Lab
from lab_fleet import first_reply_times, fleet_inventory, wall_clock_of

AGENTS_UP_TO_PEERS = 10


def measure(
    inventory: Path,
    vars_dir: Path,
    bringup: Bringup,
    agents: bool,
    sample: int,
) -> tuple[float | None, float, int]:
    """(convergence seconds or None, configuration seconds, pairs without reply)."""
    with Lab("bench-convergence", [inventory], vars_dir, failover=agents, bringup=bringup) as lab:
        machines = sorted(lab.machines)
        pairs = [(s, t) for s in machines for t in machines if s != t]
        if len(pairs) > sample:
            pairs = random.Random(0).sample(pairs, sample)
        domain = lab.plan(machines[0], "vpn").domain
        replies = first_reply_times(lab, pairs, domain)
        started = wall_clock_of(lab.timings["machines"])
        configured = lab.timings["configured"] - lab.timings["machines"]
    missing = sum(1 for reply in replies if reply is None)
    answered = [reply for reply in replies if reply is not None]
    if missing or not answered:
        return None, configured, missing
    return max(answered) - started, configured, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, nargs="+", default=[3, 100])
    parser.add_argument("--controllers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=300, help="pairs pinged per run")
    arguments = parser.parse_args()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} cores, load average {load} (the machine may be shared)")

    print(
        f"{'machines':>9} {'bring-up':<18} {'agents':<7} {'converged (s)':<22} "
        f"{'configuring (s)':<16}"
    )
    with tempfile.TemporaryDirectory(prefix="lab-convergence-") as scratch:
        for peers in arguments.peers:
            inventory = fleet_inventory(Path(scratch), arguments.controllers, peers)
            vars_dir = Path(scratch) / f"vars-{peers}"
            agent_choices = (False, True) if peers <= AGENTS_UP_TO_PEERS else (False,)
            for bringup in Bringup:
                for agents in agent_choices:
                    runs = [
                        measure(inventory, vars_dir, bringup, agents, arguments.sample)
                        for _ in range(arguments.repeat)
                    ]
                    converged = [r[0] for r in runs if r[0] is not None]
                    failed = sum(1 for r in runs if r[0] is None)
                    figure = (
                        f"median {statistics.median(converged):5.2f} max {max(converged):5.2f}"
                        if converged
                        else "never"
                    )
                    if failed:
                        figure += f" ({failed} runs incomplete)"
                    configuring = statistics.median(r[1] for r in runs)
                    print(
                        f"{arguments.controllers + peers:>9} {bringup.value:<18} "
                        f"{'on' if agents else 'off':<7} {figure:<22} {configuring:<16.2f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
