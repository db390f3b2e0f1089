"""Redundancy on real WireGuard: controllers go down and come back in the lab.

Each test runs a lab (network namespaces, wireguard-go, the failover agent on
every peer) and checks reachability *by name* from inside the machines.
Deadlines here are far above the goal (10 s) and far below what WireGuard
does without the agent (never, for names in a dead controller's subnet; about
two minutes after a controller's return): they tell the two apart without
being a speed measurement. Times are measured by ``bench/failover.py``.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clan_wireguard.lab.convergence import wait_until_reachable
from clan_wireguard.lab.lab import Lab
from clan_wireguard.lab.machine import start_failover
from clan_wireguard.lab.processes import ProcessKind

pytestmark = [pytest.mark.lab, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPEC = EXAMPLES / "spec.json"
LARGE = EXAMPLES / "three-controllers-30-peers.json"
DEADLINE = 30.0


def _requirements_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, WireGuard devices)"
    if not Path("/dev/net/tun").exists():
        return "needs /dev/net/tun for wireguard-go"
    return None


@pytest.fixture(autouse=True)
def _lab_requirements() -> None:
    reason = _requirements_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def spec_lab() -> Iterator[Lab]:
    with Lab("failover-spec", [SPEC]) as lab:
        yield lab


def _instance(lab: Lab) -> str:
    """The lab's one instance."""
    (instance,) = {i for machine in lab.machines.values() for i in machine.plans}
    return instance


def _members(lab: Lab) -> list[str]:
    return sorted(lab.machines)


def _allowed_ips(lab: Lab, machine: str) -> dict[str, frozenset[str]]:
    """The allowed IPs of ``machine``'s peers, by peer name, read from wg."""
    plan = lab.plan(machine, _instance(lab))
    names = {peer.public_key: peer.name for peer in plan.peers}
    output = lab.exec(machine, ["wg", "show", plan.interface, "allowed-ips"]).stdout
    allowed: dict[str, frozenset[str]] = {}
    for line in output.splitlines():
        key, _, ips = line.partition("\t")
        allowed[names[key]] = frozenset(
            str(ipaddress.ip_network(ip)) for ip in ips.split() if ip != "(none)"
        )
    return allowed


def _plan_allowed_ips(lab: Lab, machine: str) -> dict[str, frozenset[str]]:
    plan = lab.plan(machine, _instance(lab))
    return {
        peer.name: frozenset(str(ipaddress.ip_network(ip)) for ip in peer.allowed_ips)
        for peer in plan.peers
    }


def _peers(lab: Lab) -> list[str]:
    return sorted(m for m in lab.machines if lab.plan(m, _instance(lab)).role == "peer")


def _assert_converges(
    lab: Lab,
    situation: str,
    *,
    machines: list[str] | None = None,
    since: float | None = None,
    sample: int | None = None,
) -> None:
    """Every pair among ``machines`` answers within DEADLINE; if not, says which did not."""
    result = wait_until_reachable(
        lab, machines=machines, since=since, sample=sample, deadline=DEADLINE
    )
    # At most ten pairs: a large lab can miss hundreds.
    assert result.seconds is not None, (
        f"{situation}: {result.last.summary()}, unreachable {result.last.unreachable()[:10]}"
    )


def _assert_plan_restored(lab: Lab, deadline: float = DEADLINE) -> None:
    """Every peer's interface carries exactly the plan's allowed IPs again."""
    start = time.monotonic()
    while True:
        differing = [p for p in _peers(lab) if _allowed_ips(lab, p) != _plan_allowed_ips(lab, p)]
        if not differing or time.monotonic() - start > deadline:
            break
        time.sleep(0.5)
    assert not differing, f"peers still differ from their plan: {differing}"


def test_spec_topology_each_controller_down_then_back(spec_lab: Lab) -> None:
    lab = spec_lab
    assert wait_until_reachable(lab, deadline=DEADLINE).seconds is not None
    for controller in ("controller1", "controller2"):
        lab.stop_machine(controller)
        stopped = time.monotonic()
        remaining = [m for m in _members(lab) if m != controller]
        _assert_converges(lab, f"with {controller} down", machines=remaining, since=stopped)
        # Every peer moved the dead controller's subnet to the live one.
        live = "controller2" if controller == "controller1" else "controller1"
        subnet = next(
            c.subnet
            for c in lab.plan("peer1", _instance(lab)).failover.controllers  # type: ignore[union-attr]
            if c.name == controller
        )
        for peer in _peers(lab):
            assert str(ipaddress.ip_network(subnet)) in _allowed_ips(lab, peer)[live], peer

        # Let the peers go idle before the controller returns: nothing but
        # the agent's probes and keepalives flows.
        time.sleep(3)
        lab.start_machine(controller)
        returned = time.monotonic()
        _assert_converges(lab, f"after {controller} returned", since=returned)
        _assert_plan_restored(lab)


