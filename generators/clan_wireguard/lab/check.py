"""Reachability: every machine pings every other one by its host name.

Each ping runs inside the source machine's namespaces, so the name is looked
up in that machine's own /etc/hosts, as a user on that machine would.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from clan_wireguard.lab.processes import run_concurrently


@dataclass(frozen=True)
class Pair:
    instance: str
    domain: str
    source: str
    target: str

    @property
    def hostname(self) -> str:
        return f"{self.target}.{self.domain}"


@dataclass(frozen=True)
class PairResult:
    pair: Pair
    reachable: bool
    # Why not, in ping's words (empty when reachable).
    detail: str


@dataclass(frozen=True)
class ReachabilityReport:
    results: tuple[PairResult, ...]
    # Lab processes found dead while checking (descriptions).
    dead_processes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def reachable(self) -> int:
        return sum(1 for result in self.results if result.reachable)

    @property
    def all_reachable(self) -> bool:
        return self.reachable == self.total and not self.dead_processes

    def unreachable(self) -> list[Pair]:
        return [result.pair for result in self.results if not result.reachable]

    def summary(self) -> str:
        return f"{self.reachable}/{self.total} pairs reachable"

    def matrix(self) -> str:
        """One table per instance: rows ping columns; + answered, x did not."""
        blocks = []
        instances = sorted({result.pair.instance for result in self.results})
        for instance in instances:
            results = [r for r in self.results if r.pair.instance == instance]
            domain = results[0].pair.domain
            machines = sorted({r.pair.source for r in results} | {r.pair.target for r in results})
            cell = {(r.pair.source, r.pair.target): "+" if r.reachable else "x" for r in results}
            width = max(len(machine) for machine in machines)
            number_width = len(str(len(machines)))
            lines = [
                f"instance '{instance}': row pings column by name (<column>.{domain}); "
                "+ answered, x no answer, . itself, blank not checked"
            ]
            header = " " * (number_width + width + 2)
            lines.append(
                header + " ".join(f"{i + 1:>{number_width}}" for i in range(len(machines)))
            )
            for row, source in enumerate(machines):
                cells = []
                for target in machines:
                    mark = "." if source == target else cell.get((source, target), " ")
                    cells.append(f"{mark:>{number_width}}")
                lines.append(f"{row + 1:>{number_width}} {source:<{width}} " + " ".join(cells))
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)


def all_pairs(members: Sequence[tuple[str, str, Sequence[str]]]) -> list[Pair]:
    """Every ordered pair of distinct machines, per (instance, domain, machines)."""
    return [
        Pair(instance=instance, domain=domain, source=source, target=target)
        for instance, domain, machines in members
        for source in machines
        for target in machines
        if source != target
    ]


def sample_pairs(pairs: Sequence[Pair], count: int | None, seed: int) -> list[Pair]:
    """``count`` pairs chosen with a fixed seed (all of them when None)."""
    if count is None or count >= len(pairs):
        return list(pairs)
    return sorted(
        random.Random(seed).sample(list(pairs), count),
        key=lambda pair: (pair.instance, pair.source, pair.target),
    )


def ping_command(hostname: str, timeout: float) -> list[str]:
    # -c 1 with a deadline: ping keeps sending (every 0.2 s) until one reply
    # arrives or the deadline passes, so a path still handshaking gets
    # another chance instead of failing on its first lost packet.
    return ["ping", "-6", "-n", "-q", "-c", "1", "-i", "0.2", "-w", f"{timeout:g}", hostname]


def check_pairs(
    pairs: Sequence[Pair],
    enter: Callable[[str], list[str]],
    timeout: float,
    concurrency: int,
) -> ReachabilityReport:
    results: dict[Pair, PairResult] = {}

    def ping(pair: Pair) -> None:
        completed = subprocess.run(
            [*enter(pair.source), *ping_command(pair.hostname, timeout)],
            capture_output=True,
            text=True,
            check=False,
        )
        detail = ""
        if completed.returncode != 0:
            detail = (completed.stderr.strip() or "no reply").splitlines()[-1]
        results[pair] = PairResult(pair=pair, reachable=completed.returncode == 0, detail=detail)

    run_concurrently(ping, list(pairs), concurrency)
    return ReachabilityReport(results=tuple(results[pair] for pair in pairs))
