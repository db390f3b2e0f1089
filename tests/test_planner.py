"""The planner's plans: the spec's topology, scale, settings, several instances.

Every test runs the real planner (``nix-instantiate --eval --strict --json``)
on inventory files and vars directories written to disk, and checks the
plans against addresses derived independently with ``hashlib`` and
``ipaddress``.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from pathlib import Path

import pytest
from planner_mesh import (
    JSON,
    Mesh,
    controller_subnet,
    evaluate_nix,
    instance_network,
    peer_address,
    plan_mesh,
    requires_nix,
    run_planner,
    spec_mesh,
)

pytestmark = [pytest.mark.nix, requires_nix]

DEFAULT_PORT = 51820


def interface(text: str) -> ipaddress.IPv6Interface:
    return ipaddress.IPv6Interface(text)


def networks(texts: list[str]) -> list[ipaddress.IPv6Network]:
    return [ipaddress.IPv6Network(text) for text in texts]


def hosts_of(plan: JSON) -> dict[ipaddress.IPv6Address, list[str]]:
    return {ipaddress.IPv6Address(address): names for address, names in plan["hosts"].items()}


def slash96(subnet: ipaddress.IPv6Network, suffix: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network((peer_address(subnet, suffix), 96), strict=False)


def expected_hosts(mesh: Mesh, designated: dict[str, str], domain: str) -> JSON:
    hosts = {
        mesh.subnets[controller].network_address + 1: [f"{controller}.{domain}"]
        for controller in mesh.controllers
    }
    for peer, controller in designated.items():
        address = peer_address(mesh.subnets[controller], mesh.suffixes[peer])
        hosts[address] = [f"{peer}.{domain}"]
    return hosts


def check_controller_plan(mesh: Mesh, name: str, plan: JSON) -> None:
    """A controller's plan, rule by rule from the spec."""
    controllers = sorted(mesh.controllers)
    subnet = mesh.subnets[name]
    port = mesh.controllers[name].get("port", DEFAULT_PORT)
    assert plan["role"] == "controller"
    assert plan["listenPort"] == port
    assert plan["forwarding"] is True
    assert plan["firewall"] == {"allowedUDPPorts": [port]}
    assert plan["failover"] is None
    # ::1 of its /56, with the whole /40 on the interface.
    assert [interface(a) for a in plan["addresses"]] == [
        ipaddress.IPv6Interface((subnet.network_address + 1, 40))
    ]
    others = sorted((set(mesh.controllers) | set(mesh.peers)) - {name})
    assert [peer["name"] for peer in plan["peers"]] == others
    for peer in plan["peers"]:
        other = peer["name"]
        assert peer["publicKey"] == mesh.keys[other]
        if other in mesh.controllers:
            assert peer["role"] == "controller"
            assert networks(peer["allowedIPs"]) == [mesh.subnets[other]]
            other_port = mesh.controllers[other].get("port", DEFAULT_PORT)
            host = mesh.controllers[other]["endpoint"]
            assert peer["endpoint"] == f"{host}:{other_port}"
            assert (peer["endpointHost"], peer["endpointPort"]) == (host, other_port)
            assert peer["persistentKeepalive"] == 25
        else:
            assert peer["role"] == "peer"
            # The peer's /96 in every controller's subnet.
            assert networks(peer["allowedIPs"]) == [
                slash96(mesh.subnets[controller], mesh.suffixes[other])
                for controller in controllers
            ]
            assert peer["endpoint"] is None
            assert peer["endpointHost"] is None
            assert peer["endpointPort"] is None
            assert peer["persistentKeepalive"] is None


