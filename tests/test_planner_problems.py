"""The planner's problems: every bad input gives one line naming the instance,
the machine and what to change; no input that parses as JSON makes the
planner itself fail.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_mesh import (
    JSON,
    Mesh,
    evaluate_nix,
    problems_of,
    requires_nix,
    run_planner,
    spec_mesh,
)

pytestmark = [pytest.mark.nix, requires_nix]


def only_problem(mesh: Mesh, root: Path, inventory: JSON | None = None) -> str:
    problems = problems_of(mesh, root, inventory)
    assert len(problems) == 1, problems
    return problems[0]


def assert_mentions(problem: str, *fragments: str) -> None:
    assert "\n" not in problem
    for fragment in fragments:
        assert fragment in problem, (fragment, problem)


def without_controllers() -> Mesh:
    mesh = Mesh("vpn").peer("laptop")
    return mesh


Case = tuple[Callable[[], Mesh], tuple[str, ...]]


def changed(change: Callable[[Mesh], object]) -> Callable[[], Mesh]:
    """The spec's mesh with one change."""

    def build() -> Mesh:
        mesh = spec_mesh()
        change(mesh)
        return mesh

    return build


def same_subnet(mesh: Mesh) -> None:
    prefix = mesh.public[("controller1", mesh.network_generator, "prefix")]
    mesh.set_public("controller2", mesh.network_generator, "prefix", prefix)


def same_slash96(mesh: Mesh) -> None:
    first_half = ":".join(mesh.suffixes["peer1"].split(":")[:2])
    mesh.set_public("peer2", mesh.network_generator, "suffix", f"{first_half}:ffff:1")


def same_key(mesh: Mesh) -> None:
    key = mesh.public[("peer1", mesh.keys_generator, "publickey")]
    mesh.set_public("peer3", mesh.keys_generator, "publickey", key)


def set_value(machine: str, file: str, value: str | None) -> Callable[[Mesh], None]:
    def change(mesh: Mesh) -> None:
        generator = mesh.keys_generator if file == "publickey" else mesh.network_generator
        mesh.set_public(machine, generator, file, value)

    return change


def set_setting(role: str, machine: str | None, key: str, value: JSON) -> Callable[[Mesh], None]:
    def change(mesh: Mesh) -> None:
        if machine is None:
            mesh.role_settings.setdefault(role, {})[key] = value
        else:
            (mesh.controllers if role == "controller" else mesh.peers)[machine][key] = value

    return change


def prefix_off_boundary(mesh: Mesh) -> None:
    """controller1's /56 with its last byte set: inside the /40, not a /56."""
    hextets = (mesh.public[("controller1", mesh.network_generator, "prefix")] or "").split(":")
    hextets[3] = f"{int(hextets[3], 16) | 0x01:x}"
    mesh.set_public("controller1", mesh.network_generator, "prefix", ":".join(hextets))


def role_wide_unknown_controller(mesh: Mesh) -> None:
    for own in mesh.peers.values():
        own.pop("controller")
    mesh.role_settings["peer"] = {"controller": "ctrl9"}


REGENERATE_SUFFIX = "clan vars generate peer1 --generator wireguard-network-vpn --regenerate"
REGENERATE_PREFIX = "clan vars generate controller1 --generator wireguard-network-vpn --regenerate"
REGENERATE_KEY = "clan vars generate peer1 --generator wireguard-keys-vpn --regenerate"

