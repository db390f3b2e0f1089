"""``clan-wireguard lab …``: the lab's command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from clan_wireguard.lab.check import ReachabilityReport
from clan_wireguard.lab.lab import DEFAULT_NAME, Bringup, Lab, Progress, down_by_name
from clan_wireguard.lab.processes import Interrupted, interrupts_unwind

app = typer.Typer(
    help="Run a mesh on this machine in network namespaces with real WireGuard.",
    no_args_is_help=True,
)

NameOption = Annotated[
    str,
    typer.Option(
        "--name", "-n", help="The lab's name; several labs with distinct names can run at once."
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print no progress.")]
InventoriesArgument = Annotated[
    list[Path],
    typer.Argument(
        help="Inventory files, one instance each (the format of `vars generate`).",
        metavar="INVENTORY",
        show_default=False,
    ),
]
VarsDirOption = Annotated[
    Path | None,
    typer.Option(
        help="Keep the vars here (missing ones are generated); "
        "default: inside the lab's state, removed with the lab."
    ),
]
NoFailoverOption = Annotated[
    bool, typer.Option("--no-failover", help="Do not start failover agents on the peers.")
]
BringupOption = Annotated[
    Bringup,
    typer.Option(
        help="staged: keys and peers everywhere first, then endpoints; controllers-first; "
        "simultaneous: every machine at once, in no order."
    ),
]
SampleOption = Annotated[
    int | None,
    typer.Option(help="Check only this many pairs, chosen at random (with --seed).", min=1),
]
SeedOption = Annotated[int, typer.Option(help="Seed for choosing the --sample pairs.")]
TimeoutOption = Annotated[
    float, typer.Option(help="Seconds each ping may take before the pair counts as unreachable.")
]
ConcurrencyOption = Annotated[int, typer.Option(help="Pings running at the same time.", min=1)]


def _progress(quiet: bool) -> Progress | None:
    if quiet:
        return None

    def show(message: str) -> None:
        print(f"lab: {message}", file=sys.stderr, flush=True)

    return show


def _print_report(report: ReachabilityReport) -> None:
    print(report.matrix())
    print()
    for pair in report.unreachable()[:20]:
        print(f"unreachable: {pair.source} -> {pair.hostname}", file=sys.stderr)
    for dead in report.dead_processes:
        print(f"warning: {dead}", file=sys.stderr)
    print(report.summary())


def _interrupted(lab_name: str) -> typer.Exit:
    print(f"interrupted: lab '{lab_name}' was taken down", file=sys.stderr)
    return typer.Exit(130)


@app.command()
def up(
    inventories: InventoriesArgument,
    *,
    vars_dir: VarsDirOption = None,
    name: NameOption = DEFAULT_NAME,
    no_failover: NoFailoverOption = False,
    bringup: BringupOption = Bringup.STAGED,
    quiet: QuietOption = False,
) -> None:
    """Start a lab and leave it running; `lab down` stops it.

    Missing vars are generated, every machine is planned, and each plan is
    applied to a machine made of namespaces with its own wireguard-go.
    """
    lab = Lab(
        name,
        inventories,
        vars_dir,
        failover=not no_failover,
        bringup=bringup,
        progress=_progress(quiet),
    )
    with interrupts_unwind():
        try:
            lab.up()
        except (KeyboardInterrupt, Interrupted):
            raise _interrupted(name) from None


@app.command()
def check(
    name: NameOption = DEFAULT_NAME,
    sample: SampleOption = None,
    seed: SeedOption = 0,
    timeout: TimeoutOption = 10.0,
    concurrency: ConcurrencyOption = 16,
) -> None:
    """Ping every machine from every other by name; exit status 1 unless all answer."""
    lab = Lab.attach(name)
    report = lab.check(sample=sample, seed=seed, timeout=timeout, concurrency=concurrency)
    _print_report(report)
    if not report.all_reachable:
        raise typer.Exit(1)


@app.command()
def down(name: NameOption = DEFAULT_NAME, quiet: QuietOption = False) -> None:
    """Stop every process of the lab and remove its namespaces and files."""
    down_by_name(name, _progress(quiet))


@app.command()
def status(name: NameOption = DEFAULT_NAME) -> None:
    """Machines, their processes, and a `wg show` summary per interface."""
    print(Lab.attach(name).status().text())


@app.command(
    "exec",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_(
    machine: Annotated[str, typer.Argument(help="The lab machine to run in.")],
    command: Annotated[list[str], typer.Argument(help="The command and its arguments, after --.")],
    name: NameOption = DEFAULT_NAME,
) -> None:
    """Run a command inside a machine (its network, /etc/hosts and host name)."""
    lab = Lab.attach(name)
    result = lab.exec(machine, command, check=False, capture=False)
    raise typer.Exit(result.returncode)


@app.command()
def stop(
    machine: Annotated[str, typer.Argument(help="The lab machine to take down.")],
    name: NameOption = DEFAULT_NAME,
    quiet: QuietOption = False,
) -> None:
    """Stop a machine's wireguard-go and failover agent (an outage)."""
    Lab.attach(name, _progress(quiet)).stop_machine(machine)


@app.command()
def start(
    machine: Annotated[str, typer.Argument(help="The stopped lab machine to bring back.")],
    name: NameOption = DEFAULT_NAME,
    quiet: QuietOption = False,
) -> None:
    """Bring a stopped machine back with its plans, like a reboot."""
    Lab.attach(name, _progress(quiet)).start_machine(machine)


@app.command()
def demo(
    inventories: InventoriesArgument,
    *,
    vars_dir: VarsDirOption = None,
    name: NameOption = "demo",
    no_failover: NoFailoverOption = False,
    bringup: BringupOption = Bringup.STAGED,
    sample: SampleOption = None,
    timeout: TimeoutOption = 10.0,
    quiet: QuietOption = False,
) -> None:
    """Up, check, down in one go: the whole mesh on this machine, then nothing left."""
    lab = Lab(
        name,
        inventories,
        vars_dir,
        failover=not no_failover,
        bringup=bringup,
        progress=_progress(quiet),
    )
    with interrupts_unwind():
        try:
            try:
                lab.up()
                report = lab.check(sample=sample, timeout=timeout)
                _print_report(report)
            finally:
                lab.down()
        except (KeyboardInterrupt, Interrupted):
            raise _interrupted(name) from None
    if not report.all_reachable:
        raise typer.Exit(1)