def check_peer_plan(mesh: Mesh, name: str, plan: JSON, designated: str) -> None:
    """A peer's plan, rule by rule from the spec."""
    controllers = sorted(mesh.controllers)
    suffix = mesh.suffixes[name]
    port = mesh.peers[name].get("port")
    assert plan["role"] == "peer"
    assert plan["listenPort"] == port
    assert plan["forwarding"] is False
    assert plan["firewall"] == {"allowedUDPPorts": [] if port is None else [port]}
    assert [interface(a) for a in plan["addresses"]] == [
        ipaddress.IPv6Interface((peer_address(mesh.subnets[controller], suffix), 56))
        for controller in controllers
    ]
    assert [peer["name"] for peer in plan["peers"]] == controllers
    for peer in plan["peers"]:
        controller = peer["name"]
        host = mesh.controllers[controller]["endpoint"]
        controller_port = mesh.controllers[controller].get("port", DEFAULT_PORT)
        assert peer["role"] == "controller"
        assert peer["publicKey"] == mesh.keys[controller]
        assert networks(peer["allowedIPs"]) == [mesh.subnets[controller]]
        assert peer["endpoint"] == f"{host}:{controller_port}"
        assert (peer["endpointHost"], peer["endpointPort"]) == (host, controller_port)
        assert peer["persistentKeepalive"] == 25
    if len(controllers) < 2:
        assert plan["failover"] is None
    else:
        assert plan["failover"]["designated"] == designated
        failover_controllers = plan["failover"]["controllers"]
        assert [c["name"] for c in failover_controllers] == controllers
        for entry in failover_controllers:
            subnet = mesh.subnets[entry["name"]]
            assert entry["publicKey"] == mesh.keys[entry["name"]]
            assert ipaddress.IPv6Address(entry["address"]) == subnet.network_address + 1
            assert ipaddress.IPv6Network(entry["subnet"]) == subnet


def check_common(mesh: Mesh, name: str, plan: JSON, hosts: JSON, domain: str) -> None:
    network = instance_network(mesh.instance)
    assert plan["instance"] == mesh.instance
    assert plan["machine"] == name
    assert plan["interface"] == mesh.instance
    assert plan["domain"] == domain
    assert ipaddress.IPv6Network(plan["network"]) == network
    assert networks(plan["routes"]) == [network]
    assert plan["mtu"] is None
    assert hosts_of(plan) == hosts
    assert plan["privateKey"] == {
        "generator": f"wireguard-keys-{mesh.instance}",
        "file": "privatekey",
    }
    assert "privatekey" not in json.dumps(plan).replace('"file": "privatekey"', "")


def test_spec_topology(tmp_path: Path) -> None:
    mesh = spec_mesh()
    output = plan_mesh(mesh, tmp_path)
    designated = {"peer1": "controller1", "peer2": "controller2", "peer3": "controller1"}
    hosts = expected_hosts(mesh, designated, "vpn")
    plans = output["machines"]
    assert sorted(plans) == ["controller1", "controller2", "peer1", "peer2", "peer3"]
    for machine, by_instance in plans.items():
        assert list(by_instance) == ["vpn"]
        plan = by_instance["vpn"]
        check_common(mesh, machine, plan, hosts, "vpn")
        if machine in mesh.controllers:
            check_controller_plan(mesh, machine, plan)
        else:
            check_peer_plan(mesh, machine, plan, designated[machine])


def test_spec_topology_peer_to_peer_goes_through_controllers(tmp_path: Path) -> None:
    """No peer lists another peer; every peer address is routed by every controller."""
    mesh = spec_mesh()
    plans = plan_mesh(mesh, tmp_path)["machines"]
    for peer in mesh.peers:
        assert {entry["role"] for entry in plans[peer]["vpn"]["peers"]} == {"controller"}
        for address in plans[peer]["vpn"]["addresses"]:
            own = interface(address).ip
            for controller in mesh.controllers:
                # WireGuard picks the most specific allowed IP: the peer's /96
                # wins over another controller's /56 around it.
                matches = [
                    (network.prefixlen, entry["name"])
                    for entry in plans[controller]["vpn"]["peers"]
                    for network in networks(entry["allowedIPs"])
                    if own in network
                ]
                assert max(matches)[1] == peer
                assert [name for length, name in matches if length == 96] == [peer]


