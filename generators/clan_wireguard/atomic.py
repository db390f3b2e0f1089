"""Writing a generator's files so that readers see all of them or none.

Each file is written to a temporary file in the target directory (created
with its final mode, so a secret is never readable by others, not even for a
moment), flushed to disk, and renamed over its final name. Renames in one
directory are atomic; a group of files is renamed only once every one of
them has been written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

PUBLIC_FILE_MODE = 0o644
SECRET_FILE_MODE = 0o600


class FileContent:
    """A file to write: its name, its bytes, and whether it is a secret.

    A plain class, not a dataclass, for the generators' start-up time. Its
    repr leaves out the content, which may be a private key.
    """

    __slots__ = ("content", "name", "secret")

    def __init__(self, name: str, content: bytes, secret: bool = False) -> None:
        self.name = name
        self.content = content
        # A secret file is readable by its owner only.
        self.secret = secret

    def __repr__(self) -> str:
        return f"FileContent({self.name!r}, secret={self.secret})"

    @property
    def mode(self) -> int:
        return SECRET_FILE_MODE if self.secret else PUBLIC_FILE_MODE


def _write_temporary(directory: Path, file: FileContent) -> Path:
    temporary = directory / f".{file.name}.{os.urandom(6).hex()}.tmp"
    # O_EXCL and O_NOFOLLOW: never write through a file or link someone
    # placed there in advance.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, file.mode)
    try:
        # The umask may have removed bits from the mode; set it exactly.
        os.fchmod(descriptor, file.mode)
        with os.fdopen(descriptor, "wb") as stream:
            descriptor = -1
            stream.write(file.content)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        if descriptor >= 0:
            os.close(descriptor)
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_files(directory: Path, files: Sequence[FileContent]) -> None:
    """Write ``files`` into ``directory``: all of them, or (on error) none.

    Raises OSError. If the error comes after some files were already renamed
    into place (which needs a failing disk), those are removed again, so a
    reader never finds, say, a public key without its private key.
    """
    names = [file.name for file in files]
    if len(set(names)) != len(names):
        raise ValueError(f"file names repeat: {names}")
    written: list[tuple[Path, Path]] = []
    renamed: list[Path] = []
    try:
        for file in files:
            written.append((_write_temporary(directory, file), directory / file.name))
        for temporary, final in written:
            temporary.replace(final)
            renamed.append(final)
        _sync_directory(directory)
    except BaseException:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        for final in renamed:
            final.unlink(missing_ok=True)
        raise


def write_file(directory: Path, file: FileContent) -> None:
    write_files(directory, [file])
