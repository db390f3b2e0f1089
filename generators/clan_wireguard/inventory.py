"""Inventory files: one clan instance, as written in clan.nix, plus its name.

Example (JSON)::

    {
      "instanceName": "vpn",
      "roles": {
        "controller": {
          "settings": {"port": 51820},
          "machines": {"ctrl1": {"settings": {"endpoint": "192.168.1.1"}}}
        },
        "peer": {"machines": {"peer1": {"settings": {"controller": "ctrl1"}}}}
      }
    }

Either role may be absent, and so may ``settings`` anywhere. A key
``module`` (as in clan.nix) is accepted and ignored. Only what generating vars
needs is checked here: names, the shape, and that no machine takes both roles.
Settings are checked by the planner, which also reads this file.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clan_wireguard.errors import UserError
from clan_wireguard.names import check_instance_name, check_machine_name


class Role(enum.Enum):
    CONTROLLER = "controller"
    PEER = "peer"


@dataclass(frozen=True)
class Inventory:
    """One instance: its name and its members' settings.

    A member's settings are its role's settings overlaid with its own
    (the machine's value wins), as clan merges them.
    """

    instance: str
    controllers: Mapping[str, Mapping[str, Any]]
    peers: Mapping[str, Mapping[str, Any]]
    path: Path

    @property
    def machines(self) -> list[str]:
        """Every member, sorted by name."""
        return sorted([*self.controllers, *self.peers])

    def role_of(self, machine: str) -> Role:
        if machine in self.controllers:
            return Role.CONTROLLER
        if machine in self.peers:
            return Role.PEER
        raise KeyError(machine)


_TOP_LEVEL_KEYS = ("instanceName", "roles", "module")
_ROLE_KEYS = ("machines", "settings")
_MACHINE_KEYS = ("settings",)


class _DuplicateKey(ValueError):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python's json keeps the last of repeated keys; a machine listed twice
    # would silently lose its first settings.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


class _Problems:
    """Builds the messages: where (instance, machine, file), which key, what."""

    def __init__(self, path: Path) -> None:
        self.source = f"inventory {str(path)!r}"
        self.instance: str | None = None

    def error(self, option: str, problem: str, machine: str | None = None) -> UserError:
        where = self.source
        if self.instance is not None:
            who = f"wireguard instance {self.instance!r}"
            if machine is not None:
                who += f", machine {machine!r}"
            where = f"{who}: {where}"
        return UserError(f"{where}: {option}: {problem}")


def _check_keys(
    data: Mapping[str, Any], allowed: tuple[str, ...], option: str, problems: _Problems
) -> None:
    for key in data:
        if key not in allowed:
            hint = ""
            if key == "tags":
                hint = "; an inventory file lists machines by name, tags are not resolved"
            raise problems.error(
                f"{option}.{key}" if option else key,
                f"unknown key; allowed here: {', '.join(allowed)}{hint}",
            )


def _object(value: Any, option: str, problems: _Problems, machine: str | None = None) -> Any:
    if not isinstance(value, dict):
        raise problems.error(
            option, f"must be a JSON object, not {type(value).__name__}", machine=machine
        )
    return value


def parse_inventory(data: Any, path: Path) -> Inventory:
    """Check decoded JSON ``data`` (read from ``path``) and return the inventory."""
    problems = _Problems(path)
    top = _object(data, "the file", problems)
    _check_keys(top, _TOP_LEVEL_KEYS, "", problems)
    if "instanceName" not in top:
        raise problems.error("instanceName", 'missing; add "instanceName": "<name>"')
    name = top["instanceName"]
    if not isinstance(name, str):
        raise problems.error("instanceName", f"must be a string, not {type(name).__name__}")
    instance = check_instance_name(name, f"{problems.source}: instanceName")
    problems.instance = instance

    roles = _object(top.get("roles", {}), "roles", problems)
    for role_name in roles:
        if role_name not in (Role.CONTROLLER.value, Role.PEER.value):
            raise problems.error(
                f"roles.{role_name}", "unknown role; the roles are controller and peer"
            )

    members: dict[Role, dict[str, Mapping[str, Any]]] = {Role.CONTROLLER: {}, Role.PEER: {}}
    for role in Role:
        option = f"roles.{role.value}"
        role_data = _object(roles.get(role.value, {}), option, problems)
        _check_keys(role_data, _ROLE_KEYS, option, problems)
        role_settings = _object(role_data.get("settings", {}), f"{option}.settings", problems)
        machines = _object(role_data.get("machines", {}), f"{option}.machines", problems)
        for machine, entry in machines.items():
            machine_option = f"{option}.machines.{machine}"
            if machine == "":
                raise problems.error(f"{option}.machines", "a machine name is empty")
            check_machine_name(
                machine, f"wireguard instance {instance!r}: {problems.source}: {option}.machines"
            )
            _object(entry, machine_option, problems, machine=machine)
            _check_keys(entry, _MACHINE_KEYS, machine_option, problems)
            own_settings = _object(
                entry.get("settings", {}), f"{machine_option}.settings", problems, machine=machine
            )
            members[role][machine] = {**role_settings, **own_settings}

    in_both = sorted(members[Role.CONTROLLER].keys() & members[Role.PEER].keys())
    if in_both:
        machine = in_both[0]
        raise problems.error(
            f"roles.peer.machines.{machine}",
            "the machine is also listed under roles.controller.machines; a machine has one"
            " role in an instance, remove it from one of them",
            machine=machine,
        )
    if not members[Role.CONTROLLER] and not members[Role.PEER]:
        raise problems.error(
            "roles",
            "the instance has no machines; add some under roles.controller.machines"
            " or roles.peer.machines",
        )
    return Inventory(
        instance=instance,
        controllers=members[Role.CONTROLLER],
        peers=members[Role.PEER],
        path=path,
    )


def load_inventory(path: Path) -> Inventory:
    """Read and check an inventory file; every problem is a one-line UserError."""
    source = f"inventory {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise UserError(f"{source}: cannot read: {reason}") from error
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKey as error:
        raise UserError(f"{source}: {error}") from error
    except json.JSONDecodeError as error:
        raise UserError(f"{source}: not valid JSON: {error}") from error
    return parse_inventory(data, path)
