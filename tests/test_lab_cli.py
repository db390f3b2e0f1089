"""``clan-wireguard lab …`` run as a user runs it: separate processes, real signals."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from command_line import assert_one_line_error, clan_wireguard_command, run_clan_wireguard
from conftest import EXAMPLES, assert_nothing_left, new_lab_name, write_inventory

pytestmark = pytest.mark.lab

SPEC = EXAMPLES / "spec.json"


def lab(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return run_clan_wireguard("lab", *arguments)


def start_lab_command(*arguments: str | Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*clan_wireguard_command(), "lab", *map(str, arguments)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )


def wait_for_progress(process: subprocess.Popen[bytes], fragment: str, timeout: float = 60) -> str:
    """Read the command's progress (stderr) until a line contains ``fragment``."""
    assert process.stderr is not None
    received = b""
    deadline = time.monotonic() + timeout
    while fragment.encode() not in received:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {fragment!r} in time; got {received.decode()}"
        ready, _, _ = select.select([process.stderr], [], [], remaining)
        if ready:
            chunk = os.read(process.stderr.fileno(), 4096)
            assert chunk, f"the command ended before {fragment!r}: {received.decode()}"
            received += chunk
    return received.decode()


def test_demo_runs_the_spec_example_and_leaves_nothing(lab_name: str) -> None:
    result = lab("demo", SPEC, "--name", lab_name)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "20/20 pairs reachable"
    rows = [
        line for line in lines if line.split()[1:2] and line.split()[1].startswith(("con", "peer"))
    ]
    assert [row.split()[1] for row in rows] == [
        "controller1",
        "controller2",
        "peer1",
        "peer2",
        "peer3",
    ]
    assert all(row.split()[2:].count("+") == 4 for row in rows)
    for step in ("vars of instance 'vpn'", "planning", "starting 5 wireguard-go", "is down"):
        assert step in result.stderr


def test_up_then_separate_commands_then_down(lab_name: str, tmp_path: Path) -> None:
    vars_dir = tmp_path / "vars"
    up = lab("up", SPEC, "--name", lab_name, "--vars-dir", vars_dir, "--no-failover", "--quiet")
    assert up.returncode == 0, up.stderr
    assert up.stderr == ""
    try:
        check = lab("check", "--name", lab_name)
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.splitlines()[-1] == "20/20 pairs reachable"

        sampled = lab("check", "--name", lab_name, "--sample", "3")
        assert sampled.stdout.splitlines()[-1] == "3/3 pairs reachable"

        status = lab("status", "--name", lab_name)
        assert status.returncode == 0, status.stderr
        assert status.stdout.count("wireguard-go") == 5
        assert "DEAD" not in status.stdout

        hostname = lab("exec", "--name", lab_name, "peer2", "--", "hostname")
        assert (hostname.returncode, hostname.stdout.strip()) == (0, "peer2")
        ping = lab("exec", "--name", lab_name, "peer2", "--", "ping", "-c1", "-W5", "peer3.vpn")
        assert ping.returncode == 0, ping.stdout
        failing = lab("exec", "--name", lab_name, "peer2", "--", "sh", "-c", "exit 7")
        assert failing.returncode == 7

        stop = lab("stop", "--name", lab_name, "peer3")
        assert stop.returncode == 0, stop.stderr
        degraded = lab("check", "--name", lab_name, "--timeout", "1")
        assert degraded.returncode == 1
        assert degraded.stdout.splitlines()[-1] == "12/20 pairs reachable"

        start = lab("start", "--name", lab_name, "peer3")
        assert start.returncode == 0, start.stderr
        again = lab("check", "--name", lab_name)
        assert again.returncode == 0, again.stdout
    finally:
        down = lab("down", "--name", lab_name)
    assert down.returncode == 0, down.stderr
    # A vars directory given by the user stays, with the keys in it.
    assert (vars_dir / "vars" / "per-machine" / "peer1").is_dir()


@pytest.mark.parametrize(
    ("command", "stage", "signum"),
    [
        ("up", "creating 5 machines", signal.SIGINT),
        ("up", "starting 5 wireguard-go", signal.SIGINT),
        ("up", "starting 5 wireguard-go", signal.SIGTERM),
        ("demo", "is up", signal.SIGINT),
    ],
)
def test_an_interrupted_lab_takes_itself_down(
    lab_name: str, command: str, stage: str, signum: signal.Signals
) -> None:
    process = start_lab_command(command, SPEC, "--name", lab_name)
    try:
        wait_for_progress(process, stage)
        process.send_signal(signum)
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            # Show where it waits: the command prints its threads' stacks.
            process.send_signal(signal.SIGUSR1)
            time.sleep(1)
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"no exit 60 s after {signum.name}:\n{stderr.decode()}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # The fixture checks that nothing of the lab is left.
    assert process.returncode == 130, stderr.decode()
    assert f"interrupted: lab '{lab_name}' was taken down" in stderr.decode()


def test_two_labs_run_side_by_side(lab_name: str) -> None:
    other = new_lab_name()
    up = lab("up", SPEC, "--name", lab_name, "--no-failover", "--quiet")
    assert up.returncode == 0, up.stderr
    try:
        demo = lab("demo", SPEC, "--name", other, "--no-failover", "--quiet")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert_nothing_left(other)
        # The other lab's coming and going did not disturb this one.
        check = lab("check", "--name", lab_name)
        assert check.returncode == 0, check.stdout
    finally:
        lab("down", "--name", lab_name)


def test_a_second_lab_with_the_same_name_is_refused(lab_name: str) -> None:
    up = lab("up", SPEC, "--name", lab_name, "--no-failover", "--quiet")
    assert up.returncode == 0, up.stderr
    try:
        again = lab("up", SPEC, "--name", lab_name)
        assert_one_line_error(again, f"'{lab_name}' is already up", "lab down --name")
        # The refused attempt did not touch the running lab.
        assert lab("check", "--name", lab_name, "--sample", "4").returncode == 0
    finally:
        lab("down", "--name", lab_name)


def test_planner_problems_stop_the_lab_before_anything_starts(
    lab_name: str, tmp_path: Path
) -> None:
    inventory = json.loads(SPEC.read_text())
    inventory["roles"]["peer"]["machines"]["peer3"]["settings"]["controller"] = "controller9"
    path = write_inventory(tmp_path, inventory)
    result = lab("up", path, "--name", lab_name, "--quiet")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error: " in result.stderr
    assert "'vpn'" in result.stderr
    assert "peer3" in result.stderr
    assert "controller9" in result.stderr
    assert "Traceback" not in result.stderr


def test_errors_name_what_to_change(lab_name: str) -> None:
    assert_one_line_error(lab("check", "--name", lab_name), f"no lab named '{lab_name}'", "lab up")
    assert_one_line_error(lab("down", "--name", lab_name), f"no lab named '{lab_name}'")
    assert_one_line_error(lab("up", SPEC, "--name", "Bad_Name"), "lab name 'Bad_Name'", "--name")
    missing = SPEC.with_name("no-such-inventory.json")
    assert_one_line_error(lab("up", missing, "--name", lab_name), str(missing))
    up = lab("up", SPEC, "--name", lab_name, "--no-failover", "--quiet")
    assert up.returncode == 0, up.stderr
    try:
        assert_one_line_error(
            lab("exec", "--name", lab_name, "peer9", "--", "true"),
            "no machine 'peer9'",
            "peer1",
        )
        assert_one_line_error(
            lab("start", "--name", lab_name, "peer1"), "'peer1' is running", "lab stop"
        )
    finally:
        lab("down", "--name", lab_name)
