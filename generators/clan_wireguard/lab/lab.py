"""A whole mesh on this machine: the ``Lab`` class behind ``clan-wireguard lab``.

``Lab(...).up()`` generates missing vars, asks the planner for every plan in
one evaluation, and turns each plan into a lab machine configured the way
the NixOS module configures a real one. The processes it starts (holders,
wireguard-go, failover agents) outlive ``up``: they are recorded, with their
start times, in ``/run/clan-wireguard-lab/<name>/state.json``, and any later
``Lab.attach(name)`` (``lab check``, ``lab down``, ...) works from that file.
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from clan_wireguard import wireguard
from clan_wireguard.errors import UserError
from clan_wireguard.inventory import load_inventory
from clan_wireguard.lab import limits, namespaces, underlay
from clan_wireguard.lab.check import ReachabilityReport, all_pairs, check_pairs, sample_pairs
from clan_wireguard.lab.machine import (
    LabMachine,
    failover_available,
    hosts_text,
    start_failover,
    start_holder,
    start_wireguard,
)
from clan_wireguard.lab.processes import (
    ProcessKind,
    ProcessRecord,
    ProcessTable,
    interrupts_ignored,
    is_alive,
    run_concurrently,
)
from clan_wireguard.plan import Plan, evaluate_plans
from clan_wireguard.vars_store import Action, generate_instance, secret_path

STATE_ROOT = Path("/run/clan-wireguard-lab")
STATE_VERSION = 1
DEFAULT_NAME = "lab"
# Environment variable set in every process a lab starts, to the lab's name.
LAB_MARKER = "CLAN_WIREGUARD_LAB"
Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


class Bringup(enum.Enum):
    """How the machines' WireGuard devices are brought up.

    ``staged``: every device gets its key, peers, addresses and routes but no
    endpoint; then endpoints are set, controllers first. No handshake starts
    before every key is known, so none is lost.
    ``controllers-first``: controllers are configured completely, then peers.
    ``simultaneous``: every machine configures itself at the same time, in no
    particular order, like a fleet booting together; a peer's first handshake
    may reach a controller that does not know it yet (WireGuard retries after
    5 seconds).
    """

    STAGED = "staged"
    CONTROLLERS_FIRST = "controllers-first"
    SIMULTANEOUS = "simultaneous"


@dataclass(frozen=True)
class InterfaceSummary:
    instance: str
    interface: str
    peers: int
    # Peers with a handshake in the last 3 minutes (a session is renewed every 2).
    recent_handshakes: int
    error: str


@dataclass(frozen=True)
class MachineStatus:
    name: str
    roles: Mapping[str, str]
    stopped: bool
    processes: tuple[tuple[ProcessRecord, bool], ...]
    interfaces: tuple[InterfaceSummary, ...]


@dataclass(frozen=True)
class LabStatus:
    name: str
    state_dir: Path
    machines: tuple[MachineStatus, ...]

    def text(self) -> str:
        lines = [f"lab '{self.name}' (state in {self.state_dir})"]
        for machine in self.machines:
            roles = ", ".join(f"{role} in {instance}" for instance, role in machine.roles.items())
            state = "stopped" if machine.stopped else "running"
            lines.append(f"  {machine.name}: {roles or 'not in the mesh'}; {state}")
            for record, alive in machine.processes:
                mark = "running" if alive else "DEAD"
                lines.append(
                    f"    {record.kind.value:<13} {record.label:<12} pid {record.pid:<8} {mark}"
                )
            for summary in machine.interfaces:
                if summary.error:
                    lines.append(f"    wg {summary.interface}: {summary.error}")
                else:
                    lines.append(
                        f"    wg {summary.interface}: {summary.recent_handshakes}/{summary.peers} "
                        "peers with a recent handshake"
                    )
        return "\n".join(lines)


@contextmanager
def _state_lock() -> Iterator[None]:
    # One lock for every lab: starting and stopping are short, and one lock
    # on a directory that is never removed cannot race with a cleanup.
    STATE_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(STATE_ROOT, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def state_dir_of(name: str) -> Path:
    return STATE_ROOT / name


class Lab:
    """A lab: machines as namespaces with real WireGuard, from one or more inventories.

    Usable as a context manager: ``with Lab("t1", [inventory], vars_dir) as lab:``
    brings it up and always takes it down.
    """

    def __init__(
        self,
        name: str = DEFAULT_NAME,
        inventories: Sequence[Path] = (),
        vars_dir: Path | None = None,
        *,
        failover: bool = True,
        failover_interval: float = 1.0,
        bringup: Bringup = Bringup.STAGED,
        progress: Progress | None = None,
        wireguard_log_level: str = "error",
        workers: int = 8,
    ) -> None:
        namespaces.check_lab_name(name)
        self.name = name
        self.inventories = [Path(path).resolve() for path in inventories]
        self.owns_vars_dir = vars_dir is None
        self.vars_dir = (self.state_dir / "vars") if vars_dir is None else Path(vars_dir).resolve()
        self.failover = failover
        self.failover_interval = failover_interval
        self.bringup = bringup
        self.progress: Progress = progress or _quiet
        self.wireguard_log_level = wireguard_log_level
        self.workers = workers
        self.table = ProcessTable(marker={LAB_MARKER: name})
        self.machines: dict[str, LabMachine] = {}
        self.underlay: underlay.Underlay | None = None
        self.stopped: set[str] = set()
        # Machines outside the mesh, in the order they were added.
        self.bare: list[str] = []
        # Monotonic clock readings of the steps of ``up`` (for benchmarks).
        self.timings: dict[str, float] = {}
        # True from the moment this object made (or attached to) the lab's
        # state until it took the lab down: ``down`` never touches a lab of
        # the same name that someone else brought up.
        self.active = False

    # -- paths and state -------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return state_dir_of(self.name)

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def _save_state(self) -> None:
        data: dict[str, Any] = {
            "version": STATE_VERSION,
            "name": self.name,
            "inventories": [str(path) for path in self.inventories],
            "varsDir": str(self.vars_dir),
            "ownsVarsDir": self.owns_vars_dir,
            "failover": self.failover,
            "failoverInterval": self.failover_interval,
            "wireguardLogLevel": self.wireguard_log_level,
            "underlay": self.underlay.to_json() if self.underlay is not None else None,
            "machines": {
                name: {
                    "instances": sorted(machine.plans),
                    "stopped": name in self.stopped,
                    "bare": name in self.bare,
                }
                for name, machine in self.machines.items()
            },
            "processes": [record.to_json() for record in self.table.records()],
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n")
        temporary.replace(self.state_file)

    @classmethod
    def attach(cls, name: str = DEFAULT_NAME, progress: Progress | None = None) -> Lab:
        """The running lab ``name``, as ``up`` left it."""
        namespaces.check_lab_name(name)
        path = state_dir_of(name) / "state.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(
                f"no lab named '{name}' is up (no {path}); start one with "
                f"`clan-wireguard lab up --name {name} INVENTORY.json`"
            ) from None
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(
                f"lab '{name}': cannot read {path} ({error}); "
                f"`clan-wireguard lab down --name {name}` removes what is left"
            ) from error
        lab = cls(
            name,
            [Path(p) for p in data["inventories"]],
            None if data["ownsVarsDir"] else Path(data["varsDir"]),
            failover=data["failover"],
            failover_interval=data["failoverInterval"],
            progress=progress,
            wireguard_log_level=data["wireguardLogLevel"],
        )
        lab.active = True
        lab.table = ProcessTable(
            (ProcessRecord.from_json(r) for r in data["processes"]), marker={LAB_MARKER: name}
        )
        if data["underlay"] is not None:
            lab.underlay = underlay.Underlay.from_json(data["underlay"])
        for machine_name, machine_data in data["machines"].items():
            machine = lab._new_machine(machine_name)
            for instance in machine_data["instances"]:
                machine.plans[instance] = Plan.load(machine.plan_file(instance))
            holders = lab.table.find(machine_name, ProcessKind.HOLDER)
            machine.holder = holders[0] if holders else None
            if machine_data["stopped"]:
                lab.stopped.add(machine_name)
            if machine_data["bare"]:
                lab.bare.append(machine_name)
        return lab

    def _new_machine(self, name: str) -> LabMachine:
        if self.underlay is None:
            raise UserError(f"lab '{self.name}': no underlay planned yet")
        machine = LabMachine(
            name=name,
            netns=namespaces.machine_netns(self.name, name),
            directory=self.state_dir / "machines" / name,
            port=self.underlay.ports[name],
        )
        self.machines[name] = machine
        return machine

    def machine(self, name: str) -> LabMachine:
        try:
            return self.machines[name]
        except KeyError:
            raise UserError(
                f"lab '{self.name}' has no machine '{name}'; its machines are: "
                f"{', '.join(sorted(self.machines))}"
            ) from None

    # -- context manager -------------------------------------------------

    def __enter__(self) -> Lab:
        self.up()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.down()

    # -- up --------------------------------------------------------------

    def up(self) -> None:
        """Bring the whole lab up; on any error or interrupt, remove what was made."""
        limits.check_host()
        if not self.inventories:
            raise UserError("the lab needs at least one inventory file (INVENTORY.json)")
        # Bad inventories stop the lab before anything is created.
        for inventory in self.inventories:
            load_inventory(inventory)
        with _state_lock():
            if self.state_dir.exists() or namespaces.existing_lab_netns(self.name):
                raise UserError(
                    f"a lab named '{self.name}' is already up (or was not taken down): "
                    f"run `clan-wireguard lab down --name {self.name}`, or choose another --name"
                )
            self.state_dir.mkdir(mode=0o700, parents=True)
            self.active = True
            try:
                self._up()
            except BaseException:
                with interrupts_ignored():
                    self.progress("taking the lab down again")
                    try:
                        self._teardown()
                    except UserError as cleanup_error:
                        self.progress(f"while taking it down: {cleanup_error}")
                raise

    def _up(self) -> None:
        self.timings["start"] = time.monotonic()
        for inventory in self.inventories:
            report = generate_instance(inventory, self.vars_dir)
            self.progress(
                f"vars of instance '{report.instance}': {report.count(Action.GENERATED)} "
                f"generated, {report.count(Action.KEPT)} kept ({self.vars_dir})"
            )
        self.progress(
            f"planning every machine of {len(self.inventories)} instance(s) (nix-instantiate)"
        )
        plan_set = evaluate_plans(self.inventories, self.vars_dir)
        plan_set.require_no_problems()
        self.timings["planned"] = time.monotonic()
        names = sorted(plan_set.plans)
        self.underlay = underlay.plan_underlay(names, plan_set.plans)
        for name in names:
            machine = self._new_machine(name)
            machine.plans = dict(plan_set.plans[name])
        wireguard_count = sum(len(machine.plans) for machine in self.machines.values())
        limits.ensure_inotify_instances(wireguard_count, self.progress)
        self._write_machine_files()
        self._save_state()

        self.progress(f"creating {len(names)} machines: namespaces, underlay, /etc/hosts")
        self._create_underlay()
        run_concurrently(self._create_machine, list(self.machines.values()), self.workers)
        self._save_state()
        self.timings["machines"] = time.monotonic()

        self.progress(f"starting {wireguard_count} wireguard-go ({self.bringup.value} bring-up)")
        self._bring_up_wireguard(list(self.machines.values()))
        self.timings["configured"] = time.monotonic()
        self._save_state()

        self._start_agents(list(self.machines.values()))
        self._save_state()
        self.progress(
            f"lab '{self.name}' is up: {len(self.machines)} machines; "
            f"`clan-wireguard lab check --name {self.name}` pings every pair"
        )

    def _write_machine_files(self) -> None:
        assert self.underlay is not None
        for machine in self.machines.values():
            machine.directory.mkdir(parents=True, exist_ok=True)
            machine.hosts_file.write_text(
                hosts_text(machine.name, list(machine.plans.values()), self.underlay)
            )
            for instance, plan in machine.plans.items():
                machine.plan_file(instance).write_text(plan.to_json() + "\n")

    def _create_underlay(self) -> None:
        netns = namespaces.underlay_netns(self.name)
        namespaces.add_netns(netns)
        underlay.create_bridge(netns)

    def _create_machine(self, machine: LabMachine) -> None:
        assert self.underlay is not None
        namespaces.add_netns(machine.netns)
        underlay.connect_machine(namespaces.underlay_netns(self.name), machine.netns, machine.port)
        underlay.configure_uplink(machine.netns, machine.port, self.underlay)
        start_holder(self.table, machine)

    def _private_key(self, machine: LabMachine, plan: Plan) -> Path:
        path = secret_path(
            self.vars_dir, machine.name, plan.private_key_generator, plan.private_key_var_file
        )
        if not path.is_file():
            raise UserError(
                f"wireguard instance '{plan.instance}', machine '{machine.name}': no private key "
                f"at {path}; run `clan-wireguard vars generate` for this instance"
            )
        return path

    def _start_interfaces(self, machine: LabMachine, endpoints: bool) -> None:
        for plan in machine.plans.values():
            start_wireguard(self.table, machine, plan, self.wireguard_log_level)
            wireguard.configure_device(
                plan, self._private_key(machine, plan), machine.enter, with_endpoints=endpoints
            )
            wireguard.configure_network(plan, machine.enter)

    def _set_endpoints(self, machine: LabMachine) -> None:
        for plan in machine.plans.values():
            wireguard.set_endpoints(plan, machine.enter)

    def _await_controller_handshakes(self, machine: LabMachine, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        for plan in machine.plans.values():
            keys = {peer.public_key for peer in plan.peers if peer.role == "controller"}
            while time.monotonic() < deadline:
                state = wireguard.read_interface(plan.interface, machine.enter)
                if all(peer.latest_handshake for peer in state.peers if peer.public_key in keys):
                    break
                time.sleep(0.01)

    def _bring_up_wireguard(self, machines: Sequence[LabMachine]) -> None:
        controllers = [machine for machine in machines if machine.is_controller]
        peers = [machine for machine in machines if not machine.is_controller]
        if self.bringup is Bringup.STAGED:
            run_concurrently(lambda m: self._start_interfaces(m, False), machines, self.workers)
            self.timings["devices"] = time.monotonic()
            # One controller at a time, each waiting for its handshakes: two
            # controllers that initiate at the same moment both end up as
            # responders of sessions nobody confirms, and wait 5 s to retry.
            for controller in controllers:
                self._set_endpoints(controller)
                self._await_controller_handshakes(controller)
            # Peers are never dialled by controllers (no endpoint): no race.
            run_concurrently(self._set_endpoints, peers, self.workers)
        elif self.bringup is Bringup.CONTROLLERS_FIRST:
            run_concurrently(lambda m: self._start_interfaces(m, True), controllers, self.workers)
            run_concurrently(lambda m: self._start_interfaces(m, True), peers, self.workers)
        else:
            shuffled = list(machines)
            random.Random(self.name).shuffle(shuffled)
            run_concurrently(lambda m: self._start_interfaces(m, True), shuffled, self.workers)

    def _start_agents(self, machines: Sequence[LabMachine]) -> None:
        wanted = [
            (machine, plan)
            for machine in machines
            for plan in machine.plans.values()
            if plan.failover is not None
        ]
        if not self.failover or not wanted:
            return
        if not failover_available():
            self.progress("no failover agent in this installation: running without it")
            return
        self.progress(f"starting {len(wanted)} failover agents")
        for machine, plan in wanted:
            start_failover(self.table, machine, plan, self.failover_interval)

    # -- down ------------------------------------------------------------

    def down(self) -> None:
        """Stop every process of the lab and remove its namespaces and files.

        Does nothing when this object did not bring the lab up (or attach to it).
        """
        if not self.active:
            return
        with _state_lock(), interrupts_ignored():
            self._teardown()

    def _teardown(self) -> None:
        records = self.table.records()
        if records:
            self.progress(f"stopping {len(records)} processes")
        self.table.stop(records)
        leftovers = namespaces.existing_lab_netns(self.name)
        if leftovers:
            self.progress(f"removing {len(leftovers)} network namespaces")
        namespaces.delete_netns(leftovers)
        still = namespaces.existing_lab_netns(self.name)
        if still:
            raise UserError(f"lab '{self.name}': could not remove network namespaces {still}")
        # The vars go with it only when the lab made them (they live inside).
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.machines.clear()
        self.active = False
        self.progress(f"lab '{self.name}' is down")

    # -- one machine -----------------------------------------------------

    def stop_machine(self, name: str) -> None:
        """Take a machine off the mesh: its agents and wireguard-go stop (an outage)."""
        machine = self.machine(name)
        with _state_lock():
            records = [
                record
                for record in self.table.find(name)
                if record.kind in (ProcessKind.WIREGUARD, ProcessKind.FAILOVER)
            ]
            self.table.stop(records)
            self.stopped.add(machine.name)
            self._save_state()
        self.progress(f"stopped machine '{name}': {', '.join(r.describe() for r in records)}")

    def start_machine(self, name: str) -> None:
        """Bring a stopped machine back with its plans, like a reboot."""
        machine = self.machine(name)
        if name in self.bare:
            raise UserError(f"lab machine '{name}' is not in the mesh: it has nothing to start")
        with _state_lock():
            if any(record.kind is ProcessKind.WIREGUARD for record in self.table.find(name)):
                raise UserError(
                    f"lab machine '{name}' is running; stop it first "
                    f"(`clan-wireguard lab stop --name {self.name} {name}`)"
                )
            try:
                self._start_interfaces(machine, True)
                self._start_agents([machine])
                self.stopped.discard(name)
            finally:
                # Whatever was started is recorded, even if a step failed.
                self._save_state()
        self.progress(f"started machine '{name}'")

    def exec(
        self,
        machine: str,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = None,
        capture: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a machine (its network, mounts and host name)."""
        command = [*self.machine(machine).enter, *argv]
        result = subprocess.run(
            command, capture_output=capture, text=True, check=False, timeout=timeout
        )
        if check and result.returncode != 0:
            detail = (result.stderr or "").strip()
            raise UserError(
                f"lab machine '{machine}': `{' '.join(argv)}` failed "
                f"(exit status {result.returncode}){': ' + detail if detail else ''}"
            )
        return result

    def spawn(self, machine: str, argv: Sequence[str], label: str) -> ProcessRecord:
        """Start a long-running command inside a machine; the lab stops it at ``down``.

        Its output goes to ``<state dir>/machines/<machine>/<label>.log``.
        """
        target = self.machine(machine)
        _, record = self.table.spawn(
            [*target.enter, *argv],
            kind=ProcessKind.EXTRA,
            machine=machine,
            label=label,
            log=target.log_file(label),
        )
        self._save_state()
        return record

    def stop_process(self, record: ProcessRecord, timeout: float = 5.0) -> None:
        """Stop a process started with ``spawn`` (SIGTERM, then SIGKILL)."""
        self.table.stop([record], timeout)
        self._save_state()

    def add_bare_machine(self, name: str) -> LabMachine:
        """A machine on the underlay that is not in the mesh (no plan, no WireGuard).

        Its /etc/hosts knows the controllers' endpoint names, so it can dial
        them like a stranger on the internet.
        """
        if self.underlay is None:
            raise UserError(f"lab '{self.name}' is not up")
        if name in self.machines:
            raise UserError(f"lab '{self.name}' already has a machine '{name}'")
        with _state_lock():
            mesh = [m for m in self.machines if m not in self.bare]
            plans = {m: self.machines[m].plans for m in mesh}
            self.underlay = underlay.plan_underlay(mesh, plans, [*self.bare, name])
            machine = self._new_machine(name)
            self.bare.append(name)
            machine.directory.mkdir(parents=True, exist_ok=True)
            machine.hosts_file.write_text(hosts_text(name, [], self.underlay))
            self._save_state()
            try:
                self._create_machine(machine)
            finally:
                self._save_state()
        return machine

    # -- looking at it ---------------------------------------------------

    def plan(self, machine: str, instance: str) -> Plan:
        plans = self.machine(machine).plans
        try:
            return plans[instance]
        except KeyError:
            raise UserError(
                f"lab machine '{machine}' is not in wireguard instance '{instance}'"
            ) from None

    def interface_state(self, machine: str, instance: str) -> wireguard.InterfaceState:
        plan = self.plan(machine, instance)
        return wireguard.read_interface(plan.interface, self.machine(machine).enter)

    def dead_processes(self) -> list[ProcessRecord]:
        """Lab processes that ended without being asked to (a crash)."""
        return self.table.dead()

    def check(
        self,
        *,
        sample: int | None = None,
        seed: int = 0,
        timeout: float = 10.0,
        concurrency: int = 16,
        machines: Collection[str] | None = None,
    ) -> ReachabilityReport:
        """Ping ``<target>.<domain>`` from every machine to every other, per instance.

        ``machines`` limits the pairs to those among the named machines;
        ``sample`` checks that many pairs, chosen with ``seed``.
        """
        members = []
        instances = sorted({i for m in self.machines.values() for i in m.plans})
        for instance in instances:
            in_instance = sorted(
                name
                for name, machine in self.machines.items()
                if instance in machine.plans and (machines is None or name in machines)
            )
            if in_instance:
                domain = self.machines[in_instance[0]].plans[instance].domain
                members.append((instance, domain, in_instance))
        pairs = sample_pairs(all_pairs(members), sample, seed)
        report = check_pairs(
            pairs, lambda source: self.machines[source].enter, timeout, concurrency
        )
        dead = tuple(
            f"{record.describe()} has exited (log: {record.log})"
            for record in self.dead_processes()
        )
        return ReachabilityReport(results=report.results, dead_processes=dead)

    def status(self) -> LabStatus:
        machines = []
        now = time.time()
        for name, machine in sorted(self.machines.items()):
            records = self.table.find(name)
            summaries = []
            if name not in self.stopped and machine.holder is not None and is_alive(machine.holder):
                for instance, plan in sorted(machine.plans.items()):
                    try:
                        state = wireguard.read_interface(plan.interface, machine.enter)
                    except UserError as error:
                        summaries.append(
                            InterfaceSummary(instance, plan.interface, 0, 0, str(error))
                        )
                        continue
                    recent = sum(
                        1
                        for peer in state.peers
                        if peer.latest_handshake and now - peer.latest_handshake < 180
                    )
                    summaries.append(
                        InterfaceSummary(instance, plan.interface, len(state.peers), recent, "")
                    )
            machines.append(
                MachineStatus(
                    name=name,
                    roles={instance: plan.role for instance, plan in sorted(machine.plans.items())},
                    stopped=name in self.stopped,
                    processes=tuple((record, is_alive(record)) for record in records),
                    interfaces=tuple(summaries),
                )
            )
        return LabStatus(name=self.name, state_dir=self.state_dir, machines=tuple(machines))


def down_by_name(name: str, progress: Progress | None = None) -> None:
    """Take lab ``name`` down, also when its state file is missing or broken.

    Without a state file the processes are unknown: they are not signalled
    (they might not be ours), only the namespaces are removed by name.
    """
    namespaces.check_lab_name(name)
    try:
        lab = Lab.attach(name, progress)
    except UserError:
        report = progress or _quiet
        leftovers = namespaces.existing_lab_netns(name)
        with _state_lock(), interrupts_ignored():
            if not leftovers and not state_dir_of(name).exists():
                raise
            namespaces.delete_netns(leftovers)
            shutil.rmtree(state_dir_of(name), ignore_errors=True)
        report(
            f"lab '{name}': no state file; removed {len(leftovers)} network namespaces by name "
            "(processes the lab may have left were not signalled: they are not on record)"
        )
        return
    lab.down()
