"""Processes the lab starts, tracked so that it never signals anything else.

A PID alone does not name a process: once a process exits its PID can be
given to another one. Every record therefore keeps the process's start time
(field 22 of ``/proc/PID/stat``, in clock ticks since boot); before a signal
is sent the start time is read again, and a process whose start time differs
is left alone.

Lab processes run in sessions of their own, so Ctrl-C in the terminal reaches
only the lab command, which then stops them in order.
"""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, TypeVar

Item = TypeVar("Item")


class ProcessKind(enum.Enum):
    # Keeps a machine's mount and UTS namespaces alive (``sleep infinity``).
    HOLDER = "holder"
    WIREGUARD = "wireguard-go"
    FAILOVER = "failover"
    # Started on request through the Python API (tests: tcpdump, an intruder).
    EXTRA = "extra"


# Stopped in this order: an agent restores its plan's allowed IPs on exit, so
# it goes before its interface; holders go last, as every other process of a
# machine lives in their namespaces.
STOP_ORDER = (ProcessKind.FAILOVER, ProcessKind.EXTRA, ProcessKind.WIREGUARD, ProcessKind.HOLDER)


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    start_time: int
    kind: ProcessKind
    machine: str
    # The instance for wireguard-go and agents, a free label for extras.
    label: str
    log: str | None

    def describe(self) -> str:
        label = f" ({self.label})" if self.label else ""
        return f"{self.kind.value}{label} of {self.machine}, pid {self.pid}"

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "startTime": self.start_time,
            "kind": self.kind.value,
            "machine": self.machine,
            "label": self.label,
            "log": self.log,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        return cls(
            pid=data["pid"],
            start_time=data["startTime"],
            kind=ProcessKind(data["kind"]),
            machine=data["machine"],
            label=data["label"],
            log=data["log"],
        )


