"""The NixOS module (modules/nixos), evaluated with nixpkgs' lib.

The module is evaluated by ``nix-instantiate`` with the harness in
``tests/nix-harness``, which declares the NixOS options the module writes
(with nixpkgs' types where they decide what is accepted). The mesh's public
values and private keys come from ``clan-wireguard vars generate``, run as a
user runs it. Expected addresses follow the spec's rules, derived here with
``ipaddress`` from the generated prefixes and suffixes.

Needs ``NIXPKGS_LIB_PATH``: a directory holding nixpkgs' ``lib/`` (a nixpkgs
checkout, or nixpkgs.lib). Skipped with that reason when it is unset.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from command_line import run_clan_wireguard
from planner_mesh import evaluate_nix, evaluation

JSON = Any

REPOSITORY = Path(__file__).resolve().parents[1]
HARNESS = REPOSITORY / "tests" / "nix-harness" / "eval-nixos.nix"

CONTROLLERS = ("ctrl1", "ctrl2")
PEERS = ("peer1", "peer2", "peer3")
DESIGNATED = {"peer1": "ctrl1", "peer2": "ctrl2", "peer3": "ctrl1"}
ENDPOINTS = {"ctrl1": "vpn1.example.com", "ctrl2": "192.0.2.2"}
AGENT_UNIT = "clan-wireguard-failover-vpn"


def nixpkgs_lib_path() -> Path:
    configured = os.environ.get("NIXPKGS_LIB_PATH")
    if not configured:
        pytest.skip("NIXPKGS_LIB_PATH is not set: point it at a directory holding nixpkgs' lib/")
    path = Path(configured)
    if not (path / "lib" / "default.nix").is_file():
        pytest.fail(f"NIXPKGS_LIB_PATH={configured} has no lib/default.nix")
    return path


pytestmark = [
    pytest.mark.nix,
    pytest.mark.skipif(
        shutil.which("nix-instantiate") is None, reason="nix-instantiate is not installed"
    ),
]


@dataclass(frozen=True)
class Mesh:
    """The spec's mesh, with vars written by the project's generator."""

    directory: Path
    roles: JSON

    def public(self, machine: str, generator: str, file: str) -> str:
        path = self.directory / "vars" / "per-machine" / machine / generator / file / "value"
        return path.read_text().strip()

    def private_key_file(self, machine: str) -> Path:
        return (
            self.directory
            / "secrets"
            / "per-machine"
            / machine
            / "wireguard-keys-vpn"
            / "privatekey"
            / "value"
        )

    def public_key(self, machine: str) -> str:
        return self.public(machine, "wireguard-keys-vpn", "publickey")

    def subnet(self, controller: str) -> ipaddress.IPv6Network:
        prefix = self.public(controller, "wireguard-network-vpn", "prefix")
        return ipaddress.IPv6Network(f"{prefix}::/56")

    def suffix(self, peer: str) -> int:
        return int(
            ipaddress.IPv6Address("::" + self.public(peer, "wireguard-network-vpn", "suffix"))
        )

    def controller_address(self, controller: str) -> ipaddress.IPv6Address:
        return self.subnet(controller).network_address + 1

    def peer_address(self, peer: str, controller: str) -> ipaddress.IPv6Address:
        return ipaddress.IPv6Address(
            int(self.subnet(controller).network_address) | self.suffix(peer)
        )

    def network(self) -> ipaddress.IPv6Network:
        return self.subnet(CONTROLLERS[0]).supernet(new_prefix=40)

    def instance(self, member: str, **options: JSON) -> JSON:
        """The instance's options on ``member``, with the key file of that member."""
        return {
            "roles": copy.deepcopy(self.roles),
            "varsDirectory": str(self.directory),
            "privateKeyFile": str(self.private_key_file(member)),
            **options,
        }


