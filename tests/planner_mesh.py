"""Meshes for the planner's tests: inventory files and vars directories on disk,
and the planner run the way the Python tools run it (``nix-instantiate``).

Expected addresses are derived here from first principles (hashlib and
``ipaddress``), never from the planner's own code.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PLANNER_DIR = REPOSITORY / "modules" / "planner"
FROM_FILES = PLANNER_DIR / "from-files.nix"

JSON = Any

requires_nix = pytest.mark.skipif(
    shutil.which("nix-instantiate") is None, reason="nix-instantiate is not installed"
)


def instance_network(instance: str) -> ipaddress.IPv6Network:
    """The /40 of an instance: fd, then the first 3 bytes of sha256(name), then 0."""
    digest = hashlib.sha256(instance.encode()).digest()
    address = bytes([0xFD]) + digest[:3] + bytes(12)
    return ipaddress.IPv6Network((ipaddress.IPv6Address(address), 40))


def controller_subnet(instance: str, subnet_id: int) -> ipaddress.IPv6Network:
    """The /56 with the given 16-bit id inside the instance's /40."""
    base = int(instance_network(instance).network_address)
    return ipaddress.IPv6Network((base | (subnet_id << 72), 56))


def hextets(address: ipaddress.IPv6Address, count: int, start: int = 0) -> list[int]:
    words = [int(address) >> (112 - 16 * index) & 0xFFFF for index in range(8)]
    return words[start : start + count]


def four_hextets(values: list[int]) -> str:
    """Four hextets as the generators write them: lower case, no leading zeros."""
    return ":".join(f"{value:x}" for value in values)


def prefix_text(subnet: ipaddress.IPv6Network) -> str:
    return four_hextets(hextets(subnet.network_address, 4))


def random_public_key(rng: random.Random) -> str:
    # Any 32 bytes are a valid X25519 public key as far as WireGuard's
    # configuration is concerned.
    return base64.b64encode(rng.randbytes(32)).decode()


def random_suffix(rng: random.Random) -> str:
    # The first 32 bits must be non-zero (and differ between peers).
    return four_hextets([rng.randrange(1, 0x10000)] + [rng.randrange(0x10000) for _ in range(3)])


def peer_address(subnet: ipaddress.IPv6Network, suffix: str) -> ipaddress.IPv6Address:
    suffix_value = int(ipaddress.IPv6Address("::" + suffix))
    return ipaddress.IPv6Address(int(subnet.network_address) | suffix_value)


