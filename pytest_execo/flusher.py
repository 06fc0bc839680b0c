"""When the records a session wrote reach the disk: fsync in the background, within
:data:`SYNC_INTERVAL`.

The recorder writes each finished combination's records itself, at once, before the item's last
report is logged (see :mod:`pytest_execo.recorder`): ``ParamSweeper.done(..., wait=False)``
returns once the record is written (``write(2)``: in the kernel, it survives the death of the
process, SIGKILL included), and leaves its fsync to ``ParamSweeper.flush()``. The recorder then
tells :meth:`BackgroundFlusher.written`; the flusher's thread sleeps on an
:mod:`~pytest_execo.alarm` set for :data:`SYNC_INTERVAL` seconds after the first write not yet
fsync'd, wakes, and fsyncs every sweeper written since its last round (``os.fsync`` releases the
interpreter: the session's thread runs on meanwhile). A busy session so wakes that thread at most
once per :data:`SYNC_INTERVAL`, and an idle one never.

A crash of the machine (or of the kernel, or a power cut) loses at most the records written in
the last :data:`SYNC_INTERVAL` seconds, plus the time the thread takes to get the interpreter
(``sys.getswitchinterval()``, 5 ms by default, while the test runs Python code) and one fsync's
duration: well under 250 ms on a local disk (an NFS server that takes longer to answer an fsync
makes it longer). :meth:`BackgroundFlusher.close` returns once everything written is on disk.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from pytest_execo.alarm import alarm

#: How long (seconds) a written record waits at most before its fsync begins.
SYNC_INTERVAL = 0.1


class Flushable(Protocol):
    """What wrote without waiting for its fsync (a ``ParamSweeper``): ``flush()`` fsyncs it."""

    def flush(self) -> None: ...


class BackgroundFlusher:
    """Flushes (fsyncs), in a thread of its own, what it is told was written (see the module).
    An error of a flush is raised by the next :meth:`written` or by :meth:`close`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  #: around _written and the alarm's deadline
        self._written: set[Flushable] = set()  #: to flush
        self._alarm = alarm()
        self._closing = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def written(self, sweeper: Flushable) -> None:
        """``sweeper`` wrote records without waiting for their fsync (``wait=False``): have
        them fsync'd (``sweeper.flush()``) within :data:`SYNC_INTERVAL` seconds."""
        if self._error is not None:
            raise self._error
        with self._lock:
            if sweeper in self._written:  # a deadline is set already
                return
            if not self._written:  # the first write since the last round
                self._alarm.set(time.monotonic() + SYNC_INTERVAL)
            self._written.add(sweeper)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="execo-flusher", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        try:
            while True:
                self._alarm.wait()
                closing = self._closing
                self._flush()
                if closing:
                    return
        except BaseException as error:  # raised again by written() and close()
            self._error = error

    def _flush(self) -> None:
        with self._lock:
            written, self._written = self._written, set()
        for sweeper in written:
            sweeper.flush()

    def close(self) -> None:
        """Return once everything written is on disk (fsync); raise what a flush raised."""
        if self._thread is not None:
            with self._lock:
                self._closing = True
                self._alarm.set(0.0)  # rings at once
            self._thread.join()
            self._thread = None
            self._closing = False
        if self._error is not None:
            raise self._error
        self._flush()

    def dispose(self) -> None:
        """After :meth:`close`: release the alarm (a descriptor on Linux); the flusher is not
        used after."""
        self._alarm.close()
