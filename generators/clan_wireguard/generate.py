"""Vars generators: write one generator's files into an output directory.

Clan runs a vars generator as a script with an empty output directory
(``$out``) and stores what the script leaves there. Our scripts are these
commands::

    clan-wireguard generate keys --out DIR
    clan-wireguard generate controller --out DIR --instance NAME --machine NAME [--taken PREFIX ...]
    clan-wireguard generate peer --out DIR --instance NAME --machine NAME [--taken SUFFIX ...]

Generator and file names are clan-core's, so an existing clan keeps its keys
and addresses: ``wireguard-keys-<instance>`` (``privatekey``, secret, and
``publickey``), ``wireguard-network-<instance>`` (``prefix`` on controllers,
``suffix`` on peers).

Clan starts a fresh process for every generator of every machine, so this
module parses its arguments with argparse and is run without importing typer
(see ``clan_wireguard.__main__``): typer's import alone would take longer
than the generator.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

from clan_wireguard import addressing
from clan_wireguard.atomic import FileContent, write_files
from clan_wireguard.errors import UserError
from clan_wireguard.lean_command import OneLineArgumentParser, run_command
from clan_wireguard.names import check_instance_name, check_machine_name

PRIVATE_KEY_FILE = "privatekey"
PUBLIC_KEY_FILE = "publickey"
PREFIX_FILE = "prefix"
SUFFIX_FILE = "suffix"

PROGRAM = "clan-wireguard generate"


def keys_generator_name(instance: str) -> str:
    return f"wireguard-keys-{instance}"


def network_generator_name(instance: str) -> str:
    return f"wireguard-network-{instance}"


def member_context(instance: str, machine: str) -> str:
    """How every message about one member of an instance begins."""
    return f"wireguard instance {instance!r}, machine {machine!r}"


def keys_files() -> list[FileContent]:
    """The files of ``wireguard-keys-<instance>``: a fresh key pair."""
    from clan_wireguard.keys import generate_key_pair

    pair = generate_key_pair()
    return [
        FileContent(PRIVATE_KEY_FILE, pair.private_key_file(), secret=True),
        FileContent(PUBLIC_KEY_FILE, pair.public_key_file()),
    ]


def controller_files(
    network: addressing.InstanceNetwork, taken: Iterable[addressing.ControllerPrefix]
) -> list[FileContent]:
    """The files of ``wireguard-network-<instance>`` on a controller.

    Like clan-core's, the prefix and suffix files end without a newline.
    """
    prefix = addressing.allocate_controller_prefix(network, taken)
    return [FileContent(PREFIX_FILE, str(prefix).encode())]


def peer_files(taken: Iterable[addressing.PeerSuffix]) -> list[FileContent]:
    """The files of ``wireguard-network-<instance>`` on a peer."""
    suffix = addressing.allocate_peer_suffix(taken)
    return [FileContent(SUFFIX_FILE, str(suffix).encode())]


def parse_taken_prefixes(
    texts: Iterable[str], network: addressing.InstanceNetwork, context: str, option: str
) -> list[addressing.ControllerPrefix]:
    prefixes = []
    for text in texts:
        try:
            prefix = addressing.parse_prefix(text)
        except ValueError as error:
            raise UserError(
                f"{context}: {option} {text!r}: not a controller prefix: {error}"
            ) from error
        if not network.contains(prefix):
            raise UserError(
                f"{context}: {option} {text!r}: not inside the instance's network"
                f" {network}; pass only prefixes of this instance's controllers"
            )
        prefixes.append(prefix)
    return prefixes


def parse_taken_suffixes(
    texts: Iterable[str], context: str, option: str
) -> list[addressing.PeerSuffix]:
    suffixes = []
    for text in texts:
        try:
            suffixes.append(addressing.parse_suffix(text))
        except ValueError as error:
            raise UserError(f"{context}: {option} {text!r}: not a peer suffix: {error}") from error
    return suffixes


def check_out_dir(out: str, context: str) -> Path:
    lead = f"{context}: --out" if context else "--out"
    if out == "":
        raise UserError(f"{lead} is empty: give the directory to write into")
    path = Path(out)
    if not path.exists():
        raise UserError(f"{lead} {out!r}: no such directory; create it first")
    if not path.is_dir():
        raise UserError(f"{lead} {out!r}: not a directory")
    return path


def write_output(out: Path, files: Sequence[FileContent], context: str) -> None:
    lead = f"{context}: --out" if context else "--out"
    try:
        write_files(out, files)
    except OSError as error:
        names = ", ".join(file.name for file in files)
        raise UserError(
            f"{lead} {str(out)!r}: cannot write {names}: {error.strerror or error}"
        ) from error


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROGRAM,
        description="Write one vars generator's files into an output directory.",
        allow_abbrev=False,
    )
    generators = parser.add_subparsers(
        dest="generator", metavar="{keys,controller,peer}", required=True
    )

    keys = generators.add_parser(
        "keys",
        help="a WireGuard key pair: privatekey (mode 0600) and publickey",
        description="Write privatekey (mode 0600) and publickey, as wg genkey/pubkey would.",
        allow_abbrev=False,
    )
    keys.add_argument("--out", required=True, metavar="DIR", help="output directory")

    for name, taken_help, summary in (
        (
            "controller",
            "prefix of another controller of the instance, to avoid (repeatable)",
            "prefix: the controller's /56 inside the instance's /40",
        ),
        (
            "peer",
            "suffix of another peer of the instance, to avoid (repeatable)",
            "suffix: the peer's 64-bit host part",
        ),
    ):
        sub = generators.add_parser(name, help=summary, description=summary, allow_abbrev=False)
        sub.add_argument("--out", required=True, metavar="DIR", help="output directory")
        sub.add_argument("--instance", required=True, metavar="NAME", help="instance name")
        sub.add_argument("--machine", required=True, metavar="NAME", help="this machine")
        sub.add_argument(
            "--taken",
            action="extend",
            nargs="+",
            default=[],
            metavar="PREFIX" if name == "controller" else "SUFFIX",
            help=taken_help,
        )
    return parser


def run(arguments: argparse.Namespace) -> None:
    """Validate everything, then write the generator's files."""
    if arguments.generator == "keys":
        out = check_out_dir(arguments.out, "")
        write_output(out, keys_files(), "")
        return

    instance = check_instance_name(arguments.instance, "--instance")
    machine = check_machine_name(arguments.machine, "--machine")
    context = member_context(instance, machine)
    network = addressing.InstanceNetwork.for_instance(instance)
    try:
        if arguments.generator == "controller":
            prefixes = parse_taken_prefixes(arguments.taken, network, context, "--taken")
            out = check_out_dir(arguments.out, context)
            files = controller_files(network, prefixes)
        else:
            suffixes = parse_taken_suffixes(arguments.taken, context, "--taken")
            out = check_out_dir(arguments.out, context)
            files = peer_files(suffixes)
    except addressing.AddressSpaceFull as error:
        raise UserError(
            f"{context}: {error}; remove machines from the instance or use another instance"
        ) from error
    write_output(out, files, context)


def main(argv: Sequence[str]) -> int:
    """Run ``clan-wireguard generate`` with ``argv``; return the exit status."""
    return run_command(build_parser(), run, argv)
