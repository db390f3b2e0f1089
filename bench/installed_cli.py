"""How the benchmarks start ``clan-wireguard``: as a user of this environment would."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def clan_wireguard() -> list[str]:
    """The console script beside this interpreter, else the one on PATH, else ``-m``.

    The script beside the interpreter comes first: a PATH lookup may find a
    wrapper (pyenv's shim) or another installation.
    """
    beside = Path(sys.executable).parent / "clan-wireguard"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("clan-wireguard")
    return [found] if found else [sys.executable, "-m", "clan_wireguard"]
