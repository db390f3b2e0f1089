"""How the planner's cost grows with the mesh: time and memory per query.

For an instance of 3 controllers and 10, 100, 500 and 1000 peers, this
script times ``nix-instantiate --eval --strict --json`` on
``modules/planner/from-files.nix`` (the command the Python tools run, which
also checks the whole instance for problems) asking for one controller's
plan, one peer's plan, and every machine's plan; and, through the library
alone (``planInstances``, no problem check), one controller's and one peer's
plan. It prints wall time (best of --repeat runs), the evaluator's CPU time,
peak resident memory, thunks created and bytes allocated (from
NIX_SHOW_STATS), and the output size; then the cost per member.

    python3 bench/planner.py [--peers 10 100 500 1000] [--controllers 3] [--repeat 3]

Public values are written directly (random, valid), so only the planner is
measured. Nothing runs in parallel: the machine may be shared.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
PLANNER_DIR = REPOSITORY / "modules" / "planner"
INSTANCE = "vpn"


@dataclass(frozen=True)
class Measurement:
    wall_seconds: float
    cpu_seconds: float
    max_rss_mib: float
    thunks: int
    allocated_mib: float
    output_kib: float


@dataclass(frozen=True)
class Mesh:
    inventory: Path
    vars_dir: Path
    controllers: list[str]
    peers: list[str]


def write_mesh(root: Path, controllers: int, peers: int) -> Mesh:
    """An instance with valid, random public values in clan's layout."""
    rng = random.Random(f"{controllers}/{peers}")
    digest = hashlib.sha256(INSTANCE.encode()).hexdigest()
    network = f"{int('fd' + digest[:2], 16):x}:{int(digest[2:6], 16):x}"

    def store(machine: str, generator: str, file: str, value: str) -> None:
        directory = root / "vars" / "per-machine" / machine / generator / file
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "value").write_text(value)

    controller_names = [f"ctrl{index}" for index in range(controllers)]
    peer_names = [f"peer{index}" for index in range(peers)]
    # A /56 id is 16 bits: the low byte of the third hextet, the high byte of the fourth.
    for name, subnet_id in zip(
        controller_names, rng.sample(range(1, 0x10000), controllers), strict=True
    ):
        hextet3, hextet4 = subnet_id >> 8, (subnet_id & 0xFF) << 8
        prefix = f"{network}:{hextet3:x}:{hextet4:x}"
        store(name, f"wireguard-network-{INSTANCE}", "prefix", prefix)
    peer_ids = rng.sample(range(1 << 16, 1 << 32), peers)
    for name, peer_id in zip(peer_names, peer_ids, strict=True):
        suffix = f"{peer_id >> 16:x}:{peer_id & 0xFFFF:x}:{rng.randrange(1 << 16):x}:1"
        store(name, f"wireguard-network-{INSTANCE}", "suffix", suffix)
    for name in controller_names + peer_names:
        key = base64.b64encode(rng.randbytes(32)).decode()
        store(name, f"wireguard-keys-{INSTANCE}", "publickey", key + "\n")

    inventory = {
        "instanceName": INSTANCE,
        "roles": {
            "controller": {
                "machines": {
                    name: {"settings": {"endpoint": f"{name}.example.net"}}
                    for name in controller_names
                }
            },
            "peer": {
                "machines": {
                    name: {"settings": {"controller": controller_names[index % controllers]}}
                    for index, name in enumerate(peer_names)
                }
            },
        },
    }
    path = root / f"{INSTANCE}.json"
    path.write_text(json.dumps(inventory))
    return Mesh(path, root, controller_names, peer_names)


def measure(command: list[str], scratch: Path) -> Measurement:
    """Run once and read the evaluator's statistics.

    Peak memory comes from GNU time, which forks nix-instantiate from its own
    small image: a child forked from this Python process would inherit its
    resident size into ru_maxrss.
    """
    output = scratch / "output.json"
    stats = scratch / "stats.json"
    rss = scratch / "rss.txt"
    time_program = shutil.which("time", path="/usr/bin:/bin")
    prefix = [time_program, "-f", "%M", "-o", str(rss)] if time_program else []
    environment = {**os.environ, "NIX_SHOW_STATS": "1", "NIX_SHOW_STATS_PATH": str(stats)}
    with output.open("wb") as stdout:
        started = time.perf_counter()
        result = subprocess.run(
            [*prefix, *command], stdout=stdout, stderr=subprocess.PIPE, env=environment, check=False
        )
        elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"planner failed: {' '.join(command)}\n{result.stderr.decode()}")
    with output.open("rb") as text:
        # Only the ends: the output can be large, and "problems" sorts last.
        head = text.read(20).decode(errors="replace")
        text.seek(max(0, output.stat().st_size - 20))
        tail = text.read().decode(errors="replace")
    if head.startswith('{"machines"') and not tail.endswith('"problems":[]}'):
        sys.exit(f"the benchmark mesh has problems: ...{tail}")
    counters = json.loads(stats.read_text())
    return Measurement(
        wall_seconds=elapsed,
        cpu_seconds=float(counters["cpuTime"]),
        # GNU time reports KiB.
        max_rss_mib=int(rss.read_text().split()[-1]) / 1024 if time_program else float("nan"),
        thunks=int(counters["nrThunks"]),
        allocated_mib=int(counters["gc"]["totalBytes"]) / 2**20,
        output_kib=output.stat().st_size / 1024,
    )


