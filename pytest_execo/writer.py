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

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from execo_engine.sweep import HashableDict
from execo_engine.sweeper import ParamSweeper

#: How long (seconds) the thread gathers finished combinations before writing them as a batch.
WRITE_INTERVAL = 0.005


@dataclass(frozen=True)
class Result:
    """``execo_record`` values of a finished combination, as ``record_result`` takes them."""

    values: Mapping[str, Any]
    outcome: str
    duration: float


class BackgroundWriter:
    """Writes results and done records of finished combinations in batches, in a background
    thread started on first use; :meth:`close` writes what is left and raises what a write
    raised. An error of the thread is also raised by the next :meth:`add`."""

    def __init__(self) -> None:
        self._pending: dict[ParamSweeper[HashableDict], list[tuple[Any, Result | None, bool]]]
        self._pending = {}
        self._wakeup = threading.Condition()
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
        with self._wakeup:
            self._pending.setdefault(sweeper, []).append((combination, result, done))
            self._wakeup.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="execo-writer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._wakeup:
                while not self._pending and not self._closing.is_set():
                    self._wakeup.wait()
            if self._closing.is_set():
                return  # close() writes the rest
            self._closing.wait(WRITE_INTERVAL)  # gather a batch (cut short by close())
            try:
                self._write_pending()
            except BaseException as error:  # raised again by add() and close()
                self._error = error
                return

    def _write_pending(self) -> None:
        with self._wakeup:
            pending, self._pending = self._pending, {}
        for sweeper, finished in pending.items():
            for combination, result, _ in finished:
                if result is not None:
                    sweeper.record_result(
                        combination, result.values, result.outcome, result.duration, wait=False
                    )
            done = [combination for combination, _, is_done in finished if is_done]
            if done:
                sweeper.done_batch(done, wait=False)
        for sweeper in pending:
            sweeper.flush()

    def close(self) -> None:
        """Return once everything handed over is on disk (fsync); raise what a write raised."""
        self._closing.set()
        if self._thread is not None:
            with self._wakeup:
                self._wakeup.notify()
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        self._write_pending()
