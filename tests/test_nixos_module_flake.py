"""flake.nix, the package of the command, and the NixOS VM test's wiring.

The VM test itself (checks/failover.nix) needs KVM and runs with
``nix flake check``; here its machines are evaluated with the NixOS harness,
its fixtures are checked with ``wg`` and the planner, and its test script is
compiled. The flake's outputs are evaluated with nixpkgs' lib and a stand-in
for the nixpkgs input whose builders return their arguments
(``tests/nix-harness/stub-nixpkgs.nix``).

Parsing and the builtins-only checks always run; the rest needs
``NIXPKGS_LIB_PATH`` (a directory holding nixpkgs' ``lib/``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from clan_wireguard.plan import NIX_DIR_VARIABLE

JSON = Any

REPOSITORY = Path(__file__).resolve().parents[1]
HARNESS = REPOSITORY / "tests" / "nix-harness" / "eval-flake.nix"
FIXTURES = REPOSITORY / "checks" / "fixtures"
VM_MACHINES = ("ctrl1", "ctrl2", "peer1", "peer2", "peer3")

pytestmark = [
    pytest.mark.nix,
    pytest.mark.skipif(
        shutil.which("nix-instantiate") is None, reason="nix-instantiate is not installed"
    ),
]

OUR_NIX_FILES = sorted(
    [
        REPOSITORY / "flake.nix",
        REPOSITORY / "generators" / "package.nix",
        *(REPOSITORY / "modules" / "nixos").rglob("*.nix"),
        *(REPOSITORY / "modules" / "clan").rglob("*.nix"),
        *(REPOSITORY / "checks").rglob("*.nix"),
        *(REPOSITORY / "tests" / "nix-harness").rglob("*.nix"),
    ]
)


def nix_eval(*arguments: str) -> JSON:
    result = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("path", OUR_NIX_FILES, ids=lambda p: str(p.relative_to(REPOSITORY)))
def test_nix_file_parses(path: Path) -> None:
    result = subprocess.run(
        ["nix-instantiate", "--parse", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_flake_has_only_the_nixpkgs_input() -> None:
    inputs = nix_eval(
        "--expr", f"builtins.mapAttrs (_: input: input.url) (import {REPOSITORY}/flake.nix).inputs"
    )
    assert inputs == {"nixpkgs": "github:NixOS/nixpkgs/nixos-unstable"}


# -- the VM test's fixtures ----------------------------------------------------


def fixture_inventory() -> JSON:
    return json.loads((FIXTURES / "inventory.json").read_text())


def test_vm_fixture_covers_the_spec_topology() -> None:
    roles = fixture_inventory()["roles"]
    assert sorted(roles["controller"]["machines"]) == ["ctrl1", "ctrl2"]
    designated = {
        name: member["settings"]["controller"] for name, member in roles["peer"]["machines"].items()
    }
    assert designated == {"peer1": "ctrl1", "peer2": "ctrl2", "peer3": "ctrl1"}


@pytest.mark.skipif(shutil.which("wg") is None, reason="wg (wireguard-tools) is not installed")
@pytest.mark.parametrize("machine", VM_MACHINES)
def test_vm_fixture_keys_form_pairs(machine: str) -> None:
    private = FIXTURES / "secrets" / "per-machine" / machine / "wireguard-keys-vpn" / "privatekey"
    public = FIXTURES / "vars" / "per-machine" / machine / "wireguard-keys-vpn" / "publickey"
    derived = subprocess.run(
        ["wg", "pubkey"],
        input=(private / "value").read_text(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert derived.strip() == (public / "value").read_text().strip()


def test_vm_fixture_is_planned_without_problems() -> None:
    expression = (
        f"let planner = import {REPOSITORY}/modules/planner; "
        f"inventory = builtins.fromJSON (builtins.readFile {FIXTURES}/inventory.json); "
        "planned = planner.planInstance { name = inventory.instanceName; "
        "instance = { inherit (inventory) roles; }; "
        f"publicValue = planner.readVarsDir {FIXTURES}; }}; "
        "in { inherit (planned) problems; "
        f"machines = builtins.attrNames planned.machines; }}"
    )
    output = nix_eval("--expr", expression)
    assert output == {"problems": [], "machines": sorted(VM_MACHINES)}


# -- the flake's outputs -------------------------------------------------------


@pytest.fixture(scope="module")
def flake() -> JSON:
    configured = os.environ.get("NIXPKGS_LIB_PATH")
    if not configured:
        pytest.skip("NIXPKGS_LIB_PATH is not set: point it at a directory holding nixpkgs' lib/")
    # --read-write-mode: the package's sources are copied to the store.
    return nix_eval("--read-write-mode", str(HARNESS), "--argstr", "libPath", configured)


def test_outputs_for_both_linux_systems(flake: JSON) -> None:
    both = ["aarch64-linux", "x86_64-linux"]
    assert flake["systems"] == {name: both for name in flake["systems"]}
    assert sorted(flake["systems"]) == ["checks", "devShells", "formatter", "packages"]
    assert flake["checks"] == ["failover", "package", "planner"]
    assert flake["devShells"] == ["default"]
    assert flake["formatter"] == "nixfmt"


def test_modules_and_planner_outputs(flake: JSON) -> None:
    assert flake["clanModule"] == str(REPOSITORY / "modules" / "clan")
    nixos = str(REPOSITORY / "modules" / "nixos")
    assert flake["nixosModules"] == {"default": nixos, "clan-wireguard": nixos}
    assert {"planInstance", "planInstances", "machineProblems", "readVarsDir"} <= set(flake["lib"])


def test_package_matches_pyproject(flake: JSON) -> None:
    project = tomllib.loads((REPOSITORY / "generators" / "pyproject.toml").read_text())["project"]
    package = flake["package"]
    assert package["pname"] == project["name"]
    assert package["version"] == project["version"]
    assert package["pyproject"] is True
    assert package["buildSystem"] == ["setuptools"]
    required = [re.split(r"[<>=!~ \[]", dependency)[0] for dependency in project["dependencies"]]
    assert sorted(package["dependencies"]) == sorted(required)
    assert package["mainProgram"] in project["scripts"]
    assert flake["defaultIsTheCommand"] is True


def test_package_source_holds_only_what_the_build_reads(flake: JSON) -> None:
    source = Path(flake["package"]["src"])
    files = sorted(str(path.relative_to(source)) for path in source.rglob("*") if path.is_file())
    assert "pyproject.toml" in files
    assert "clan_wireguard/cli.py" in files
    assert "clan_wireguard/py.typed" in files
    checkout = REPOSITORY / "generators" / "clan_wireguard"
    expected = sorted(
        str(path.relative_to(checkout.parent))
        for path in checkout.rglob("*")
        if path.is_file() and (path.suffix == ".py" or path.name == "py.typed")
    )
    assert files == sorted(["pyproject.toml", *expected])


def test_package_wrapper_points_the_command_at_the_planner(flake: JSON) -> None:
    arguments = flake["package"]["makeWrapperArgs"]
    index = arguments.index(NIX_DIR_VARIABLE)
    assert arguments[index - 1] == "--set"
    nix_dir = Path(arguments[index + 1])
    # The store copy the installed command evaluates.
    assert (nix_dir / "planner" / "from-files.nix").is_file()
    assert (nix_dir / "planner" / "default.nix").read_text() == (
        REPOSITORY / "modules" / "planner" / "default.nix"
    ).read_text()
    path = arguments[arguments.index("PATH") + 2]
    for tool in ("wireguard-tools", "iproute2", "iputils", "nix"):
        assert re.search(rf"-{tool}/bin(:|$)", path), (tool, path)


def test_planner_check_plans_every_vm_machine(flake: JSON) -> None:
    plans = json.loads(Path(flake["plannerCheck"]).read_text())
    assert sorted(plans) == sorted(VM_MACHINES)
    assert {plans[name]["role"] for name in ("ctrl1", "ctrl2")} == {"controller"}


# -- the VM test, evaluated ----------------------------------------------------


def test_vm_test_machines_evaluate_without_failed_assertions(flake: JSON) -> None:
    nodes = flake["vmTest"]["nodes"]
    assert sorted(nodes) == sorted(VM_MACHINES)
    for name, node in nodes.items():
        assert node["failedAssertions"] == [], (name, node["failedAssertions"])
        interface = node["interfaces"]["vpn"]
        key = node["etc"]["clan-wireguard/vpn.key"]
        assert interface["privateKeyFile"] == "/etc/clan-wireguard/vpn.key"
        # A copied file, not a link into the store.
        assert key["mode"] == "0400"
        assert key["source"].endswith(f"/per-machine/{name}/wireguard-keys-vpn/privatekey/value")
        assert sorted(names[0] for names in node["hosts"].values()) == sorted(
            f"{machine}.vpn" for machine in VM_MACHINES
        )
    for peer in ("peer1", "peer2", "peer3"):
        assert nodes[peer]["services"] == ["clan-wireguard-failover-vpn"]
    for controller in ("ctrl1", "ctrl2"):
        assert nodes[controller]["services"] == []


def test_vm_test_script_compiles(flake: JSON) -> None:
    script = flake["vmTest"]["testScript"]
    compile(script, "checks/failover.nix:testScript", "exec")
    # The script drives the machines the test defines.
    listed = re.search(r"^names = (\[.*\])$", script, re.MULTILINE)
    assert listed is not None
    assert json.loads(listed.group(1)) == list(VM_MACHINES)