def best_of(command: list[str], scratch: Path, repeat: int) -> Measurement:
    runs = [measure(command, scratch) for _ in range(repeat)]
    return min(runs, key=lambda run: run.wall_seconds)


def from_files_command(mesh: Mesh, machines: list[str] | None) -> list[str]:
    return [
        "nix-instantiate",
        "--eval",
        "--strict",
        "--json",
        str(PLANNER_DIR / "from-files.nix"),
        "--argstr",
        "inventories",
        json.dumps([str(mesh.inventory)]),
        "--argstr",
        "varsDir",
        str(mesh.vars_dir),
        "--argstr",
        "machines",
        json.dumps(machines),
    ]


def library_command(mesh: Mesh, machine: str) -> list[str]:
    expression = f"""
      let planner = import {PLANNER_DIR}; in
      (planner.planInstances {{
        instances.{INSTANCE} = builtins.fromJSON (builtins.readFile {mesh.inventory});
        publicValue = planner.readVarsDir {mesh.vars_dir};
      }}).machines.{machine}.{INSTANCE}
    """
    return ["nix-instantiate", "--eval", "--strict", "--json", "--expr", expression]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, nargs="+", default=[10, 100, 500, 1000])
    parser.add_argument("--controllers", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    if shutil.which("nix-instantiate") is None:
        sys.exit("nix-instantiate not found")

    header = (
        f"{'peers':>5} {'members':>7}  {'query':<28} {'wall s':>7} {'cpu s':>7}"
        f" {'RSS MiB':>8} {'thunks':>9} {'alloc MiB':>9} {'out KiB':>8}"
    )
    print(header)
    print("-" * len(header))
    per_member: list[tuple[int, int, Measurement, Measurement, Measurement]] = []
    for peers in arguments.peers:
        with tempfile.TemporaryDirectory(prefix="planner-bench-") as directory:
            root = Path(directory)
            mesh = write_mesh(root / "mesh", arguments.controllers, peers)
            scratch = root / "scratch"
            scratch.mkdir()
            members = arguments.controllers + peers
            queries = [
                ("one controller (checked)", from_files_command(mesh, [mesh.controllers[0]])),
                ("one peer (checked)", from_files_command(mesh, [mesh.peers[-1]])),
                ("every machine (checked)", from_files_command(mesh, None)),
                ("one controller (library)", library_command(mesh, mesh.controllers[0])),
                ("one peer (library)", library_command(mesh, mesh.peers[-1])),
            ]
            results = {}
            for label, command in queries:
                result = best_of(command, scratch, arguments.repeat)
                results[label] = result
                print(
                    f"{peers:>5} {members:>7}  {label:<28} {result.wall_seconds:>7.3f}"
                    f" {result.cpu_seconds:>7.3f} {result.max_rss_mib:>8.1f}"
                    f" {result.thunks:>9} {result.allocated_mib:>9.1f}"
                    f" {result.output_kib:>8.0f}",
                    flush=True,
                )
            per_member.append(
                (
                    peers,
                    members,
                    results["one controller (library)"],
                    results["one peer (library)"],
                    results["every machine (checked)"],
                )
            )
        print()

    print("Cost per member (thunks are exact; times include ~0.05 s of start-up):")
    print(
        f"{'peers':>5} {'members':>7}  {'controller thunks/member':>24}"
        f" {'peer thunks/member':>18} {'every machine: ms/machine':>25}"
    )
    for peers, members, controller, peer, every in per_member:
        print(
            f"{peers:>5} {members:>7}  {controller.thunks / members:>24.1f}"
            f" {peer.thunks / members:>18.1f}"
            f" {1000 * every.wall_seconds / members:>25.2f}"
        )


if __name__ == "__main__":
    main()
