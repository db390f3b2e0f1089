"""Running ``clan-wireguard`` as a user does: a separate process, its real entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def clan_wireguard_command() -> list[str]:
    """The installed ``clan-wireguard`` script of this interpreter's environment.

    Preferred over a ``PATH`` lookup, which may find a wrapper (pyenv's shim)
    or another installation.
    """
    beside_interpreter = Path(sys.executable).parent / "clan-wireguard"
    if beside_interpreter.is_file():
        return [str(beside_interpreter)]
    on_path = shutil.which("clan-wireguard")
    if on_path is not None:
        return [on_path]
    return [sys.executable, "-m", "clan_wireguard"]


def run_clan_wireguard(
    *arguments: str | Path, umask: int = -1, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*clan_wireguard_command(), *map(str, arguments)],
        capture_output=True,
        text=True,
        check=False,
        umask=umask,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
    )


def directory_snapshot(directory: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path below ``directory`` with its mode and (for files) content."""
    if not directory.exists():
        return {}
    snapshot: dict[str, tuple[int, bytes | None]] = {}
    for path in sorted(directory.rglob("*")):
        mode = path.lstat().st_mode
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        snapshot[str(path.relative_to(directory))] = (mode, content)
    return snapshot


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """A failed run: non-zero status, no stdout, one ``error:`` line naming ``fragments``."""
    assert result.returncode != 0, result
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
