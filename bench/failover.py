"""Failover benchmark: how long names stay dead when a controller dies or returns.

For each topology, over several runs: stop one controller (its wireguard-go
and the lab's view of it go away, as a crash), time until every pair of the
remaining machines answers by name; start it again, time until every pair
(to and from it too) answers. Reachability is checked from inside the
machines with `ping <machine>.<domain>`, one-second timeouts, in rounds;
each figure is the end of the first round in which all pairs answered (an
upper bound). Needs root. Prints a table; nothing is asserted.

    sudo .venv/bin/python bench/failover.py [--runs 5] [--baseline]

``--baseline`` also runs the spec topology without the agent, to show what
plain WireGuard does (pairs reachable during an outage; the return is cut
off after ``--baseline-deadline`` seconds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from clan_wireguard.lab.convergence import wait_until_reachable
from clan_wireguard.lab.lab import Lab

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOPOLOGIES = {
    "spec (2 controllers, 3 peers)": (EXAMPLES / "spec.json", None),
    "3 controllers, 30 peers (300 sampled pairs)": (
        EXAMPLES / "three-controllers-30-peers.json",
        300,
    ),
}


def _controllers(lab: Lab) -> list[str]:
    return sorted(
        name
        for name, machine in lab.machines.items()
        if any(plan.role == "controller" for plan in machine.plans.values())
    )


def measure(
    inventory: Path, sample: int | None, runs: int, failover: bool, deadline: float
) -> tuple[list[float | None], list[float | None], list[str]]:
    outages: list[float | None] = []
    returns: list[float | None] = []
    notes: list[str] = []
    with Lab("bench-failover", [inventory], failover=failover) as lab:
        wait_until_reachable(lab, sample=sample, deadline=60)
        controllers = _controllers(lab)
        for run in range(runs):
            controller = controllers[run % len(controllers)]
            remaining = [m for m in lab.machines if m != controller]
            lab.stop_machine(controller)
            stopped = time.monotonic()
            outage = wait_until_reachable(
                lab, machines=remaining, since=stopped, sample=sample, deadline=deadline
            )
            outages.append(outage.seconds)
            if outage.seconds is None:
                notes.append(f"run {run + 1}, {controller} down: {outage.last.summary()}")
            time.sleep(3)  # idle peers: only probes and keepalives flow
            lab.start_machine(controller)
            started = time.monotonic()
            back = wait_until_reachable(lab, since=started, sample=sample, deadline=deadline)
            returns.append(back.seconds)
            if back.seconds is None:
                notes.append(f"run {run + 1}, {controller} back: {back.last.summary()}")
                # Leave a clean mesh for the next run.
                wait_until_reachable(lab, sample=sample, deadline=180)
    return outages, returns, notes


def _figure(values: list[float | None], deadline: float) -> str:
    done = [v for v in values if v is not None]
    if not done:
        return f"never within {deadline:.0f} s"
    text = f"median {statistics.median(done):.1f} s, max {max(done):.1f} s"
    missed = len(values) - len(done)
    return text + (f", {missed} run(s) over {deadline:.0f} s" if missed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--baseline-deadline", type=float, default=20.0)
    arguments = parser.parse_args()

    print(
        f"{'topology':<46} {'agent':<6} {'controller down -> all reachable':<36} "
        "controller back -> all reachable"
    )
    rows = [
        (name, path, sample, True, arguments.deadline)
        for name, (path, sample) in TOPOLOGIES.items()
    ]
    if arguments.baseline:
        path, sample = TOPOLOGIES["spec (2 controllers, 3 peers)"]
        rows.append(
            ("spec (2 controllers, 3 peers)", path, sample, False, arguments.baseline_deadline)
        )
    for name, path, sample, failover, deadline in rows:
        outages, returns, notes = measure(path, sample, arguments.runs, failover, deadline)
        print(
            f"{name:<46} {'yes' if failover else 'no':<6} "
            f"{_figure(outages, deadline):<36} {_figure(returns, deadline)}"
        )
        for note in notes:
            print(f"    {note}")


if __name__ == "__main__":
    main()
