"""Reading and changing a live WireGuard interface through ``wg``.

Only what the failover agent needs at run time: the allowed IPs of each
peer, replacing them, and renewing a peer entry. Works the same with the
kernel module and with wireguard-go, since both speak to ``wg``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from clan_wireguard.errors import UserError
from clan_wireguard.plan import PlanPeer


@dataclass(frozen=True)
class WireGuardInterface:
    name: str
    wg: str = "wg"

    def _run(self, *arguments: str) -> str:
        command = [self.wg, *arguments]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise UserError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
        return result.stdout

    def allowed_ips(self) -> dict[str, tuple[str, ...]]:
        """Allowed IPs by peer public key (``wg show IFACE allowed-ips``)."""
        allowed: dict[str, tuple[str, ...]] = {}
        for line in self._run("show", self.name, "allowed-ips").splitlines():
            key, _, ips = line.partition("\t")
            allowed[key] = tuple(ip for ip in ips.split() if ip != "(none)")
        return allowed

    def set_allowed_ips(self, public_key: str, ips: Sequence[str]) -> None:
        self._run("set", self.name, "peer", public_key, "allowed-ips", ",".join(ips))

    def renew_peer(self, peer: PlanPeer, allowed_ips: Sequence[str]) -> None:
        """Removes and re-adds ``peer``, dropping its sessions.

        The next packet to it starts a fresh handshake at once instead of
        waiting for WireGuard's rekey timers; a keepalive is also sent as
        soon as the entry is back.
        """
        self._run("set", self.name, "peer", peer.public_key, "remove")
        arguments = [
            "set",
            self.name,
            "peer",
            peer.public_key,
            "allowed-ips",
            ",".join(allowed_ips),
        ]
        if peer.endpoint is not None:
            arguments += ["endpoint", peer.endpoint]
        if peer.persistent_keepalive:
            arguments += ["persistent-keepalive", str(peer.persistent_keepalive)]
        try:
            self._run(*arguments)
        except UserError:
            # The endpoint's name may not resolve right now; the peer must
            # not stay removed because of that.
            self._run(
                "set", self.name, "peer", peer.public_key, "allowed-ips", ",".join(allowed_ips)
            )
            raise
