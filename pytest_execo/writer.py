"""Writing the combinations a session finished, in batches: done records and results.

A finished combination is handed to :class:`BackgroundWriter`. Batches (one per sweep: its
results first, then its done records, so that a crash in between never loses results of a done
combination) are written, and fsync'd, by the session's own thread while its tests end in quick
succession: it writes the waiting batch when a test ends :data:`WRITE_INTERVAL` / 2 seconds or
more after the oldest combination waiting, and fsyncs what it wrote once :data:`SYNC_INTERVAL`
/ 2 seconds passed since the last fsync. A background thread does it instead when the session's
thread does not (the next test runs long): it sleeps on an :mod:`~pytest_execo.alarm` set for
:data:`WRITE_INTERVAL` seconds after the oldest combination waiting, or :data:`SYNC_INTERVAL`
seconds after the last fsync while something written is not fsync'd, which the session's
thread moves as it writes and fsyncs. On Linux, a busy session so never wakes that thread
(a thread that wakes up competes with the session for the interpreter, which costs a busy
session more than the writes themselves); elsewhere it wakes at each deadline it knew of.

Until its done record is written, a combination stays claimed by this process: no other session
or xdist worker runs it, and if the process dies (SIGKILL) its claim goes back to todo and the
next session runs it again. So a process killed outright loses at most the combinations finished
in the last :data:`WRITE_INTERVAL` seconds, plus the time the background thread takes to get the
interpreter (``sys.getswitchinterval()`` at most, 5 ms by default, while the test runs Python
code or waits) and to write (never a result without its done record, never a done record without
its results); a crash of the machine at most those of the last :data:`WRITE_INTERVAL` +
:data:`SYNC_INTERVAL` seconds, plus as much and one fsync. :meth:`~BackgroundWriter.close`
returns once everything handed over is on disk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from execo_engine.elements import HashableDict
from execo_engine.sweeper import ParamSweeper
from pytest_execo.alarm import alarm

#: How long (seconds) a finished combination waits at most before its batch is written.
WRITE_INTERVAL = 0.01
#: How long (seconds) what was written waits at most before it is fsync'd.
SYNC_INTERVAL = 0.2


@dataclass(frozen=True)
class Result:
    """``execo_record`` values of a finished combination, as ``record_result`` takes them."""

    values: Mapping[str, Any]
    outcome: str
    duration: float


#: A finished combination: its sweeper, the combination, its results, whether it is done.
Finished = tuple[ParamSweeper[HashableDict], Any, Result | None, bool]


class BackgroundWriter:
    """Writes results and done records of finished combinations in batches (see the module);
    :meth:`close` writes what is left and raises what a write raised. An error of the
    background thread is also raised by the next :meth:`add`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  #: around the fields below and the alarm's deadline
        self._pending: list[Finished] = []
        self._since: float | None = None  #: when the oldest pending combination was added
        self._written: set[ParamSweeper[HashableDict]] = set()  #: to fsync
        self._synced = time.monotonic()  #: when what was written was last fsync'd
        self._write_lock = threading.Lock()  #: one batch written at a time, in order
        self._alarm = alarm()
        self._closing = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def add(
        self,
        sweeper: ParamSweeper[HashableDict],
        combination: Any,
        result: Result | None,
        done: bool,
    ) -> None:
        """Have ``result`` (if any), then a done record (if ``done``) of ``combination``
        written and fsync'd (see the module for when)."""
        if self._error is not None:
            raise self._error
        now = time.monotonic()
        with self._lock:
            self._pending.append((sweeper, combination, result, done))
            since = self._since
            if since is None:
                self._since = now
                self._set_alarm()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="execo-writer", daemon=True)
            self._thread.start()
        if since is not None and now - since >= WRITE_INTERVAL / 2:
            self._write_pending(blocking=False)  # the thread may be writing them: then it does
            if now - self._synced >= SYNC_INTERVAL / 2:  # before the alarm rings for it
                self._sync()

    def _set_alarm(self) -> None:
        """Set the alarm for the next deadline (under ``_lock``: the oldest pending
        combination's, and that of the oldest write not fsync'd; now once closing)."""
        if self._closing:
            self._alarm.set(0.0)
            return
        deadlines = []
        if self._since is not None:
            deadlines.append(self._since + WRITE_INTERVAL)
        if self._written:
            deadlines.append(self._synced + SYNC_INTERVAL)
        self._alarm.set(min(deadlines, default=None))

    def _loop(self) -> None:
        try:
            while not self._closing:  # then close() writes and fsyncs the rest
                self._alarm.wait()
                if self._closing:
                    return
                self._write_pending(blocking=True)
                self._sync()
        except BaseException as error:  # raised again by add() and close()
            self._error = error

    def _write_pending(self, blocking: bool) -> None:
        """Write the pending batches (unless another thread is writing and not ``blocking``:
        that thread writes them)."""
        if not self._write_lock.acquire(blocking):
            return
        try:
            with self._lock:
                pending, self._pending, self._since = self._pending, [], None
            batches: dict[ParamSweeper[HashableDict], list[Finished]] = {}
            for finished in pending:
                batches.setdefault(finished[0], []).append(finished)
            for sweeper, batch in batches.items():
                for _, combination, result, _ in batch:
                    if result is not None:
                        sweeper.record_result(
                            combination, result.values, result.outcome, result.duration, wait=False
                        )
                done = [combination for _, combination, _, is_done in batch if is_done]
                if done:
                    sweeper.done_batch(done, wait=False)
                with self._lock:
                    self._written.add(sweeper)
        finally:
            self._write_lock.release()
            with self._lock:
                self._set_alarm()

    def _sync(self) -> None:
        """fsync what was written."""
        with self._lock:
            written, self._written = self._written, set()
            self._synced = time.monotonic()
            self._set_alarm()
        for sweeper in written:
            sweeper.flush()

    def close(self) -> None:
        """Return once everything handed over is on disk (fsync); raise what a write raised."""
        if self._thread is not None:
            with self._lock:
                self._closing = True
                self._set_alarm()  # rings at once
            self._thread.join()
            self._thread = None
            self._closing = False
        if self._error is not None:
            raise self._error
        self._write_pending(blocking=True)
        self._sync()