def test_one_controller_needs_no_controller_setting(tmp_path: Path) -> None:
    mesh = Mesh("home").controller("gateway", endpoint="203.0.113.5")
    mesh.peer("laptop").peer("phone")
    plans = plan_mesh(mesh, tmp_path)["machines"]
    hosts = expected_hosts(mesh, {"laptop": "gateway", "phone": "gateway"}, "home")
    for machine, by_instance in plans.items():
        plan = by_instance["home"]
        check_common(mesh, machine, plan, hosts, "home")
        if machine == "gateway":
            check_controller_plan(mesh, machine, plan)
        else:
            check_peer_plan(mesh, machine, plan, "gateway")
            assert plan["failover"] is None


def test_three_controllers_fifty_peers(tmp_path: Path) -> None:
    mesh = Mesh("fleet")
    controllers = ["ctrl-a", "ctrl-b", "ctrl-c"]
    for index, name in enumerate(controllers):
        mesh.controller(name, endpoint=f"{name}.example.net", port=51820 + index)
    for index in range(50):
        mesh.peer(f"node{index:02d}", controller=controllers[index % 3])
    plans = {machine: p["fleet"] for machine, p in plan_mesh(mesh, tmp_path)["machines"].items()}

    assert len(plans) == 53
    for name in controllers:
        plan = plans[name]
        assert len(plan["peers"]) == 52
        assert sum(entry["role"] == "controller" for entry in plan["peers"]) == 2
        by_role: dict[str, list[ipaddress.IPv6Network]] = {"controller": [], "peer": []}
        for entry in plan["peers"]:
            by_role[entry["role"]].extend(networks(entry["allowedIPs"]))
        # The other 2 controllers' /56, and 50 peers' /96 in each of 3 subnets;
        # no two of a kind overlap (a /96 inside another controller's /56 is
        # the more specific route, by design).
        assert len(by_role["controller"]) == 2
        assert len(by_role["peer"]) == 150
        assert mesh.subnets[name] not in by_role["controller"]
        for kind in by_role.values():
            ordered = sorted(kind, key=lambda network: int(network.network_address))
            for first, second in itertools.pairwise(ordered):
                assert not first.overlaps(second), (first, second)
        assert plan["listenPort"] == 51820 + controllers.index(name)

    peer_plans = [plans[f"node{index:02d}"] for index in range(50)]
    addresses = [interface(a).ip for plan in peer_plans for a in plan["addresses"]]
    assert len(addresses) == len(set(addresses)) == 150
    keys = [entry["publicKey"] for entry in plans["ctrl-a"]["peers"]]
    assert len(set(keys)) == 52
    failover_orders = {json.dumps(plan["failover"]["controllers"]) for plan in peer_plans}
    assert len(failover_orders) == 1
    for index, plan in enumerate(peer_plans):
        assert plan["failover"]["designated"] == controllers[index % 3]
        assert [entry["endpointPort"] for entry in plan["peers"]] == [51820, 51821, 51822]

    hosts = plans["ctrl-a"]["hosts"]
    assert len(hosts) == 53
    assert all(plan["hosts"] == hosts for plan in plans.values())
    for index in range(50):
        name = f"node{index:02d}"
        address = peer_address(mesh.subnets[controllers[index % 3]], mesh.suffixes[name])
        assert hosts_of(plans["ctrl-a"])[address] == [f"{name}.fleet"]


def test_canonical_text(tmp_path: Path) -> None:
    """Addresses are written as <prefix>::1 and <prefix>:<suffix>, in canonical hextets."""
    mesh = spec_mesh()
    plans = plan_mesh(mesh, tmp_path)["machines"]
    hextet = "(0|[1-9a-f][0-9a-f]{0,3})"
    for controller in mesh.controllers:
        prefix = mesh.public[(controller, mesh.network_generator, "prefix")]
        assert re.fullmatch(f"{hextet}(:{hextet}){{3}}", prefix or "")
        assert plans[controller]["vpn"]["addresses"] == [f"{prefix}::1/40"]
    for peer in mesh.peers:
        suffix = mesh.suffixes[peer]
        assert plans[peer]["vpn"]["addresses"] == [
            f"{mesh.public[(c, mesh.network_generator, 'prefix')]}:{suffix}/56"
            for c in sorted(mesh.controllers)
        ]


