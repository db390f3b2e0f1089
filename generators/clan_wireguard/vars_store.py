"""Vars of a whole instance without clan, in clan's on-disk layout.

``generate_instance`` runs the generators of ``clan_wireguard.generate`` for
every member of one instance and stores their files under a vars directory::

    DIR/vars/per-machine/<machine>/<generator>/<file>/value      public, mode 0644
    DIR/secrets/per-machine/<machine>/<generator>/<file>/value   secret, mode 0600,
                                                                 directories 0700

The public half is exactly where clan keeps public vars, so the planner reads
either kind of directory. Secrets are stored in plain files (clan encrypts
them with sops instead); this layout is for labs and tests.

Like clan, a run keeps the values a generator already produced and runs only
generators whose files are missing, or those of machines named to be
regenerated. Prefixes and suffixes already present are avoided, so new ones
never collide with them.
"""

from __future__ import annotations

import enum
import fcntl
import os
import shutil
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from clan_wireguard import addressing
from clan_wireguard.atomic import FileContent, write_file
from clan_wireguard.errors import UserError
from clan_wireguard.generate import (
    PREFIX_FILE,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    SUFFIX_FILE,
    controller_files,
    keys_files,
    keys_generator_name,
    member_context,
    network_generator_name,
    peer_files,
)
from clan_wireguard.inventory import Inventory, Role, load_inventory

SECRET_DIRECTORY_MODE = 0o700


def public_value_path(vars_dir: Path, machine: str, generator: str, file: str) -> Path:
    """Where clan (and we) keep a public value."""
    return vars_dir / "vars" / "per-machine" / machine / generator / file / "value"


def secret_path(vars_dir: Path, machine: str, generator: str, file: str) -> Path:
    """Where we keep a secret, in plain text, mode 0600."""
    return vars_dir / "secrets" / "per-machine" / machine / generator / file / "value"


def read_public_value(vars_dir: Path, machine: str, generator: str, file: str) -> str | None:
    """A public value without surrounding whitespace (a key file's newline), or None."""
    try:
        return public_value_path(vars_dir, machine, generator, file).read_text().strip()
    except FileNotFoundError:
        return None


class Action(enum.Enum):
    GENERATED = "generated"
    REGENERATED = "regenerated"
    KEPT = "kept"


@dataclass(frozen=True)
class GeneratorOutcome:
    machine: str
    role: Role
    generator: str
    action: Action
    # Public files of the generator, file name -> value without whitespace.
    public_values: Mapping[str, str]


@dataclass(frozen=True)
class GenerationReport:
    instance: str
    vars_dir: Path
    outcomes: tuple[GeneratorOutcome, ...]

    def count(self, action: Action) -> int:
        return sum(1 for outcome in self.outcomes if outcome.action is action)

    def summary(self) -> list[str]:
        """Lines for people: one per machine, then the totals."""
        lines = [f"wireguard instance {self.instance!r}, vars in {self.vars_dir}"]
        by_machine: dict[str, list[GeneratorOutcome]] = {}
        for outcome in self.outcomes:
            by_machine.setdefault(outcome.machine, []).append(outcome)
        for machine, outcomes in by_machine.items():
            parts = []
            for outcome in outcomes:
                if outcome.generator == keys_generator_name(self.instance):
                    parts.append(f"keys {outcome.action.value}")
                else:
                    (file, value), *_ = outcome.public_values.items()
                    parts.append(f"{file} {value} {outcome.action.value}")
            lines.append(f"  {machine} ({outcomes[0].role.value}): {', '.join(parts)}")
        lines.append(
            f"{self.count(Action.GENERATED)} generated, {self.count(Action.REGENERATED)}"
            f" regenerated, {self.count(Action.KEPT)} kept"
        )
        return lines


@dataclass(frozen=True)
class _Generator:
    name: str
    public_files: tuple[str, ...]
    secret_files: tuple[str, ...]


def _generators_of(instance: str, role: Role) -> tuple[_Generator, _Generator]:
    network_file = PREFIX_FILE if role is Role.CONTROLLER else SUFFIX_FILE
    return (
        _Generator(keys_generator_name(instance), (PUBLIC_KEY_FILE,), (PRIVATE_KEY_FILE,)),
        _Generator(network_generator_name(instance), (network_file,), ()),
    )


def _is_complete(vars_dir: Path, machine: str, generator: _Generator) -> bool:
    public = all(
        public_value_path(vars_dir, machine, generator.name, file).is_file()
        for file in generator.public_files
    )
    secret = all(
        secret_path(vars_dir, machine, generator.name, file).is_file()
        for file in generator.secret_files
    )
    return public and secret


def _make_secret_directories(vars_dir: Path, directory: Path) -> None:
    # Every level below DIR/secrets is ours and owner-only; mkdir's mode is
    # cut by the umask, so set it explicitly.
    path = vars_dir / "secrets"
    for part in ("", *directory.relative_to(path).parts):
        path /= part
        path.mkdir(mode=SECRET_DIRECTORY_MODE, exist_ok=True)
        path.chmod(SECRET_DIRECTORY_MODE)


