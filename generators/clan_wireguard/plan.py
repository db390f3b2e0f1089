"""Plans as Python sees them: typed views of the planner's JSON output.

The planner (``modules/planner``, pure Nix) is the only place that decides
addresses, peers and routes; this module only asks it, through
``nix-instantiate --eval --strict --json``, and gives the answer types.
The shape is documented in ``docs/plan.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clan_wireguard.errors import UserError

# Where the Nix sources live. An installed package (the flake's) sets the
# variable; a checkout finds them beside the Python package.
NIX_DIR_VARIABLE = "CLAN_WIREGUARD_NIX_DIR"


def nix_dir() -> Path:
    configured = os.environ.get(NIX_DIR_VARIABLE)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "modules"


@dataclass(frozen=True)
class PlanPeer:
    name: str
    role: str
    public_key: str
    allowed_ips: tuple[str, ...]
    endpoint: str | None
    endpoint_host: str | None
    endpoint_port: int | None
    persistent_keepalive: int | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanPeer:
        return cls(
            name=data["name"],
            role=data["role"],
            public_key=data["publicKey"],
            allowed_ips=tuple(data["allowedIPs"]),
            endpoint=data["endpoint"],
            endpoint_host=data["endpointHost"],
            endpoint_port=data["endpointPort"],
            persistent_keepalive=data["persistentKeepalive"],
        )


@dataclass(frozen=True)
class FailoverController:
    name: str
    public_key: str
    address: str
    subnet: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailoverController:
        return cls(
            name=data["name"],
            public_key=data["publicKey"],
            address=data["address"],
            subnet=data["subnet"],
        )


@dataclass(frozen=True)
class Failover:
    designated: str
    controllers: tuple[FailoverController, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Failover:
        return cls(
            designated=data["designated"],
            controllers=tuple(FailoverController.from_json(c) for c in data["controllers"]),
        )


@dataclass(frozen=True)
class Plan:
    instance: str
    machine: str
    role: str
    interface: str
    domain: str
    network: str
    listen_port: int | None
    mtu: int | None
    addresses: tuple[str, ...]
    routes: tuple[str, ...]
    peers: tuple[PlanPeer, ...]
    hosts: Mapping[str, tuple[str, ...]]
    forwarding: bool
    allowed_udp_ports: tuple[int, ...]
    private_key_generator: str
    private_key_var_file: str
    failover: Failover | None
    raw: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        failover = data.get("failover")
        return cls(
            instance=data["instance"],
            machine=data["machine"],
            role=data["role"],
            interface=data["interface"],
            domain=data["domain"],
            network=data["network"],
            listen_port=data["listenPort"],
            mtu=data["mtu"],
            addresses=tuple(data["addresses"]),
            routes=tuple(data["routes"]),
            peers=tuple(PlanPeer.from_json(p) for p in data["peers"]),
            hosts={address: tuple(names) for address, names in data["hosts"].items()},
            forwarding=bool(data["forwarding"]),
            allowed_udp_ports=tuple(data["firewall"]["allowedUDPPorts"]),
            private_key_generator=data["privateKey"]["generator"],
            private_key_var_file=data["privateKey"]["file"],
            failover=Failover.from_json(failover) if failover is not None else None,
            raw=data,
        )

    def to_json(self) -> str:
        """The plan exactly as the planner gave it (what the agent reads)."""
        return json.dumps(self.raw, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: Path) -> Plan:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"cannot read plan {path}: {error}") from error
        return cls.from_json(data)


@dataclass(frozen=True)
class PlanSet:
    """Every plan of the evaluated instances, and their problems."""

    problems: tuple[str, ...]
    # machine -> instance -> plan
    plans: Mapping[str, Mapping[str, Plan]]

    def require_no_problems(self) -> None:
        if self.problems:
            listing = "\n".join(f"  - {problem}" for problem in self.problems)
            raise UserError(f"the mesh has {len(self.problems)} problem(s):\n{listing}")


def evaluate_plans(
    inventories: Sequence[Path],
    vars_dir: Path,
    machines: Sequence[str] | None = None,
) -> PlanSet:
    """Ask the planner for the plans of ``machines`` (all when None).

    ``inventories`` are inventory files (one instance each, the format of
    ``clan-wireguard vars generate``); ``vars_dir`` holds public values in
    clan's layout, ``vars/per-machine/<machine>/<generator>/<file>/value``.
    """
    nix_instantiate = shutil.which("nix-instantiate")
    if nix_instantiate is None:
        raise UserError("nix-instantiate not found: install Nix (Debian: apt-get install nix-bin)")
    entry = nix_dir() / "planner" / "from-files.nix"
    command = [
        nix_instantiate,
        "--eval",
        "--strict",
        "--json",
        str(entry),
        "--argstr",
        "inventories",
        json.dumps([str(path.resolve()) for path in inventories]),
        "--argstr",
        "varsDir",
        str(vars_dir.resolve()),
        "--argstr",
        "machines",
        json.dumps(list(machines) if machines is not None else None),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UserError(f"the planner failed:\n{result.stderr.strip()}")
    data = json.loads(result.stdout)
    return PlanSet(
        problems=tuple(data["problems"]),
        plans={
            machine: {instance: Plan.from_json(plan) for instance, plan in by_instance.items()}
            for machine, by_instance in data["machines"].items()
        },
    )