def test_clan_core_style_values_are_canonicalised(tmp_path: Path) -> None:
    """Leading zeros, upper case, clan-core's shortened prefixes, key newlines."""
    mesh = Mesh("vpn")
    # /56 ids ending in a zero byte: clan-core stores three hextets; id 0: two.
    mesh.controller("controller1", endpoint="vpn1.example.com", subnet_id=0x3B00)
    mesh.controller("controller2", endpoint="vpn2.example.com", subnet_id=0)
    mesh.peer("peer1", controller="controller1", suffix="abc:de:0:1")
    network = instance_network("vpn").network_address
    first, second = (f"{value:04X}" for value in (int(network) >> 112, int(network) >> 96 & 0xFFFF))
    mesh.set_public("controller1", mesh.network_generator, "prefix", f"{first}:{second}:003B\n")
    mesh.set_public("controller2", mesh.network_generator, "prefix", f"{first.lower()}:{second}")
    mesh.set_public("peer1", mesh.network_generator, "suffix", "0ABC:00dE:0000:0001\n")
    plans = plan_mesh(mesh, tmp_path)["machines"]

    canonical = f"{int(first, 16):x}:{int(second, 16):x}"
    assert plans["controller1"]["vpn"]["addresses"] == [f"{canonical}:3b:0::1/40"]
    assert plans["controller2"]["vpn"]["addresses"] == [f"{canonical}:0:0::1/40"]
    assert plans["peer1"]["vpn"]["addresses"] == [
        f"{canonical}:3b:0:abc:de:0:1/56",
        f"{canonical}:0:0:abc:de:0:1/56",
    ]
    assert [entry["publicKey"] for entry in plans["peer1"]["vpn"]["peers"]] == [
        mesh.keys["controller1"],
        mesh.keys["controller2"],
    ]
    # And the same addresses as ipaddress reads the stored values.
    assert interface(plans["controller1"]["vpn"]["addresses"][0]).ip == (
        controller_subnet("vpn", 0x3B00).network_address + 1
    )


@pytest.mark.parametrize(
    ("endpoint", "dialled", "host"),
    [
        ("2001:db8::1", "[2001:db8::1]:51820", "2001:db8::1"),
        ("[2001:db8::2]", "[2001:db8::2]:51820", "2001:db8::2"),
        ("::ffff:192.0.2.1", "[::ffff:192.0.2.1]:51820", "::ffff:192.0.2.1"),
        ("192.0.2.7", "192.0.2.7:51820", "192.0.2.7"),
        ("vpn.example.com", "vpn.example.com:51820", "vpn.example.com"),
    ],
)
def test_endpoints(tmp_path: Path, endpoint: str, dialled: str, host: str) -> None:
    mesh = Mesh("vpn").controller("gateway", endpoint=endpoint).peer("laptop")
    plans = plan_mesh(mesh, tmp_path)["machines"]
    (entry,) = plans["laptop"]["vpn"]["peers"]
    assert (entry["endpoint"], entry["endpointHost"], entry["endpointPort"]) == (
        dialled,
        host,
        DEFAULT_PORT,
    )