def spec_roles() -> JSON:
    return {
        "controller": {
            "machines": {name: {"settings": {"endpoint": ENDPOINTS[name]}} for name in CONTROLLERS}
        },
        "peer": {
            "machines": {name: {"settings": {"controller": DESIGNATED[name]}} for name in PEERS}
        },
    }


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Mesh:
    directory = tmp_path_factory.mktemp("mesh")
    roles = spec_roles()
    inventory = directory / "inventory.json"
    inventory.write_text(json.dumps({"instanceName": "vpn", "roles": roles}))
    result = run_clan_wireguard(
        "vars", "generate", "--inventory", inventory, "--vars-dir", directory, "--quiet"
    )
    assert result.returncode == 0, result.stderr
    return Mesh(directory=directory, roles=roles)


class Evaluation:
    """Runs the harness for one machine's configuration."""

    def __init__(self, lib_path: Path, work: Path) -> None:
        self.lib_path = lib_path
        self.work = work
        self.count = 0

    def _run(self, configuration: JSON, attribute: str) -> subprocess.CompletedProcess[str]:
        self.count += 1
        config_file = self.work / f"machine-{self.count}.json"
        config_file.write_text(json.dumps(configuration))
        return evaluation(
            [
                # The failover agent's plan file is written to the store.
                "--read-write-mode",
                str(HARNESS),
                "--argstr",
                "libPath",
                str(self.lib_path),
                "--argstr",
                "configFile",
                str(config_file),
                "-A",
                attribute,
            ]
        )

    def system(self, configuration: JSON) -> JSON:
        """The rendered configuration; the assertions must all hold."""
        result = self._run(configuration, "system")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def failure(self, configuration: JSON) -> tuple[list[str], JSON]:
        """Failed assertions of a configuration that must not build, and what it rendered."""
        result = self._run(configuration, "system")
        assert result.returncode != 0, "expected failed assertions"
        assert "Failed assertions:" in result.stderr, result.stderr
        failed = json.loads(self._checked(configuration, "failedAssertions"))
        for message in failed:
            # Shown to the user as is, one line each.
            assert f"- {message}" in result.stderr
            assert "\n" not in message
        return failed, json.loads(self._checked(configuration, "rendered"))

    def _checked(self, configuration: JSON, attribute: str) -> str:
        result = self._run(configuration, attribute)
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture
def evaluate(tmp_path: Path) -> Evaluation:
    return Evaluation(nixpkgs_lib_path(), tmp_path)


def machine_config(machine: str, instances: JSON, **clan_wireguard: JSON) -> JSON:
    return {
        "networking": {
            "hostName": machine,
            "clan-wireguard": {"instances": instances, **clan_wireguard},
        }
    }


def spec_machine(mesh: Mesh, machine: str, **options: JSON) -> JSON:
    return machine_config(machine, {"vpn": mesh.instance(machine, **options)})


def planner_output(mesh: Mesh, roles: JSON | None = None) -> JSON:
    """What the planner itself says about the mesh, asked directly."""
    instance = json.dumps({"roles": mesh.roles if roles is None else roles})
    return evaluate_nix(
        f'let planned = planner.planInstance {{ name = "vpn"; '
        f"instance = builtins.fromJSON ''{instance}''; "
        f"publicValue = planner.readVarsDir {mesh.directory}; }}; "
        f"in {{ inherit (planned) problems; machines = if planned.problems == [ ] "
        f"then planned.machines else {{ }}; }}"
    )


def peer_of(interface: JSON, name: str) -> JSON:
    matches = [peer for peer in interface["peers"] if peer["name"] == name]
    assert len(matches) == 1, (name, interface["peers"])
    return matches[0]


def lines_of(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.strip()]


