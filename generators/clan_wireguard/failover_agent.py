"""The failover agent: keeps every name of the mesh reachable while a controller is down.

A peer's host name points at its address in its designated controller's
/56, and a peer sends everything for that /56 to that controller. When the
controller dies, the name dies with it, although every other controller
already accepts and forwards that /56 (controllers allow each peer's /96 in
every controller's subnet). The agent, on every peer, probes each
controller's ``::1`` and, while one is down, hands its /56 in WireGuard's
allowed IPs to the first live controller of ``plan.failover.controllers``.
All peers use that same order, so both directions of a conversation take
the same controller. The dead controller keeps its own ``::1/128`` so the
probes still go to it directly and notice its return.

A restarted controller has forgotten every session and knows no peer
endpoint (peers roam), so it cannot reach idle peers until they handshake
again, which WireGuard does only every two minutes. While a controller is
down the agent therefore removes and re-adds it on the interface: a new
peer entry starts a handshake with the next packet, so the probe that
first reaches the returned controller also teaches it our endpoint.

Safety: the agent only ever changes allowed IPs between controllers of its
own plan, and on exit (SIGTERM) puts back exactly the plan's allowed IPs:
without the agent the mesh is what the NixOS module configured.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from clan_wireguard import wireguard
from clan_wireguard.errors import UserError
from clan_wireguard.icmp_probe import EchoProber
from clan_wireguard.plan import FailoverController, Plan, PlanPeer

log = logging.getLogger("clan_wireguard.failover")


class Health(enum.Enum):
    UNKNOWN = "unknown"  # not yet decided: treated as up, the plan's routing
    UP = "up"
    DOWN = "down"


@dataclass
class ControllerHealth:
    controller: FailoverController
    health: Health = Health.UNKNOWN
    consecutive_misses: int = 0
    consecutive_replies: int = 0
    since: float = field(default_factory=time.time)
    last_reset: float = 0.0


@dataclass(frozen=True)
class Thresholds:
    """How many probes in a row change a controller's health.

    Three misses at one probe a second: a single lost packet never moves
    traffic; two replies: a controller that answers once while restarting
    is not trusted yet.
    """

    interval: float = 1.0
    down_after: int = 3
    up_after: int = 2
    # While down, the controller's peer entry is renewed this often so a
    # handshake starts as soon as it is back (WireGuard itself retries
    # handshakes only every 5 s, and gives up after 90 s).
    reset_every: float = 2.0


def subnet_carriers(
    controllers: Sequence[FailoverController], health: Mapping[str, Health]
) -> dict[str, str]:
    """Which controller carries each controller's subnet, by name.

    >>> carriers = subnet_carriers(ctrls, {"c1": Health.UP, "c2": Health.DOWN})
    >>> carriers == {"c1": "c1", "c2": "c1"}
    """
    live = [c.name for c in controllers if health[c.name] is not Health.DOWN]
    return {
        c.name: (live[0] if health[c.name] is Health.DOWN and live else c.name) for c in controllers
    }


def desired_allowed_ips(plan: Plan, carriers: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Allowed IPs per public key for the plan's controllers, given the carriers."""
    assert plan.failover is not None
    by_name = {c.name: c for c in plan.failover.controllers}
    desired: dict[str, tuple[str, ...]] = {}
    for peer in plan.peers:
        controller = by_name.get(peer.name)
        if controller is None:
            continue
        ips: list[str] = []
        for allowed in peer.allowed_ips:
            if allowed == controller.subnet and carriers[peer.name] != peer.name:
                ips.append(f"{controller.address}/128")
            else:
                ips.append(allowed)
        ips.extend(
            other.subnet
            for other in plan.failover.controllers
            if other.name != peer.name and carriers[other.name] == peer.name
        )
        desired[peer.public_key] = tuple(ips)
    return desired


def _normalized(ips: Sequence[str]) -> frozenset[ipaddress.IPv6Network | ipaddress.IPv4Network]:
    return frozenset(ipaddress.ip_network(ip, strict=False) for ip in ips)


def inherited_health(plan: Plan, current: Mapping[str, Sequence[str]]) -> dict[str, Health]:
    """A restarted agent takes over what it finds on the interface.

    A controller whose subnet another controller carries was down when the
    previous agent stopped: it stays down until probes prove otherwise, so
    a restart of the agent does not move traffic back and forth.
    """
    assert plan.failover is not None
    health: dict[str, Health] = {}
    for controller in plan.failover.controllers:
        subnet = ipaddress.ip_network(controller.subnet)
        own = _normalized(current.get(controller.public_key, ()))
        health[controller.name] = Health.UNKNOWN if subnet in own else Health.DOWN
        if health[controller.name] is Health.DOWN:
            carried_elsewhere = any(
                subnet in _normalized(ips)
                for key, ips in current.items()
                if key != controller.public_key
            )
            if not carried_elsewhere:
                # Neither here nor elsewhere: the interface was just set up
                # or changed by hand; start from the plan.
                health[controller.name] = Health.UNKNOWN
    return health


