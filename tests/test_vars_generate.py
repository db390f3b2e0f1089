"""``clan-wireguard vars generate``: a whole instance's vars in clan's layout."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clan_wireguard.addressing import InstanceNetwork, parse_prefix, parse_suffix
from clan_wireguard.errors import UserError
from clan_wireguard.inventory import Role, load_inventory
from clan_wireguard.plan import evaluate_plans
from clan_wireguard.vars_store import (
    Action,
    generate_instance,
    public_value_path,
    secret_path,
)
from command_line import assert_one_line_error, directory_snapshot, run_clan_wireguard

INVENTORY: dict[str, Any] = {
    "instanceName": "vpn",
    "roles": {
        "controller": {
            "settings": {"port": 51820},
            "machines": {
                "ctrl1": {"settings": {"endpoint": "192.168.1.1"}},
                "ctrl2": {"settings": {"endpoint": "192.168.1.2", "port": 51821}},
            },
        },
        "peer": {
            "machines": {
                "peer1": {"settings": {"controller": "ctrl1"}},
                "peer2": {"settings": {"controller": "ctrl2"}},
            }
        },
    },
}
CONTROLLERS = ["ctrl1", "ctrl2"]
PEERS = ["peer1", "peer2"]


def write_inventory(directory: Path, inventory: Any, name: str = "vpn.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(inventory))
    return path


def generate(inventory: Path, vars_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_clan_wireguard(
        "vars", "generate", "--inventory", inventory, "--vars-dir", vars_dir, *extra
    )


def expected_files(machine: str, role: str) -> set[str]:
    network_file = "prefix" if role == "controller" else "suffix"
    return {
        f"vars/per-machine/{machine}/wireguard-keys-vpn/publickey/value",
        f"vars/per-machine/{machine}/wireguard-network-vpn/{network_file}/value",
        f"secrets/per-machine/{machine}/wireguard-keys-vpn/privatekey/value",
    }


def files_below(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()}


def wg_pubkey(private_key: bytes) -> bytes:
    return subprocess.run(
        ["wg", "pubkey"], input=private_key, capture_output=True, check=True
    ).stdout


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    return write_inventory(tmp_path, INVENTORY)


def test_layout_modes_and_values(tmp_path: Path, inventory: Path) -> None:
    vars_dir = tmp_path / "vars"
    result = generate(inventory, vars_dir)
    assert result.returncode == 0, result.stderr
    for machine in [*CONTROLLERS, *PEERS]:
        assert machine in result.stdout

    expected = set().union(
        *(expected_files(machine, "controller") for machine in CONTROLLERS),
        *(expected_files(machine, "peer") for machine in PEERS),
    )
    assert files_below(vars_dir) == expected

    network = InstanceNetwork.for_instance("vpn")
    for path in vars_dir.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        relative = path.relative_to(vars_dir)
        if relative.parts[0] == "secrets":
            assert mode == (0o700 if path.is_dir() else 0o600), relative
        elif path.is_file():
            assert mode == 0o644, relative
    assert stat.S_IMODE((vars_dir / "secrets").stat().st_mode) == 0o700

    for machine in [*CONTROLLERS, *PEERS]:
        private_key = secret_path(vars_dir, machine, "wireguard-keys-vpn", "privatekey")
        public_key = public_value_path(vars_dir, machine, "wireguard-keys-vpn", "publickey")
        assert wg_pubkey(private_key.read_bytes()) == public_key.read_bytes()
    for machine in CONTROLLERS:
        text = public_value_path(vars_dir, machine, "wireguard-network-vpn", "prefix").read_text()
        assert str(parse_prefix(text)) == text
        assert network.contains(parse_prefix(text))
    for machine in PEERS:
        text = public_value_path(vars_dir, machine, "wireguard-network-vpn", "suffix").read_text()
        assert str(parse_suffix(text)) == text
        assert parse_suffix(text).peer_id != 0


def test_a_second_run_keeps_every_value_byte_for_byte(tmp_path: Path, inventory: Path) -> None:
    vars_dir = tmp_path / "vars"
    assert generate(inventory, vars_dir).returncode == 0
    before = directory_snapshot(vars_dir)
    result = generate(inventory, vars_dir)
    assert result.returncode == 0, result.stderr
    assert "0 generated, 0 regenerated, 8 kept" in result.stdout
    assert directory_snapshot(vars_dir) == before


def test_quiet_prints_nothing(tmp_path: Path, inventory: Path) -> None:
    result = generate(inventory, tmp_path / "vars", "--quiet")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_regenerate_changes_that_machine_only(tmp_path: Path, inventory: Path) -> None:
    vars_dir = tmp_path / "vars"
    assert generate(inventory, vars_dir).returncode == 0
    before = directory_snapshot(vars_dir)
    result = generate(inventory, vars_dir, "--regenerate", "ctrl2", "--regenerate", "peer1")
    assert result.returncode == 0, result.stderr
    after = directory_snapshot(vars_dir)
    assert after.keys() == before.keys()
    changed = {path for path in after if after[path][1] is not None and after[path] != before[path]}
    assert changed == expected_files("ctrl2", "controller") | expected_files("peer1", "peer")


def test_a_machine_that_changes_role_gets_the_new_roles_value(
    tmp_path: Path, inventory: Path
) -> None:
    vars_dir = tmp_path / "vars"
    assert generate(inventory, vars_dir).returncode == 0
    public_key = public_value_path(vars_dir, "peer2", "wireguard-keys-vpn", "publickey")
    key_before = public_key.read_bytes()
    moved = json.loads(json.dumps(INVENTORY))
    del moved["roles"]["peer"]["machines"]["peer2"]
    moved["roles"]["controller"]["machines"]["peer2"] = {"settings": {"endpoint": "10.0.0.3"}}
    result = generate(write_inventory(tmp_path, moved, "moved.json"), vars_dir)
    assert result.returncode == 0, result.stderr
    assert expected_files("peer2", "controller") <= files_below(vars_dir)
    assert "vars/per-machine/peer2/wireguard-network-vpn/suffix/value" not in files_below(vars_dir)
    assert public_key.read_bytes() == key_before


def test_an_incomplete_key_pair_is_generated_again(tmp_path: Path, inventory: Path) -> None:
    vars_dir = tmp_path / "vars"
    assert generate(inventory, vars_dir).returncode == 0
    public_key = public_value_path(vars_dir, "peer1", "wireguard-keys-vpn", "publickey")
    private_key = secret_path(vars_dir, "peer1", "wireguard-keys-vpn", "privatekey")
    old_private_key = private_key.read_bytes()
    public_key.unlink()
    assert generate(inventory, vars_dir).returncode == 0
    assert private_key.read_bytes() != old_private_key
    assert wg_pubkey(private_key.read_bytes()) == public_key.read_bytes()


def write_kept_controller(vars_dir: Path, machine: str, prefix: str) -> None:
    for path, content in (
        (public_value_path(vars_dir, machine, "wireguard-network-vpn", "prefix"), prefix),
        (public_value_path(vars_dir, machine, "wireguard-keys-vpn", "publickey"), "unused\n"),
        (secret_path(vars_dir, machine, "wireguard-keys-vpn", "privatekey"), "unused\n"),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


@pytest.mark.slow
def test_new_prefixes_avoid_those_already_present(tmp_path: Path) -> None:
    # 2,500 prefixes already in use and 150 new controllers: drawn without
    # looking, about 6 would collide (none does with probability 0.25 %).
    network = InstanceNetwork.for_instance("vpn")
    vars_dir = tmp_path / "vars"
    kept = {f"old{index}": network.prefix(index * 26) for index in range(2500)}
    for machine, prefix in kept.items():
        write_kept_controller(vars_dir, machine, str(prefix))
    machines: dict[str, dict[str, Any]] = {
        machine: {} for machine in [*kept, *(f"new{index}" for index in range(150))]
    }
    inventory = {"instanceName": "vpn", "roles": {"controller": {"machines": machines}}}
    result = generate(write_inventory(tmp_path, inventory), vars_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    prefixes = [
        parse_prefix(public_value_path(vars_dir, m, "wireguard-network-vpn", "prefix").read_text())
        for m in machines
    ]
    assert len(set(prefixes)) == len(prefixes)
    assert {machine: prefixes[index] for index, machine in enumerate(kept)} == kept


BAD_INVENTORIES: list[tuple[str, str, list[str]]] = [
    # (file content, what it shows, fragments of the error line)
    ("", "empty file", ["not valid JSON"]),
    ("{", "broken JSON", ["not valid JSON"]),
    ("[]", "a list", ["JSON object", "list"]),
    ('{"roles": {}}', "no instanceName", ["instanceName", "missing"]),
    ('{"instanceName": 7, "roles": {}}', "instanceName a number", ["instanceName", "string"]),
    ('{"instanceName": "My_VPN", "roles": {}}', "bad instance name", ["instanceName", "'My_VPN'"]),
    (
        '{"instanceName": "a-very-long-name", "roles": {}}',
        "instance name too long for an interface",
        ["instanceName", "15"],
    ),
    (
        '{"instanceName": "vpn", "roles": {"server": {}}}',
        "unknown role",
        ["'vpn'", "roles.server", "controller and peer"],
    ),
    (
        '{"instanceName": "vpn", "roles": {"peer": {"machine": {}}}}',
        "misspelt key",
        ["'vpn'", "roles.peer.machine", "allowed here: machines, settings"],
    ),
    (
        '{"instanceName": "vpn", "roles": {"peer": {"tags": ["all"]}}}',
        "tags",
        ["'vpn'", "roles.peer.tags", "tags are not resolved"],
    ),
    (
        '{"instanceName": "vpn", "roles": {"peer": {"machines": {"Laptop": {}}}}}',
        "bad machine name",
        ["'vpn'", "roles.peer.machines", "'Laptop'"],
    ),
    (
        '{"instanceName": "vpn", "roles": {"peer": {"machines": {"": {}}}}}',
        "empty machine name",
        ["'vpn'", "roles.peer.machines", "empty"],
    ),
    (
        '{"instanceName": "vpn", "roles": {"controller": {"machines": {"both": {}}},'
        ' "peer": {"machines": {"both": {}}}}}',
        "a machine in both roles",
        ["'vpn'", "machine 'both'", "roles.peer.machines.both", "roles.controller.machines"],
    ),
    (
        '{"instanceName": "vpn", "roles": {"peer": {"machines": {"p1": {"settings": []}}}}}',
        "settings not an object",
        ["'vpn'", "machine 'p1'", "roles.peer.machines.p1.settings", "JSON object"],
    ),
    (
        '{"instanceName": "vpn", "roles": {"peer": {"machines": {"p1": {"setting": {}}}}}}',
        "misspelt settings",
        ["'vpn'", "roles.peer.machines.p1.setting"],
    ),
    (
        '{"instanceName": "vpn", "roles": {"peer": {"machines": {"p1": {}, "p1": {}}}}}',
        "a machine listed twice",
        ["'p1'", "twice"],
    ),
    ('{"instanceName": "vpn", "roles": {}}', "no machines", ["'vpn'", "no machines"]),
    ('{"instanceName": "vpn", "role": {}}', "misspelt roles", ["role", "unknown key"]),
]


@pytest.mark.parametrize(
    ("content", "fragments"),
    [(content, fragments) for content, _, fragments in BAD_INVENTORIES],
    ids=[shows for _, shows, _ in BAD_INVENTORIES],
)
def test_bad_inventory_is_one_line_and_writes_nothing(
    tmp_path: Path, content: str, fragments: list[str]
) -> None:
    inventory = tmp_path / "bad.json"
    inventory.write_text(content)
    vars_dir = tmp_path / "vars"
    result = generate(inventory, vars_dir)
    assert_one_line_error(result, str(inventory), *fragments)
    assert not vars_dir.exists()


def test_unknown_regenerate_machine_is_refused_before_writing(
    tmp_path: Path, inventory: Path
) -> None:
    vars_dir = tmp_path / "vars"
    result = generate(inventory, vars_dir, "--regenerate", "ctrl3")
    assert_one_line_error(result, "'vpn'", "--regenerate", "'ctrl3'", "ctrl1, ctrl2, peer1")
    assert not vars_dir.exists()


def test_missing_inventory_and_vars_dir_that_is_a_file(tmp_path: Path, inventory: Path) -> None:
    missing = tmp_path / "missing.json"
    assert_one_line_error(generate(missing, tmp_path / "vars"), str(missing), "cannot read")
    assert not (tmp_path / "vars").exists()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert_one_line_error(generate(inventory, a_file), "'vpn'", "--vars-dir", "not a directory")
    assert a_file.read_text() == "x"


def test_a_malformed_kept_value_names_the_machine_and_the_fix(
    tmp_path: Path, inventory: Path
) -> None:
    vars_dir = tmp_path / "vars"
    assert generate(inventory, vars_dir).returncode == 0
    prefix = public_value_path(vars_dir, "ctrl2", "wireguard-network-vpn", "prefix")
    prefix.write_text("fd51:19c1:3b:f701")
    # ctrl1 must be generated again, so the run has something to write.
    shutil.rmtree(vars_dir / "vars" / "per-machine" / "ctrl1")
    before = directory_snapshot(vars_dir)
    result = generate(inventory, vars_dir)
    assert_one_line_error(result, "'vpn'", "'ctrl2'", str(prefix), "--regenerate ctrl2")
    assert directory_snapshot(vars_dir) == before
    result = generate(inventory, vars_dir, "--regenerate", "ctrl2")
    assert result.returncode == 0, result.stderr
    assert str(parse_prefix(prefix.read_text())) == prefix.read_text()


def test_python_interface(tmp_path: Path, inventory: Path) -> None:
    loaded = load_inventory(inventory)
    assert loaded.instance == "vpn"
    # Role settings overlaid by the machine's own.
    assert loaded.controllers["ctrl1"] == {"port": 51820, "endpoint": "192.168.1.1"}
    assert loaded.controllers["ctrl2"] == {"port": 51821, "endpoint": "192.168.1.2"}
    assert loaded.peers["peer1"] == {"controller": "ctrl1"}
    assert loaded.machines == ["ctrl1", "ctrl2", "peer1", "peer2"]
    assert loaded.role_of("peer2") is Role.PEER

    vars_dir = tmp_path / "vars"
    report = generate_instance(inventory, vars_dir)
    assert report.count(Action.GENERATED) == 8
    for outcome in report.outcomes:
        for file, value in outcome.public_values.items():
            path = public_value_path(vars_dir, outcome.machine, outcome.generator, file)
            assert path.read_text().strip() == value
    report = generate_instance(inventory, vars_dir, regenerate=["peer2"])
    assert report.count(Action.REGENERATED) == 2
    assert report.count(Action.KEPT) == 6
    with pytest.raises(UserError, match="--regenerate 'nobody'"):
        generate_instance(inventory, vars_dir, regenerate=["nobody"])


@pytest.mark.nix
def test_the_planner_plans_from_generated_vars(tmp_path: Path, inventory: Path) -> None:
    vars_dir = tmp_path / "vars"
    report = generate_instance(inventory, vars_dir)
    values = {
        (outcome.machine, file): value
        for outcome in report.outcomes
        for file, value in outcome.public_values.items()
    }
    plans = evaluate_plans([inventory], vars_dir)
    assert plans.problems == ()
    peer1 = plans.plans["peer1"]["vpn"]
    expected = {
        f"{values[(controller, 'prefix')]}:{values[('peer1', 'suffix')]}/56"
        for controller in CONTROLLERS
    }
    assert set(peer1.addresses) == expected
    ctrl1_keys = {peer.name: peer.public_key for peer in plans.plans["ctrl1"]["vpn"].peers}
    assert ctrl1_keys["peer1"] == values[("peer1", "publickey")]
