"""Leases, for every store: the lease rules, and the one heartbeat thread of a process.

A process that holds claims keeps them alive by a *lease* that it renews every ``lease/3``
seconds from a background thread; another instance that sees the lease not renewed for
``lease`` seconds gives the claims back. How a lease is written and judged is the medium's
(a heartbeat file in a directory, a row with an expiry in PostgreSQL); this module holds what
they share: the rules of a lease value (:func:`check_lease`), how often dead owners are looked
for (:data:`DEAD_OWNER_CHECK_INTERVAL`), and :class:`Heart`, the single thread per process
that runs every store's renewals (:func:`the_heart`). A forked child gets its own heart on its
first use: the parent's thread does not exist there.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Hashable
from typing import Any, Protocol

DEFAULT_LEASE = 60.0  #: seconds, for directories and PostgreSQL alike
MIN_LEASE = 1.0  #: seconds; a renewal (every lease/3) must fit in two thirds of the lease
#: Dead owners are looked for at most this often (seconds) by the operations of an instance
#: (and whenever a claim finds nothing).
DEAD_OWNER_CHECK_INTERVAL = 0.1

#: Lease values as the ``lease`` argument or URL parameter documents them.
LEASE_RULE = f"a finite number of seconds, at least {MIN_LEASE:g}"


def check_lease(value: Any) -> float:
    """``value`` as a lease in seconds; ``ValueError`` naming ``lease`` when it is not a finite
    number of at least :data:`MIN_LEASE` seconds (NaN, infinity, zero, negative, text)."""
    try:
        lease = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        lease = math.nan
    if not math.isfinite(lease) or lease < MIN_LEASE:
        raise ValueError(
            f"lease must be {LEASE_RULE} (heartbeats renew it every lease/3 s), not {value!r}"
        )
    return lease


class Beat(Protocol):
    """One renewal kept by the heart (a directory's heartbeat, a database store's lease)."""

    def due(self) -> float:
        """The ``time.monotonic()`` at which :meth:`keep` should run next."""
        ...

    def keep(self) -> None:
        """Renew now. Runs on the heart's thread, outside its lock; must not raise (a failure
        is the beat's to log, and it sets its own next :meth:`due`)."""
        ...


class Heart(threading.Thread):
    """The one thread of a process that runs every :class:`Beat` when it is due."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="execo heartbeat")
        self.pid = os.getpid()
        self.wake = threading.Condition()
        self.beats: dict[Hashable, Beat] = {}

    def run(self) -> None:
        while True:
            with self.wake:
                now = time.monotonic()
                due = [beat for beat in self.beats.values() if beat.due() <= now]
                if not due:
                    next_due = min((beat.due() for beat in self.beats.values()), default=now + 60)
                    self.wake.wait(next_due - now)
            for beat in due:
                beat.keep()

    def add(self, key: Hashable, beat: Beat) -> None:
        """Keep ``beat`` from now on, under ``key`` (replacing what ``key`` named)."""
        with self.wake:
            self.beats[key] = beat
            self.wake.notify()

    def remove(self, key: Hashable) -> Beat | None:
        """Stop keeping the beat of ``key``: the one removed (None: none)."""
        with self.wake:
            return self.beats.pop(key, None)


_heart: Heart | None = None
_heart_lock = threading.Lock()


def the_heart() -> Heart:
    """This process's heart, started on first use (again in a forked child)."""
    global _heart
    with _heart_lock:
        if _heart is None or _heart.pid != os.getpid():
            _heart = Heart()
            _heart.start()
        return _heart


def running_heart() -> Heart | None:
    """This process's heart if it was started (None: no store renewed anything yet)."""
    heart = _heart
    return heart if heart is not None and heart.pid == os.getpid() else None


def _after_fork_in_child() -> None:
    # The parent's thread does not run here, and another thread may have held the lock.
    global _heart, _heart_lock
    _heart, _heart_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