class FailoverAgent:
    def __init__(
        self,
        plan: Plan,
        prober: EchoProber,
        thresholds: Thresholds,
        state_file: Path | None,
    ) -> None:
        if plan.failover is None:
            raise UserError(
                f"instance '{plan.instance}', machine '{plan.machine}': the plan has no failover "
                "data (the agent runs on peers of instances with two or more controllers)"
            )
        self.plan = plan
        self.failover = plan.failover
        self.interface = plan.interface
        self.prober = prober
        self.thresholds = thresholds
        self.state_file = state_file
        self.peers_by_name: dict[str, PlanPeer] = {p.name: p for p in plan.peers}
        missing = [c.name for c in self.failover.controllers if c.name not in self.peers_by_name]
        if missing:
            raise UserError(
                f"instance '{plan.instance}', machine '{plan.machine}': failover controllers "
                f"{', '.join(missing)} are not peers of the plan; the plan is inconsistent"
            )
        self.states = {c.name: ControllerHealth(c) for c in self.failover.controllers}
        self._stopping = False

    # -- the loop ---------------------------------------------------------

    def run(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._request_stop)
        self.prober.open()
        try:
            self._take_over()
            while not self._stopping:
                self.step()
        finally:
            self.prober.close()
            self.restore_plan()

    def _request_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: restoring the plan's allowed IPs", signal.Signals(signum).name)
        self._stopping = True

    def _take_over(self) -> None:
        current = wireguard.allowed_ips_by_peer(self.interface)
        for name, health in inherited_health(self.plan, current).items():
            self.states[name].health = health
            if health is Health.DOWN:
                log.info(
                    "%s: found its subnet carried by another controller; down until it answers",
                    name,
                )
        self.reconcile()

    def step(self) -> None:
        """One probe round: send, wait one interval for replies, act."""
        started = time.monotonic()
        for state in self.states.values():
            self.prober.send(state.controller.address)
        answered = self.prober.collect(started + self.thresholds.interval)
        changed = False
        for state in self.states.values():
            changed |= self._record(state, state.controller.address in answered)
        # Every round, not only on a change of health: something else (a
        # restarted peer unit during `nixos-rebuild switch`, a person with
        # `wg set`) may have put the plan's allowed IPs back meanwhile.
        self._apply(desired_allowed_ips(self.plan, self.carriers()))
        if changed:
            self._write_state()
        self._renew_down_controllers()

    def _record(self, state: ControllerHealth, replied: bool) -> bool:
        if replied:
            state.consecutive_replies += 1
            state.consecutive_misses = 0
        else:
            state.consecutive_misses += 1
            state.consecutive_replies = 0
        new = state.health
        if replied and state.consecutive_replies >= self.thresholds.up_after:
            new = Health.UP
        elif not replied and state.consecutive_misses >= self.thresholds.down_after:
            new = Health.DOWN
        if new is state.health:
            return False
        log.info(
            "%s (%s): %s -> %s",
            state.controller.name,
            state.controller.address,
            state.health.value,
            new.value,
        )
        state.health = new
        state.since = time.time()
        if new is Health.DOWN:
            state.last_reset = 0.0  # renew its peer entry at once
        return True

    # -- acting on WireGuard ---------------------------------------------

    def carriers(self) -> dict[str, str]:
        return subnet_carriers(
            self.failover.controllers, {n: s.health for n, s in self.states.items()}
        )

    def reconcile(self) -> None:
        self._apply(desired_allowed_ips(self.plan, self.carriers()))
        self._write_state()

    def restore_plan(self) -> None:
        plan_carriers = {c.name: c.name for c in self.failover.controllers}
        try:
            self._apply(desired_allowed_ips(self.plan, plan_carriers))
        except UserError as error:
            log.error("could not restore the plan's allowed IPs: %s", error)
        for state in self.states.values():
            state.health = Health.UNKNOWN
        self._write_state(stopped=True)

    def _apply(self, desired: Mapping[str, tuple[str, ...]]) -> None:
        current = wireguard.allowed_ips_by_peer(self.interface)
        changes = {
            key: ips
            for key, ips in desired.items()
            if _normalized(ips) != _normalized(current.get(key, ()))
        }
        # Gainers first: WireGuard moves an allowed IP to the peer it is set
        # on, so the subnet is never without a carrier in between.
        order = sorted(
            changes,
            key=lambda key: _normalized(changes[key]) <= _normalized(current.get(key, ())),
        )
        for key in order:
            wireguard.set_peer_allowed_ips(self.interface, key, changes[key])
            log.info("allowed IPs of %s: %s", self._name_of(key), " ".join(changes[key]))

    def _renew_down_controllers(self) -> None:
        now = time.monotonic()
        desired = desired_allowed_ips(self.plan, self.carriers())
        for state in self.states.values():
            if state.health is not Health.DOWN:
                continue
            if now - state.last_reset < self.thresholds.reset_every:
                continue
            peer = self.peers_by_name[state.controller.name]
            wireguard.renew_peer(self.interface, peer, desired[peer.public_key])
            state.last_reset = now

    def _name_of(self, public_key: str) -> str:
        for peer in self.plan.peers:
            if peer.public_key == public_key:
                return peer.name
        return public_key

    def _write_state(self, stopped: bool = False) -> None:
        if self.state_file is None:
            return
        carriers = self.carriers()
        state = {
            "instance": self.plan.instance,
            "machine": self.plan.machine,
            "interface": self.plan.interface,
            "running": not stopped,
            "updated": time.time(),
            "controllers": [
                {
                    "name": s.controller.name,
                    "address": s.controller.address,
                    "health": s.health.value,
                    "since": s.since,
                    "subnetCarriedBy": carriers[s.controller.name],
                }
                for s in self.states.values()
            ],
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2) + "\n")
        temporary.replace(self.state_file)
