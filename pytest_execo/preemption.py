"""Preemption-safe pytest sessions (registered with ``--execo-sweep-dir``).

During the session, SIGTERM and the schedulers' warnings SIGUSR1 and SIGUSR2 (see
:mod:`execo_engine.preempt`) stop it as ``pytest.exit`` does, with status 128 + the signal: the
running combination is cancelled (given back to todo, not failed), the session's unfinished
claims go back at its end, and the worker script of ``execo-sweep submit`` has the scheduler
requeue the worker.
"""

from __future__ import annotations

import signal
from contextlib import ExitStack

import pytest

from execo_engine.preempt import preemptible


def _stop_session(signum: int) -> BaseException:
    return pytest.exit.Exception(
        f"execo: preempted by {signal.Signals(signum).name}: unfinished combinations given back",
        returncode=128 + signum,
    )


class PreemptionGuard:
    """Catches the preemption signals from session start to unconfigure."""

    def __init__(self) -> None:
        self._stack = ExitStack()

    def pytest_sessionstart(self) -> None:
        self._stack.enter_context(preemptible(_stop_session))

    def pytest_unconfigure(self) -> None:
        self._stack.close()
