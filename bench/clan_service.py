"""Our clan service against clan-core's wireguard service, both evaluated through clan.

For an instance of 3 controllers and 10, 100, 500 and 1000 peers, this
script generates the vars with ``clan-wireguard vars generate`` into a
temporary clan directory, then evaluates with ``bench/eval-clan-services.nix``
(clan-core's service machinery, nixpkgs' lib, no nixpkgs) one controller,
one peer and every machine of the instance, twice: with this flake's service
(``module.input = "clan-wireguard"``) and with clan-core's own
``clanServices/wireguard``, from the same inventory and the same vars. Each
evaluation forces, with ``--strict --json``, what makes up the mesh on a
machine: ``networking.wireguard.interfaces``, ``networking.hosts``,
``networking.extraHosts``, ``boot.kernel.sysctl``, the firewall's UDP ports,
``systemd.services`` and the failed assertions.

It prints wall time (fastest and slowest run; the two services take turns),
peak resident memory (GNU time), the ratio of ours to clan-core's, and for
"every machine" the cost per machine and per machine and member (thunks from
NIX_SHOW_STATS are an exact count of work: constant per machine and member
means the cost of one machine grows linearly with the members). Before
trusting the figures it checks that both services rendered the same mesh:
addresses, peers and their allowed networks, endpoints, host names.

    CLAN_CORE_PATH=<clan-core work tree> NIXPKGS_LIB_PATH=<dir holding nixpkgs' lib/> \\
      python3 bench/clan_service.py [--peers 10 100 500 1000] [--repeat 3] \\
        [--repeat-every-machine 2]

Without both variables it says why and does nothing. Runs are sequential:
the machine may be shared.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from installed_cli import clan_wireguard

JSON = Any

REPOSITORY = Path(__file__).resolve().parents[1]
HARNESS = REPOSITORY / "bench" / "eval-clan-services.nix"
INSTANCE = "vpn"

# clan-core's wireguard service through a real clan, 3 controllers and 500
# peers, measured on this kind of machine (the project's issue).
REFERENCE_EVERY_MACHINE_SECONDS = (8.5, 10.4)
REFERENCE_EVERY_MACHINE_MIB = 470.0
REFERENCE_ONE_CONTROLLER_SECONDS = (0.27, 0.34)
REFERENCE_PEERS = 500

# Every-machine outputs beyond this many peers are too large to compare cheaply.
LARGEST_COMPARED_EVERY_MACHINE = 100


class Service(Enum):
    OURS = "ours"
    CLAN_CORE = "clan-core"

    def module(self) -> dict[str, str]:
        # clan resolves a module without `input` from clan-core's own services.
        if self is Service.OURS:
            return {"name": "wireguard", "input": "clan-wireguard"}
        return {"name": "wireguard"}


@dataclass(frozen=True)
class Sources:
    nixpkgs_lib: Path
    clan_core: Path


@dataclass(frozen=True)
class Mesh:
    directory: Path
    controllers: list[str]
    peers: list[str]
    clan_files: dict[Service, Path]

    @property
    def members(self) -> int:
        return len(self.controllers) + len(self.peers)


@dataclass(frozen=True)
class Case:
    label: str
    machines: list[str] | None


@dataclass(frozen=True)
class Run:
    wall_seconds: float
    cpu_seconds: float
    max_rss_mib: float
    thunks: int
    allocated_mib: float
    output_mib: float


@dataclass(frozen=True)
class Measurement:
    runs: list[Run]

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda run: run.wall_seconds)

    @property
    def slowest_seconds(self) -> float:
        return max(run.wall_seconds for run in self.runs)

    @property
    def peak_mib(self) -> float:
        return max(run.max_rss_mib for run in self.runs)


def sources_from_environment() -> Sources | None:
    lib_path = os.environ.get("NIXPKGS_LIB_PATH")
    clan_core = os.environ.get("CLAN_CORE_PATH")
    if not lib_path or not clan_core:
        print(
            "clan_service benchmark skipped: set CLAN_CORE_PATH to a clan-core work tree"
            " and NIXPKGS_LIB_PATH to a directory holding nixpkgs' lib/"
        )
        return None
    sources = Sources(Path(lib_path), Path(clan_core))
    if not (sources.nixpkgs_lib / "lib" / "default.nix").is_file():
        sys.exit(f"NIXPKGS_LIB_PATH={lib_path} holds no lib/default.nix")
    if not (sources.clan_core / "clanServices" / "wireguard" / "default.nix").is_file():
        sys.exit(f"CLAN_CORE_PATH={clan_core} holds no clanServices/wireguard/default.nix")
    return sources


def write_mesh(directory: Path, controllers: int, peers: int) -> Mesh:
    """A clan directory with generated vars and one clan.json per service."""
    controller_names = [f"ctrl{index + 1}" for index in range(controllers)]
    peer_names = [f"peer{index + 1}" for index in range(peers)]
    roles = {
        "controller": {
            "machines": {
                name: {"settings": {"endpoint": f"{name}.example.com"}} for name in controller_names
            }
        },
        "peer": {
            "machines": {
                name: {"settings": {"controller": controller_names[index % controllers]}}
                for index, name in enumerate(peer_names)
            }
        },
    }
    directory.mkdir(parents=True)
    inventory = directory / "inventory.json"
    inventory.write_text(json.dumps({"instanceName": INSTANCE, "roles": roles}))
    subprocess.run(
        [
            *clan_wireguard(),
            *("vars", "generate", "--inventory", str(inventory)),
            *("--vars-dir", str(directory), "--quiet"),
        ],
        check=True,
    )
    clan_files = {}
    for service in Service:
        clan = {
            "machines": {name: {} for name in controller_names + peer_names},
            "instances": {INSTANCE: {"module": service.module(), "roles": roles}},
        }
        clan_file = directory / f"clan-{service.value}.json"
        clan_file.write_text(json.dumps(clan))
        clan_files[service] = clan_file
    return Mesh(directory, controller_names, peer_names, clan_files)


def evaluation_command(
    sources: Sources, mesh: Mesh, service: Service, machines: list[str] | None
) -> list[str]:
    return [
        "nix-instantiate",
        "--eval",
        "--strict",
        "--json",
        str(HARNESS),
        *("--argstr", "libPath", str(sources.nixpkgs_lib)),
        *("--argstr", "clanCorePath", str(sources.clan_core)),
        *("--argstr", "clanFile", str(mesh.clan_files[service])),
        *("--argstr", "directory", str(mesh.directory)),
        *("--argstr", "machines", json.dumps(machines)),
    ]


def run_once(command: list[str], output: Path, scratch: Path, heap: str | None) -> Run:
    """One evaluation, its output kept in `output`.

    Peak memory comes from GNU time, which forks nix-instantiate from its own
    small image: a child forked from this Python process would start with
    this process's resident size in ru_maxrss.
    """
    stats = scratch / "stats.json"
    rss = scratch / "rss.txt"
    environment = {**os.environ, "NIX_SHOW_STATS": "1", "NIX_SHOW_STATS_PATH": str(stats)}
    if heap is not None:
        environment["GC_INITIAL_HEAP_SIZE"] = heap
    with output.open("wb") as stdout:
        started = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", str(rss), *command],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=environment,
            check=False,
        )
        elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"evaluation failed: {' '.join(command)}\n{result.stderr.decode()}")
    counters = json.loads(stats.read_text())
    return Run(
        wall_seconds=elapsed,
        cpu_seconds=float(counters["cpuTime"]),
        # GNU time reports KiB.
        max_rss_mib=int(rss.read_text().split()[-1]) / 1024,
        thunks=int(counters["nrThunks"]),
        allocated_mib=int(counters["gc"]["totalBytes"]) / 2**20,
        output_mib=output.stat().st_size / 2**20,
    )


def rendered_mesh(machine: JSON) -> JSON:
    """What a machine's mesh is, independent of how a service spells it.

    Addresses and networks are compared as values (clan-core writes a /96 with
    the host bits set, ours without); host names from `networking.hosts` and
    from `networking.extraHosts` lines are merged.
    """
    if machine["failedAssertions"]:
        sys.exit(f"failed assertions: {machine['failedAssertions']}")
    interfaces = {}
    for name, interface in machine["interfaces"].items():
        peers = {
            peer["publicKey"].strip(): {
                "allowedIPs": sorted(
                    str(ipaddress.ip_network(network, strict=False))
                    for network in peer["allowedIPs"]
                ),
                "endpoint": peer["endpoint"],
            }
            for peer in interface["peers"]
        }
        ips = sorted(str(ipaddress.ip_interface(address)) for address in interface["ips"])
        interfaces[name] = {"ips": ips, "peers": peers, "listenPort": interface["listenPort"]}
    hosts: dict[str, set[str]] = {}
    for address, names in machine["hosts"].items():
        hosts.setdefault(str(ipaddress.ip_address(address)), set()).update(names)
    for line in machine["extraHosts"].splitlines():
        address, *names = line.split()
        hosts.setdefault(str(ipaddress.ip_address(address)), set()).update(names)
    return {
        "interfaces": interfaces,
        "hosts": {address: sorted(names) for address, names in hosts.items()},
        "sysctl": machine["sysctl"],
        "allowedUDPPorts": sorted(machine["allowedUDPPorts"]),
    }


def check_same_mesh(outputs: dict[Service, Path], label: str) -> None:
    ours = json.loads(outputs[Service.OURS].read_text())
    theirs = json.loads(outputs[Service.CLAN_CORE].read_text())
    if sorted(ours) != sorted(theirs):
        sys.exit(f"{label}: the services evaluated different machines")
    for name in ours:
        if rendered_mesh(ours[name]) != rendered_mesh(theirs[name]):
            sys.exit(f"{label}: the services render different meshes on {name}; not comparable")


def measure_case(
    sources: Sources, mesh: Mesh, case: Case, repeat: int, scratch: Path, *, heap: str | None
) -> dict[Service, Measurement]:
    runs: dict[Service, list[Run]] = {service: [] for service in Service}
    outputs = {service: scratch / f"{service.value}.json" for service in Service}
    # Taking turns spreads any load from other users of the machine evenly.
    for _ in range(repeat):
        for service in Service:
            command = evaluation_command(sources, mesh, service, case.machines)
            runs[service].append(run_once(command, outputs[service], scratch, heap))
    if case.machines is not None or len(mesh.peers) <= LARGEST_COMPARED_EVERY_MACHINE:
        check_same_mesh(outputs, f"{len(mesh.peers)} peers, {case.label}")
    return {service: Measurement(service_runs) for service, service_runs in runs.items()}


def seconds_range(measurement: Measurement) -> str:
    return f"{measurement.best.wall_seconds:.2f}-{measurement.slowest_seconds:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, nargs="+", default=[10, 100, 500, 1000])
    parser.add_argument("--controllers", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="runs of one-machine cases")
    parser.add_argument(
        "--repeat-every-machine", type=int, default=2, help="runs of every-machine cases"
    )
    parser.add_argument(
        "--gc-initial-heap",
        metavar="SIZE",
        help="GC_INITIAL_HEAP_SIZE for the evaluations (e.g. 32M); default: Nix's own",
    )
    arguments = parser.parse_args()
    sources = sources_from_environment()
    if sources is None:
        return
    for program in ("nix-instantiate", "/usr/bin/time"):
        if shutil.which(program) is None:
            sys.exit(f"{program} not found")

    print(
        "| peers | case | ours s | ours MiB | clan-core s | clan-core MiB"
        " | time ours/clan-core | memory ours/clan-core |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    every_machine: list[tuple[int, int, dict[Service, Measurement]]] = []
    for peers in arguments.peers:
        with tempfile.TemporaryDirectory(prefix="clan-service-bench-") as work:
            root = Path(work)
            mesh = write_mesh(root / "clan", arguments.controllers, peers)
            scratch = root / "scratch"
            scratch.mkdir()
            cases = [
                Case("one controller", [mesh.controllers[0]]),
                Case("one peer", [mesh.peers[-1]]),
                Case("every machine", None),
            ]
            for case in cases:
                repeat = (
                    arguments.repeat
                    if case.machines is not None
                    else arguments.repeat_every_machine
                )
                result = measure_case(
                    sources, mesh, case, repeat, scratch, heap=arguments.gc_initial_heap
                )
                ours, theirs = result[Service.OURS], result[Service.CLAN_CORE]
                print(
                    f"| {peers:,} | {case.label} | {seconds_range(ours)} | {ours.peak_mib:.0f}"
                    f" | {seconds_range(theirs)} | {theirs.peak_mib:.0f}"
                    f" | {ours.best.wall_seconds / theirs.best.wall_seconds:.2f}"
                    f" | {ours.peak_mib / theirs.peak_mib:.2f} |",
                    flush=True,
                )
                if case.machines is None:
                    every_machine.append((peers, mesh.members, result))

    print()
    print(
        "Every machine, per machine (wall time of the best run; thunks and bytes allocated"
        " are exact; output is the whole JSON):"
    )
    print(
        "| peers | machines | ours ms | clan-core ms | ours thunks | clan-core thunks"
        " | ours thunks/member | clan-core thunks/member | ours alloc MiB"
        " | clan-core alloc MiB | ours output MiB | clan-core output MiB |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for peers, members, result in every_machine:
        ours_run, theirs_run = result[Service.OURS].best, result[Service.CLAN_CORE].best
        print(
            f"| {peers:,} | {members:,} | {1000 * ours_run.wall_seconds / members:.1f}"
            f" | {1000 * theirs_run.wall_seconds / members:.1f}"
            f" | {ours_run.thunks // members:,} | {theirs_run.thunks // members:,}"
            f" | {ours_run.thunks / members / members:.0f}"
            f" | {theirs_run.thunks / members / members:.0f}"
            f" | {ours_run.allocated_mib / members:.2f} | {theirs_run.allocated_mib / members:.2f}"
            f" | {ours_run.output_mib:.1f} | {theirs_run.output_mib:.1f} |"
        )

    for peers, _members, result in every_machine:
        if peers != REFERENCE_PEERS or arguments.controllers != 3:
            continue
        ours, theirs = result[Service.OURS], result[Service.CLAN_CORE]
        low, high = REFERENCE_EVERY_MACHINE_SECONDS
        one_low, one_high = REFERENCE_ONE_CONTROLLER_SECONDS
        print()
        print(
            f"Reference, clan-core's service through a full clan, {peers} peers: every machine"
            f" {low}-{high} s and {REFERENCE_EVERY_MACHINE_MIB:.0f} MiB, one controller"
            f" {one_low}-{one_high} s. Goal for ours, every machine: at most half,"
            f" {low / 2:.2f} s and {REFERENCE_EVERY_MACHINE_MIB / 2:.0f} MiB."
        )
        print(
            f"Measured here, every machine: ours {ours.best.wall_seconds:.2f} s and"
            f" {ours.peak_mib:.0f} MiB; clan-core's service {theirs.best.wall_seconds:.2f} s"
            f" and {theirs.peak_mib:.0f} MiB."
        )


if __name__ == "__main__":
    main()
