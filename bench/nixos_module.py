"""Cost of evaluating the NixOS module for one machine, by mesh size.

For 3 controllers and 10 to 1000 peers (vars written by
``clan-wireguard vars generate``), evaluates one controller's and one peer's
configuration with ``tests/nix-harness/eval-nixos.nix`` (nixpkgs' lib, no
nixpkgs) and prints wall time and peak memory of ``nix-instantiate``, the
best of three runs. A controller renders every member as a WireGuard peer; a
peer renders only the controllers, but its hosts list names everyone.

    NIXPKGS_LIB_PATH=<dir holding nixpkgs' lib/> python3 bench/nixos_module.py
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from installed_cli import clan_wireguard

REPOSITORY = Path(__file__).resolve().parents[1]
HARNESS = REPOSITORY / "tests" / "nix-harness" / "eval-nixos.nix"
PEER_COUNTS = (10, 100, 1000)
CONTROLLERS = ("ctrl1", "ctrl2", "ctrl3")
RUNS = 3


def write_mesh(directory: Path, peers: int) -> dict[str, object]:
    roles: dict[str, object] = {
        "controller": {
            "machines": {
                name: {"settings": {"endpoint": f"{name}.example.com"}} for name in CONTROLLERS
            }
        },
        "peer": {
            "machines": {
                f"peer{index}": {"settings": {"controller": CONTROLLERS[index % 3]}}
                for index in range(peers)
            }
        },
    }
    inventory = directory / "inventory.json"
    inventory.write_text(json.dumps({"instanceName": "vpn", "roles": roles}))
    subprocess.run(
        [
            *clan_wireguard(),
            *("vars", "generate", "--inventory", str(inventory)),
            *("--vars-dir", str(directory), "--quiet"),
        ],
        check=True,
    )
    return roles


def measure(lib_path: str, config_file: Path) -> tuple[float, float]:
    """Best wall time (s) and peak resident memory (MiB) of one evaluation."""
    command = [
        "nix-instantiate",
        "--eval",
        "--strict",
        "--json",
        "--read-write-mode",
        str(HARNESS),
        "--argstr",
        "libPath",
        lib_path,
        "--argstr",
        "configFile",
        str(config_file),
        "-A",
        "system",
    ]
    best_time = float("inf")
    peak = 0.0
    for _ in range(RUNS):
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait4 gives this child's own resource use (ru_maxrss in KiB on Linux).
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        assert process.stderr is not None
        errors = process.stderr.read().decode()
        process.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(errors)
        best_time = min(best_time, elapsed)
        peak = max(peak, usage.ru_maxrss / 1024)
    return best_time, peak


def main() -> None:
    lib_path = os.environ.get("NIXPKGS_LIB_PATH")
    if not lib_path:
        raise SystemExit("set NIXPKGS_LIB_PATH to a directory holding nixpkgs' lib/")
    print("| peers | machine | evaluation | peak memory |")
    print("| ---: | --- | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="clan-wireguard-bench-") as work:
        for count in PEER_COUNTS:
            directory = Path(work) / f"mesh-{count}"
            directory.mkdir()
            roles = write_mesh(directory, count)
            for machine in ("ctrl1", "peer1"):
                key = directory / "secrets" / "per-machine" / machine / "wireguard-keys-vpn"
                instance = {
                    "roles": roles,
                    "varsDirectory": str(directory),
                    "privateKeyFile": str(key / "privatekey" / "value"),
                }
                config = {
                    "networking": {
                        "hostName": machine,
                        "clan-wireguard": {"instances": {"vpn": instance}},
                    }
                }
                config_file = directory / f"{machine}.json"
                config_file.write_text(json.dumps(config))
                seconds, mebibytes = measure(lib_path, config_file)
                print(f"| {count:,} | {machine} | {seconds:.2f} s | {mebibytes:.0f} MiB |")


if __name__ == "__main__":
    main()
