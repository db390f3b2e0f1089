"""Controller endpoints of every kind: an IPv6 literal, an IPv4 literal, a DNS name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clan_wireguard.lab import Lab
from conftest import EXAMPLES

pytestmark = pytest.mark.lab

ENDPOINTS = {
    "gateway6": "[2001:db8:100::1]:51820",
    "gateway4": "192.0.2.10:51900",
    # A name: the lab's /etc/hosts points it at the controller's underlay address.
    "gatewaydns": None,
}


def test_literal_and_named_endpoints(lab_name: str, tmp_path: Path) -> None:
    inventory = EXAMPLES / "mixed-endpoints.json"
    controllers = json.loads(inventory.read_text())["roles"]["controller"]["machines"]
    with Lab(lab_name, [inventory], tmp_path / "vars") as lab:
        report = lab.check()
        assert report.total == 30
        assert report.unreachable() == []
        named_host = controllers["gatewaydns"]["settings"]["endpoint"]
        resolved = lab.exec("laptop", ["getent", "ahostsv4", named_host]).stdout.split()[0]
        # The name resolves to the address on gatewaydns's own uplink.
        uplink = lab.exec("gatewaydns", ["ip", "-j", "-4", "address", "show", "dev", "uplink"])
        assert resolved in {a["local"] for a in json.loads(uplink.stdout)[0]["addr_info"]}
        for peer in ("laptop", "desktop", "phone"):
            state = lab.interface_state(peer, "mixed")
            for controller in controllers:
                key = lab.interface_state(controller, "mixed").public_key
                live = state.peer(key)
                assert live is not None
                # A completed handshake with every controller: each kind of
                # endpoint was dialled and answered.
                assert live.latest_handshake > 0, (peer, controller)
                expected = ENDPOINTS[controller] or f"{resolved}:51820"
                assert live.endpoint == expected
