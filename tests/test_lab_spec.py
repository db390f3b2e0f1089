"""The lab on the specification's example: two controllers, three peers, instance ``vpn``."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clan_wireguard.lab import Lab
from clan_wireguard.vars_store import read_public_value
from conftest import EXAMPLES

pytestmark = pytest.mark.lab

CONTROLLERS = ("controller1", "controller2")
PEERS = ("peer1", "peer2", "peer3")
DESIGNATED = {"peer1": "controller1", "peer2": "controller2", "peer3": "controller1"}


@pytest.fixture(scope="module")
def spec_lab(module_lab_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    vars_dir = tmp_path_factory.mktemp("vars")
    with Lab(module_lab_name, [EXAMPLES / "spec.json"], vars_dir, failover=False) as lab:
        yield lab


def public(lab: Lab, machine: str, generator: str, file: str) -> str:
    value = read_public_value(lab.vars_dir, machine, generator, file)
    assert value is not None, f"{machine} has no {generator}/{file}"
    return value


def global_addresses(lab: Lab, machine: str, interface: str) -> set[ipaddress.IPv6Interface]:
    output = lab.exec(machine, ["ip", "-j", "address", "show", "dev", interface]).stdout
    (link,) = json.loads(output)
    return {
        ipaddress.IPv6Interface(f"{info['local']}/{info['prefixlen']}")
        for info in link["addr_info"]
        if info["family"] == "inet6" and info["scope"] == "global"
    }


def test_every_machine_reaches_every_other_by_name(spec_lab: Lab) -> None:
    report = spec_lab.check()
    assert report.total == 20
    assert report.unreachable() == []
    assert report.summary() == "20/20 pairs reachable"


def test_addresses_follow_the_spec_rules(spec_lab: Lab) -> None:
    # Expected values come from the generated vars, by the spec's rules:
    # controllers <prefix>::1/40, peers <controller prefix>:<suffix>/56 for
    # every controller.
    prefixes = {c: public(spec_lab, c, "wireguard-network-vpn", "prefix") for c in CONTROLLERS}
    for controller, prefix in prefixes.items():
        assert global_addresses(spec_lab, controller, "vpn") == {
            ipaddress.IPv6Interface(f"{prefix}::1/40")
        }
    for peer in PEERS:
        suffix = public(spec_lab, peer, "wireguard-network-vpn", "suffix")
        assert global_addresses(spec_lab, peer, "vpn") == {
            ipaddress.IPv6Interface(f"{prefix}:{suffix}/56") for prefix in prefixes.values()
        }


def test_host_names_point_into_the_designated_controllers_subnet(spec_lab: Lab) -> None:
    prefixes = {c: public(spec_lab, c, "wireguard-network-vpn", "prefix") for c in CONTROLLERS}
    for peer, controller in DESIGNATED.items():
        suffix = public(spec_lab, peer, "wireguard-network-vpn", "suffix")
        expected = ipaddress.IPv6Address(f"{prefixes[controller]}:{suffix}")
        for machine in (*CONTROLLERS, *PEERS):
            # getent reads the machine's own /etc/hosts (its mount namespace).
            line = spec_lab.exec(machine, ["getent", "ahostsv6", f"{peer}.vpn"]).stdout
            assert ipaddress.IPv6Address(line.split()[0]) == expected


def test_each_machine_has_its_own_host_name_and_wireguard_socket(spec_lab: Lab) -> None:
    for machine in (*CONTROLLERS, *PEERS):
        assert spec_lab.exec(machine, ["hostname"]).stdout.strip() == machine
        sockets = spec_lab.exec(machine, ["ls", "/var/run/wireguard"]).stdout.split()
        assert sockets == ["vpn.sock"]
        # The key `wg` reports is this machine's own, from its vars.
        state = spec_lab.interface_state(machine, "vpn")
        assert state.public_key == public(spec_lab, machine, "wireguard-keys-vpn", "publickey")


def test_only_the_plans_routes_go_into_the_interface(spec_lab: Lab) -> None:
    for machine in (*CONTROLLERS, *PEERS):
        plan = spec_lab.plan(machine, "vpn")
        output = spec_lab.exec(machine, ["ip", "-j", "-6", "route", "show", "dev", "vpn"]).stdout
        routes: list[dict[str, Any]] = json.loads(output)
        added = {r["dst"] for r in routes if r.get("protocol") != "kernel"}
        assert added == set(plan.routes)
        # Besides them only what the kernel adds for the addresses: allowed
        # IPs (a controller has a /96 per peer) never become routes.
        connected = {str(ipaddress.IPv6Interface(a).network) for a in plan.addresses}
        assert {r["dst"] for r in routes} == added | connected | {"fe80::/64"}


def test_forwarding_only_on_controllers(spec_lab: Lab) -> None:
    for machine in (*CONTROLLERS, *PEERS):
        value = spec_lab.exec(machine, ["sysctl", "-n", "net.ipv6.conf.all.forwarding"]).stdout
        assert value.strip() == ("1" if machine in CONTROLLERS else "0")


def test_peers_and_keepalives_as_planned(spec_lab: Lab) -> None:
    for machine in (*CONTROLLERS, *PEERS):
        plan = spec_lab.plan(machine, "vpn")
        state = spec_lab.interface_state(machine, "vpn")
        assert {p.public_key for p in state.peers} == {p.public_key for p in plan.peers}
        for planned in plan.peers:
            live = state.peer(planned.public_key)
            assert live is not None
            assert {ipaddress.ip_network(ip) for ip in live.allowed_ips} == {
                ipaddress.ip_network(ip) for ip in planned.allowed_ips
            }
            assert live.persistent_keepalive == planned.persistent_keepalive
        if plan.listen_port is not None:
            assert state.listen_port == plan.listen_port


def test_status_lists_every_machine_with_its_processes(spec_lab: Lab) -> None:
    status = spec_lab.status()
    assert [m.name for m in status.machines] == sorted((*CONTROLLERS, *PEERS))
    for machine in status.machines:
        kinds = sorted(record.kind.value for record, alive in machine.processes if alive)
        assert kinds == ["holder", "wireguard-go"]
        (interface,) = machine.interfaces
        assert interface.peers == (4 if machine.name in CONTROLLERS else 2)


def test_state_lets_another_process_attach(spec_lab: Lab) -> None:
    attached = Lab.attach(spec_lab.name)
    assert sorted(attached.machines) == sorted(spec_lab.machines)
    assert attached.check(sample=4).all_reachable
    assert Path(attached.state_file).is_file()
