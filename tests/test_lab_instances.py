"""Two instances on the same machines at once, each on its own interface and port."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from clan_wireguard.lab import Lab
from clan_wireguard.vars_store import read_public_value
from conftest import EXAMPLES

pytestmark = pytest.mark.lab


def test_two_instances_side_by_side(lab_name: str, tmp_path: Path) -> None:
    inventories = [EXAMPLES / "spec.json", EXAMPLES / "spec-second-instance.json"]
    with Lab(lab_name, inventories, tmp_path / "vars") as lab:
        report = lab.check()
        # 20 ordered pairs in each instance, by <machine>.vpn and <machine>.backup.
        assert report.total == 40
        assert {r.pair.hostname.split(".")[1] for r in report.results} == {"vpn", "backup"}
        assert report.unreachable() == []
        for controller in ("controller1", "controller2"):
            links = lab.exec(controller, ["ip", "-brief", "link", "show", "type", "tun"]).stdout
            assert sorted(line.split()[0] for line in links.splitlines()) == ["backup", "vpn"]
            assert lab.interface_state(controller, "vpn").listen_port == 51820
            assert lab.interface_state(controller, "backup").listen_port == 51821
        # The instances differ: peer1's designated controller is controller1
        # in "vpn" and controller2 in "backup", and so are its names.
        for instance, controller in (("vpn", "controller1"), ("backup", "controller2")):
            prefix = read_public_value(
                lab.vars_dir, controller, f"wireguard-network-{instance}", "prefix"
            )
            suffix = read_public_value(
                lab.vars_dir, "peer1", f"wireguard-network-{instance}", "suffix"
            )
            answer = lab.exec("peer2", ["getent", "ahostsv6", f"peer1.{instance}"]).stdout
            assert ipaddress.IPv6Address(answer.split()[0]) == ipaddress.IPv6Address(
                f"{prefix}:{suffix}"
            )
