"""The clan service (modules/clan), evaluated through clan-core's own code.

``tests/nix-harness/eval-clan-service.nix`` resolves the service from this
flake's ``clan.modules`` the way clan resolves ``module.input``, evaluates the
instances with clan-core's service machinery (role interfaces, settings,
perInstance/perMachine, exports against clan's export interfaces) and each
machine's NixOS module with clan-core's vars options. The clan.nix files are
written for clan-core's wireguard service; only ``module.input`` names this
flake. Generator scripts are run with bash, as ``clan vars generate`` runs
them, and call the real ``clan-wireguard`` command.

Needs ``CLAN_CORE_PATH`` (a clan-core work tree) and ``NIXPKGS_LIB_PATH`` (a
directory holding nixpkgs' ``lib/``); skipped with that reason otherwise.
What stands in for parts of clan (this flake's outputs without nixpkgs, the
inventory-to-service wiring, secret paths) is listed in the harness.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from command_line import clan_wireguard_command
from planner_mesh import evaluate_json, evaluation_failure

JSON = Any

REPOSITORY = Path(__file__).resolve().parents[1]
HARNESS = REPOSITORY / "tests" / "nix-harness" / "eval-clan-service.nix"

pytestmark = [
    pytest.mark.nix,
    pytest.mark.skipif(
        shutil.which("nix-instantiate") is None, reason="nix-instantiate is not installed"
    ),
]


def required_directory(variable: str, marker: str, what: str) -> Path:
    configured = os.environ.get(variable)
    if not configured:
        pytest.skip(f"{variable} is not set: point it at {what}")
    path = Path(configured)
    if not (path / marker).exists():
        pytest.fail(f"{variable}={configured} is not {what} (no {marker})")
    return path


@pytest.fixture(scope="module")
def sources() -> tuple[Path, Path]:
    return (
        required_directory(
            "NIXPKGS_LIB_PATH", "lib/default.nix", "a directory holding nixpkgs' lib/"
        ),
        required_directory("CLAN_CORE_PATH", "lib/evalService.nix", "a clan-core work tree"),
    )


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package directory whose bin/clan-wireguard is this checkout's command."""
    root = tmp_path_factory.mktemp("package")
    (root / "bin").mkdir()
    launcher = root / "bin" / "clan-wireguard"
    command = " ".join(shlex.quote(part) for part in clan_wireguard_command())
    launcher.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    launcher.chmod(0o755)
    return root


def harness_arguments(
    sources: tuple[Path, Path], clan: JSON, directory: Path, package: Path
) -> list[str]:
    """Writes ``clan`` as the clan.json of ``directory``; the harness's arguments for it."""
    directory.mkdir(parents=True, exist_ok=True)
    clan_file = directory / "clan.json"
    clan_file.write_text(json.dumps(clan))
    lib_path, clan_core = sources
    return [
        str(HARNESS),
        "--argstr",
        "libPath",
        str(lib_path),
        "--argstr",
        "clanCorePath",
        str(clan_core),
        "--argstr",
        "clanFile",
        str(clan_file),
        "--argstr",
        "directory",
        str(directory),
        "--argstr",
        "packagePath",
        str(package),
    ]


def evaluate(sources: tuple[Path, Path], clan: JSON, directory: Path, package: Path) -> JSON:
    return evaluate_json(harness_arguments(sources, clan, directory, package))


def evaluation_error(sources: tuple[Path, Path], clan: JSON, directory: Path, package: Path) -> str:
    return evaluation_failure(
        [*harness_arguments(sources, clan, directory, package), "-A", "machines"]
    )


# The spec's "Multiple Controllers Setup", as written for clan-core's service
# (plus the peers the topology names); only module.input differs.
def spec_clan() -> JSON:
    return {
        "machines": {name: {} for name in ("server1", "server2", "server3", "laptop1", "laptop2")},
        "instances": {
            "wireguard": {
                "module": {"name": "wireguard", "input": "clan-wireguard"},
                "roles": {
                    "controller": {
                        "machines": {
                            "server1": {"settings": {"endpoint": "vpn1.example.com"}},
                            "server2": {"settings": {"endpoint": "vpn2.example.com"}},
                            "server3": {"settings": {"endpoint": "vpn3.example.com"}},
                        }
                    },
                    "peer": {
                        "machines": {
                            "laptop1": {"settings": {"controller": "server1"}},
                            "laptop2": {"settings": {"controller": "server3"}},
                        }
                    },
                },
            }
        },
    }