CASES: dict[str, Case] = {
    "no controller": (
        without_controllers,
        ("wireguard instance 'vpn'", "no controller", "roles.controller.machines"),
    ),
    "controller without endpoint": (
        changed(lambda mesh: mesh.controllers["controller1"].pop("endpoint")),
        (
            "wireguard instance 'vpn', machine 'controller1'",
            "no endpoint",
            "roles.controller.machines.controller1.settings.endpoint",
        ),
    ),
    "port zero": (
        changed(set_setting("controller", "controller1", "port", 0)),
        ("machine 'controller1'", "roles.controller.machines.controller1.settings.port = 0"),
    ),
    "port too large": (
        changed(set_setting("controller", "controller2", "port", 65536)),
        ("machine 'controller2'", "settings.port = 65536", "1 to 65535"),
    ),
    "port as text": (
        changed(set_setting("peer", "peer1", "port", "51820")),
        ("machine 'peer1'", 'roles.peer.machines.peer1.settings.port = "51820"'),
    ),
    "port as float": (
        changed(set_setting("controller", "controller1", "port", 51820.5)),
        ("machine 'controller1'", "settings.port = 51820.5"),
    ),
    "role-wide port": (
        changed(set_setting("controller", None, "port", -1)),
        (
            "role 'controller' (machines controller1, controller2)",
            "roles.controller.settings.port = -1",
        ),
    ),
    "peer without controller": (
        changed(lambda mesh: mesh.peers["peer2"].pop("controller")),
        (
            "wireguard instance 'vpn', machine 'peer2'",
            "roles.peer.machines.peer2.settings.controller",
            "controller1, controller2",
        ),
    ),
    "controller that is a peer": (
        changed(set_setting("peer", "peer1", "controller", "peer2")),
        (
            "machine 'peer1'",
            'roles.peer.machines.peer1.settings.controller = "peer2"',
            "not a controller",
            "controller1, controller2",
        ),
    ),
    "role-wide controller unknown": (
        changed(role_wide_unknown_controller),
        (
            "role 'peer' (machines peer1, peer2, peer3)",
            'roles.peer.settings.controller = "ctrl9"',
            "controller1, controller2",
        ),
    ),
    "machine in both roles": (
        changed(lambda mesh: mesh.peers.update(controller2={})),
        (
            "machine 'controller2'",
            "both roles.controller.machines and roles.peer.machines",
        ),
    ),
    "unknown setting": (
        changed(lambda mesh: mesh.peers["peer3"].update(contoller="controller1")),
        (
            "machine 'peer3'",
            "unknown setting roles.peer.machines.peer3.settings.contoller",
            "'controller'",
        ),
    ),
    "role-wide unknown setting": (
        changed(set_setting("controller", None, "endpoints", "x")),
        ("role 'controller'", "unknown setting roles.controller.settings.endpoints"),
    ),
    "endpoint with a port": (
        changed(set_setting("controller", "controller1", "endpoint", "vpn1.example.com:51820")),
        (
            "machine 'controller1'",
            "roles.controller.machines.controller1.settings.endpoint",
            "without a port",
        ),
    ),
    "bracketed endpoint with a port": (
        changed(set_setting("controller", "controller1", "endpoint", "[2001:db8::1]:51820")),
        ("machine 'controller1'", "settings.endpoint", "without a port"),
    ),
    "endpoint not text": (
        changed(set_setting("controller", "controller2", "endpoint", 5)),
        ("machine 'controller2'", "roles.controller.machines.controller2.settings.endpoint = 5"),
    ),
    "keepalive negative": (
        changed(set_setting("peer", "peer1", "keepalive", -5)),
        ("machine 'peer1'", "roles.peer.machines.peer1.settings.keepalive = -5"),
    ),
    "mtu too small for IPv6": (
        changed(set_setting("peer", "peer1", "mtu", 1000)),
        ("machine 'peer1'", "settings.mtu = 1000", "1280"),
    ),
    "domain not a host name": (
        changed(set_setting("peer", None, "domain", "bad domain")),
        ("role 'peer'", 'roles.peer.settings.domain = "bad domain"'),
    ),
    "domains disagree": (
        changed(set_setting("controller", "controller2", "domain", "elsewhere")),
        (
            "machine 'controller2'",
            "disagree",
            "'elsewhere' on controller2",
            "'vpn' on controller1, peer1, peer2, peer3",
            "roles.controller.settings.domain",
        ),
    ),
    "two controllers, one subnet": (
        changed(same_subnet),
        (
            "machines 'controller1' and 'controller2'",
            "same subnet",
            "clan vars generate controller2 --generator wireguard-network-vpn --regenerate",
        ),
    ),
    "two peers, one /96": (
        changed(same_slash96),
        (
            "machines 'peer1' and 'peer2'",
            "first 32 bits",
            "clan vars generate peer2 --generator wireguard-network-vpn --regenerate",
        ),
    ),
    "two machines, one key": (
        changed(same_key),
        (
            "machines 'peer1' and 'peer3'",
            "same public key",
            "clan vars generate peer3 --generator wireguard-keys-vpn --regenerate",
        ),
    ),
    "missing public key": (
        changed(set_value("peer1", "publickey", None)),
        (
            "wireguard instance 'vpn', machine 'peer1'",
            "wireguard-keys-vpn/publickey is missing",
            "clan vars generate peer1 --generator wireguard-keys-vpn",
            "clan-wireguard vars generate --inventory",
        ),
    ),
    "missing prefix": (
        changed(set_value("controller1", "prefix", None)),
        (
            "machine 'controller1'",
            "wireguard-network-vpn/prefix is missing",
            "clan vars generate controller1 --generator wireguard-network-vpn",
        ),
    ),
    "missing suffix": (
        changed(set_value("peer1", "suffix", None)),
        ("machine 'peer1'", "wireguard-network-vpn/suffix is missing"),
    ),
    "short public key": (
        changed(set_value("peer1", "publickey", "abc=\n")),
        ("machine 'peer1'", "wireguard-keys-vpn/publickey", '"abc="', REGENERATE_KEY),
    ),
    "public key without padding": (
        changed(set_value("peer1", "publickey", "A" * 44)),
        ("machine 'peer1'", "not a WireGuard public key", REGENERATE_KEY),
    ),
    "public key of 33 bytes": (
        # Its last character carries bits beyond the 32nd byte.
        changed(set_value("peer1", "publickey", "A" * 42 + "B=")),
        ("machine 'peer1'", "not a WireGuard public key", REGENERATE_KEY),
    ),
    "suffix not hex": (
        changed(set_value("peer1", "suffix", "xyz:1:2:3")),
        ("machine 'peer1'", '"xyz:1:2:3"', "four hextets", REGENERATE_SUFFIX),
    ),
    "suffix too short": (
        changed(set_value("peer1", "suffix", "1:2:3")),
        ("machine 'peer1'", "four hextets", REGENERATE_SUFFIX),
    ),
    "suffix of zero 32 bits": (
        changed(set_value("peer1", "suffix", "0:0:1:2")),
        ("machine 'peer1'", "32 zero bits", REGENERATE_SUFFIX),
    ),
    "prefix of another instance": (
        changed(set_value("controller1", "prefix", "fd00:1:3b:f700")),
        ("machine 'controller1'", "not inside the instance's network", REGENERATE_PREFIX),
    ),
    "prefix off the /56 boundary": (
        changed(prefix_off_boundary),
        ("machine 'controller1'", "/56 boundary", REGENERATE_PREFIX),
    ),
    "prefix not an address": (
        changed(set_value("controller1", "prefix", "not-a-prefix")),
        ("machine 'controller1'", '"not-a-prefix"', REGENERATE_PREFIX),
    ),
}


