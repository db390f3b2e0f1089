"""The lab: a whole mesh on one Linux machine, in namespaces, with real WireGuard.

``Lab`` is the Python API (tests, benchmarks); ``app`` is ``clan-wireguard lab``.
How it works: docs/lab.md.
"""

from clan_wireguard.lab.check import ReachabilityReport
from clan_wireguard.lab.commands import app
from clan_wireguard.lab.lab import Bringup, Lab

__all__ = ["Bringup", "Lab", "ReachabilityReport", "app"]
