"""One lab machine: its namespaces, files, WireGuard processes and agents."""

from __future__ import annotations

import os
import select
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clan_wireguard.errors import UserError
from clan_wireguard.lab import namespaces
from clan_wireguard.lab.processes import ProcessKind, ProcessRecord, ProcessTable
from clan_wireguard.lab.underlay import Underlay, UnderlayPort
from clan_wireguard.plan import Plan

HOLDER_READY_TIMEOUT = 10.0
SOCKET_TIMEOUT = 10.0


@dataclass
class LabMachine:
    name: str
    netns: str
    directory: Path
    port: UnderlayPort
    # instance -> plan; empty for a machine that is not in the mesh.
    plans: dict[str, Plan] = field(default_factory=dict)
    holder: ProcessRecord | None = None

    @property
    def enter(self) -> list[str]:
        if self.holder is None:
            raise UserError(f"lab machine '{self.name}' is not running")
        return namespaces.enter_command(self.holder.pid)

    @property
    def is_controller(self) -> bool:
        return any(plan.role == "controller" for plan in self.plans.values())

    @property
    def hosts_file(self) -> Path:
        return self.directory / "hosts"

    def plan_file(self, instance: str) -> Path:
        return self.directory / f"{instance}.plan.json"

    def log_file(self, what: str) -> Path:
        return self.directory / f"{what}.log"

    def failover_state_dir(self, instance: str) -> Path:
        return self.directory / f"failover-{instance}"


def hosts_text(machine: str, plans: Sequence[Plan], underlay: Underlay) -> str:
    """The machine's /etc/hosts: localhost, endpoint names, then every plan's hosts."""
    lines = [
        f"# /etc/hosts of lab machine '{machine}' (clan-wireguard lab)",
        "127.0.0.1 localhost",
        "::1 localhost ip6-localhost ip6-loopback",
        f"127.0.1.1 {machine}",
    ]
    if underlay.endpoint_names:
        lines.append("# controller endpoints, on the lab's underlay")
        lines += [f"{address} {name}" for name, address in sorted(underlay.endpoint_names.items())]
    for plan in plans:
        lines.append(f"# wireguard instance '{plan.instance}'")
        lines += [f"{address} {' '.join(names)}" for address, names in sorted(plan.hosts.items())]
    return "\n".join(lines) + "\n"


def start_holder(table: ProcessTable, machine: LabMachine) -> ProcessRecord:
    """Start the machine's holder and wait until its mounts are in place."""
    read_end, write_end = os.pipe()
    try:
        child, record = table.spawn(
            namespaces.holder_command(machine.netns, machine.name, machine.hosts_file),
            kind=ProcessKind.HOLDER,
            machine=machine.name,
            label="",
            log=machine.log_file("holder"),
            stdout=write_end,
        )
        os.close(write_end)
        write_end = -1
        deadline = time.monotonic() + HOLDER_READY_TIMEOUT
        received = b""
        while b"\n" not in received and time.monotonic() < deadline:
            ready, _, _ = select.select([read_end], [], [], 0.1)
            if ready:
                chunk = os.read(read_end, 64)
                if not chunk:
                    break
                received += chunk
        if received.strip() != b"ready":
            child.poll()
            raise UserError(
                f"lab machine '{machine.name}': its namespaces could not be set up "
                f"(see {machine.log_file('holder')})"
            )
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    machine.holder = record
    return record


def wireguard_socket(machine: LabMachine, interface: str) -> Path:
    if machine.holder is None:
        raise UserError(f"lab machine '{machine.name}' is not running")
    return namespaces.holder_root(machine.holder.pid) / "run" / "wireguard" / f"{interface}.sock"


def _accepts_connections(path: Path) -> bool:
    # The socket file appears at bind(), before wireguard-go listens; `wg`
    # connecting in between fails and falls back to the kernel module, which
    # is not there ("Protocol not supported"). A connection proves it listens.
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def start_wireguard(
    table: ProcessTable, machine: LabMachine, plan: Plan, log_level: str
) -> ProcessRecord:
    """``wireguard-go -f IFACE`` in the machine; returns once it takes commands."""
    environment = dict(os.environ)
    environment["LOG_LEVEL"] = log_level
    child, record = table.spawn(
        [*machine.enter, "wireguard-go", "-f", plan.interface],
        kind=ProcessKind.WIREGUARD,
        machine=machine.name,
        label=plan.instance,
        log=machine.log_file(f"wireguard-{plan.instance}"),
        env=environment,
    )
    control = wireguard_socket(machine, plan.interface)
    deadline = time.monotonic() + SOCKET_TIMEOUT
    while not _accepts_connections(control):
        if child.poll() is not None or time.monotonic() > deadline:
            raise UserError(
                f"wireguard instance '{plan.instance}', machine '{machine.name}': wireguard-go "
                f"did not start (see {record.log})"
            )
        time.sleep(0.01)
    return record


def failover_command(plan_file: Path, state_dir: Path, interval: float) -> list[str]:
    # The agent of the very package the lab runs from, whatever its install.
    return [
        sys.executable,
        "-m",
        "clan_wireguard",
        "failover",
        "run",
        "--plan",
        str(plan_file),
        "--state-dir",
        str(state_dir),
        "--interval",
        str(interval),
    ]


def failover_available() -> bool:
    """Whether this installation has the failover agent's ``run`` command."""
    from clan_wireguard import failover

    return any(
        (command.name or getattr(command.callback, "__name__", "")) == "run"
        for command in failover.app.registered_commands
    )


def start_failover(
    table: ProcessTable, machine: LabMachine, plan: Plan, interval: float
) -> ProcessRecord:
    state_dir = machine.failover_state_dir(plan.instance)
    state_dir.mkdir(parents=True, exist_ok=True)
    _, record = table.spawn(
        [*machine.enter, *failover_command(machine.plan_file(plan.instance), state_dir, interval)],
        kind=ProcessKind.FAILOVER,
        machine=machine.name,
        label=plan.instance,
        log=machine.log_file(f"failover-{plan.instance}"),
    )
    return record
