"""The lab's process bookkeeping on real processes: start times, signals, threads."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from clan_wireguard.lab.processes import (
    Interrupted,
    ProcessKind,
    ProcessRecord,
    ProcessTable,
    deferred_signals,
    interrupts_unwind,
    is_alive,
    read_start_time,
    run_concurrently,
)


def start_sleep(table: ProcessTable, log: Path) -> ProcessRecord:
    _, record = table.spawn(
        ["sleep", "30"], kind=ProcessKind.EXTRA, machine="m", label="sleep", log=log
    )
    return record


def test_a_record_whose_start_time_differs_is_never_signalled(tmp_path: Path) -> None:
    table = ProcessTable(marker={"CLAN_WIREGUARD_LAB": "unit"})
    record = start_sleep(table, tmp_path / "sleep.log")
    try:
        assert is_alive(record)
        # The same PID with another start time stands for a process that
        # took over a reused PID: it must be left alone.
        stranger = ProcessRecord(
            pid=record.pid,
            start_time=record.start_time + 1,
            kind=record.kind,
            machine=record.machine,
            label=record.label,
            log=record.log,
        )
        assert not is_alive(stranger)
        table.stop([stranger], timeout=0.5)
        assert is_alive(record)
        environment = Path(f"/proc/{record.pid}/environ").read_bytes().split(b"\0")
        assert b"CLAN_WIREGUARD_LAB=unit" in environment
    finally:
        table.stop([record], timeout=5)
    assert not is_alive(record)
    assert table.records() == []


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    table = ProcessTable()
    _, record = table.spawn(
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"],
        kind=ProcessKind.EXTRA,
        machine="m",
        label="stubborn",
        log=tmp_path / "stubborn.log",
    )
    while "ready" not in (tmp_path / "stubborn.log").read_text():
        time.sleep(0.01)
    started = time.monotonic()
    table.stop([record], timeout=0.3)
    assert not is_alive(record)
    assert time.monotonic() - started >= 0.3


def test_start_time_of_a_missing_process_is_none() -> None:
    # PIDs above pid_max do not exist.
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert read_start_time(pid_max + 1) is None
    assert read_start_time(os.getpid()) is not None


def test_an_interrupt_waits_until_the_process_is_recorded() -> None:
    reached_end = False
    with interrupts_unwind(), pytest.raises(KeyboardInterrupt), deferred_signals():
        os.kill(os.getpid(), signal.SIGINT)
        # The handler runs here, between bytecodes, and must not raise.
        time.sleep(0.05)
        reached_end = True
    assert reached_end


def test_sigterm_unwinds_like_ctrl_c() -> None:
    with interrupts_unwind(), pytest.raises(Interrupted):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    # The previous handler is back.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_concurrent_work_stops_at_the_first_error_after_running_calls_finish() -> None:
    finished: list[int] = []
    lock = threading.Lock()

    def work(item: int) -> None:
        if item == 0:
            raise ValueError("item 0 failed")
        time.sleep(0.05)
        with lock:
            finished.append(item)

    with pytest.raises(ValueError, match="item 0 failed"):
        run_concurrently(work, list(range(100)), workers=4)
    # Calls already running were waited for; the queued rest was dropped.
    assert 0 < len(finished) < 99
