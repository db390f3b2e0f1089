"""What the host must offer before a lab starts: root, TUN, tools, inotify."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from clan_wireguard.errors import UserError

INOTIFY_SYSCTL = Path("/proc/sys/fs/inotify/max_user_instances")
# Room for whatever else root starts while the lab runs.
INOTIFY_HEADROOM = 64
INOTIFY_LINK = Path("anon_inode:inotify")
TOOLS = {
    "ip": "iproute2",
    "wg": "wireguard-tools",
    "wireguard-go": "wireguard-go",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "ping": "iputils-ping",
    "sysctl": "procps",
}


def check_host() -> None:
    """Root, /dev/net/tun and the programs the lab runs."""
    if os.geteuid() != 0:
        raise UserError("the lab creates network namespaces and WireGuard devices: run it as root")
    if not Path("/dev/net/tun").exists():
        raise UserError(
            "/dev/net/tun is missing: wireguard-go needs the TUN device (modprobe tun; in a "
            "container, pass the device in)"
        )
    missing = sorted(
        f"{tool} ({package})" for tool, package in TOOLS.items() if not shutil.which(tool)
    )
    if missing:
        raise UserError(f"the lab needs these programs: {', '.join(missing)} (Debian packages)")


def inotify_instances_in_use(uid: int = 0) -> int:
    """inotify instances held by processes of ``uid``: the limit is per user."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            for descriptor in os.scandir(f"/proc/{entry.name}/fd"):
                if Path(descriptor.path).readlink() == INOTIFY_LINK:
                    count += 1
        except OSError:
            # The process ended while we looked.
            continue
    return count


def ensure_inotify_instances(needed: int, progress: Callable[[str], None]) -> None:
    """Each wireguard-go holds one inotify instance (it watches its socket).

    The per-user default (128) is below what a large lab needs: raise it,
    or say which sysctl to raise.
    """
    limit = int(INOTIFY_SYSCTL.read_text())
    wanted = inotify_instances_in_use() + needed + INOTIFY_HEADROOM
    if wanted <= limit:
        return
    try:
        INOTIFY_SYSCTL.write_text(f"{wanted}\n")
    except OSError as error:
        raise UserError(
            f"the lab needs {needed} more inotify instances (one per wireguard-go) than "
            f"fs.inotify.max_user_instances = {limit} allows: run "
            f"`sysctl -w fs.inotify.max_user_instances={wanted}` ({error.strerror})"
        ) from error
    progress(
        f"raised fs.inotify.max_user_instances from {limit} to {wanted} "
        f"(one per wireguard-go; it stays raised)"
    )
