"""Writing the combinations a session finished, in batches: done records and results.

A finished combination is handed to :class:`BackgroundWriter`. Batches (one per sweep: its
results first, then its done records, so that a crash in between never loses results of a done
combination) are written by whichever comes first:

- the session's own thread, when a test ends :data:`WRITE_INTERVAL` / 2 seconds or more after
  the oldest combination waiting: tests in quick succession are written by the thread running
  them, at no cost of switching threads (a thread that wakes up to write competes with the
  session for the interpreter, which costs a busy session more than the write itself);
- a background thread, which looks every :data:`WRITE_INTERVAL` seconds while something waits
  to be written or fsync'd: it writes what waited :data:`WRITE_INTERVAL` seconds or more (the
  next test runs long), and fsyncs what was written, at most every :data:`SYNC_INTERVAL`
  seconds (each look costs the session a thread switch, each fsync two more).

Until its done record is written, a combination stays claimed by this process: no other
session or xdist worker runs it, and if the process dies (SIGKILL) its claim goes back to todo
and the next session runs it again. So a process killed outright loses at most the
combinations finished in the last 2 x :data:`WRITE_INTERVAL` seconds plus the time of one write
(never a result without its done record, never a done record without its results), a crash of
the machine at most those of the last 3 x :data:`WRITE_INTERVAL` + :data:`SYNC_INTERVAL`
seconds plus one write and one fsync, and :meth:`~BackgroundWriter.close` returns once
everything handed over is on disk.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from execo_engine.sweep import HashableDict
from execo_engine.sweeper import ParamSweeper

#: How often (seconds) the background thread looks, while something waits (see the module).
WRITE_INTERVAL = 0.01
#: At most how often (seconds) the background thread fsyncs what was written.
SYNC_INTERVAL = 0.05


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
        self._pending: collections.deque[Finished] = collections.deque()  # thread-safe ends
        self._since: float | None = None  #: when the oldest pending combination was added
        self._write_lock = threading.Lock()  #: one batch written at a time, in order
        self._written: set[ParamSweeper[HashableDict]] = set()  #: to fsync
        self._wake = threading.Event()  #: wakes the thread from an untimed wait, or to close
        self._idle = False  #: the thread waits without a timeout (nothing to write nor fsync)
        self._closing = False
        self._synced = 0.0  #: when the background thread last fsynced
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
        written within 2 x :data:`WRITE_INTERVAL` seconds and one write, and fsync'd within
        :data:`WRITE_INTERVAL` + :data:`SYNC_INTERVAL` seconds and one fsync more."""
        if self._error is not None:
            raise self._error
        self._pending.append((sweeper, combination, result, done))
        since = self._since
        if since is None:
            self._since = time.monotonic()
            if self._idle:
                self._wake.set()
        elif time.monotonic() - since >= WRITE_INTERVAL / 2:
            self._write_pending(blocking=False)  # the thread may be writing them: then it does
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="execo-writer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        try:
            while True:
                self._idle = self._since is None and not self._written
                if self._idle and self._since is not None:  # added meanwhile: add() saw busy
                    self._idle = False
                self._wake.wait(None if self._idle else WRITE_INTERVAL)
                self._wake.clear()
                self._idle = False
                if self._closing:
                    return  # close() writes and fsyncs the rest
                since, now = self._since, time.monotonic()
                if since is not None and now - since >= WRITE_INTERVAL:
                    self._write_pending(blocking=True)
                if now - self._synced >= SYNC_INTERVAL:
                    self._synced = now
                    self._flush()
        except BaseException as error:  # raised again by add() and close()
            self._error = error

    def _write_pending(self, blocking: bool) -> None:
        """Write the pending batches (unless another thread is writing and not ``blocking``:
        that thread writes them)."""
        if not self._write_lock.acquire(blocking):
            return
        try:
            self._since = None  # first: what is added from now on is the next batch's
            batches: dict[ParamSweeper[HashableDict], list[Finished]] = {}
            while self._pending:
                finished = self._pending.popleft()
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
                self._written.add(sweeper)
        finally:
            self._write_lock.release()

    def _flush(self) -> None:
        """fsync what was written."""
        with self._write_lock:
            written, self._written = self._written, set()
        for sweeper in written:
            sweeper.flush()

    def close(self) -> None:
        """Return once everything handed over is on disk (fsync); raise what a write raised."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._closing = False
        if self._error is not None:
            raise self._error
        self._write_pending(blocking=True)
        self._flush()
