"""Start-up cost of the vars generators, run the way clan runs them.

Clan runs every generator of every machine as a fresh process with an empty
output directory, so what counts is the wall time of one whole invocation.
For each generator this script runs ``clan-wireguard generate <kind>`` --runs
times (each into a new empty directory) and prints the median and the
fastest run. For comparison it also times:

- the interpreter doing nothing (``python3 -c pass``): the floor every
  Python generator pays on this machine;
- the same generator entered through the typer application (what the
  command would cost without its fast path);
- clan-core's ``ipv6_allocator.py`` run as clan-core runs it
  (``python3 ipv6_allocator.py OUT INSTANCE controller NAME``), when
  CLAN_CORE_PATH points to a clan-core checkout.

Everything is measured twice: with this interpreter's site initialisation
(whatever ``.pth`` files its environment installs, e.g. an editable install's
import hook), and with ``python3 -S`` and only the package and its
dependencies on PYTHONPATH, which is close to a Nix-built Python application.

    python3 bench/generators.py [--runs 20]

Goals: at most 60 ms per generator, and at most 3 times clan-core's script.
Runs are sequential: the machine may be shared.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from installed_cli import clan_wireguard

GOAL_MILLISECONDS = 60.0
GOAL_RATIO = 3.0
ENTRY = (
    "import sys; from clan_wireguard.__main__ import main; sys.argv[0] = 'clan-wireguard'; main()"
)
THROUGH_TYPER = (
    "import sys; from clan_wireguard.cli import main; sys.argv[0] = 'clan-wireguard'; main()"
)
GENERATORS = {
    "keys": ["generate", "keys", "--out", "{out}"],
    "controller": [
        "generate",
        "controller",
        "--out",
        "{out}",
        "--instance",
        "vpn",
        "--machine",
        "c1",
    ],
    "peer": ["generate", "peer", "--out", "{out}", "--instance", "vpn", "--machine", "p1"],
}

# What each generator is set against: clan-core's allocator (the goal's
# yardstick) and, for keys, clan-core's own keys generator.
REFERENCES = {
    "keys": ("clan-core-controller", "clan-core-keys"),
    "controller": ("clan-core-controller",),
    "peer": ("clan-core-controller", "clan-core-peer"),
}


@dataclass(frozen=True)
class Measurement:
    label: str
    median_ms: float
    fastest_ms: float


@dataclass(frozen=True)
class Setting:
    """How the interpreter is started: its leading arguments and environment."""

    name: str
    interpreter: list[str]
    environment: dict[str, str]


def without_site_hooks() -> Setting:
    """``python3 -S`` with the package and its dependencies on PYTHONPATH only."""
    paths = []
    for module in ("clan_wireguard", "cryptography"):
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{module} is not importable; install the package first")
        paths.append(str(Path(spec.origin).parents[1]))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    return Setting("python3 -S, package on PYTHONPATH", [sys.executable, "-S"], environment)


def run_rounds(
    commands: dict[str, tuple[str, list[str]]],
    environment: dict[str, str],
    runs: int,
    scratch: Path,
) -> dict[str, Measurement]:
    """Median and fastest wall time of each command, run in turns.

    Each round runs every command once, so a colleague's load on the shared
    machine falls on all of them alike. ``{out}`` in a command's arguments is
    replaced by a new empty directory.
    """
    timings: dict[str, list[float]] = {key: [] for key in commands}
    for run in range(runs):
        for key, (label, command) in commands.items():
            out = tempfile.mkdtemp(prefix=f"{run}-", dir=scratch)
            arguments = [part.replace("{out}", out) for part in command]
            started = time.perf_counter()
            result = subprocess.run(
                arguments, capture_output=True, text=True, check=False, env=environment
            )
            elapsed = time.perf_counter() - started
            if result.returncode != 0:
                raise SystemExit(f"{label} failed: {result.stderr.strip()}")
            timings[key].append(elapsed * 1000)
    return {
        key: Measurement(label, statistics.median(timings[key]), min(timings[key]))
        for key, (label, _) in commands.items()
    }


def measure_setting(
    setting: Setting, ours: list[str], allocator: Path | None, runs: int, scratch: Path
) -> dict[str, Measurement]:
    commands = {"floor": ("python3 -c pass", [*setting.interpreter, "-c", "pass"])}
    for kind, command in GENERATORS.items():
        commands[kind] = (f"clan-wireguard generate {kind}", [*ours, *command])
    for kind in ("controller", "peer"):
        commands[f"typer-{kind}"] = (
            f"  same, through typer ({kind})",
            [*setting.interpreter, "-c", THROUGH_TYPER, *GENERATORS[kind]],
        )
    wg = shutil.which("wg")
    if wg is not None:
        # clan-core's keys generator: two wg processes under a shell.
        private, public = "{out}/privatekey", "{out}/publickey"
        script = f"{wg} genkey > {private} && {wg} pubkey < {private} > {public}"
        commands["clan-core-keys"] = (
            "clan-core keys (sh, wg genkey, wg pubkey)",
            ["sh", "-c", script],
        )
    if allocator is not None:
        for kind in ("controller", "peer"):
            commands[f"clan-core-{kind}"] = (
                f"clan-core ipv6_allocator.py {kind}",
                [*setting.interpreter, str(allocator), "{out}", "vpn", kind, "m1"],
            )
    return run_rounds(commands, setting.environment, runs, scratch)


def report(setting: Setting, results: dict[str, Measurement], runs: int) -> None:
    print(f"== {setting.name}: {runs} runs each, wall time of one fresh process (ms)")
    print(f"{'command':<44} {'median':>8} {'fastest':>8}")
    for measurement in results.values():
        print(f"{measurement.label:<44} {measurement.median_ms:8.1f} {measurement.fastest_ms:8.1f}")
    for kind in GENERATORS:
        median = results[kind].median_ms
        within = "<=" if median <= GOAL_MILLISECONDS else ">"
        verdict = [f"{median:.1f} ms {within} {GOAL_MILLISECONDS:.0f} ms"]
        for reference_key in REFERENCES[kind]:
            reference = results.get(reference_key)
            if reference is not None:
                ratio = median / reference.median_ms
                within = "<=" if ratio <= GOAL_RATIO else ">"
                verdict.append(f"{ratio:.2f}x {reference.label} {within} {GOAL_RATIO:.0f}x")
        verdict.append(f"{median - results['floor'].median_ms:.1f} ms above `python3 -c pass`")
        print(f"  {kind:<11} " + "; ".join(verdict))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="invocations per command")
    runs: int = parser.parse_args().runs

    clan_core = os.environ.get("CLAN_CORE_PATH")
    allocator = None
    if clan_core:
        allocator = Path(clan_core) / "clanServices" / "wireguard" / "ipv6_allocator.py"
        if not allocator.is_file():
            raise SystemExit(f"CLAN_CORE_PATH is set, but {allocator} does not exist")
    else:
        print("clan-core: not measured (set CLAN_CORE_PATH to a clan-core checkout)\n")

    as_installed = Setting("as installed", [sys.executable], dict(os.environ))
    bare = without_site_hooks()
    with tempfile.TemporaryDirectory(prefix="bench-generators-") as scratch_name:
        scratch = Path(scratch_name)
        for setting, ours in (
            (as_installed, clan_wireguard()),
            (bare, [*bare.interpreter, "-c", ENTRY]),
        ):
            report(setting, measure_setting(setting, ours, allocator, runs, scratch), runs)


if __name__ == "__main__":
    main()
