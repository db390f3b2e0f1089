"""The underlay plan: where each controller endpoint of real plans points in the lab."""

from __future__ import annotations

import ipaddress
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from clan_wireguard.errors import UserError
from clan_wireguard.lab.underlay import UNDERLAY_IPV4, UNDERLAY_IPV6, Underlay, plan_underlay
from clan_wireguard.plan import PlanSet, evaluate_plans
from clan_wireguard.vars_store import generate_instance
from conftest import write_inventory

pytestmark = pytest.mark.nix


def plans_of(tmp_path: Path, endpoints: dict[str, str]) -> PlanSet:
    if shutil.which("nix-instantiate") is None:
        pytest.skip("nix-instantiate is not installed")
    data: dict[str, Any] = {
        "instanceName": "edge",
        "roles": {
            "controller": {
                "machines": {c: {"settings": {"endpoint": e}} for c, e in endpoints.items()}
            },
            "peer": {"machines": {"p1": {"settings": {"controller": sorted(endpoints)[0]}}}},
        },
    }
    inventory = write_inventory(tmp_path, data)
    generate_instance(inventory, tmp_path / "vars")
    plans = evaluate_plans([inventory], tmp_path / "vars")
    assert plans.problems == ()
    return plans


def underlay_of(plans: PlanSet) -> Underlay:
    return plan_underlay(sorted(plans.plans), plans.plans)


def test_names_point_at_their_controller_and_literals_sit_on_its_uplink(tmp_path: Path) -> None:
    plans = plans_of(
        tmp_path, {"c1": "vpn.example.net", "c2": "2001:db8:100::1", "c3": "192.0.2.10"}
    )
    underlay = underlay_of(plans)
    ports = underlay.ports
    assert underlay.endpoint_names == {"vpn.example.net": ports["c1"].ipv4}
    assert ports["c2"].endpoint_addresses == ("2001:db8:100::1",)
    assert ports["c3"].endpoint_addresses == ("192.0.2.10",)
    assert ports["p1"].endpoint_addresses == ()
    assert sorted(underlay.literal_endpoints()) == [("192.0.2.10", "c3"), ("2001:db8:100::1", "c2")]
    # Every machine has its own addresses, inside the lab's private ranges
    # and outside the mesh.
    mesh = ipaddress.ip_network(plans.plans["c1"]["edge"].network)
    addresses = [ipaddress.ip_address(a) for p in ports.values() for a in (p.ipv4, p.ipv6)]
    assert len(set(addresses)) == 2 * len(ports) == 8
    for address in addresses:
        assert address in (UNDERLAY_IPV4 if address.version == 4 else UNDERLAY_IPV6)
        assert address not in (UNDERLAY_IPV4.network_address, UNDERLAY_IPV6.network_address)
        assert address not in mesh
    # The state file round trip keeps everything.
    assert Underlay.from_json(json.loads(json.dumps(underlay.to_json()))) == underlay


@pytest.mark.parametrize("endpoint", ["127.0.0.1", "::1", "fe80::1", "ff02::1", "100.64.0.2"])
def test_endpoints_the_lab_cannot_make_real_are_refused(tmp_path: Path, endpoint: str) -> None:
    plans = plans_of(tmp_path, {"c1": endpoint, "c2": "vpn2.example.net"})
    with pytest.raises(UserError) as raised:
        underlay_of(plans)
    message = str(raised.value)
    assert "wireguard instance 'edge', machine 'c1'" in message
    assert f'roles.controller.machines.c1.settings.endpoint = "{endpoint}"' in message
    assert "\n" not in message


def test_an_endpoint_inside_the_mesh_is_refused(tmp_path: Path) -> None:
    plans = plans_of(tmp_path, {"c1": "vpn1.example.net", "c2": "vpn2.example.net"})
    network = plans.plans["c1"]["edge"].network
    inside = network.split("::")[0] + "::99"
    plans = plans_of(tmp_path, {"c1": inside, "c2": "vpn2.example.net"})
    with pytest.raises(UserError, match="mesh address"):
        underlay_of(plans)


def test_one_endpoint_name_for_two_controllers_is_refused(tmp_path: Path) -> None:
    plans = plans_of(tmp_path, {"c1": "same.example.net", "c2": "same.example.net"})
    with pytest.raises(UserError) as raised:
        underlay_of(plans)
    assert "machine 'c2'" in str(raised.value)
    assert "also the endpoint of 'c1'" in str(raised.value)
