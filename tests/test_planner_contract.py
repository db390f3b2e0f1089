"""The planner against its neighbours: values written by the Python generators
(and by clan-core's allocator) are read unchanged, and ``evaluate_plans``
turns the planner's output into the typed plans the tools use.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clan_wireguard.errors import UserError
from clan_wireguard.plan import Plan, PlanSet, evaluate_plans
from command_line import run_clan_wireguard
from planner_mesh import (
    JSON,
    Mesh,
    instance_network,
    plan_mesh,
    requires_nix,
    run_planner,
    spec_mesh,
)

pytestmark = [pytest.mark.nix, requires_nix]


def stored(vars_dir: Path, machine: str, generator: str, file: str) -> str:
    path = vars_dir / "vars" / "per-machine" / machine / generator / file / "value"
    return path.read_text()


def spec_inventory(tmp_path: Path) -> Path:
    """The spec's instance as an inventory file, without any vars."""
    path = tmp_path / "vpn.json"
    path.write_text(json.dumps(spec_mesh().inventory()))
    return path


def check_values_used_unchanged(vars_dir: Path, plans: JSON) -> None:
    """Every prefix, suffix and key in the plans is the stored text, unchanged."""
    controllers = ["controller1", "controller2"]
    prefixes = {c: stored(vars_dir, c, "wireguard-network-vpn", "prefix") for c in controllers}
    keys = {
        machine: stored(vars_dir, machine, "wireguard-keys-vpn", "publickey").strip()
        for machine in plans
    }
    for controller in controllers:
        assert plans[controller]["vpn"]["addresses"] == [f"{prefixes[controller]}::1/40"]
    for peer in ("peer1", "peer2", "peer3"):
        suffix = stored(vars_dir, peer, "wireguard-network-vpn", "suffix")
        assert plans[peer]["vpn"]["addresses"] == [
            f"{prefixes[controller]}:{suffix}/56" for controller in controllers
        ]
    for machine, by_instance in plans.items():
        for entry in by_instance["vpn"]["peers"]:
            assert entry["publicKey"] == keys[entry["name"]]
        assert machine in keys


def test_values_of_clan_wireguard_vars_generate(tmp_path: Path) -> None:
    inventory = spec_inventory(tmp_path)
    vars_dir = tmp_path / "mesh"
    result = run_clan_wireguard(
        "vars", "generate", "--inventory", inventory, "--vars-dir", vars_dir, "--quiet"
    )
    assert result.returncode == 0, result.stderr
    output = run_planner([inventory], vars_dir)
    assert output["problems"] == []
    check_values_used_unchanged(vars_dir, output["machines"])


def test_values_of_the_generator_commands(tmp_path: Path) -> None:
    """Each generator run as clan runs it, its files stored where clan keeps them."""
    inventory = spec_inventory(tmp_path)
    vars_dir = tmp_path / "clan"
    taken: dict[str, list[str]] = {"controller": [], "peer": []}
    members = {
        "controller1": "controller",
        "controller2": "controller",
        "peer1": "peer",
        "peer2": "peer",
        "peer3": "peer",
    }
    for machine, role in members.items():
        for generator, command in (
            ("wireguard-keys-vpn", ["keys"]),
            (
                "wireguard-network-vpn",
                [role, "--instance", "vpn", "--machine", machine]
                + (["--taken", *taken[role]] if taken[role] else []),
            ),
        ):
            out = tmp_path / "out" / machine / generator
            out.mkdir(parents=True)
            result = run_clan_wireguard("generate", *command, "--out", out)
            assert result.returncode == 0, result.stderr
            for file in out.iterdir():
                if file.name == "privatekey":
                    continue
                target = vars_dir / "vars" / "per-machine" / machine / generator / file.name
                target.mkdir(parents=True)
                # Byte for byte, as clan stores generator output.
                (target / "value").write_bytes(file.read_bytes())
                if file.name in ("prefix", "suffix"):
                    taken[role].append(file.read_text())
    output = run_planner([inventory], vars_dir)
    assert output["problems"] == []
    check_values_used_unchanged(vars_dir, output["machines"])


def test_values_of_clan_core_allocator(tmp_path: Path) -> None:
    """clan-core's own allocator (a clan migrating to this service) is accepted."""
    clan_core = os.environ.get("CLAN_CORE_PATH")
    if not clan_core:
        pytest.skip("CLAN_CORE_PATH is not set (a clan-core checkout, for its ipv6_allocator.py)")
    allocator = Path(clan_core) / "clanServices" / "wireguard" / "ipv6_allocator.py"
    mesh = spec_mesh()
    inventory = mesh.write(tmp_path)
    for machine in ["controller1", "controller2", "peer1", "peer2", "peer3"]:
        role = "controller" if machine in mesh.controllers else "peer"
        out = tmp_path / "vars/per-machine" / machine / "wireguard-network-vpn"
        file = "prefix" if role == "controller" else "suffix"
        (out / file / "value").unlink()
        subprocess.run(
            [sys.executable, str(allocator), str(out / file), "vpn", role, machine],
            check=True,
            capture_output=True,
        )
        (out / file / file).rename(out / file / "value")
    output = run_planner([inventory], tmp_path)
    assert output["problems"] == []
    network = instance_network("vpn")
    for controller in ("controller1", "controller2"):
        text = stored(tmp_path, controller, "wireguard-network-vpn", "prefix")
        subnet = ipaddress.IPv6Network(f"{text}::/56")
        assert subnet.subnet_of(network)
        (address,) = output["machines"][controller]["vpn"]["addresses"]
        assert ipaddress.IPv6Interface(address) == ipaddress.IPv6Interface(
            (subnet.network_address + 1, 40)
        )