def test_flapping_controller_and_killed_agent_leave_no_stuck_state(spec_lab: Lab) -> None:
    lab = spec_lab
    assert wait_until_reachable(lab, deadline=DEADLINE).seconds is not None
    # Down and up again, faster and slower than the agent's detection.
    for down_for in (1.0, 5.0, 0.5, 4.0):
        lab.stop_machine("controller2")
        time.sleep(down_for)
        lab.start_machine("controller2")
        time.sleep(1.0)
    assert wait_until_reachable(lab, deadline=DEADLINE).seconds is not None
    _assert_plan_restored(lab)

    # Kill peer1's agent (no chance to clean up) while controller1 is down
    # and its subnet is carried by controller2, then start a new agent.
    lab.stop_machine("controller1")
    remaining = [m for m in _members(lab) if m != "controller1"]
    assert wait_until_reachable(lab, machines=remaining, deadline=DEADLINE).seconds is not None
    agent = next(r for r in lab.table.find("peer1") if r.kind is ProcessKind.FAILOVER)
    os.kill(agent.pid, signal.SIGKILL)
    lab.table.stop([agent])  # forget it: the lab would report it as crashed
    # The interface keeps the last state: names still work without the agent.
    assert wait_until_reachable(lab, machines=remaining, deadline=5.0).seconds is not None
    start_failover(lab.table, lab.machine("peer1"), lab.plan("peer1", _instance(lab)), 1.0)
    time.sleep(2.0)
    assert wait_until_reachable(lab, machines=remaining, deadline=DEADLINE).seconds is not None
    log = Path(lab.machine("peer1").log_file("failover-vpn")).read_text()
    assert "controller1: found its subnet carried by another controller" in log

    lab.start_machine("controller1")
    assert wait_until_reachable(lab, deadline=DEADLINE).seconds is not None
    _assert_plan_restored(lab)


def test_agent_restores_the_plan_when_stopped(spec_lab: Lab) -> None:
    lab = spec_lab
    lab.stop_machine("controller2")
    remaining = [m for m in _members(lab) if m != "controller2"]
    assert wait_until_reachable(lab, machines=remaining, deadline=DEADLINE).seconds is not None
    assert _allowed_ips(lab, "peer1") != _plan_allowed_ips(lab, "peer1")
    agent = next(r for r in lab.table.find("peer1") if r.kind is ProcessKind.FAILOVER)
    lab.table.stop([agent])  # SIGTERM, as systemd stops the unit
    assert _allowed_ips(lab, "peer1") == _plan_allowed_ips(lab, "peer1")


def test_three_controllers_two_down_then_back_one_by_one() -> None:
    with Lab("failover-large", [LARGE]) as lab:
        controllers = sorted(
            m for m in lab.machines if lab.plan(m, _instance(lab)).role == "controller"
        )
        assert len(controllers) == 3
        assert len(_peers(lab)) == 30
        sample = 300
        assert wait_until_reachable(lab, sample=sample, deadline=DEADLINE).seconds is not None
        down: list[str] = []
        for controller in controllers[:2]:
            lab.stop_machine(controller)
            down.append(controller)
            remaining = [m for m in _members(lab) if m not in down]
            _assert_converges(lab, f"with {down} down", machines=remaining, sample=sample)
        for controller in reversed(down):
            lab.start_machine(controller)
            back = [m for m in _members(lab) if m not in down or m == controller]
            down.remove(controller)
            _assert_converges(lab, f"after {controller} returned", machines=back, sample=sample)
        _assert_plan_restored(lab)


def test_agent_repairs_allowed_ips_reset_behind_its_back(spec_lab: Lab) -> None:
    """A peer unit restarted during a switch puts the plan back; the agent redoes the move."""
    lab = spec_lab
    lab.stop_machine("controller2")
    remaining = [m for m in _members(lab) if m != "controller2"]
    assert wait_until_reachable(lab, machines=remaining, deadline=DEADLINE).seconds is not None
    moved = _allowed_ips(lab, "peer1")
    plan = lab.plan("peer1", _instance(lab))
    for peer in plan.peers:
        lab.exec(
            "peer1",
            [
                "wg",
                "set",
                plan.interface,
                "peer",
                peer.public_key,
                "allowed-ips",
                ",".join(peer.allowed_ips),
            ],
        )
    assert _allowed_ips(lab, "peer1") == _plan_allowed_ips(lab, "peer1")
    start = time.monotonic()
    while _allowed_ips(lab, "peer1") != moved and time.monotonic() - start < DEADLINE:
        time.sleep(0.2)
    assert _allowed_ips(lab, "peer1") == moved
    assert wait_until_reachable(lab, machines=remaining, deadline=DEADLINE).seconds is not None