def read_start_time(pid: int) -> int | None:
    """The start time of process ``pid``, or None when there is none (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces
    # or parentheses itself: split after the last one.
    fields = stat[stat.rindex(")") + 2 :].split()
    state = fields[0]
    if state in ("Z", "X"):
        return None
    return int(fields[19])


def is_alive(record: ProcessRecord) -> bool:
    return read_start_time(record.pid) == record.start_time


def _signal_if_ours(record: ProcessRecord, signum: int) -> bool:
    if not is_alive(record):
        return False
    try:
        os.kill(record.pid, signum)
    except ProcessLookupError:
        return False
    return True


class ProcessTable:
    """The lab's processes: records (persisted in the state file) and, for
    those this Python process started, their ``Popen`` objects (to reap them).

    Thread-safe: machines are set up concurrently.
    """

    def __init__(
        self, records: Iterable[ProcessRecord] = (), marker: Mapping[str, str] | None = None
    ) -> None:
        # Added to every process's environment: lets anyone (tests) find a
        # lab's processes by /proc/PID/environ, even after its state is gone.
        self.marker = dict(marker or {})
        self._lock = threading.Lock()
        self._records: list[ProcessRecord] = list(records)
        self._children: dict[ProcessRecord, subprocess.Popen[bytes]] = {}

    def records(self) -> list[ProcessRecord]:
        with self._lock:
            return list(self._records)

    def find(
        self, machine: str | None = None, kind: ProcessKind | None = None
    ) -> list[ProcessRecord]:
        return [
            record
            for record in self.records()
            if (machine is None or record.machine == machine)
            and (kind is None or record.kind == kind)
        ]

    def spawn(
        self,
        argv: Sequence[str],
        *,
        kind: ProcessKind,
        machine: str,
        label: str,
        log: Path | None,
        env: Mapping[str, str] | None = None,
        stdout: int | IO[bytes] | None = None,
    ) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
        """Start a process in a session of its own and record it at once."""
        log_file = log.open("ab") if log is not None else None
        try:
            with deferred_signals():
                child = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout if stdout is not None else (log_file or subprocess.DEVNULL),
                    stderr=log_file or subprocess.DEVNULL,
                    env={**(env if env is not None else os.environ), **self.marker},
                    start_new_session=True,
                )
                # Our own unreaped child cannot have handed its PID on yet.
                start_time = read_start_time(child.pid)
                record = ProcessRecord(
                    pid=child.pid,
                    start_time=start_time if start_time is not None else -1,
                    kind=kind,
                    machine=machine,
                    label=label,
                    log=str(log) if log is not None else None,
                )
                with self._lock:
                    self._records.append(record)
                    self._children[record] = child
        finally:
            if log_file is not None:
                log_file.close()
        return child, record

    def dead(self) -> list[ProcessRecord]:
        """Recorded processes that are no longer running."""
        dead = []
        for record in self.records():
            if self._has_ended(record):
                dead.append(record)
        return dead

    def stop(self, records: Sequence[ProcessRecord], timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; forget the records.

        Only processes whose start time still matches are signalled.
        """
        for kind in STOP_ORDER:
            group = [record for record in records if record.kind == kind]
            if group:
                self._stop_group(group, timeout)
        wanted = set(records)
        with self._lock:
            self._records = [record for record in self._records if record not in wanted]
            for record in records:
                self._children.pop(record, None)

    def _stop_group(self, records: Sequence[ProcessRecord], timeout: float) -> None:
        for record in records:
            _signal_if_ours(record, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        remaining = list(records)
        while remaining and time.monotonic() < deadline:
            remaining = [record for record in remaining if not self._has_ended(record)]
            if remaining:
                time.sleep(0.02)
        for record in remaining:
            _signal_if_ours(record, signal.SIGKILL)
        for record in remaining:
            while not self._has_ended(record):
                time.sleep(0.02)

    def _has_ended(self, record: ProcessRecord) -> bool:
        with self._lock:
            child = self._children.get(record)
        if child is not None:
            # Reaps our own child once it has exited, so its PID is free.
            child.poll()
        # A zombie or a PID now used by another process counts as ended.
        return not is_alive(record)


class Interrupted(Exception):
    """SIGTERM arrived: unwind like Ctrl-C, running every cleanup."""


@dataclass
class _Deferral:
    depth: int = 0
    pending: list[int] = field(default_factory=list)


_deferral = _Deferral()


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(f"signal {signal.Signals(signum).name}")


def _handler(signum: int, frame: FrameType | None) -> None:
    if _deferral.depth > 0:
        _deferral.pending.append(signum)
        return
    _raise_for(signum)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while a process is started and recorded.

    Without this an interrupt could land between ``Popen`` and the record,
    leaving a process the cleanup does not know. Only the main thread
    receives signals; in other threads this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferral.depth += 1
    try:
        yield
    finally:
        _deferral.depth -= 1
        if _deferral.depth == 0 and _deferral.pending:
            signum = _deferral.pending[0]
            _deferral.pending.clear()
            _raise_for(signum)


@contextmanager
def interrupts_unwind() -> Iterator[None]:
    """While active, SIGINT and SIGTERM raise in the main thread so that
    ``finally`` blocks (the lab's cleanup) run."""
    previous = {
        signum: signal.signal(signum, _handler) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def interrupts_ignored() -> Iterator[None]:
    """Cleanup must finish even when the user presses Ctrl-C again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_concurrently(function: Callable[[Item], None], items: Sequence[Item], workers: int) -> None:
    """Call ``function`` on every item in a few threads; the first error wins.

    On an error, work not yet started is dropped and the running calls are
    waited for, so nothing they start goes unrecorded. An interrupt is held
    back until every call has returned, then raised.
    """
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    if not items:
        return
    # The interrupt waits until the calls have returned: raised inside the
    # executor's own locking (submit, wait), it could leave a lock held and
    # the shutdown below waiting forever.
    with deferred_signals():
        executor = ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))))
        futures = [executor.submit(function, item) for item in items]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    raise error
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
