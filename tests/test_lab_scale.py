"""The lab at the size of a small fleet: three controllers and thirty peers."""

from __future__ import annotations

from pathlib import Path

import pytest
from clan_wireguard.lab import Lab
from conftest import EXAMPLES

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_three_controllers_and_thirty_peers_reach_each_other(lab_name: str, tmp_path: Path) -> None:
    inventory = EXAMPLES / "three-controllers-30-peers.json"
    # Agents are left out: thirty Python processes starting at once would
    # only slow this down; failover has its own tests.
    with Lab(lab_name, [inventory], tmp_path / "vars", failover=False) as lab:
        assert len(lab.machines) == 33
        report = lab.check(concurrency=16)
        assert report.total == 33 * 32
        assert report.unreachable() == []