def check_plan_matches_json(plan: Plan, data: JSON) -> None:
    assert plan.raw == data
    assert plan.machine == data["machine"]
    assert plan.addresses == tuple(data["addresses"])
    assert [peer.name for peer in plan.peers] == [peer["name"] for peer in data["peers"]]
    assert [peer.allowed_ips for peer in plan.peers] == [
        tuple(peer["allowedIPs"]) for peer in data["peers"]
    ]
    assert plan.listen_port == data["listenPort"]
    assert plan.allowed_udp_ports == tuple(data["firewall"]["allowedUDPPorts"])
    assert plan.private_key_generator == data["privateKey"]["generator"]
    assert dict(plan.hosts) == {address: tuple(names) for address, names in data["hosts"].items()}
    if data["failover"] is None:
        assert plan.failover is None
    else:
        assert plan.failover is not None
        assert plan.failover.designated == data["failover"]["designated"]
        assert [c.address for c in plan.failover.controllers] == [
            c["address"] for c in data["failover"]["controllers"]
        ]


def fixtures() -> dict[str, list[Mesh]]:
    scale = Mesh("fleet")
    for name in ("a", "b", "c"):
        scale.controller(name, endpoint=f"{name}.example.net")
    for index in range(50):
        scale.peer(f"node{index}", controller="abc"[index % 3], port=40000 + index)
    settings = spec_mesh()
    settings.role_settings = {"peer": {"keepalive": None, "mtu": 1400}}
    return {
        "spec": [spec_mesh()],
        "single controller": [Mesh("home").controller("gw", endpoint="2001:db8::1").peer("pc")],
        "three controllers, fifty peers": [scale],
        "settings": [settings],
        "two instances": [
            spec_mesh(),
            Mesh("corp").controller("peer1", endpoint="p1.example", port=51821).peer("peer2"),
        ],
    }


@pytest.mark.parametrize("fixture", fixtures().keys())
def test_evaluate_plans_reads_every_fixture(tmp_path: Path, fixture: str) -> None:
    meshes = fixtures()[fixture]
    inventories = [mesh.write(tmp_path) for mesh in meshes]
    expected = run_planner(inventories, tmp_path)
    assert expected["problems"] == []
    plan_set = evaluate_plans(inventories, tmp_path)
    assert isinstance(plan_set, PlanSet)
    assert plan_set.problems == ()
    plan_set.require_no_problems()
    assert {m: sorted(p) for m, p in plan_set.plans.items()} == {
        m: sorted(p) for m, p in expected["machines"].items()
    }
    for machine, by_instance in plan_set.plans.items():
        for instance, plan in by_instance.items():
            check_plan_matches_json(plan, expected["machines"][machine][instance])
            # What the agent reads back from disk is the same plan.
            path = tmp_path / f"{machine}-{instance}.json"
            path.write_text(plan.to_json())
            assert Plan.load(path) == plan

    some = sorted(expected["machines"])[:2]
    assert sorted(evaluate_plans(inventories, tmp_path, some).plans) == some


def test_evaluate_plans_reports_problems(tmp_path: Path) -> None:
    mesh = spec_mesh()
    mesh.peers["peer1"].pop("controller")
    plan_set = evaluate_plans([mesh.write(tmp_path)], tmp_path)
    assert plan_set.plans == {}
    (problem,) = plan_set.problems
    assert "machine 'peer1'" in problem
    with pytest.raises(UserError, match=r"settings\.controller"):
        plan_set.require_no_problems()


def test_plans_carry_no_secret(tmp_path: Path) -> None:
    """Private keys stay in the vars directory; plans only say where they are."""
    inventory = spec_inventory(tmp_path)
    vars_dir = tmp_path / "mesh"
    result = run_clan_wireguard(
        "vars", "generate", "--inventory", inventory, "--vars-dir", vars_dir
    )
    assert result.returncode == 0, result.stderr
    text = json.dumps(plan_mesh_from(inventory, vars_dir))
    secrets = list((vars_dir / "secrets").rglob("value"))
    assert len(secrets) == 5
    for secret in secrets:
        assert secret.read_text().strip() not in text


def plan_mesh_from(inventory: Path, vars_dir: Path) -> JSON:
    output = run_planner([inventory], vars_dir)
    assert output["problems"] == []
    return output


def test_plan_mesh_helper_agrees_with_evaluate_plans(tmp_path: Path) -> None:
    """The test helper and the tools' entry point see the same planner."""
    mesh = spec_mesh()
    machines = plan_mesh(mesh, tmp_path)["machines"]
    plan_set = evaluate_plans([tmp_path / "vpn.json"], tmp_path)
    assert {m: {i: p.raw for i, p in by.items()} for m, by in plan_set.plans.items()} == machines