def _store(vars_dir: Path, machine: str, generator: _Generator, files: list[FileContent]) -> None:
    """Replace a generator's stored files with ``files``.

    The old files go first and the public ones are written last, so an
    interrupted run leaves the generator incomplete (and regenerated by the
    next run), never a private key that does not match its public key.
    """
    machine_dirs = (
        vars_dir / "vars" / "per-machine" / machine / generator.name,
        vars_dir / "secrets" / "per-machine" / machine / generator.name,
    )
    for directory in machine_dirs:
        if directory.exists():
            shutil.rmtree(directory)
    for file in sorted(files, key=lambda file: not file.secret):
        if file.secret:
            target = secret_path(vars_dir, machine, generator.name, file.name)
            _make_secret_directories(vars_dir, target.parent)
        else:
            target = public_value_path(vars_dir, machine, generator.name, file.name)
            target.parent.mkdir(parents=True, exist_ok=True)
        write_file(target.parent, FileContent(target.name, file.content, file.secret))


@contextmanager
def _locked(vars_dir: Path) -> Iterator[None]:
    # Two runs on one directory would each see the other's machines as
    # missing and could pick colliding values.
    descriptor = os.open(vars_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _prepare_vars_dir(vars_dir: Path, instance: str) -> None:
    lead = f"wireguard instance {instance!r}: --vars-dir {str(vars_dir)!r}"
    if vars_dir.exists() and not vars_dir.is_dir():
        raise UserError(f"{lead}: not a directory")
    try:
        vars_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{lead}: cannot create it: {error.strerror or error}") from error


class _TakenValues:
    """Prefixes and suffixes in use, read from the kept values of the instance."""

    def __init__(self) -> None:
        self.prefixes: list[addressing.ControllerPrefix] = []
        self.suffixes: list[addressing.PeerSuffix] = []

    def read(
        self,
        vars_dir: Path,
        network: addressing.InstanceNetwork,
        machine: str,
        generator: _Generator,
    ) -> None:
        (file,) = generator.public_files
        path = public_value_path(vars_dir, machine, generator.name, file)
        text = path.read_text().strip()
        problem = ""
        try:
            if file == PREFIX_FILE:
                prefix = addressing.parse_prefix(text)
                if not network.contains(prefix):
                    problem = f"not inside the instance's network {network}"
                self.prefixes.append(prefix)
            else:
                self.suffixes.append(addressing.parse_suffix(text))
        except ValueError as error:
            problem = f"not a valid {file}: {error}"
        if problem:
            raise UserError(
                f"{member_context(network.instance, machine)}: {path}: {text!r} is {problem};"
                f" fix the file or regenerate it with --regenerate {machine}"
            )


def generate_inventory(
    inventory: Inventory, vars_dir: Path, regenerate: Collection[str] = ()
) -> GenerationReport:
    """Generate the missing vars of ``inventory``'s members (and of ``regenerate``)."""
    members = inventory.machines
    for machine in sorted(set(regenerate)):
        if machine not in members:
            raise UserError(
                f"wireguard instance {inventory.instance!r}: --regenerate {machine!r}:"
                f" not a machine of this instance; its machines are: {', '.join(members)}"
            )
    _prepare_vars_dir(vars_dir, inventory.instance)
    network = addressing.InstanceNetwork.for_instance(inventory.instance)
    outcomes: list[GeneratorOutcome] = []
    with _locked(vars_dir):
        # Decide everything and read every kept value before writing anything,
        # so a bad kept value stops the run with nothing changed.
        plan: list[tuple[str, Role, _Generator, Action]] = []
        taken = _TakenValues()
        for machine in members:
            role = inventory.role_of(machine)
            for generator in _generators_of(inventory.instance, role):
                complete = _is_complete(vars_dir, machine, generator)
                if machine in regenerate:
                    action = Action.REGENERATED
                elif complete:
                    action = Action.KEPT
                else:
                    action = Action.GENERATED
                if action is Action.KEPT and not generator.secret_files:
                    taken.read(vars_dir, network, machine, generator)
                plan.append((machine, role, generator, action))

        for machine, role, generator, action in plan:
            if action is not Action.KEPT:
                if generator.secret_files:
                    files = keys_files()
                elif role is Role.CONTROLLER:
                    files = controller_files(network, taken.prefixes)
                    taken.prefixes.append(addressing.parse_prefix(files[0].content.decode()))
                else:
                    files = peer_files(taken.suffixes)
                    taken.suffixes.append(addressing.parse_suffix(files[0].content.decode()))
                try:
                    _store(vars_dir, machine, generator, files)
                except OSError as error:
                    raise UserError(
                        f"{member_context(inventory.instance, machine)}: --vars-dir"
                        f" {str(vars_dir)!r}: cannot store {generator.name}:"
                        f" {error.strerror or error} ({error.filename})"
                    ) from error
            values = {
                file: read_public_value(vars_dir, machine, generator.name, file) or ""
                for file in generator.public_files
            }
            outcomes.append(GeneratorOutcome(machine, role, generator.name, action, values))
    return GenerationReport(inventory.instance, vars_dir, tuple(outcomes))


def generate_instance(
    inventory_path: Path, vars_dir: Path, regenerate: Collection[str] = ()
) -> GenerationReport:
    """Load an inventory file and generate its instance's vars into ``vars_dir``.

    Raises UserError (one line naming the instance, machine and option) for
    a bad inventory, an unknown machine in ``regenerate`` or a bad kept value,
    before anything is written.
    """
    return generate_inventory(load_inventory(inventory_path), vars_dir, regenerate)
