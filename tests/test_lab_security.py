"""Security on real tunnels: strangers get nothing, forged sources are dropped.

Both are measured, not assumed: packets are seen arriving (tcpdump on the
underlay, WireGuard's receive counters) and seen not to come out of the
controller's WireGuard interface.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clan_wireguard.lab import Lab
from clan_wireguard.lab.processes import ProcessRecord
from clan_wireguard.vars_store import read_public_value
from conftest import EXAMPLES

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def spec_lab(module_lab_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    vars_dir = tmp_path_factory.mktemp("vars")
    with Lab(module_lab_name, [EXAMPLES / "spec.json"], vars_dir, failover=False) as lab:
        yield lab


def start_capture(lab: Lab, machine: str, interface: str, bpf: str, label: str) -> ProcessRecord:
    """tcpdump printing one line per packet into the lab's log for ``label``."""
    record = lab.spawn(machine, ["tcpdump", "-i", interface, "-n", "-l", "-U", "-p", bpf], label)
    log = Path(record.log or "")
    deadline = time.monotonic() + 10
    while "listening on" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"tcpdump did not start: {log.read_text()}"
        time.sleep(0.05)
    return record


def stop_capture(lab: Lab, record: ProcessRecord) -> list[str]:
    # Let the last packets reach tcpdump before it is stopped.
    time.sleep(0.3)
    lab.stop_process(record)
    text = Path(record.log or "").read_text()
    return [line for line in text.splitlines() if " IP" in line]


def public(lab: Lab, machine: str, generator: str, file: str) -> str:
    value = read_public_value(lab.vars_dir, machine, generator, file)
    assert value is not None
    return value


def test_a_machine_whose_key_is_not_in_the_mesh_gets_no_answer(
    spec_lab: Lab, tmp_path: Path
) -> None:
    controller = spec_lab.plan("controller1", "vpn")
    controller_key = spec_lab.interface_state("controller1", "vpn").public_key
    controller_address = controller.addresses[0].split("/")[0]
    endpoint = next(
        p.endpoint for p in spec_lab.plan("peer1", "vpn").peers if p.name == "controller1"
    )
    assert endpoint is not None

    intruder = spec_lab.add_bare_machine("intruder")
    key_file = tmp_path / "intruder.key"
    key_file.write_text(spec_lab.exec("intruder", ["wg", "genkey"]).stdout)
    key_file.chmod(0o600)
    wireguard = spec_lab.spawn("intruder", ["wireguard-go", "-f", "wg0"], "intruder-wireguard")
    deadline = time.monotonic() + 10
    while spec_lab.exec("intruder", ["wg", "show", "wg0"], check=False).returncode != 0:
        assert time.monotonic() < deadline, "the intruder's wireguard-go did not start"
        time.sleep(0.05)
    # Watch controller1's uplink from before the intruder's first handshake.
    intruder_ipv4 = intruder.port.ipv4
    capture = start_capture(
        spec_lab, "controller1", "uplink", f"udp and host {intruder_ipv4}", "capture-intruder"
    )
    # A plausible address in controller1's subnet, and the whole mesh routed
    # into the tunnel: everything a real member would have, except the key.
    prefix = public(spec_lab, "controller1", "wireguard-network-vpn", "prefix")
    stranger_address = f"{prefix}:dead:beef:0:1/56"
    spec_lab.exec(
        "intruder",
        [
            "wg", "set", "wg0", "private-key", str(key_file),
            "peer", controller_key, "allowed-ips", controller.network,
            "endpoint", endpoint, "persistent-keepalive", "1",
        ],
    )  # fmt: skip
    spec_lab.exec("intruder", ["ip", "address", "add", stranger_address, "dev", "wg0"])
    spec_lab.exec("intruder", ["ip", "link", "set", "wg0", "up"])
    spec_lab.exec("intruder", ["ip", "route", "add", controller.network, "dev", "wg0"])

    ping = spec_lab.exec(
        "intruder",
        ["ping", "-6", "-c", "3", "-i", "0.5", "-W", "1", controller_address],
        check=False,
    )
    lines = stop_capture(spec_lab, capture)
    spec_lab.stop_process(wireguard)

    assert ping.returncode != 0, ping.stdout
    assert "0 received" in ping.stdout
    # The intruder's handshakes did reach controller1 ...
    towards = [line for line in lines if f"{intruder_ipv4}." in line.split(">")[0]]
    assert towards, "no packet from the intruder reached controller1"
    # ... and controller1 answered none of them.
    answers = [line for line in lines if f"{intruder_ipv4}." in line.split(">")[1]]
    assert answers == []
    keys = {peer.public_key for peer in spec_lab.interface_state("controller1", "vpn").peers}
    intruder_key = spec_lab.exec("intruder", ["wg", "pubkey"], check=False)
    assert intruder_key.stdout.strip() not in keys


def test_a_peer_forging_another_peers_address_is_dropped(spec_lab: Lab) -> None:
    prefix = public(spec_lab, "controller1", "wireguard-network-vpn", "prefix")
    genuine = f"{prefix}:{public(spec_lab, 'peer1', 'wireguard-network-vpn', 'suffix')}"
    forged = f"{prefix}:{public(spec_lab, 'peer3', 'wireguard-network-vpn', 'suffix')}"
    controller_address = f"{prefix}::1"
    peer1_key = spec_lab.interface_state("peer1", "vpn").public_key

    # peer1 takes peer3's address as its own, next to its real one.
    spec_lab.exec("peer1", ["ip", "address", "add", f"{forged}/128", "dev", "vpn", "nodad"])
    try:
        capture = start_capture(
            spec_lab,
            "controller1",
            "vpn",
            f"icmp6 and (src {forged} or src {genuine})",
            "capture-forged",
        )
        before = spec_lab.interface_state("controller1", "vpn").peer(peer1_key)
        forged_ping = spec_lab.exec(
            "peer1",
            ["ping", "-6", "-c", "5", "-i", "0.2", "-W", "1", "-s", "1000", "-I", forged,
             controller_address],
            check=False,
        )  # fmt: skip
        after = spec_lab.interface_state("controller1", "vpn").peer(peer1_key)
        # The control: the same ping from peer1's own address goes through.
        genuine_ping = spec_lab.exec(
            "peer1", ["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-I", genuine,
                      controller_address],
            check=False,
        )  # fmt: skip
        lines = stop_capture(spec_lab, capture)
    finally:
        spec_lab.exec("peer1", ["ip", "address", "del", f"{forged}/128", "dev", "vpn"])

    assert before is not None and after is not None
    # The forged packets arrived at controller1, through peer1's session ...
    assert after.rx_bytes - before.rx_bytes >= 5 * 1000
    # ... but WireGuard dropped them: nothing from the forged source came out
    # of controller1's interface, and no reply came back.
    assert [line for line in lines if f" {forged} >" in line] == []
    assert forged_ping.returncode != 0
    assert genuine_ping.returncode == 0, genuine_ping.stdout
    assert [line for line in lines if f" {genuine} >" in line], lines
