"""How long until every pair answers: repeated reachability checks.

Used by the failover tests and benchmarks: after an outage or a return, the
lab checks the pairs again and again, with short ping timeouts, until one
round has every pair reachable or the deadline passes.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from clan_wireguard.lab.check import ReachabilityReport
from clan_wireguard.lab.lab import Lab


@dataclass(frozen=True)
class Convergence:
    # Seconds from ``since`` to the end of the first round in which every
    # pair answered (an upper bound), None when the deadline passed first.
    seconds: float | None
    rounds: int
    last: ReachabilityReport


def wait_until_reachable(
    lab: Lab,
    *,
    machines: Collection[str] | None = None,
    since: float | None = None,
    deadline: float = 30.0,
    sample: int | None = None,
    ping_timeout: float = 1.0,
    concurrency: int = 32,
) -> Convergence:
    """Checks until every pair among ``machines`` answers, at most ``deadline`` seconds.

    ``since`` is the monotonic time the clock starts from (the outage or the
    return); by default, now. Every round pings the same pairs (a fixed
    ``sample`` when given), so a round that passes proves them all at once.
    """
    start = time.monotonic() if since is None else since
    rounds = 0
    while True:
        report = lab.check(
            machines=machines, sample=sample, timeout=ping_timeout, concurrency=concurrency
        )
        rounds += 1
        if report.all_reachable:
            return Convergence(seconds=time.monotonic() - start, rounds=rounds, last=report)
        if time.monotonic() - start >= deadline:
            return Convergence(seconds=None, rounds=rounds, last=report)