def test_settings(tmp_path: Path) -> None:
    """Role-wide settings, overridden per machine; domain, mtu, ports, keepalive."""
    mesh = spec_mesh()
    mesh.role_settings = {
        "controller": {"port": 51900, "domain": "mesh.example", "mtu": 1380},
        "peer": {"keepalive": 0, "domain": "mesh.example", "mtu": 1380},
    }
    mesh.controllers["controller2"]["port"] = 51901
    mesh.peers["peer1"]["port"] = 40000
    mesh.peers["peer3"]["keepalive"] = 10
    plans = {m: p["vpn"] for m, p in plan_mesh(mesh, tmp_path)["machines"].items()}

    assert {plan["domain"] for plan in plans.values()} == {"mesh.example"}
    assert {plan["mtu"] for plan in plans.values()} == {1380}
    assert sorted(name for names in plans["peer2"]["hosts"].values() for name in names) == [
        f"{machine}.mesh.example" for machine in sorted(plans)
    ]
    assert plans["controller1"]["listenPort"] == 51900
    assert plans["controller1"]["firewall"]["allowedUDPPorts"] == [51900]
    assert plans["controller2"]["listenPort"] == 51901
    assert plans["peer1"]["listenPort"] == 40000
    assert plans["peer1"]["firewall"]["allowedUDPPorts"] == [40000]
    assert [e["endpointPort"] for e in plans["peer2"]["peers"]] == [51900, 51901]
    assert [e["endpoint"] for e in plans["peer2"]["peers"]] == [
        "vpn1.example.com:51900",
        "vpn2.example.com:51901",
    ]
    # Keepalive 0 turns it off; controllers keep theirs towards each other.
    assert {e["persistentKeepalive"] for e in plans["peer1"]["peers"]} == {None}
    assert {e["persistentKeepalive"] for e in plans["peer3"]["peers"]} == {10}
    controller_view = {e["name"]: e for e in plans["controller1"]["peers"]}
    assert controller_view["controller2"]["persistentKeepalive"] == 25


def two_instances() -> tuple[Mesh, Mesh]:
    """The spec's mesh, and a second instance on some of the same machines."""
    vpn = spec_mesh()
    corp = (
        Mesh("corp")
        .controller("peer1", endpoint="peer1.corp.example", port=51821)
        .peer("controller1")
        .peer("peer2", port=51830)
    )
    return vpn, corp


def test_several_instances_on_the_same_machines(tmp_path: Path) -> None:
    vpn, corp = two_instances()
    output = run_planner([vpn.write(tmp_path), corp.write(tmp_path)], tmp_path)
    assert output["problems"] == []
    plans = output["machines"]
    assert sorted(plans["peer1"]) == ["corp", "vpn"]
    assert sorted(plans["controller1"]) == ["corp", "vpn"]
    assert sorted(plans["peer3"]) == ["vpn"]
    check_controller_plan(corp, "peer1", plans["peer1"]["corp"])
    check_peer_plan(vpn, "peer1", plans["peer1"]["vpn"], "controller1")
    check_peer_plan(corp, "controller1", plans["controller1"]["corp"], "peer1")
    check_controller_plan(vpn, "controller1", plans["controller1"]["vpn"])
    assert plans["peer1"]["corp"]["interface"] == "corp"
    assert ipaddress.IPv6Network(plans["peer1"]["corp"]["network"]) == instance_network("corp")
    assert instance_network("corp") != instance_network("vpn")

    only = run_planner([vpn.write(tmp_path), corp.write(tmp_path)], tmp_path, ["peer1"])
    assert only["problems"] == []
    assert only["machines"] == {"peer1": plans["peer1"]}


def test_port_clash_between_instances(tmp_path: Path) -> None:
    vpn = spec_mesh()
    corp = Mesh("corp").controller("controller1", endpoint="c1.corp.example").peer("peer3")
    inventories = [vpn.write(tmp_path), corp.write(tmp_path)]
    output = run_planner(inventories, tmp_path)
    assert output["machines"] == {}
    (problem,) = output["problems"]
    for fragment in (
        "machine 'controller1'",
        "'corp' and 'vpn'",
        "51820",
        "roles.controller.machines.controller1.settings.port in instance 'vpn'",
    ):
        assert fragment in problem

    # A machine not involved gets its plans: only selected machines are checked.
    peer3 = run_planner(inventories, tmp_path, ["peer3"])
    assert peer3["problems"] == []
    assert sorted(peer3["machines"]["peer3"]) == ["corp", "vpn"]