# -- the spec's mesh, rendered -------------------------------------------------


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_controller_interface_follows_the_spec(
    mesh: Mesh, evaluate: Evaluation, controller: str
) -> None:
    system = evaluate.system(spec_machine(mesh, controller))
    assert list(system["interfaces"]) == ["vpn"]
    interface = system["interfaces"]["vpn"]

    assert interface["ips"] == [f"{mesh.controller_address(controller)}/40"]
    assert interface["listenPort"] == 51820
    assert interface["mtu"] is None
    assert interface["privateKeyFile"] == str(mesh.private_key_file(controller))
    assert sorted(peer["name"] for peer in interface["peers"]) == sorted(
        [*(c for c in CONTROLLERS if c != controller), *PEERS]
    )

    for other in CONTROLLERS:
        if other == controller:
            continue
        peer = peer_of(interface, other)
        assert peer["publicKey"] == mesh.public_key(other)
        assert peer["allowedIPs"] == [str(mesh.subnet(other))]
        assert peer["endpoint"] == f"{ENDPOINTS[other]}:51820"
        assert peer["persistentKeepalive"] == 25

    for name in PEERS:
        peer = peer_of(interface, name)
        assert peer["publicKey"] == mesh.public_key(name)
        # The peer's /96 in every controller's subnet: the peer is reachable
        # through this controller whichever subnet its address is in.
        expected = [
            str(ipaddress.IPv6Network((mesh.peer_address(name, c), 96), strict=False))
            for c in CONTROLLERS
        ]
        assert sorted(peer["allowedIPs"]) == sorted(expected)
        # Peers dial the controller; it never dials them.
        assert peer["endpoint"] is None
        assert peer["persistentKeepalive"] is None


@pytest.mark.parametrize("name", PEERS)
def test_peer_interface_has_one_address_per_controller(
    mesh: Mesh, evaluate: Evaluation, name: str
) -> None:
    interface = evaluate.system(spec_machine(mesh, name))["interfaces"]["vpn"]

    assert sorted(interface["ips"]) == sorted(
        f"{mesh.peer_address(name, c)}/56" for c in CONTROLLERS
    )
    # Peers dial out: the kernel chooses the port, none is opened.
    assert interface["listenPort"] is None
    assert sorted(peer["name"] for peer in interface["peers"]) == list(CONTROLLERS)
    for controller in CONTROLLERS:
        peer = peer_of(interface, controller)
        assert peer["publicKey"] == mesh.public_key(controller)
        assert peer["allowedIPs"] == [str(mesh.subnet(controller))]
        assert peer["endpoint"] == f"{ENDPOINTS[controller]}:51820"
        assert peer["persistentKeepalive"] == 25


@pytest.mark.parametrize("machine", [*CONTROLLERS, *PEERS])
def test_every_member_is_named_in_its_designated_subnet(
    mesh: Mesh, evaluate: Evaluation, machine: str
) -> None:
    hosts = evaluate.system(spec_machine(mesh, machine))["hosts"]
    expected = {str(mesh.controller_address(c)): [f"{c}.vpn"] for c in CONTROLLERS}
    expected |= {str(mesh.peer_address(p, DESIGNATED[p])): [f"{p}.vpn"] for p in PEERS}
    assert hosts == expected


@pytest.mark.parametrize("machine", ["ctrl1", "peer2"])
def test_routes_come_from_the_plan_not_from_allowed_ips(
    mesh: Mesh, evaluate: Evaluation, machine: str
) -> None:
    interface = evaluate.system(spec_machine(mesh, machine))["interfaces"]["vpn"]
    # The failover agent moves allowed IPs between controllers; if routes
    # followed them they would flap with every move.
    assert interface["allowedIPsAsRoutes"] is False
    network = mesh.network()
    setup = lines_of(interface["postSetup"])
    assert len(setup) == 1
    assert re.fullmatch(rf"\S+/bin/ip -6 route replace {network} dev vpn", setup[0]), setup
    shutdown = lines_of(interface["postShutdown"])
    assert len(shutdown) == 1
    assert f"route del {network} dev vpn" in shutdown[0]


def test_forwarding_and_firewall_only_on_controllers(mesh: Mesh, evaluate: Evaluation) -> None:
    for controller in CONTROLLERS:
        system = evaluate.system(spec_machine(mesh, controller))
        assert system["sysctl"] == {"net.ipv6.conf.all.forwarding": 1}
        assert system["firewall"]["allowedUDPPorts"] == [51820]
        # The mesh is not trusted: only what the firewall allows reaches it.
        assert system["firewall"]["trustedInterfaces"] == []
    for peer in PEERS:
        system = evaluate.system(spec_machine(mesh, peer))
        assert system["sysctl"] == {}
        assert system["firewall"]["allowedUDPPorts"] == []