@pytest.mark.parametrize("case", CASES.keys())
def test_bad_input(tmp_path: Path, case: str) -> None:
    build, fragments = CASES[case]
    problem = only_problem(build(), tmp_path)
    assert_mentions(problem, *fragments)
    if case.startswith("missing"):
        # `vars generate` fills in what is missing by itself; --regenerate
        # would also replace the machine's existing keys and addresses.
        assert "--regenerate" not in problem


@pytest.mark.parametrize(
    ("instance", "reason"),
    [
        ("averyverylongname", "at most 15"),
        ("vpn_1", "DNS label"),
        ("-vpn", "DNS label"),
        ("vpn.lan", "DNS label"),
    ],
)
def test_bad_instance_name(tmp_path: Path, instance: str, reason: str) -> None:
    mesh = Mesh(instance).controller("gateway", endpoint="vpn.example.com").peer("laptop")
    problem = only_problem(mesh, tmp_path)
    assert_mentions(problem, f"wireguard instance '{instance}'", reason, "rename the instance")


@pytest.mark.parametrize("machine", ["peer_1", "peer.one", "-peer"])
def test_bad_machine_name(tmp_path: Path, machine: str) -> None:
    mesh = Mesh("vpn").controller("gateway", endpoint="vpn.example.com").peer(machine)
    problem = only_problem(mesh, tmp_path)
    assert_mentions(problem, f"machine '{machine}'", "DNS label", "rename the machine")


def test_problems_of_many_peers_stay_one_per_cause(tmp_path: Path) -> None:
    """A role-wide mistake is reported once, not once per member."""
    mesh = Mesh("vpn").controller("a", endpoint="a.example").controller("b", endpoint="b.example")
    for index in range(30):
        mesh.peer(f"peer{index}")
    mesh.role_settings["peer"] = {"controller": "c", "keepalive": "often"}
    problems = problems_of(mesh, tmp_path)
    assert len(problems) == 2, problems
    assert_mentions(problems[0], "role 'peer' (machines peer0, peer1, peer10, peer11, peer12 and")
    assert any("roles.peer.settings.controller" in problem for problem in problems)


def test_missing_values_point_at_the_inventory_and_vars_dir(tmp_path: Path) -> None:
    mesh = spec_mesh()
    set_value("peer2", "suffix", None)(mesh)
    inventory = mesh.write(tmp_path)
    (problem,) = run_planner([inventory], tmp_path)["problems"]
    command = f"clan-wireguard vars generate --inventory {inventory} --vars-dir {tmp_path}"
    assert_mentions(problem, command + ")")
    # The advice works: running it leaves nothing to report.
    subprocess.run([*command.split(), "--quiet"], check=True)
    assert run_planner([inventory], tmp_path)["problems"] == []


def test_inventory_file_problems(tmp_path: Path) -> None:
    mesh = spec_mesh()
    inventory = mesh.write(tmp_path)
    copy = tmp_path / "copy.json"
    copy.write_text(inventory.read_text())
    unnamed = tmp_path / "unnamed.json"
    unnamed.write_text(json.dumps({"roles": {}}))
    output = run_planner([inventory, copy, unnamed, tmp_path / "absent.json"], tmp_path)
    assert output["machines"] == {}
    problems = output["problems"]
    assert any(str(tmp_path / "absent.json") in p and "no such file" in p for p in problems)
    assert any(str(unnamed) in p and '"instanceName"' in p for p in problems)
    assert any(
        "wireguard instance 'vpn'" in p and "several inventory files" in p and str(copy) in p
        for p in problems
    )