def test_machine_problems_interface_and_port(tmp_path: Path) -> None:
    """Two instances of one name (two clans' inventories) on one machine."""
    first = Mesh("vpn", seed=1).controller("gateway", endpoint="a.example").peer("laptop")
    second = Mesh("vpn", seed=2).controller("other", endpoint="b.example").peer("laptop")
    first_file = first.write(tmp_path / "first")
    second_file = second.write(tmp_path / "second")
    planned = [
        f"""(planner.planInstance {{
          name = "vpn";
          instance = builtins.fromJSON (builtins.readFile {inventory});
          publicValue = planner.readVarsDir {inventory.parent};
        }}).machines.laptop"""
        for inventory in (first_file, second_file)
    ]
    problems = evaluate_nix(
        f'planner.machineProblems {{ machine = "laptop"; plans = [ {" ".join(planned)} ]; }}'
    )
    (interface_problem,) = problems
    assert "machine 'laptop'" in interface_problem
    assert "'vpn' and 'vpn'" in interface_problem
    assert "interface name 'vpn'" in interface_problem

    with_ports = [f'({plan} // {{ listenPort = 51820; role = "peer"; }})' for plan in planned]
    problems = evaluate_nix(
        f'planner.machineProblems {{ machine = "laptop"; plans = [ {" ".join(with_ports)} ]; }}'
    )
    assert len(problems) == 2
    assert "roles.peer.machines.laptop.settings.port" in problems[0]


def test_planning_one_machine_reads_only_what_it_needs(tmp_path: Path) -> None:
    """A peer's plan never touches other peers' keys; a controller's does."""
    mesh = spec_mesh()
    inventory = mesh.write(tmp_path)
    result = evaluate_nix(
        f"""
        let
          values = planner.readVarsDir {tmp_path};
          publicValue = query:
            if query.machine == "peer2" && query.file == "publickey"
            then throw "peer2's public key was read"
            else values query;
          planned = planner.planInstances {{
            instances.vpn = builtins.fromJSON (builtins.readFile {inventory});
            inherit publicValue;
          }};
          evaluates = value: (builtins.tryEval (builtins.deepSeq value true)).success;
        in {{
          peer1 = evaluates planned.machines.peer1.vpn;
          peer3 = evaluates planned.machines.peer3.vpn;
          controller1 = evaluates planned.machines.controller1.vpn;
        }}
        """
    )
    assert result == {"peer1": True, "peer3": True, "controller1": False}


def test_attrset_values_and_vars_directory_agree(tmp_path: Path) -> None:
    """publicValuesFromAttrs (no clan) and readVarsDir give the same plans."""
    mesh = spec_mesh()
    from_files = plan_mesh(mesh, tmp_path)
    attrs: dict[str, dict[str, dict[str, str]]] = {}
    for (machine, generator, file), value in mesh.public.items():
        assert value is not None
        attrs.setdefault(machine, {}).setdefault(generator, {})[file] = value
    planned = evaluate_nix(
        f"""planner.planInstances {{
          instances.vpn = builtins.fromJSON {json.dumps(json.dumps(mesh.inventory()))};
          publicValue = planner.publicValuesFromAttrs
            (builtins.fromJSON {json.dumps(json.dumps(attrs))});
        }}"""
    )
    assert planned == from_files


def test_instance_network_matches_clan_core_derivation() -> None:
    """The /40 for a few names, against the derivation written out by hand."""
    names = ["vpn", "wireguard", "corp", "a", "mesh-01"]
    names_json = json.dumps(json.dumps(names))
    texts = evaluate_nix(
        f"map (name: (planner.network name).text) (builtins.fromJSON {names_json})"
    )
    assert [ipaddress.IPv6Network(text) for text in texts] == [
        instance_network(name) for name in names
    ]
    assert texts == [str(instance_network(name)) for name in names]