# The spec's "Basic Setup with Single Controller", verbatim but for module.input.
def single_controller_clan() -> JSON:
    return {
        "machines": {"server1": {}, "laptop1": {}},
        "instances": {
            "wireguard": {
                "module": {"name": "wireguard", "input": "clan-wireguard"},
                "roles": {
                    "controller": {
                        "machines": {"server1": {}},
                        "settings": {"endpoint": "vpn.example.com", "port": 51820},
                    },
                    "peer": {"machines": {"laptop1": {}}},
                },
            }
        },
    }


def run_generator(script: str, out: Path) -> None:
    """Runs a generator script the way clan does: bash, strict, with $out."""
    out.mkdir(parents=True)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "out": str(out), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (script, result.stderr)


def generate_vars(
    sources: tuple[Path, Path], clan: JSON, directory: Path, package: Path, tmp_path: Path
) -> JSON:
    """`clan vars generate`, machine after machine; returns the final evaluation.

    Each machine is evaluated after the previous ones' values are stored, as
    when machines join a clan one at a time.
    """
    first = evaluate(sources, clan, directory, package)
    for machine in sorted(first["machines"]):
        generators = evaluate(sources, clan, directory, package)["machines"][machine]["generators"]
        for name, generator in sorted(generators.items()):
            out = tmp_path / "out" / machine / name
            run_generator(generator["script"], out)
            # Clan requires exactly the declared files.
            assert sorted(p.name for p in out.iterdir()) == sorted(generator["files"])
            for file, declared in generator["files"].items():
                store = "secrets" if declared["secret"] else "vars"
                target = directory / store / "per-machine" / machine / name / file / "value"
                target.parent.mkdir(parents=True)
                shutil.move(out / file, target)
    return evaluate(sources, clan, directory, package)


def public(directory: Path, machine: str, generator: str, file: str) -> str:
    path = directory / "vars" / "per-machine" / machine / generator / file / "value"
    return path.read_text().strip()


# -- the service as clan sees it -----------------------------------------------