def test_unknown_machine_asked_for(tmp_path: Path) -> None:
    mesh = spec_mesh()
    output = run_planner([mesh.write(tmp_path)], tmp_path, ["peer1", "nobody"])
    assert output["machines"] == {}
    (problem,) = output["problems"]
    assert_mentions(problem, "machine 'nobody'", "'vpn'", "roles.peer.machines")


ODD_INVENTORIES: list[JSON] = [
    None,
    5,
    "vpn",
    [],
    {"instanceName": None},
    {"instanceName": ["vpn"]},
    {"instanceName": "vpn"},
    {"instanceName": "vpn", "roles": None},
    {"instanceName": "vpn", "roles": []},
    {"instanceName": "vpn", "roles": {"controller": 1, "peer": "x", "admin": {}}},
    {"instanceName": "vpn", "roles": {"controller": {"machines": [], "settings": []}}},
    {"instanceName": "vpn", "roles": {"controller": {"machines": {"c": None, "d": []}}}},
    {"instanceName": "vpn", "roles": {"controller": {"machines": {"c": {"settings": 7}}}}},
    {
        "instanceName": "vpn",
        "roles": {
            "controller": {
                "settings": {"endpoint": [], "port": {}, "mtu": "x", "domain": 3},
                "machines": {"c": {"settings": {"endpoint": None, "extra": True}, "tags": 1}},
            },
            "peer": {
                "settings": {"controller": 3.5, "keepalive": True},
                "machines": {"p": {"settings": {"controller": None, "port": None}}},
            },
        },
    },
    {"instanceName": "", "roles": {"controller": {"machines": {"": {}}}}},
    {"instanceName": "x" * 300, "roles": {"peer": {"machines": {"p q": {}}}}},
]


@pytest.mark.parametrize("inventory", ODD_INVENTORIES, ids=lambda value: json.dumps(value)[:40])
def test_odd_inventories_give_problems_not_errors(tmp_path: Path, inventory: JSON) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    output = run_planner([path], tmp_path)
    assert output["machines"] == {}
    assert output["problems"]
    for problem in output["problems"]:
        assert "\n" not in problem
        assert problem.startswith(("wireguard instance '", "inventory file ", "machine '"))


def test_odd_public_values_give_problems_not_errors(tmp_path: Path) -> None:
    """Public values that are directories, empty files, or other types."""
    mesh = spec_mesh()
    set_value("peer1", "suffix", "")(mesh)
    set_value("peer2", "publickey", "\n\n")(mesh)
    inventory = mesh.write(tmp_path)
    # A value that is a directory instead of a file: treated as missing.
    value = tmp_path / "vars/per-machine/peer3/wireguard-network-vpn/suffix/value"
    value.unlink()
    value.mkdir()
    problems = run_planner([inventory], tmp_path)["problems"]
    assert [p.split(":")[0] for p in problems] == [
        "wireguard instance 'vpn', machine 'peer1'",
        "wireguard instance 'vpn', machine 'peer2'",
        "wireguard instance 'vpn', machine 'peer3'",
    ]
    attrs_problems = evaluate_nix(
        """(planner.planInstances {
          instances.vpn.roles.controller.machines.c.settings.endpoint = "c.example";
          publicValue = planner.publicValuesFromAttrs {
            c.wireguard-keys-vpn.publickey = 5;
            c.wireguard-network-vpn = [ ];
          };
        }).problems"""
    )
    assert len(attrs_problems) == 2
    assert "wireguard-keys-vpn/publickey 5 is not a WireGuard public key" in attrs_problems[0]
    assert "wireguard-network-vpn/prefix is missing" in attrs_problems[1]


# Keys the planner reads, so generated inventories reach deep into it.
VOCABULARY = [
    "roles",
    "controller",
    "peer",
    "machines",
    "settings",
    "endpoint",
    "port",
    "keepalive",
    "domain",
    "mtu",
    "m1",
    "m2",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.sampled_from(["", "m1", "m2", "vpn.example.com", "fd00::1", "[::1]", "0:0:0:1"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(VOCABULARY), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(roles=json_values)
def test_any_json_gives_problems_or_plans_never_an_error(tmp_path: Path, roles: JSON) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"instanceName": "vpn", "roles": roles}))
    output = run_planner([path], tmp_path)
    assert output["problems"] or output["machines"] == {}
    for problem in output["problems"]:
        assert "\n" not in problem
