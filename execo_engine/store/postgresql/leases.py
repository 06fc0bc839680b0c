"""A database store's lease, renewed by the process's heart
(:mod:`execo_engine.store.lease`): the row of this process in ``execo_owners`` is pushed
``lease`` seconds ahead every ``lease/3`` seconds while the store is open; and how a reader
judges the leases of others (:class:`LeaseWatch`)."""

from __future__ import annotations

import time
import weakref
from collections.abc import Hashable, Iterable
from typing import Protocol

from execo_engine.log import logger
from execo_engine.store.lease import the_heart


class Renewing(Protocol):
    """What the heart needs of a store: its name, lease, last renewal and how to renew."""

    location: str
    lease: float

    def renewed_at(self) -> float:
        """``time.monotonic()`` of the last renewal (0: never)."""
        ...

    def renew_lease(self, when_due: bool = False) -> None:
        """Push the lease ahead (with ``when_due``, only once a third of it went by)."""
        ...


class _Renewal:
    """The :class:`~execo_engine.store.lease.Beat` of one store, which it does not keep alive."""

    def __init__(self, store: Renewing) -> None:
        self._store = weakref.ref(store)
        self._retry_at = 0.0  # after a failure: the next try

    def due(self) -> float:
        store = self._store()
        if store is None:
            return 0.0  # gone: due at once, to be dropped
        return max(store.renewed_at() + store.lease / 3, self._retry_at)

    def keep(self) -> None:
        store = self._store()
        if store is None:
            the_heart().remove(id(self))
            return
        try:
            store.renew_lease(when_due=True)
        except Exception as error:
            self._retry_at = time.monotonic() + min(1.0, store.lease / 3)
            logger.warning(
                "%s: could not renew the lease (%s): if it expires, other instances take this "
                "process's claims back",
                store.location,
                error,
            )


def keep_lease(store: Renewing) -> int:
    """Renew ``store``'s lease from the heart until :func:`stop_lease` of the key returned (or
    until the store is garbage collected)."""
    renewal = _Renewal(store)
    the_heart().add(id(renewal), renewal)
    return id(renewal)


def stop_lease(key: int) -> None:
    """Stop renewing the lease that :func:`keep_lease` returned ``key`` for."""
    the_heart().remove(key)


class LeaseWatch:
    """Judges leases by this reader's own clock, as the directory store does: a lease expired
    once its heartbeat (any value that changes at each renewal) has not changed for the lease
    as this reader saw it, on one connection. What the reader saw before its connection was
    lost does not count: while the reader could not see the server, the owner could not renew
    either (a server down for longer than a lease, restarted or crashed, expires no lease).
    Neither the database's clock nor any agreement between clocks is needed. Not thread-safe
    (the caller holds its lock)."""

    def __init__(self) -> None:
        self._seen: dict[Hashable, tuple[object, float]] = {}  # owner -> (beat, first seen)
        self._connection = -1

    def expired(
        self, connection: int, beats: Iterable[tuple[Hashable, object, float]]
    ) -> set[Hashable]:
        """The owners among ``(owner, heartbeat, lease seconds)`` whose lease expired (owners
        not given are forgotten); ``connection``: the number of the reader's connection they
        were read on (another one than last time: everything is seen anew)."""
        now = time.monotonic()
        seen, self._seen = ({} if connection != self._connection else self._seen), {}
        self._connection = connection
        expired = set()
        for owner, beat, lease in beats:
            first = seen.get(owner)
            if first is None or first[0] != beat:
                first = (beat, now)
            self._seen[owner] = first
            if now - first[1] >= lease:
                expired.add(owner)
        return expired
