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


def clan_wireguard_script() -> list[str]:
    """The console script of this interpreter's environment, as a user would run it."""
    script = Path(sys.executable).parent / "clan-wireguard"
    if script.is_file():
        return [str(script)]
    found = shutil.which("clan-wireguard")
    return [found] if found else [sys.executable, "-m", "clan_wireguard"]


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


def measure(
    label: str, command: list[str], environment: dict[str, str], runs: int, scratch: Path
) -> Measurement:
    """Median and fastest wall time; ``{out}`` in the command is a new empty directory."""
    timings = []
    for run in range(runs):
        out = Path(tempfile.mkdtemp(prefix=f"{run}-", dir=scratch))
        arguments = [str(out) if part == "{out}" else part for part in command]
        started = time.perf_counter()
        result = subprocess.run(
            arguments, capture_output=True, text=True, check=False, env=environment
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"{label} failed: {result.stderr.strip()}")
        timings.append(elapsed * 1000)
    return Measurement(label, statistics.median(timings), min(timings))


def measure_setting(
    setting: Setting, ours: list[str], allocator: Path | None, runs: int, scratch: Path
) -> dict[str, Measurement]:
    environment = setting.environment
    results = {
        "floor": measure(
            "python3 -c pass", [*setting.interpreter, "-c", "pass"], environment, runs, scratch
        )
    }
    for kind, command in GENERATORS.items():
        results[kind] = measure(
            f"clan-wireguard generate {kind}", [*ours, *command], environment, runs, scratch
        )
    for kind in ("controller", "peer"):
        results[f"typer-{kind}"] = measure(
            f"  same, through typer ({kind})",
            [*setting.interpreter, "-c", THROUGH_TYPER, *GENERATORS[kind]],
            environment,
            runs,
            scratch,
        )
    if allocator is not None:
        for kind in ("controller", "peer"):
            results[f"clan-core-{kind}"] = measure(
                f"clan-core ipv6_allocator.py {kind}",
                [*setting.interpreter, str(allocator), "{out}", "vpn", kind, "m1"],
                environment,
                runs,
                scratch,
            )
    return results


def report(setting: Setting, results: dict[str, Measurement], runs: int) -> None:
    print(f"== {setting.name}: {runs} runs each, wall time of one fresh process (ms)")
    print(f"{'command':<44} {'median':>8} {'fastest':>8}")
    for measurement in results.values():
        print(f"{measurement.label:<44} {measurement.median_ms:8.1f} {measurement.fastest_ms:8.1f}")
    reference = results.get("clan-core-controller")
    for kind in GENERATORS:
        median = results[kind].median_ms
        within = "<=" if median <= GOAL_MILLISECONDS else ">"
        verdict = [f"{median:.1f} ms {within} {GOAL_MILLISECONDS:.0f} ms"]
        if reference is not None:
            ratio = median / reference.median_ms
            within = "<=" if ratio <= GOAL_RATIO else ">"
            verdict.append(f"{ratio:.2f}x clan-core {within} {GOAL_RATIO:.0f}x")
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
            (as_installed, clan_wireguard_script()),
            (bare, [*bare.interpreter, "-c", ENTRY]),
        ):
            report(setting, measure_setting(setting, ours, allocator, runs, scratch), runs)


if __name__ == "__main__":
    main()
