"""Background writing of the combinations a session finished: done records and results.

A finished combination is handed to :class:`BackgroundWriter` (:meth:`~BackgroundWriter.add`
costs the test almost nothing); a background thread writes what was handed to it in the last
:data:`WRITE_INTERVAL` seconds as one batch per sweep (its results first, then its done
records: a crash in between never loses results of a done combination), then fsyncs them.
Until its done record is written, a combination stays claimed by this process: no other
session or xdist worker runs it, and if the process dies (SIGKILL) its claim goes back to todo
and the next session runs it again. So a process killed outright loses at most the
combinations finished in the last :data:`WRITE_INTERVAL` seconds plus the time of one write
(never a result without its done record, never a done record without its results), and
:meth:`~BackgroundWriter.close` returns once everything handed over is on disk.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from execo_engine.sweep import HashableDict
from execo_engine.sweeper import ParamSweeper

#: How long (seconds) the thread gathers finished combinations before writing them as a batch.
WRITE_INTERVAL = 0.01


@dataclass(frozen=True)
class Result:
    """``execo_record`` values of a finished combination, as ``record_result`` takes them."""

    values: Mapping[str, Any]
    outcome: str
    duration: float


#: A finished combination: its sweeper, the combination, its results, whether it is done.
Finished = tuple[ParamSweeper[HashableDict], Any, Result | None, bool]


class BackgroundWriter:
    """Writes results and done records of finished combinations in batches, in a background
    thread started on first use; :meth:`close` writes what is left and raises what a write
    raised. An error of the thread is also raised by the next :meth:`add`."""

    def __init__(self) -> None:
        self._pending: collections.deque[Finished] = collections.deque()  # thread-safe ends
        self._work = threading.Event()  #: set when something is pending, or to close
        self._closing = threading.Event()
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
        written and fsync'd within :data:`WRITE_INTERVAL` seconds and one write."""
        if self._error is not None:
            raise self._error
        self._pending.append((sweeper, combination, result, done))
        if not self._work.is_set():
            self._work.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="execo-writer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self._work.wait()
            self._closing.wait(WRITE_INTERVAL)  # gather a batch (cut short by close())
            self._work.clear()  # then read: what is added from now on sets it again
            if self._closing.is_set():  # set before close() sets _work: no wait is missed
                return  # close() writes the rest
            try:
                self._write_pending()
            except BaseException as error:  # raised again by add() and close()
                self._error = error
                return

    def _write_pending(self) -> None:
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
        for sweeper in batches:
            sweeper.flush()

    def close(self) -> None:
        """Return once everything handed over is on disk (fsync); raise what a write raised."""
        self._closing.set()
        self._work.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        self._write_pending()