@dataclass
class Mesh:
    """One instance being built: members, settings and public values."""

    instance: str
    seed: int = 1
    controllers: dict[str, dict[str, JSON]] = field(default_factory=dict)
    peers: dict[str, dict[str, JSON]] = field(default_factory=dict)
    role_settings: dict[str, dict[str, JSON]] = field(default_factory=dict)
    # (machine, generator, file) -> value as stored; None removes it.
    public: dict[tuple[str, str, str], str | None] = field(default_factory=dict)
    subnets: dict[str, ipaddress.IPv6Network] = field(default_factory=dict)
    suffixes: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.instance}/{self.seed}")
        self.used_subnet_ids: set[int] = set()

    @property
    def keys_generator(self) -> str:
        return f"wireguard-keys-{self.instance}"

    @property
    def network_generator(self) -> str:
        return f"wireguard-network-{self.instance}"

    def set_public(self, machine: str, generator: str, file: str, value: str | None) -> None:
        self.public[(machine, generator, file)] = value

    def _key(self, machine: str, key: str | None) -> None:
        key = key if key is not None else random_public_key(self.rng)
        self.keys[machine] = key
        # As `wg pubkey` writes it.
        self.set_public(machine, self.keys_generator, "publickey", key + "\n")

    def controller(
        self,
        name: str,
        endpoint: str | None = None,
        subnet_id: int | None = None,
        key: str | None = None,
        **settings: JSON,
    ) -> Mesh:
        if subnet_id is None:
            subnet_id = self.rng.randrange(1, 0x10000)
            while subnet_id in self.used_subnet_ids:
                subnet_id = self.rng.randrange(1, 0x10000)
        self.used_subnet_ids.add(subnet_id)
        subnet = controller_subnet(self.instance, subnet_id)
        self.subnets[name] = subnet
        if endpoint is not None:
            settings["endpoint"] = endpoint
        self.controllers[name] = settings
        self._key(name, key)
        self.set_public(name, self.network_generator, "prefix", prefix_text(subnet))
        return self

    def peer(
        self,
        name: str,
        controller: str | None = None,
        suffix: str | None = None,
        key: str | None = None,
        **settings: JSON,
    ) -> Mesh:
        suffix = suffix if suffix is not None else random_suffix(self.rng)
        self.suffixes[name] = suffix
        if controller is not None:
            settings["controller"] = controller
        self.peers[name] = settings
        self._key(name, key)
        self.set_public(name, self.network_generator, "suffix", suffix)
        return self

    def inventory(self) -> dict[str, JSON]:
        roles: dict[str, JSON] = {}
        for role, machines in (("controller", self.controllers), ("peer", self.peers)):
            entry: dict[str, JSON] = {
                "machines": {name: {"settings": settings} for name, settings in machines.items()}
            }
            if role in self.role_settings:
                entry["settings"] = self.role_settings[role]
            roles[role] = entry
        return {"instanceName": self.instance, "roles": roles}

    def write(self, root: Path, inventory: JSON | None = None) -> Path:
        """Write the inventory file and the public values below ``root``."""
        root.mkdir(parents=True, exist_ok=True)
        path = root / f"{self.instance}.json"
        path.write_text(json.dumps(self.inventory() if inventory is None else inventory))
        for (machine, generator, file), value in self.public.items():
            target = root / "vars" / "per-machine" / machine / generator / file / "value"
            if value is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(value)
        return path


def evaluation(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    """``nix-instantiate --eval --strict --json`` with ``arguments``, as the tools run it."""
    return subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )


def evaluate_json(arguments: list[str]) -> JSON:
    """The value of an evaluation that must succeed."""
    result = evaluation(arguments)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def evaluation_failure(arguments: list[str]) -> str:
    """The error of an evaluation that must fail."""
    result = evaluation(arguments)
    assert result.returncode != 0, result.stdout
    return result.stderr


def run_planner(
    inventories: list[Path], vars_dir: Path, machines: list[str] | None = None
) -> dict[str, JSON]:
    """The planner's JSON output, from the command line ``evaluate_plans`` uses."""
    output: dict[str, JSON] = evaluate_json(
        [
            str(FROM_FILES),
            "--argstr",
            "inventories",
            json.dumps([str(path) for path in inventories]),
            "--argstr",
            "varsDir",
            str(vars_dir),
            "--argstr",
            "machines",
            json.dumps(machines),
        ]
    )
    return output


def plan_mesh(mesh: Mesh, root: Path, machines: list[str] | None = None) -> dict[str, JSON]:
    """Write one mesh and plan it; the plans must come without problems."""
    output = run_planner([mesh.write(root)], root, machines)
    assert output["problems"] == []
    return output


def problems_of(mesh: Mesh, root: Path, inventory: JSON | None = None) -> list[str]:
    """Write one mesh and return the planner's problems (there must be some)."""
    output = run_planner([mesh.write(root, inventory)], root)
    assert output["problems"], "expected problems"
    assert output["machines"] == {}, "plans must not be given with problems"
    problems: list[str] = output["problems"]
    return problems


def evaluate_nix(expression: str) -> JSON:
    """Evaluate a Nix expression with ``planner`` bound to the library."""
    return evaluate_json(["--expr", f"let planner = import {PLANNER_DIR}; in {expression}"])


def spec_mesh() -> Mesh:
    """The spec's example: two controllers, three peers."""
    return (
        Mesh("vpn")
        .controller("controller1", endpoint="vpn1.example.com")
        .controller("controller2", endpoint="vpn2.example.com")
        .peer("peer1", controller="controller1")
        .peer("peer2", controller="controller2")
        .peer("peer3", controller="controller1")
    )