def test_peer_port_and_mtu_settings_are_rendered(mesh: Mesh, evaluate: Evaluation) -> None:
    roles = copy.deepcopy(mesh.roles)
    roles["peer"]["machines"]["peer1"]["settings"] |= {"port": 51821, "mtu": 1380}
    system = evaluate.system(spec_machine(mesh, "peer1", roles=roles))
    interface = system["interfaces"]["vpn"]
    assert interface["listenPort"] == 51821
    assert interface["mtu"] == 1380
    assert system["firewall"]["allowedUDPPorts"] == [51821]

    closed = evaluate.system(spec_machine(mesh, "peer1", roles=roles, openFirewall=False))
    assert closed["firewall"]["allowedUDPPorts"] == []


# -- the failover agent --------------------------------------------------------


def plan_file_of(unit: JSON) -> Path:
    arguments = unit["serviceConfig"]["ExecStart"].split()
    return Path(arguments[arguments.index("--plan") + 1])


@pytest.mark.parametrize("name", PEERS)
def test_failover_agent_runs_on_peers_with_the_planners_plan(
    mesh: Mesh, evaluate: Evaluation, name: str
) -> None:
    services = evaluate.system(spec_machine(mesh, name))["services"]
    assert list(services) == [AGENT_UNIT]
    unit = services[AGENT_UNIT]

    arguments = unit["serviceConfig"]["ExecStart"].split()
    assert arguments[0].endswith("/bin/clan-wireguard")
    assert arguments[1:3] == ["failover", "run"]
    assert arguments[arguments.index("--state-dir") + 1] == "/run/clan-wireguard"
    # The agent reads exactly the plan the planner made for this machine.
    plan = json.loads(plan_file_of(unit).read_text())
    assert plan == planner_output(mesh)["machines"][name]
    assert plan["failover"]["designated"] == DESIGNATED[name]

    assert unit["bindsTo"] == ["wireguard-vpn.service"]
    assert "wireguard-vpn.service" in unit["after"]
    assert "wireguard-vpn.service" in unit["wantedBy"]
    assert unit["serviceConfig"]["Restart"] == "always"


def test_failover_agent_runs_with_network_capabilities_only(
    mesh: Mesh, evaluate: Evaluation
) -> None:
    config = evaluate.system(spec_machine(mesh, "peer1"))["services"][AGENT_UNIT]["serviceConfig"]
    assert sorted(config["CapabilityBoundingSet"]) == ["CAP_NET_ADMIN", "CAP_NET_RAW"]
    assert sorted(config["RestrictAddressFamilies"]) == [
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
        "AF_UNIX",
    ]
    assert config["ProtectSystem"] == "strict"
    assert config["NoNewPrivileges"] is True
    assert config["PrivateTmp"] is True
    assert config["ProtectHome"] is True
    assert config["SystemCallFilter"] == ["@system-service"]
    assert config["RuntimeDirectory"] == "clan-wireguard"


def test_failover_agent_options_reach_the_command_line(mesh: Mesh, evaluate: Evaluation) -> None:
    failover = {"probeInterval": 0.5, "downAfter": 4, "upAfter": 3}
    services = evaluate.system(spec_machine(mesh, "peer2", failover=failover))["services"]
    arguments = services[AGENT_UNIT]["serviceConfig"]["ExecStart"].split()
    assert float(arguments[arguments.index("--interval") + 1]) == 0.5
    assert arguments[arguments.index("--down-after") + 1] == "4"
    assert arguments[arguments.index("--up-after") + 1] == "3"


@pytest.mark.parametrize("name", CONTROLLERS)
def test_controllers_run_no_agent(mesh: Mesh, evaluate: Evaluation, name: str) -> None:
    assert evaluate.system(spec_machine(mesh, name))["services"] == {}


def test_failover_can_be_turned_off(mesh: Mesh, evaluate: Evaluation) -> None:
    system = evaluate.system(spec_machine(mesh, "peer1", failover={"enable": False}))
    assert system["services"] == {}


