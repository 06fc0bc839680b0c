"""An alarm that one thread sleeps on and another moves, without waking the sleeper each time.

:func:`alarm` returns a :class:`TimerfdAlarm` on Linux, else a :class:`ConditionAlarm`. Both
have the same contract:

- :meth:`~TimerfdAlarm.set` (any thread) sets the deadline, a :func:`time.monotonic` time (one
  in the past rings at once), or None to disarm;
- :meth:`~TimerfdAlarm.wait` (one thread) returns once the deadline set last has passed, and
  disarms the alarm.

Why two: a Python thread that wakes up must take the interpreter lock from a busy thread, which
costs that thread dozens of context switches (it gives the lock away at each system call it
makes). With a Linux ``timerfd``, moving the deadline is one system call and the sleeper wakes
only when the deadline really passes. Elsewhere, a condition variable: moving the deadline
later does not wake the sleeper, but it wakes at the deadline it knew and sleeps again.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
import threading
import time
import weakref

_CLOCK_MONOTONIC = 1  #: the clock of time.monotonic() on Linux
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("it_interval", _TimeSpec), ("it_value", _TimeSpec)]


class TimerfdAlarm:
    """The alarm of a Linux ``timerfd`` on the monotonic clock (``OSError`` if the C library
    has none), closed by :meth:`close` or when the object is collected."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._create, self._settime = libc.timerfd_create, libc.timerfd_settime
        self._fd = self._check(self._create(_CLOCK_MONOTONIC, _TFD_CLOEXEC))
        self._finalizer = weakref.finalize(self, os.close, self._fd)

    @staticmethod
    def _check(result: int) -> int:
        if result < 0:
            error = ctypes.get_errno()
            raise OSError(error, f"timerfd: {os.strerror(error)}")
        return result

    def set(self, deadline: float | None) -> None:
        spec = _ITimerSpec()  # all zero: disarmed
        if deadline is not None:
            seconds = max(deadline, 1e-9)  # an absolute time of 0 would disarm
            whole = int(seconds)
            spec.it_value.tv_sec, spec.it_value.tv_nsec = whole, int((seconds - whole) * 1e9)
        self._check(self._settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None))

    def wait(self) -> None:
        os.read(self._fd, 8)  # returns once the timer expired (a one-shot: then disarmed)

    def close(self) -> None:
        """Close the timer's descriptor (the alarm is not used after)."""
        self._finalizer()


class ConditionAlarm:
    """The alarm of a condition variable (any platform)."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._deadline: float | None = None
        self._sleeping_until: float | None = None  #: the waiter's timeout (inf: none)

    def set(self, deadline: float | None) -> None:
        with self._condition:
            self._deadline = deadline
            if (
                deadline is not None
                and self._sleeping_until is not None
                and deadline < self._sleeping_until
            ):
                self._condition.notify()

    def wait(self) -> None:
        with self._condition:
            while True:
                deadline, now = self._deadline, time.monotonic()
                if deadline is not None and deadline <= now:
                    self._deadline = self._sleeping_until = None
                    return
                self._sleeping_until = math.inf if deadline is None else deadline
                self._condition.wait(None if deadline is None else deadline - now)

    def close(self) -> None:
        """Nothing to close."""


Alarm = TimerfdAlarm | ConditionAlarm


def alarm() -> Alarm:
    """A :class:`TimerfdAlarm` on Linux (when it can be made), else a :class:`ConditionAlarm`."""
    if sys.platform == "linux":
        try:
            return TimerfdAlarm()
        except (OSError, AttributeError):  # no timerfd in this C library
            pass
    return ConditionAlarm()
