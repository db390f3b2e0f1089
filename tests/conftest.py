"""Fixtures of the lab tests: who may run them, unique lab names, nothing left behind.

Every lab a test starts gets a fresh name; after the test, the fixture looks
for anything of that lab still on the host (network namespaces, processes
carrying the lab's marker in their environment, mounts, the state
directory), removes it, and fails the test if there was any.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clan_wireguard.lab import namespaces
from clan_wireguard.lab.lab import LAB_MARKER, STATE_ROOT

LAB_TOOLS = ("wireguard-go", "wg", "ip", "nsenter", "unshare", "ping", "sysctl", "nix-instantiate")
REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLES = REPOSITORY / "examples"


def lab_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces, WireGuard devices)"
    if not Path("/dev/net/tun").exists():
        return "lab tests need /dev/net/tun for wireguard-go"
    missing = [tool for tool in LAB_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"lab tests need {', '.join(missing)} (scripts/setup.sh installs them)"
    return None


def processes_of_lab(name: str) -> list[int]:
    """Live processes (not zombies) started by lab ``name``, found by their marker."""
    marker = f"{LAB_MARKER}={name}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat[stat.rindex(")") + 2 :].split()[0]
        if marker in environment and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def leftovers_of_lab(name: str) -> dict[str, Any]:
    state_dir = STATE_ROOT / name
    mounts = [
        line
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if str(state_dir) in line or namespaces.lab_prefix(name) in line
    ]
    found: dict[str, Any] = {
        "network namespaces": namespaces.existing_lab_netns(name),
        "processes": processes_of_lab(name),
        "mounts": mounts,
        "state directory": [str(state_dir)] if state_dir.exists() else [],
    }
    return {kind: items for kind, items in found.items() if items}


def remove_leftovers(name: str) -> None:
    """Only for a test that already failed to clean up: everything here is marked
    with the test's own unique lab name."""
    for pid in processes_of_lab(name):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while processes_of_lab(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    namespaces.delete_netns(namespaces.existing_lab_netns(name))
    shutil.rmtree(STATE_ROOT / name, ignore_errors=True)


def new_lab_name() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def assert_nothing_left(name: str) -> None:
    leftovers = leftovers_of_lab(name)
    if leftovers:
        remove_leftovers(name)
        pytest.fail(f"lab '{name}' left things behind: {json.dumps(leftovers, indent=2)}")


def checked_lab_name() -> Iterator[str]:
    """A fresh lab name (skips where labs cannot run); afterwards, nothing of it may remain."""
    reason = lab_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    name = new_lab_name()
    yield name
    assert_nothing_left(name)


@pytest.fixture
def lab_name() -> Iterator[str]:
    """A fresh lab name; after the test, nothing of that lab may remain."""
    yield from checked_lab_name()


@pytest.fixture(scope="module")
def module_lab_name() -> Iterator[str]:
    """Like ``lab_name``, for one lab shared by the tests of a module."""
    yield from checked_lab_name()


def write_inventory(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / f"{data['instanceName']}.json"
    path.write_text(json.dumps(data, indent=2))
    return path