def test_single_controller_needs_no_agent(mesh: Mesh, evaluate: Evaluation) -> None:
    roles = copy.deepcopy(mesh.roles)
    del roles["controller"]["machines"]["ctrl2"]
    for peer in roles["peer"]["machines"].values():
        peer["settings"].pop("controller")
    system = evaluate.system(spec_machine(mesh, "peer2", roles=roles))
    assert system["services"] == {}
    assert [peer["name"] for peer in system["interfaces"]["vpn"]["peers"]] == ["ctrl1"]


def test_host_name_endpoints_are_refreshed_where_no_agent_moves_allowed_ips(
    mesh: Mesh, evaluate: Evaluation
) -> None:
    refresh = "dynamicEndpointRefreshSeconds"
    # ctrl2 dials ctrl1 by name: resolved again every minute.
    ctrl2 = evaluate.system(spec_machine(mesh, "ctrl2"))["interfaces"]["vpn"]
    assert peer_of(ctrl2, "ctrl1")[refresh] == 60
    # ctrl1 dials ctrl2 by an IPv4 address: nothing to resolve.
    ctrl1 = evaluate.system(spec_machine(mesh, "ctrl1"))["interfaces"]["vpn"]
    assert peer_of(ctrl1, "ctrl2")[refresh] is None
    # nixpkgs' refresh re-applies allowed IPs; on a peer running the agent it
    # would undo the agent's failover, so the agent resolves instead.
    with_agent = evaluate.system(spec_machine(mesh, "peer1"))["interfaces"]["vpn"]
    assert peer_of(with_agent, "ctrl1")[refresh] is None
    without_agent = evaluate.system(spec_machine(mesh, "peer1", failover={"enable": False}))
    assert peer_of(without_agent["interfaces"]["vpn"], "ctrl1")[refresh] == 60
    assert peer_of(without_agent["interfaces"]["vpn"], "ctrl2")[refresh] is None

    never = machine_config("ctrl2", {"vpn": mesh.instance("ctrl2")}, endpointRefreshSeconds=0)
    assert peer_of(evaluate.system(never)["interfaces"]["vpn"], "ctrl1")[refresh] is None


def test_private_key_never_reaches_the_configuration_or_the_store(
    mesh: Mesh, evaluate: Evaluation
) -> None:
    for name in ("ctrl1", "peer1"):
        private_key = mesh.private_key_file(name).read_text().strip()
        system = evaluate.system(spec_machine(mesh, name))
        assert private_key not in json.dumps(system)
        for unit in system["services"].values():
            assert private_key not in plan_file_of(unit).read_text()
        assert system["interfaces"]["vpn"]["privateKey"] is None


# -- without clan --------------------------------------------------------------


def test_public_values_given_by_hand_render_the_same_mesh(mesh: Mesh, evaluate: Evaluation) -> None:
    public_values: JSON = {}
    for machine in (*CONTROLLERS, *PEERS):
        network_file = "prefix" if machine in CONTROLLERS else "suffix"
        public_values[machine] = {
            "wireguard-keys-vpn": {"publickey": mesh.public_key(machine)},
            "wireguard-network-vpn": {
                network_file: mesh.public(machine, "wireguard-network-vpn", network_file)
            },
        }
    by_hand = mesh.instance("peer3", publicValues=public_values)
    del by_hand["varsDirectory"]
    from_directory = evaluate.system(spec_machine(mesh, "peer3"))
    assert evaluate.system(machine_config("peer3", {"vpn": by_hand})) == from_directory


def test_public_values_given_by_hand_win_over_the_directory(
    mesh: Mesh, evaluate: Evaluation
) -> None:
    replacement = "zRvU6v6k4dbeWOaF7PN1dv2V4y2a1s7sN7dzmV9k7Dk="
    pinned = {"ctrl1": {"wireguard-keys-vpn": {"publickey": replacement}}}
    system = evaluate.system(spec_machine(mesh, "peer1", publicValues=pinned))
    assert peer_of(system["interfaces"]["vpn"], "ctrl1")["publicKey"] == replacement


def test_machine_name_can_differ_from_host_name(mesh: Mesh, evaluate: Evaluation) -> None:
    configuration = machine_config("laptop", {"vpn": mesh.instance("peer2", machine="peer2")})
    interface = evaluate.system(configuration)["interfaces"]["vpn"]
    assert sorted(interface["ips"]) == sorted(
        f"{mesh.peer_address('peer2', c)}/56" for c in CONTROLLERS
    )


