"""Taking machines down on purpose (a controller outage) and by accident (a crash)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from clan_wireguard.lab import Lab
from clan_wireguard.lab.processes import ProcessKind
from conftest import EXAMPLES

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_names_survive_a_controller_outage_and_its_return(lab_name: str, tmp_path: Path) -> None:
    with Lab(lab_name, [EXAMPLES / "spec.json"], tmp_path / "vars", failover=True) as lab:
        assert lab.check().unreachable() == []

        lab.stop_machine("controller1")
        assert lab.table.find("controller1", ProcessKind.WIREGUARD) == []
        down = lab.exec(
            "peer2", ["ping", "-6", "-c", "1", "-W", "1", "controller1.vpn"], check=False
        )
        assert down.returncode != 0
        # peer1.vpn and peer3.vpn live in controller1's subnet; the failover
        # agents hand it to controller2 while controller1 is away.
        survivors = ["controller2", "peer1", "peer2", "peer3"]
        report = lab.check(machines=survivors, timeout=20)
        assert report.total == 12
        assert report.unreachable() == []

        lab.start_machine("controller1")
        assert len(lab.table.find("controller1", ProcessKind.WIREGUARD)) == 1
        report = lab.check(timeout=30)
        assert report.unreachable() == []
        assert report.all_reachable


def test_a_crashed_wireguard_go_is_reported(lab_name: str, tmp_path: Path) -> None:
    with Lab(lab_name, [EXAMPLES / "spec.json"], tmp_path / "vars", failover=False) as lab:
        (record,) = lab.table.find("peer2", ProcessKind.WIREGUARD)
        os.kill(record.pid, signal.SIGKILL)
        report = lab.check(timeout=2)
        assert not report.all_reachable
        assert len(report.dead_processes) == 1
        assert "wireguard-go (vpn) of peer2" in report.dead_processes[0]
        unreachable = report.unreachable()
        assert unreachable
        assert all("peer2" in (pair.source, pair.target) for pair in unreachable)
