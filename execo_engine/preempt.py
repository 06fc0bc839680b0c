"""Preemption: a scheduler's warning signal makes a worker give its claims back and exit.

Schedulers warn a job before they kill it: SLURM with ``--signal=B:USR1@S`` (SIGUSR1), OAR with
``--checkpoint S`` (SIGUSR2 by default), everyone with SIGTERM. A worker treats these three
signals alike: in the main thread, the signal raises an exception (:class:`Preempted` by
default, a quiet ``SystemExit`` with status 128 + the signal number) that unwinds whatever runs,
so the claims of the interrupted combinations go back to todo at once (cancelled, not failed)
and the worker exits; the batch script written by :mod:`execo_engine.launch` then has the
scheduler requeue it.

Who catches the signals:

- ``Engine.start`` (the whole of ``run``), through :func:`preemptible`; its sweepers give their
  claims back in ``start``'s ``finally``;
- the pytest plugin, for the session (the interrupted test is cancelled, the session stops);
- a plain ``ParamSweeper`` script **only when it runs as a worker** (``EXECO_SWEEP_LOCATION`` is
  set, as ``execo-sweep submit`` does), through :func:`watch_worker`: the signals that still
  have their default action raise :class:`Preempted`, and the claims of every writing
  ParamSweeper of the process go back when the interpreter exits. Outside a worker, a script
  keeps the signal handling it chose.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Protocol

#: The signals that mean "you are about to be killed: stop now".
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
#: Set by ``execo-sweep submit`` in each worker: where the sweep lives, and which worker this is.
LOCATION_ENV, INDEX_ENV = "EXECO_SWEEP_LOCATION", "EXECO_WORKER_INDEX"

Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class Preempted(SystemExit):
    """Raised in the main thread by a preemption signal; exits with status 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


class _Releasable(Protocol):
    def release_claims(self) -> Sequence[object]: ...


def _raising(exception: Callable[[int], BaseException]) -> Callable[[int, FrameType | None], None]:
    """A signal handler that raises ``exception(signum)``, once: it ignores the next
    preemption signals, so that giving the claims back is not interrupted (a scheduler often
    sends SIGTERM after its warning)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        for other in PREEMPTION_SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        raise exception(signum)

    return handler


def _install(exception: Callable[[int], BaseException], only_default: bool) -> dict[int, Handler]:
    """Have the preemption signals raise ``exception(signum)`` (those with their default
    action only, with ``only_default``); returns the handlers it replaced. Nothing outside
    the main thread (Python only runs signal handlers there)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    handler = _raising(exception)
    replaced: dict[int, Handler] = {}
    for signum in PREEMPTION_SIGNALS:
        if only_default and signal.getsignal(signum) is not signal.SIG_DFL:
            continue
        replaced[signum] = signal.signal(signum, handler)
    return replaced


@contextmanager
def preemptible(exception: Callable[[int], BaseException] = Preempted) -> Iterator[None]:
    """While inside, the first of SIGTERM, SIGUSR1 and SIGUSR2 raises ``exception(signum)``
    (default: :class:`Preempted`) in the main thread, and the next ones are ignored; the
    previous handlers come back on exit. Outside the main thread, changes nothing."""
    replaced = _install(exception, only_default=False)
    try:
        yield
    finally:
        for signum, previous in replaced.items():
            signal.signal(signum, previous)


#: The writing sweepers of this worker process, kept until it exits (a sweeper that was a
#: local variable of the function a preemption interrupted must still give its claims back).
_watched: list[_Releasable] = []


def _release_watched() -> None:
    for sweeper in _watched:
        sweeper.release_claims()


def watch_worker(sweeper: _Releasable) -> None:
    """In a worker started by ``execo-sweep submit`` (``EXECO_SWEEP_LOCATION`` set), make
    ``sweeper`` preemption-safe: its claims go back when the interpreter exits, and the
    preemption signals that still have their default action raise :class:`Preempted`.
    Elsewhere, does nothing."""
    if LOCATION_ENV not in os.environ:
        return
    atexit.unregister(_release_watched)  # registered once
    atexit.register(_release_watched)
    _watched.append(sweeper)
    _install(Preempted, only_default=True)