# -- several instances on one machine ------------------------------------------


def second_instance(mesh: Mesh, tmp_path: Path, port: int | None) -> tuple[Path, JSON]:
    """Instance `lan`, with ctrl1 as its only controller and peer1 as a peer."""
    settings: JSON = {"endpoint": "lan.example.com"} | ({"port": port} if port else {})
    roles = {
        "controller": {"machines": {"ctrl1": {"settings": settings}}},
        "peer": {"machines": {"peer1": {"settings": {}}}},
    }
    inventory = tmp_path / "lan.json"
    inventory.write_text(json.dumps({"instanceName": "lan", "roles": roles}))
    directory = tmp_path / "lan-vars"
    result = run_clan_wireguard(
        "vars", "generate", "--inventory", inventory, "--vars-dir", directory, "--quiet"
    )
    assert result.returncode == 0, result.stderr
    return directory, roles


def test_two_controller_instances_share_one_forwarding_switch(
    mesh: Mesh, evaluate: Evaluation, tmp_path: Path
) -> None:
    directory, roles = second_instance(mesh, tmp_path, port=51821)
    lan = {"roles": roles, "varsDirectory": str(directory), "privateKeyFile": "/run/keys/lan"}
    # The harness, like NixOS, rejects a sysctl defined twice.
    system = evaluate.system(machine_config("ctrl1", {"vpn": mesh.instance("ctrl1"), "lan": lan}))
    assert sorted(system["interfaces"]) == ["lan", "vpn"]
    assert system["interfaces"]["lan"]["listenPort"] == 51821
    assert system["sysctl"] == {"net.ipv6.conf.all.forwarding": 1}
    assert sorted(system["firewall"]["allowedUDPPorts"]) == [51820, 51821]
    assert len(system["hosts"]) == 5 + 2


def test_restricted_forwarding_accepts_only_mesh_to_mesh(mesh: Mesh, evaluate: Evaluation) -> None:
    configuration = spec_machine(mesh, "ctrl1")
    configuration["networking"]["nftables"] = {"enable": True}
    firewall = evaluate.system(configuration)["firewall"]
    assert firewall["filterForward"] is True
    assert lines_of(firewall["extraForwardRules"]) == ['iifname "vpn" oifname "vpn" accept']

    configuration["networking"]["clan-wireguard"]["restrictForwarding"] = False
    assert evaluate.system(configuration)["firewall"]["filterForward"] is False
    # Without nftables NixOS cannot filter forwarded traffic; nothing is set.
    plain = evaluate.system(spec_machine(mesh, "ctrl1"))["firewall"]
    assert plain["filterForward"] is False
    assert plain["extraForwardRules"] == ""
    # Peers forward nothing and change nothing.
    peer = spec_machine(mesh, "peer1")
    peer["networking"]["nftables"] = {"enable": True}
    assert evaluate.system(peer)["firewall"]["filterForward"] is False


def test_uplinks_keep_router_advertisements_on_controllers(
    mesh: Mesh, evaluate: Evaluation
) -> None:
    controller = machine_config("ctrl1", {"vpn": mesh.instance("ctrl1")}, uplinkInterfaces=["eth0"])
    assert evaluate.system(controller)["sysctl"] == {
        "net.ipv6.conf.all.forwarding": 1,
        "net.ipv6.conf.eth0.accept_ra": 2,
    }
    peer = machine_config("peer1", {"vpn": mesh.instance("peer1")}, uplinkInterfaces=["eth0"])
    assert evaluate.system(peer)["sysctl"] == {}


# -- bad input: one assertion, the planner's own words, nothing rendered -------


