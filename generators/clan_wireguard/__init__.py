"""clan-wireguard: vars generators, lab and failover agent for a WireGuard mesh."""

__version__ = "0.1.0"
