"""Apply a plan to a WireGuard interface with ``wg`` and ``ip``, and read it back.

The rules are the NixOS module's, so a lab machine ends up configured like a
real one: the interface is ``plan.interface``; the private key is read from a
file by ``wg`` itself (it never appears on a command line); every plan peer
gets its public key, allowed IPs, endpoint and keepalive; ``plan.addresses``
go on the interface; only ``plan.routes`` are routed into it (allowed IPs are
not turned into routes: the failover agent moves allowed IPs at run time and
the routes must not follow); IPv6 forwarding when ``plan.forwarding``.

Every function takes ``enter``: an argument list that runs the command inside
a machine (the lab passes ``nsenter --target PID ...``). On a real machine it
is empty and the commands run as they are.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clan_wireguard.errors import UserError
from clan_wireguard.plan import Plan, PlanPeer

FORWARDING_SYSCTL = "net.ipv6.conf.all.forwarding"


@dataclass(frozen=True)
class PeerState:
    """One peer of a live interface, as ``wg show IFACE dump`` reports it."""

    public_key: str
    endpoint: str | None
    allowed_ips: tuple[str, ...]
    # Unix time of the last completed handshake, 0 when there was none.
    latest_handshake: int
    rx_bytes: int
    tx_bytes: int
    persistent_keepalive: int | None


@dataclass(frozen=True)
class InterfaceState:
    """A live WireGuard interface (the private key is never kept)."""

    name: str
    public_key: str
    listen_port: int
    peers: tuple[PeerState, ...]

    def peer(self, public_key: str) -> PeerState | None:
        for peer in self.peers:
            if peer.public_key == public_key:
                return peer
        return None


def _run(command: Sequence[str], what: str, stdin: str | None = None) -> str:
    result = subprocess.run(list(command), input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = result.stderr.strip() or f"exit status {result.returncode}"
        raise UserError(f"{what}: `{' '.join(command)}` failed: {detail}")
    return result.stdout


def _where(plan: Plan) -> str:
    return f"wireguard instance '{plan.instance}', machine '{plan.machine}'"


def read_interface(interface: str, enter: Sequence[str] = ()) -> InterfaceState:
    """The interface's public key, listen port and peers with their counters."""
    output = _run([*enter, "wg", "show", interface, "dump"], f"reading interface '{interface}'")
    lines = output.splitlines()
    if not lines:
        raise UserError(f"reading interface '{interface}': `wg show` printed nothing")
    # First line: private key, public key, listen port, fwmark. The private
    # key is dropped here on purpose.
    _, public_key, listen_port, _ = lines[0].split("\t")
    peers = []
    for line in lines[1:]:
        key, _, endpoint, allowed, handshake, rx, tx, keepalive = line.split("\t")
        peers.append(
            PeerState(
                public_key=key,
                endpoint=None if endpoint == "(none)" else endpoint,
                allowed_ips=() if allowed == "(none)" else tuple(allowed.split(",")),
                latest_handshake=int(handshake),
                rx_bytes=int(rx),
                tx_bytes=int(tx),
                persistent_keepalive=None if keepalive == "off" else int(keepalive),
            )
        )
    return InterfaceState(
        name=interface, public_key=public_key, listen_port=int(listen_port), peers=tuple(peers)
    )


def set_peer_allowed_ips(
    interface: str, public_key: str, allowed_ips: Sequence[str], enter: Sequence[str] = ()
) -> None:
    """Replace one peer's allowed IPs (an empty list removes them all)."""
    _run(
        [*enter, "wg", "set", interface, "peer", public_key, "allowed-ips", ",".join(allowed_ips)],
        f"setting allowed IPs on interface '{interface}'",
    )


def allowed_ips_by_peer(interface: str, enter: Sequence[str] = ()) -> dict[str, tuple[str, ...]]:
    """Each peer's allowed IPs, by public key."""
    return {peer.public_key: peer.allowed_ips for peer in read_interface(interface, enter).peers}


def renew_peer(
    interface: str, peer: PlanPeer, allowed_ips: Sequence[str], enter: Sequence[str] = ()
) -> None:
    """Remove and re-add ``peer``, dropping its sessions.

    The next packet to it starts a fresh handshake at once instead of
    waiting for WireGuard's rekey timers, and the keepalive goes out as soon
    as the entry is back. If re-adding fails (the endpoint's name does not
    resolve right now), the peer is put back without its endpoint rather
    than left out, and the error is raised.
    """
    what = f"renewing a peer of interface '{interface}'"
    _run([*enter, "wg", "set", interface, "peer", peer.public_key, "remove"], what)
    arguments = peer_arguments(peer, allowed_ips=False)
    arguments[2:2] = ["allowed-ips", ",".join(allowed_ips)]
    try:
        _run([*enter, "wg", "set", interface, *arguments], what)
    except UserError:
        set_peer_allowed_ips(interface, peer.public_key, allowed_ips, enter)
        raise


def peer_arguments(peer: PlanPeer, allowed_ips: bool = True, endpoint: bool = True) -> list[str]:
    """``wg set`` arguments for one plan peer.

    Without the endpoint (and the keepalive, which needs one) a peer is
    known but never contacted: no handshake starts until the endpoint is set.
    """
    arguments = ["peer", peer.public_key]
    if allowed_ips:
        arguments += ["allowed-ips", ",".join(peer.allowed_ips)]
    if endpoint:
        if peer.endpoint is not None:
            arguments += ["endpoint", peer.endpoint]
        arguments += ["persistent-keepalive", str(peer.persistent_keepalive or "off")]
    return arguments


def configure_device(
    plan: Plan, private_key_file: Path, enter: Sequence[str] = (), with_endpoints: bool = True
) -> None:
    """Key, listen port and peers of an existing WireGuard interface."""
    command = [*enter, "wg", "set", plan.interface, "private-key", str(private_key_file)]
    if plan.listen_port is not None:
        command += ["listen-port", str(plan.listen_port)]
    for peer in plan.peers:
        command += peer_arguments(peer, endpoint=with_endpoints)
    _run(command, _where(plan))


def set_endpoints(plan: Plan, enter: Sequence[str] = ()) -> None:
    """Endpoints and keepalives of every plan peer: from here on, handshakes start."""
    command = [*enter, "wg", "set", plan.interface]
    for peer in plan.peers:
        command += peer_arguments(peer, allowed_ips=False)
    _run(command, _where(plan))


def configure_network(plan: Plan, enter: Sequence[str] = ()) -> None:
    """MTU, addresses, link up, the plan's routes and IPv6 forwarding."""
    batch = []
    if plan.mtu is not None:
        batch.append(f"link set dev {plan.interface} mtu {plan.mtu}")
    batch += [f"address replace {address} dev {plan.interface}" for address in plan.addresses]
    batch.append(f"link set dev {plan.interface} up")
    # Routes need the link up: the kernel refuses IPv6 routes on a down device.
    batch += [f"route replace {route} dev {plan.interface}" for route in plan.routes]
    _run([*enter, "ip", "-batch", "-"], _where(plan), stdin="\n".join(batch) + "\n")
    if plan.forwarding:
        _run([*enter, "sysctl", "-q", "-w", f"{FORWARDING_SYSCTL}=1"], _where(plan))


def apply_plan(plan: Plan, private_key_file: Path, enter: Sequence[str] = ()) -> None:
    """Configure an existing WireGuard interface exactly as the plan says."""
    configure_device(plan, private_key_file, enter)
    configure_network(plan, enter)
