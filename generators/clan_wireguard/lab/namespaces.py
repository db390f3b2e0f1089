"""Names and lifetimes of a lab's namespaces.

A lab machine is a named network namespace ``cwlab-<lab>.<machine>`` plus a
mount and a UTS namespace held by a small process, the *holder*. The holder
is started inside the network namespace, unshares mount and UTS, then:

- detaches the copies of ``/run/netns`` its new mount namespace inherited
  (they would keep every other lab's network namespaces alive),
- mounts a private tmpfs on ``/run/wireguard``: wireguard-go puts its control
  socket at ``/var/run/wireguard/<interface>.sock`` and every machine of an
  instance uses the same interface name,
- bind-mounts the machine's own hosts file on ``/etc/hosts``,
- sets the host name to the machine's name,

and then becomes ``sleep infinity``. Every later command for the machine runs
through ``nsenter --target HOLDER --mount --uts --net``. Mounts are private to
the holder's mount namespace and vanish with it.

The underlay's bridge lives in ``cwlab-<lab>._underlay`` (``_`` cannot start
a machine name). Everything a lab creates in ``/run/netns`` starts with
``cwlab-<lab>.``, so a lab can find and delete all of it by name.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from clan_wireguard.errors import UserError
from clan_wireguard.lab.processes import deferred_signals

NETNS_DIR = Path("/run/netns")
NETNS_PREFIX = "cwlab-"
LAB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")

_HOLDER_SCRIPT = """set -e
umount --recursive --lazy /run/netns 2>/dev/null || true
mkdir -p /run/wireguard
mount -t tmpfs -o mode=0700,size=1m lab-wireguard /run/wireguard
mount --bind "$1" /etc/hosts
hostname "$2"
echo ready
exec sleep infinity
"""


def check_lab_name(name: str) -> None:
    if not LAB_NAME.match(name):
        raise UserError(
            f"lab name '{name}' is not valid: use 1 to 40 lower-case letters, digits and '-', "
            "starting with a letter or digit (--name)"
        )


def lab_prefix(lab: str) -> str:
    return f"{NETNS_PREFIX}{lab}."


def machine_netns(lab: str, machine: str) -> str:
    return f"{lab_prefix(lab)}{machine}"


def underlay_netns(lab: str) -> str:
    return f"{lab_prefix(lab)}_underlay"


def existing_lab_netns(lab: str) -> list[str]:
    """Every network namespace of this lab that exists now, by name."""
    prefix = lab_prefix(lab)
    try:
        names = [path.name for path in NETNS_DIR.iterdir()]
    except FileNotFoundError:
        return []
    return sorted(name for name in names if name.startswith(prefix))


def run_ip(arguments: Sequence[str], what: str, stdin: str | None = None) -> None:
    command = ["ip", *arguments]
    # An interrupt waits until `ip` has finished: raised meanwhile, Python
    # kills the child without waiting for it, and an `ip netns add` can
    # still complete its mount after the cleanup has looked for leftovers.
    with deferred_signals():
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UserError(f"{what}: `{' '.join(command)}` failed: {result.stderr.strip()}")


def add_netns(name: str) -> None:
    run_ip(["netns", "add", name], f"creating network namespace {name}")


def delete_netns(names: Sequence[str]) -> None:
    """Delete network namespaces; keeps going past ones that are already gone."""
    if not names:
        return
    batch = "".join(f"netns delete {name}\n" for name in names)
    # -force: one failure must not leave the others behind.
    subprocess.run(
        ["ip", "-force", "-batch", "-"], input=batch, capture_output=True, text=True, check=False
    )


def holder_command(netns: str, machine: str, hosts_file: Path) -> list[str]:
    """The holder: enters ``netns``, makes the machine's mounts, prints ``ready``."""
    return [
        "ip",
        "netns",
        "exec",
        netns,
        "unshare",
        "--mount",
        "--uts",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        _HOLDER_SCRIPT,
        "lab-holder",
        str(hosts_file),
        machine,
    ]


def enter_command(holder_pid: int) -> list[str]:
    """The prefix that runs a command inside the machine held by ``holder_pid``."""
    return ["nsenter", f"--target={holder_pid}", "--mount", "--uts", "--net", "--"]


def holder_root(holder_pid: int) -> Path:
    """The machine's file system as the machine sees it (its own mounts)."""
    return Path(f"/proc/{holder_pid}/root")
