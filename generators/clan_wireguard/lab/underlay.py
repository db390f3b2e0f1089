"""The lab's underlay: the network the machines' WireGuard packets travel on.

A bridge in a namespace of its own, and one veth pair per machine (the
machine end is called ``uplink``). Every machine gets an address from two
private ranges that exist only inside the lab's namespaces, never on the
host: IPv4 from 100.64.0.0/16 (shared address space) and IPv6 from
2001:db8:1ab::/64 (documentation space, so it cannot overlap a mesh's
fdXX:XXXX::/40).

Controller endpoints are made real inside the lab: a literal IPv4 or IPv6
endpoint is added to that controller's uplink, and every other machine gets
an on-link host route to it; a DNS name goes into every machine's
/etc/hosts, pointing at the controller's underlay IPv4 address (IPv6 over an
IPv4 underlay, as most clans run it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clan_wireguard.errors import UserError
from clan_wireguard.lab.namespaces import run_ip
from clan_wireguard.plan import Plan

UNDERLAY_IPV4 = ipaddress.IPv4Network("100.64.0.0/16")
UNDERLAY_IPV6 = ipaddress.IPv6Network("2001:db8:1ab::/64")
BRIDGE = "br0"
UPLINK = "uplink"
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class UnderlayPort:
    """A machine's place on the underlay."""

    machine: str
    index: int
    ipv4: str
    ipv6: str
    # Literal endpoints of this machine (as a controller), added to its uplink.
    endpoint_addresses: tuple[str, ...]

    @property
    def bridge_port(self) -> str:
        # The bridge end lives in the underlay namespace, where interface
        # names (at most 15 bytes) need only be unique per lab.
        return f"m{self.index}"

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "index": self.index,
            "ipv4": self.ipv4,
            "ipv6": self.ipv6,
            "endpointAddresses": list(self.endpoint_addresses),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UnderlayPort:
        return cls(
            machine=data["machine"],
            index=data["index"],
            ipv4=data["ipv4"],
            ipv6=data["ipv6"],
            endpoint_addresses=tuple(data["endpointAddresses"]),
        )


