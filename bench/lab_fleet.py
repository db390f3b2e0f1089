"""Shared by the lab benchmarks: a fleet's inventory, and timing pings."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clan_wireguard.lab import Lab


def fleet_inventory(directory: Path, controllers: int, peers: int, instance: str = "vpn") -> Path:
    """``controllers`` controllers (endpoints by name) and ``peers`` peers, spread over them."""
    data = {
        "instanceName": instance,
        "roles": {
            "controller": {
                "machines": {
                    f"controller{c}": {"settings": {"endpoint": f"vpn{c}.example.org"}}
                    for c in range(1, controllers + 1)
                }
            },
            "peer": {
                "machines": {
                    f"peer{p:03d}": {
                        "settings": {"controller": f"controller{(p - 1) % controllers + 1}"}
                    }
                    for p in range(1, peers + 1)
                }
            },
        },
    }
    path = directory / f"fleet-{controllers}x{peers}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def first_reply_times(
    lab: Lab, pairs: Sequence[tuple[str, str]], domain: str, deadline: float = 30.0
) -> list[float | None]:
    """Wall-clock time (``time.time()``) of each pair's first echo reply, None if none.

    Every ping sends every 50 ms until its first reply; ``-D`` stamps the
    reply with the time it arrived, so starting many pings at once on a
    small machine does not blur the figure.
    """

    def one(pair: tuple[str, str]) -> float | None:
        source, target = pair
        result = subprocess.run(
            [*lab.machine(source).enter, "ping", "-6", "-D", "-n", "-c", "1", "-i", "0.05",
             "-w", f"{deadline:g}", f"{target}.{domain}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        for line in result.stdout.splitlines():
            if line.startswith("[") and "bytes from" in line:
                return float(line[1 : line.index("]")])
        return None

    with ThreadPoolExecutor(max_workers=32) as executor:
        return list(executor.map(one, pairs))


def wall_clock_of(monotonic: float) -> float:
    """Converts a ``time.monotonic()`` reading of this process to ``time.time()``."""
    return time.time() - (time.monotonic() - monotonic)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