def test_service_resolves_from_this_flake_with_clan_cores_roles(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    output = evaluate(sources, spec_clan(), tmp_path / "clan", package)
    assert sorted(output["roleDescriptions"]) == ["controller", "peer"]
    assert all(output["roleDescriptions"].values())
    assert output["manifest"]["readme"] is True
    assert "Network" in output["manifest"]["categories"]
    # clan requires role interfaces it can turn into JSON schema.
    assert output["serviceAssertions"] == {"controller": True, "peer": True}
    assert sorted(output["machines"]) == ["laptop1", "laptop2", "server1", "server2", "server3"]


def test_settings_schema_keeps_clan_cores_names(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    schema = evaluate(sources, spec_clan(), tmp_path / "clan", package)["schema"]
    controller = schema["controller"]["$defs"]["Input"]
    peer = schema["peer"]["$defs"]["Input"]
    assert sorted(controller["properties"]) == ["domain", "endpoint", "mtu", "port"]
    assert controller["required"] == ["endpoint"]
    assert sorted(peer["properties"]) == ["controller", "domain", "keepalive", "mtu", "port"]
    # `controller` is optional: a missing one is the planner's to report.
    assert peer.get("required", []) == []


def test_generators_keep_clan_cores_names_files_and_flags(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    machines = evaluate(sources, spec_clan(), tmp_path / "clan", package)["machines"]
    for name, machine in machines.items():
        network_file = "prefix" if name.startswith("server") else "suffix"
        generators = machine["generators"]
        assert sorted(generators) == ["wireguard-keys-wireguard", "wireguard-network-wireguard"]
        keys = generators["wireguard-keys-wireguard"]
        assert keys["files"]["privatekey"]["secret"] is True
        assert keys["files"]["publickey"]["secret"] is False
        network = generators["wireguard-network-wireguard"]
        assert network["files"] == {network_file: {"secret": False, "deploy": True}}
        assert network["validation"] == {"hostname": name}
        assert keys["share"] is False
        assert network["share"] is False
        # Both call this project's command.
        for generator in (keys, network):
            assert shlex.split(generator["script"])[0] == f"{package}/bin/clan-wireguard"


def test_generated_vars_give_a_working_mesh(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    clan = spec_clan()
    directory = tmp_path / "clan"
    output = generate_vars(sources, clan, directory, package, tmp_path)
    machines = output["machines"]
    for name, machine in machines.items():
        assert machine["failedAssertions"] == [], (name, machine["failedAssertions"])
        assert sorted(machine["interfaces"]) == ["wireguard"]
        # The key stays where clan's secret store puts it, out of the store.
        key_path = "/run/secrets/vars/per-machine/{}/wireguard-keys-wireguard/privatekey"
        assert machine["instances"]["wireguard"]["privateKeyFile"] == key_path.format(name)
        assert machine["interfaces"]["wireguard"]["privateKeyFile"] == key_path.format(name)

    def subnet(controller: str) -> ipaddress.IPv6Network:
        prefix = public(directory, controller, "wireguard-network-wireguard", "prefix")
        return ipaddress.IPv6Network(f"{prefix}::/56")

    suffix = int(
        ipaddress.IPv6Address(
            "::" + public(directory, "laptop2", "wireguard-network-wireguard", "suffix")
        )
    )
    laptop2 = ipaddress.IPv6Address(int(subnet("server3").network_address) | suffix)
    server1 = subnet("server1").network_address + 1
    for machine in machines.values():
        assert machine["hosts"][str(laptop2)] == ["laptop2.wireguard"]
        assert machine["hosts"][str(server1)] == ["server1.wireguard"]
    assert machines["server2"]["sysctl"] == {"net.ipv6.conf.all.forwarding": 1}
    assert machines["server2"]["allowedUDPPorts"] == [51820]
    assert machines["laptop1"]["services"] == ["clan-wireguard-failover-wireguard"]
    laptop1 = machines["laptop1"]["interfaces"]["wireguard"]
    assert len(laptop1["ips"]) == 3
    assert {peer["name"] for peer in laptop1["peers"]} == {"server1", "server2", "server3"}


def test_new_controllers_avoid_prefixes_already_taken(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    clan = spec_clan()
    directory = tmp_path / "clan"
    generate_vars(sources, clan, directory, package, tmp_path)
    taken = {
        name: public(directory, name, "wireguard-network-wireguard", "prefix")
        for name in ("server1", "server2", "server3")
    }
    controllers = clan["instances"]["wireguard"]["roles"]["controller"]["machines"]
    controllers["server4"] = {"settings": {"endpoint": "vpn4.example.com"}}
    clan["machines"]["server4"] = {}
    generators = evaluate(sources, clan, directory, package)["machines"]["server4"]["generators"]
    arguments = shlex.split(generators["wireguard-network-wireguard"]["script"])
    listed = [arguments[i + 1] for i, argument in enumerate(arguments) if argument == "--taken"]
    assert sorted(listed) == sorted(taken.values())
    assert arguments[arguments.index("--instance") + 1] == "wireguard"
    assert arguments[arguments.index("--machine") + 1] == "server4"


def test_single_controller_setup_from_the_spec(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    output = generate_vars(sources, single_controller_clan(), tmp_path / "clan", package, tmp_path)
    laptop = output["machines"]["laptop1"]
    assert laptop["failedAssertions"] == []
    (peer,) = laptop["interfaces"]["wireguard"]["peers"]
    assert peer["name"] == "server1"
    assert peer["endpoint"] == "vpn.example.com:51820"
    # One controller: no failover to run.
    assert laptop["services"] == []


def test_role_and_machine_settings_reach_the_mesh(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "clan"
    generate_vars(sources, spec_clan(), directory, package, tmp_path)
    clan = spec_clan()
    roles = clan["instances"]["wireguard"]["roles"]
    # As in clan, a setting is given role-wide or per machine, not both
    # (the two would conflict at equal priority).
    roles["peer"]["settings"] = {"domain": "mesh"}
    roles["controller"]["settings"] = {"domain": "mesh", "mtu": 1380}
    roles["peer"]["machines"]["laptop1"]["settings"] |= {"port": 51900, "keepalive": 0}
    roles["peer"]["machines"]["laptop2"]["settings"]["keepalive"] = 10
    roles["controller"]["machines"]["server2"]["settings"]["port"] = 51821
    machines = evaluate(sources, clan, directory, package)["machines"]

    laptop1 = machines["laptop1"]
    assert laptop1["failedAssertions"] == []
    interface = laptop1["interfaces"]["wireguard"]
    assert interface["listenPort"] == 51900
    assert laptop1["allowedUDPPorts"] == [51900]
    assert all(peer["persistentKeepalive"] is None for peer in interface["peers"])
    assert {peer["name"]: peer["endpoint"] for peer in interface["peers"]}["server2"] == (
        "vpn2.example.com:51821"
    )
    laptop2 = machines["laptop2"]["interfaces"]["wireguard"]
    assert {peer["persistentKeepalive"] for peer in laptop2["peers"]} == {10}
    assert all(name.endswith(".mesh") for names in laptop1["hosts"].values() for name in names)
    server2 = machines["server2"]
    assert server2["interfaces"]["wireguard"]["listenPort"] == 51821
    assert server2["interfaces"]["wireguard"]["mtu"] == 1380
    assert server2["allowedUDPPorts"] == [51821]


def test_tags_select_members_as_in_clan(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    clan = spec_clan()
    clan["machines"]["laptop3"] = {"tags": ["laptops"]}
    clan["machines"]["laptop4"] = {"tags": ["laptops"]}
    peer_role = clan["instances"]["wireguard"]["roles"]["peer"]
    peer_role["tags"] = {"laptops": {"settings": {"controller": "server2"}}}
    machines = evaluate(sources, clan, tmp_path / "clan", package)["machines"]
    assert {"laptop3", "laptop4"} <= set(machines)
    roles = machines["laptop3"]["instances"]["wireguard"]["roles"]
    assert roles["peer"]["machines"]["laptop4"]["settings"]["controller"] == "server2"


def test_exports_name_every_member_for_ssh(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    clan = spec_clan()
    clan["instances"]["wireguard"]["roles"]["peer"]["settings"] = {"domain": "mesh"}
    exports = evaluate(sources, clan, tmp_path / "clan", package)["exports"]
    hosts = {scope: export["peer"]["hosts"] for scope, export in exports.items() if export["peer"]}
    assert hosts == {
        "clan-wireguard:wireguard:controller:server1": [{"plain": "server1.wireguard"}],
        "clan-wireguard:wireguard:controller:server2": [{"plain": "server2.wireguard"}],
        "clan-wireguard:wireguard:controller:server3": [{"plain": "server3.wireguard"}],
        "clan-wireguard:wireguard:peer:laptop1": [{"plain": "laptop1.mesh"}],
        "clan-wireguard:wireguard:peer:laptop2": [{"plain": "laptop2.mesh"}],
    }
    networking = exports["clan-wireguard:wireguard::"]["networking"]
    assert networking["priority"] == 1000


# -- mistakes in clan.nix ------------------------------------------------------


def test_missing_controller_is_reported_by_the_planner(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "clan"
    generate_vars(sources, spec_clan(), directory, package, tmp_path)
    clan = copy.deepcopy(spec_clan())
    del clan["instances"]["wireguard"]["roles"]["peer"]["machines"]["laptop2"]["settings"]
    machines = evaluate(sources, clan, directory, package)["machines"]
    for name in ("laptop1", "server1"):
        failed = machines[name]["failedAssertions"]
        assert len(failed) == 1, failed
        assert "'laptop2'" in failed[0]
        assert "controller" in failed[0]
        assert machines[name]["interfaces"] == {}


def test_members_without_vars_are_reported_not_traced(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    machines = evaluate(sources, spec_clan(), tmp_path / "empty", package)["machines"]
    failed = machines["laptop1"]["failedAssertions"]
    assert failed, "missing public values must be reported"
    assert any("wireguard-keys-wireguard" in message for message in failed)
    assert machines["laptop1"]["interfaces"] == {}


def test_wrong_setting_type_names_the_instance_machine_and_option(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    clan = spec_clan()
    clan["instances"]["wireguard"]["roles"]["controller"]["machines"]["server2"]["settings"][
        "port"
    ] = 70000
    error = evaluation_error(sources, clan, tmp_path / "clan", package)
    assert "instances.wireguard.roles.controller.machines.server2.settings.port" in error


def test_machine_in_both_roles_gets_one_assertion_and_one_generator_each(
    sources: tuple[Path, Path], package: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "clan"
    generate_vars(sources, spec_clan(), directory, package, tmp_path)
    clan = spec_clan()
    clan["instances"]["wireguard"]["roles"]["peer"]["machines"]["server2"] = {
        "settings": {"controller": "server1"}
    }
    server2 = evaluate(sources, clan, directory, package)["machines"]["server2"]
    failed = server2["failedAssertions"]
    assert len(failed) == 1, failed
    assert "'server2'" in failed[0]
    assert "roles.controller.machines and roles.peer.machines" in failed[0]
    network = server2["generators"]["wireguard-network-wireguard"]
    assert list(network["files"]) == ["prefix"]
    assert shlex.split(network["script"])[2] == "controller"