@dataclass(frozen=True)
class Underlay:
    ports: Mapping[str, UnderlayPort]
    # DNS name of an endpoint -> the underlay address it resolves to in the lab.
    endpoint_names: Mapping[str, str]

    def literal_endpoints(self) -> list[tuple[str, str]]:
        """(address, machine) of every literal endpoint."""
        return [
            (address, port.machine)
            for port in self.ports.values()
            for address in port.endpoint_addresses
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "ports": [port.to_json() for port in self.ports.values()],
            "endpointNames": dict(self.endpoint_names),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Underlay:
        ports = [UnderlayPort.from_json(port) for port in data["ports"]]
        return cls(
            ports={port.machine: port for port in ports},
            endpoint_names=dict(data["endpointNames"]),
        )


def controller_endpoints(plans: Mapping[str, Mapping[str, Plan]]) -> dict[str, dict[str, str]]:
    """controller machine -> endpoint host -> instance, as the plans' peers dial them."""
    endpoints: dict[str, dict[str, str]] = {}
    for by_instance in plans.values():
        for plan in by_instance.values():
            for peer in plan.peers:
                if peer.endpoint_host is not None:
                    endpoints.setdefault(peer.name, {})[peer.endpoint_host] = plan.instance
    return endpoints


def _address(index: int, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    # Index 0 is the network's own address: machines start at 1.
    return str(network.network_address + index + 1)


def plan_underlay(
    machines: Sequence[str],
    plans: Mapping[str, Mapping[str, Plan]],
    extra_machines: Sequence[str] = (),
) -> Underlay:
    """Addresses for every machine, and where each controller endpoint points."""
    everyone = [*machines, *extra_machines]
    if len(everyone) > UNDERLAY_IPV4.num_addresses - 2:
        raise UserError(f"the lab holds at most {UNDERLAY_IPV4.num_addresses - 2} machines")
    own = {
        ipaddress.ip_address(_address(i, network))
        for i in range(len(everyone))
        for network in (UNDERLAY_IPV4, UNDERLAY_IPV6)
    }
    meshes = {ipaddress.ip_network(plan.network) for by in plans.values() for plan in by.values()}
    literal: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    name_owner: dict[str, str] = {}
    literal_owner: dict[IpAddress, str] = {}
    index_of = {machine: index for index, machine in enumerate(everyone)}
    for controller, hosts in sorted(controller_endpoints(plans).items()):
        if controller not in index_of:
            continue
        for host, instance in sorted(hosts.items()):
            where = (
                f"wireguard instance '{instance}', machine '{controller}': "
                f'roles.controller.machines.{controller}.settings.endpoint = "{host}"'
            )
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                owner = name_owner.setdefault(host, controller)
                if owner != controller:
                    raise UserError(
                        f"{where} is also the endpoint of '{owner}'; in the lab every "
                        "endpoint name must belong to one machine"
                    ) from None
                names[host] = _address(index_of[controller], UNDERLAY_IPV4)
                continue
            if (
                address.is_loopback
                or address.is_multicast
                or address.is_unspecified
                or address.is_link_local
                or address in own
                or any(address in mesh for mesh in meshes)
            ):
                raise UserError(
                    f"{where} cannot be made real in the lab: it is a loopback, multicast, "
                    "link-local or mesh address, or one of the lab's underlay addresses "
                    f"({UNDERLAY_IPV4}, {UNDERLAY_IPV6})"
                )
            if literal_owner.setdefault(address, controller) != controller:
                raise UserError(
                    f"{where} is also the endpoint of '{literal_owner[address]}'; "
                    "use distinct addresses"
                )
            literal.setdefault(controller, []).append(str(address))
    ports = {
        machine: UnderlayPort(
            machine=machine,
            index=index,
            ipv4=_address(index, UNDERLAY_IPV4),
            ipv6=_address(index, UNDERLAY_IPV6),
            endpoint_addresses=tuple(literal.get(machine, ())),
        )
        for machine, index in index_of.items()
    }
    return Underlay(ports=ports, endpoint_names=names)


def create_bridge(netns: str) -> None:
    batch = [
        f"link add {BRIDGE} type bridge",
        f"link set {BRIDGE} up",
    ]
    run_ip(["-n", netns, "-batch", "-"], "creating the lab's underlay bridge", "\n".join(batch))


def connect_machine(underlay_netns: str, machine_netns: str, port: UnderlayPort) -> None:
    """The machine's veth pair, created directly in the two namespaces."""
    batch = [
        f"link add {port.bridge_port} type veth peer name {UPLINK} netns {machine_netns}",
        f"link set {port.bridge_port} master {BRIDGE}",
        f"link set {port.bridge_port} up",
    ]
    run_ip(
        ["-n", underlay_netns, "-batch", "-"],
        f"connecting machine '{port.machine}' to the underlay",
        "\n".join(batch),
    )


def configure_uplink(machine_netns: str, port: UnderlayPort, underlay: Underlay) -> None:
    """Addresses on the machine's uplink and host routes to literal endpoints."""
    batch = [
        "link set lo up",
        f"address add {port.ipv4}/{UNDERLAY_IPV4.prefixlen} dev {UPLINK}",
        # nodad: the lab assigns addresses itself; duplicate detection would
        # only delay the first packets by a second or more.
        f"address add {port.ipv6}/{UNDERLAY_IPV6.prefixlen} dev {UPLINK} nodad",
    ]
    for address in port.endpoint_addresses:
        length = 32 if ipaddress.ip_address(address).version == 4 else 128
        extra = " nodad" if length == 128 else ""
        batch.append(f"address add {address}/{length} dev {UPLINK}{extra}")
    batch.append(f"link set {UPLINK} up")
    for address, owner in underlay.literal_endpoints():
        if owner != port.machine:
            # On link: the owner answers ARP / neighbour solicitations for
            # every address on its uplink.
            batch.append(f"route replace {address} dev {UPLINK}")
    run_ip(
        ["-n", machine_netns, "-batch", "-"],
        f"configuring the uplink of machine '{port.machine}'",
        "\n".join(batch),
    )
