"""``clan-wireguard generate``: run as clan runs a vars generator, a fresh process per call."""

from __future__ import annotations

import ipaddress
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from clan_wireguard.addressing import InstanceNetwork, parse_prefix, parse_suffix
from command_line import (
    assert_one_line_error,
    clan_wireguard_command,
    directory_snapshot,
    run_clan_wireguard,
)

CANONICAL_HEXTET = "(0|[1-9a-f][0-9a-f]{0,3})"
CANONICAL_FOUR_HEXTETS = re.compile(rf"{CANONICAL_HEXTET}(:{CANONICAL_HEXTET}){{3}}")


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def test_controller_writes_a_canonical_prefix_inside_the_instance_network(out: Path) -> None:
    result = run_clan_wireguard(
        "generate", "controller", "--out", out, "--instance", "vpn", "--machine", "ctrl1"
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    assert [path.name for path in out.iterdir()] == ["prefix"]
    text = (out / "prefix").read_text()
    # No newline, like clan-core's file: the value is used inside addresses.
    assert CANONICAL_FOUR_HEXTETS.fullmatch(text), text
    subnet = ipaddress.IPv6Network(f"{text}::/56")
    assert subnet.subnet_of(ipaddress.IPv6Network(str(InstanceNetwork.for_instance("vpn"))))
    assert stat.S_IMODE((out / "prefix").stat().st_mode) == 0o644


def test_peer_writes_a_canonical_suffix(out: Path) -> None:
    result = run_clan_wireguard(
        "generate", "peer", "--out", out, "--instance", "vpn", "--machine", "peer1"
    )
    assert result.returncode == 0, result.stderr
    assert [path.name for path in out.iterdir()] == ["suffix"]
    text = (out / "suffix").read_text()
    assert CANONICAL_FOUR_HEXTETS.fullmatch(text), text
    assert parse_suffix(text).peer_id != 0
    # Composed with a controller prefix it is a valid address.
    ipaddress.IPv6Address(f"fdeb:f20c:3b:f700:{text}")


def test_controller_avoids_every_taken_prefix_in_any_text_form(out: Path) -> None:
    network = InstanceNetwork.for_instance("vpn")
    free_id = 0x3B00  # clan-core would store this one as three hextets
    taken = []
    for subnet_id in range(1 << 16):
        if subnet_id == free_id:
            continue
        text = str(network.prefix(subnet_id))
        # Spell some the way clan-core or a person might.
        if subnet_id % 3 == 0:
            text = text.upper()
        elif subnet_id % 3 == 1:
            text = ":".join(hextet.zfill(4) for hextet in text.split(":"))
        if text.endswith(":0"):
            text = text[: -len(":0")]
        taken.append(text)
    result = run_clan_wireguard(
        "generate", "controller", "--out", out, "--instance", "vpn", "--machine", "ctrl9",
        "--taken", *taken,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert parse_prefix((out / "prefix").read_text()) == network.prefix(free_id)
    assert (out / "prefix").read_text() == str(network.prefix(free_id))


def test_controller_fails_when_every_prefix_is_taken(out: Path) -> None:
    network = InstanceNetwork.for_instance("vpn")
    taken = [str(network.prefix(subnet_id)) for subnet_id in range(1 << 16)]
    result = run_clan_wireguard(
        "generate", "controller", "--out", out, "--instance", "vpn", "--machine", "ctrl9",
        "--taken", *taken,
    )  # fmt: skip
    assert_one_line_error(result, "'vpn'", "'ctrl9'", "65536")
    assert list(out.iterdir()) == []


def test_peer_accepts_taken_suffixes_repeated_or_listed(out: Path) -> None:
    result = run_clan_wireguard(
        "generate", "peer", "--out", out, "--instance", "vpn", "--machine", "peer2",
        "--taken", "8750:A09B:0000:0001", "1::2", "--taken", ":4:3:2:1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert parse_suffix((out / "suffix").read_text()).peer_id not in {0x8750A09B, 0x10000, 0x40003}


GOOD = {"--instance": "vpn", "--machine": "ctrl1"}


def controller_arguments(out: Path, **overrides: str) -> list[str]:
    options = {"--out": str(out), **GOOD, **overrides}
    # "--option=value", so that values starting with "-" stay values.
    return ["generate", "controller", *[f"{option}={value}" for option, value in options.items()]]


BAD_CONTROLLER_INPUTS = [
    # (options to override, fragments the error line must contain)
    ({"--instance": "My_VPN"}, ["--instance", "'My_VPN'", "DNS label"]),
    ({"--instance": "VPN"}, ["--instance", "'VPN'", "lower-case"]),
    ({"--instance": ""}, ["--instance", "empty"]),
    ({"--instance": "-vpn"}, ["--instance", "'-vpn'"]),
    ({"--instance": "vpn-"}, ["--instance", "'vpn-'"]),
    ({"--instance": "sixteen-letters1"}, ["--instance", "15", "interface"]),
    ({"--instance": "a" * 64}, ["--instance", "DNS label"]),
    ({"--instance": "vpn\nsecond line"}, ["--instance", "DNS label"]),
    ({"--machine": "Laptop"}, ["--machine", "'Laptop'"]),
    ({"--machine": "lap top"}, ["--machine", "'lap top'"]),
    ({"--machine": ""}, ["--machine", "empty"]),
    ({"--machine": "a" * 64}, ["--machine", "DNS label"]),
    ({"--taken": "fd51:19c1:3b:f701"}, ["'vpn'", "'ctrl1'", "--taken", "/56"]),
    ({"--taken": "fd51:19c1:3b:f700"}, ["'vpn'", "'ctrl1'", "--taken", "fdeb:f20c::/40"]),
    ({"--taken": "not-a-prefix"}, ["'vpn'", "'ctrl1'", "--taken", "'not-a-prefix'"]),
]


@pytest.mark.parametrize(("overrides", "fragments"), BAD_CONTROLLER_INPUTS)
def test_bad_controller_input_is_one_line_and_writes_nothing(
    out: Path, overrides: dict[str, str], fragments: list[str]
) -> None:
    (out / "unrelated").write_text("left alone")
    before = directory_snapshot(out)
    result = run_clan_wireguard(*controller_arguments(out, **overrides))
    assert_one_line_error(result, *fragments)
    assert directory_snapshot(out) == before


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (["peer", "--instance", "vpn", "--machine", "p", "--taken", "8750:a09b:0"], ["--taken"]),
        (["peer", "--instance", "vpn", "--machine", "p", "--taken", "1::2::3"], ["'1::2::3'"]),
        (["peer", "--instance", "vpn", "--machine", "P"], ["--machine", "'P'"]),
        (["keys", "--taken", "x"], ["unrecognized arguments"]),
        (["bogus"], ["invalid choice", "'bogus'"]),
        (["controller", "--instance", "vpn"], ["required", "--machine"]),
        (["controller", "--inst", "vpn", "--machine", "c"], ["--inst"]),
    ],
)
def test_bad_arguments_are_one_line_and_write_nothing(
    out: Path, arguments: list[str], fragments: list[str]
) -> None:
    result = run_clan_wireguard("generate", *arguments, "--out", out)
    assert_one_line_error(result, *fragments)
    assert list(out.iterdir()) == []


def test_a_generator_must_be_named() -> None:
    assert_one_line_error(run_clan_wireguard("generate"), "required", "keys", "controller", "peer")


@pytest.mark.parametrize("generator", ["keys", "controller", "peer"])
def test_out_must_be_an_existing_directory(tmp_path: Path, generator: str) -> None:
    names = [] if generator == "keys" else ["--instance", "vpn", "--machine", "m1"]
    missing = tmp_path / "missing"
    result = run_clan_wireguard("generate", generator, "--out", missing, *names)
    assert_one_line_error(result, "--out", str(missing), "no such directory")
    assert not missing.exists()

    a_file = tmp_path / "file"
    a_file.write_text("x")
    result = run_clan_wireguard("generate", generator, "--out", a_file, *names)
    assert_one_line_error(result, "--out", "not a directory")
    assert a_file.read_text() == "x"

    result = run_clan_wireguard("generate", generator, "--out", "", *names)
    assert_one_line_error(result, "--out", "empty")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file"]


def test_keys_writes_both_files_or_neither(out: Path) -> None:
    # A directory where publickey should go makes its rename fail after the
    # private key is ready: the private key must not stay behind alone.
    (out / "publickey").mkdir()
    result = run_clan_wireguard("generate", "keys", "--out", out)
    assert_one_line_error(result, "--out", "privatekey, publickey")
    assert sorted(path.name for path in out.iterdir()) == ["publickey"]
    assert list((out / "publickey").iterdir()) == []


def test_a_failed_write_leaves_no_temporary_file(out: Path) -> None:
    (out / "prefix").mkdir()
    result = run_clan_wireguard(*controller_arguments(out))
    assert_one_line_error(result, "'vpn'", "'ctrl1'", "--out", "prefix")
    assert [path.name for path in out.iterdir()] == ["prefix"]


def test_generate_answers_the_same_through_the_full_command_line(out: Path) -> None:
    # `clan-wireguard generate` skips typer for speed; the typer application
    # still lists it and hands it the same arguments.
    listing = run_clan_wireguard("--help")
    assert listing.returncode == 0
    assert "generate" in listing.stdout
    through_typer = [
        sys.executable,
        "-c",
        "import sys; from clan_wireguard.cli import main; sys.argv[0] = 'clan-wireguard'; main()",
    ]
    result = subprocess.run(
        [*through_typer, *controller_arguments(out)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert CANONICAL_FOUR_HEXTETS.fullmatch((out / "prefix").read_text())
    result = subprocess.run(
        [*through_typer, *controller_arguments(out, **{"--instance": "My_VPN"})],
        capture_output=True,
        text=True,
        check=False,
    )
    assert_one_line_error(result, "--instance", "'My_VPN'")


def test_help_describes_every_generator() -> None:
    result = subprocess.run(
        [*clan_wireguard_command(), "generate", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    for generator in ("keys", "controller", "peer"):
        assert generator in result.stdout


def test_python_dash_m_runs_the_same_command(out: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clan_wireguard", "generate", "peer", "--out", str(out),
         "--instance", "vpn", "--machine", "peer1"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert CANONICAL_FOUR_HEXTETS.fullmatch((out / "suffix").read_text())