def with_peer1_controller(value: str | None) -> Callable[[Mesh], JSON]:
    def change(mesh: Mesh) -> JSON:
        roles = copy.deepcopy(mesh.roles)
        settings = roles["peer"]["machines"]["peer1"]["settings"]
        if value is None:
            settings.pop("controller")
        else:
            settings["controller"] = value
        return roles

    return change


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (with_peer1_controller("ctrl9"), ["'peer1'", "ctrl9", "roles.peer.machines.peer1"]),
        (with_peer1_controller(None), ["'peer1'", "controller"]),
    ],
    ids=["unknown-controller", "missing-controller"],
)
def test_planner_problems_become_assertions(
    mesh: Mesh, evaluate: Evaluation, change: Callable[[Mesh], JSON], fragments: list[str]
) -> None:
    roles = change(mesh)
    expected = planner_output(mesh, roles)["problems"]
    assert expected, "the planner must object"
    failed, rendered = evaluate.failure(spec_machine(mesh, "peer3", roles=roles))
    assert failed == expected
    assert any(all(fragment in message for fragment in fragments) for message in failed), failed
    assert rendered["interfaces"] == {}
    assert rendered["services"] == {}
    assert rendered["hosts"] == {}


def test_missing_public_value_is_reported_not_traced(
    mesh: Mesh, evaluate: Evaluation, tmp_path: Path
) -> None:
    directory = tmp_path / "vars-copy"
    shutil.copytree(mesh.directory, directory)
    shutil.rmtree(directory / "vars" / "per-machine" / "ctrl2" / "wireguard-network-vpn")
    instance = mesh.instance("peer1") | {"varsDirectory": str(directory)}
    failed, rendered = evaluate.failure(machine_config("peer1", {"vpn": instance}))
    assert any("ctrl2" in message and "wireguard-network-vpn" in message for message in failed)
    assert rendered["interfaces"] == {}


@pytest.mark.parametrize(
    ("options", "host_name", "fragments"),
    [
        ({}, "laptop", ["'laptop'", "networking.clan-wireguard.instances.vpn.machine"]),
        (
            {"privateKeyFile": None},
            "peer1",
            ["'peer1'", "networking.clan-wireguard.instances.vpn.privateKeyFile is not set"],
        ),
        (
            {"privateKeyFile": "/nix/store/0000000000000000000000000000000a-key"},
            "peer1",
            ["'peer1'", "networking.clan-wireguard.instances.vpn.privateKeyFile", "Nix store"],
        ),
    ],
    ids=["not-a-member", "no-private-key", "private-key-in-store"],
)
def test_module_problems_name_the_option(
    mesh: Mesh,
    evaluate: Evaluation,
    options: JSON,
    host_name: str,
    fragments: list[str],
) -> None:
    instance = mesh.instance("peer1", **options)
    failed, rendered = evaluate.failure(machine_config(host_name, {"vpn": instance}))
    assert len(failed) == 1, failed
    assert failed[0].startswith("wireguard instance 'vpn', machine ")
    for fragment in fragments:
        assert fragment in failed[0], (fragment, failed[0])
    assert rendered["interfaces"] == {}


def test_two_instances_on_one_port_fail_with_the_setting_to_change(
    mesh: Mesh, evaluate: Evaluation, tmp_path: Path
) -> None:
    directory, roles = second_instance(mesh, tmp_path, port=None)
    lan = {"roles": roles, "varsDirectory": str(directory), "privateKeyFile": "/run/keys/lan"}
    failed, rendered = evaluate.failure(
        machine_config("ctrl1", {"vpn": mesh.instance("ctrl1"), "lan": lan})
    )
    assert len(failed) == 1, failed
    assert "51820" in failed[0]
    assert "'ctrl1'" in failed[0]
    assert "settings.port" in failed[0]
    assert rendered["interfaces"] == {}


def test_networkd_backend_is_refused(mesh: Mesh, evaluate: Evaluation) -> None:
    configuration = spec_machine(mesh, "peer1")
    configuration["networking"]["wireguard"] = {"useNetworkd": True}
    failed, rendered = evaluate.failure(configuration)
    assert len(failed) == 1
    assert "networking.wireguard.useNetworkd = false" in failed[0]
    assert rendered["interfaces"] == {}


def test_no_instances_change_nothing(evaluate: Evaluation) -> None:
    system = evaluate.system({"networking": {"hostName": "plain"}})
    assert system["interfaces"] == {}
    assert system["hosts"] == {}
    assert system["sysctl"] == {}
    assert system["services"] == {}
    assert system["systemPackages"] == []
