"""The store contract: everything :class:`~execo_engine.sweeper.ParamSweeper` knows of storage.

A store keeps the shared state of one sweep (a directory:
:mod:`execo_engine.store.directory.store`; a PostgreSQL database:
:mod:`execo_engine.store.postgresql.store`). To add a third one, write one module with a class
implementing :class:`Store` and one with its :class:`~execo_engine.store.locations.Kind` (its
location syntax: the resolver :mod:`execo_engine.store.locations` is the only code that knows
location syntaxes), and run the contract suite (``tests/test_store_contract.py``) on it. Its
constructor takes ``(location, codec, read_only=False, lease=None)``: ``codec`` encodes elements
(:class:`~execo_engine.codec.Codec`), ``lease`` (seconds, None: the store's default) is how long an
owner on another host may stay silent before what it holds is given back.

Vocabulary
----------

- An *element* is one combination, hashable, of the types :class:`~execo_engine.codec.Codec`
  carries; equal elements are the same element (compare canonical texts, never ``hash()``).
- The *sweeps* are the elements this store object iterates on, in order, distinct (the caller
  removed duplicates). Other instances may use other sweeps (other orders, other elements): done
  and held states are shared by element, not by position.
- An *owner* is the process that holds a claim (:mod:`execo_engine.store.owner`), or that
  created the store object holding a skip (an :class:`~execo_engine.store.owner.Instance`:
  the processes that object was forked into hold its skips with it). An owner is dead when the
  store says so (a process of this host and PID namespace that no longer runs, or an owner
  whose lease expired). What dead owners hold is given back to todo by the next operation of
  any writing instance, with a log line (at DETAIL for an operation that only reads:
  :mod:`execo_engine.store.messages`).

States (:class:`State`), each element of the sweeps is in exactly one:

- ``TODO``: nobody holds it, not done;
- ``CLAIMED``: held by a live owner, being processed (in progress);
- ``SKIPPED``: skipped by this store object, or by one of the processes it was forked into
  (records naming this instance), or by this very process for this object (remembered even
  if another instance's hold replaced the record), while the object's creator lives; every
  other store object sees the element TODO (and may claim it) while :meth:`Store.holders`
  lists the skip with its owner; once the owner is gone it is todo everywhere (the next run
  retries). A skip written by a version that named no instance is SKIPPED for every store
  object while its owner lives;
- ``DONE``: shared and persistent, except for this store object after :meth:`Store.give_back`
  of a done element (execo's "recompute": todo again here only, others still see done);
- ``FAILED``: shared and persistent: :meth:`Store.fail` counted its ``max_attempts``-th failed
  attempt; never handed out again until :meth:`Store.reset` with ``failed=True``. Done wins
  over failed (an element done anyway is done). Nothing here may assume a fixed number of
  states: iterate over :class:`State`.

Failed attempts are counted per element (:class:`Failure`), shared and persistent whatever
the element's state, until a reset of the failures: ``fail`` is "give back and count one
attempt", ``give_back`` is "give back without counting". Whether an element is FAILED is
decided once, by the instance that counts the attempt (with its ``max_attempts``), and stays
so for every instance.

Rules every implementation follows
----------------------------------

- One store object per ParamSweeper instance. Every method is atomic with respect to every
  other instance, thread, process and host (a lock, a transaction), and thread-safe on one
  object, read-only objects included. Instance-local state (what this object claimed, done
  elements given back here) lives in the store object.
- Every operation first catches up with what others changed, at a cost of O(what changed), not
  O(grid) nor O(claims); it also gives back what dead owners hold.
- ``read_only=True``: never writes, never takes a lock that blocks writers; every changing
  method raises ``PermissionError`` naming the location. It gives nothing back either: what
  dead owners hold stays in its states, flagged ``dead`` by :meth:`Store.holders`.
- Durability: a change is visible to every other instance when its method returns. Done
  records and results are *durable* (survive a crash of the host) once :meth:`Store.sync`
  returned: ``ParamSweeper.done`` is ``store.done(...)`` then ``store.sync()``, and a caller
  may defer ``sync()`` to batch the flushes of several changes (the write happens under the
  lock, the flush after it: flushes of several processes then share one disk flush).
- Errors name the location and the fix. Nothing read is executed or unpickled unless the codec
  allows pickle. A location whose format is newer than the code is refused with a
  :class:`~execo_engine.errors.NewerFormatError`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from execo_engine.elements import HashableDict
from execo_engine.store.owner import Owner

#: Receives the todo elements of this store object, in sweeps order, and returns those to
#: consider, in the order to consider them (the ``filtr`` of ``ParamSweeper.get_next``).
Choose = Callable[[list[Any]], Iterable[Any]]


class State(enum.IntEnum):
    """The state of an element of the sweeps (see the module docstring)."""

    TODO = 0
    DONE = 1
    SKIPPED = 2
    CLAIMED = 3
    FAILED = 4


@dataclass(frozen=True)
class Holder:
    """Who holds an element: a claim (``state`` CLAIMED) or a skip (``state`` SKIPPED)."""

    element: Any
    owner: Owner  #: (host, pid, start[, PID namespace]): see :mod:`execo_engine.store.owner`
    since: float  #: when it was taken, seconds since the epoch (the holder's clock)
    state: State
    dead: bool  #: the store judges the owner gone: the next writing operation gives it back


@dataclass(frozen=True)
class Failure:
    """The failed attempts counted on an element (see :meth:`Store.fail`)."""

    element: Any
    attempts: int  #: failed attempts counted since the last reset of the failures
    error: str  #: the error text of the last one (bounded: see :func:`short_error`)
    since: float  #: when the last one was counted, seconds since the epoch (its writer's clock)
    failed: bool  #: the element is FAILED (the last one reached its writer's ``max_attempts``)


#: An error text keeps at most this many lines and characters (first lines first).
MAX_ERROR_LINES, MAX_ERROR_CHARS = 5, 1000


def short_error(text: str) -> str:
    """``text`` bounded to its first :data:`MAX_ERROR_LINES` non-empty lines and
    :data:`MAX_ERROR_CHARS` characters (``...`` marks a cut), as stores keep it."""
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    kept = "\n".join(lines[:MAX_ERROR_LINES])
    if len(lines) <= MAX_ERROR_LINES and len(kept) <= MAX_ERROR_CHARS:
        return kept
    return kept[: MAX_ERROR_CHARS - 3] + "..."


class Store(Protocol):
    """One sweep's shared state, seen by one ParamSweeper instance (see the module
    docstring for the rules)."""

    name: str  #: a short name for logs (a directory's base name, a sweep's name)
    location: str  #: where it lives, printable (no password)
    read_only: bool

    def set_sweeps(self, sweeps: list[Any], save: bool) -> None:
        """Iterate on ``sweeps`` from now on (distinct elements, in order) and reload the
        shared state for them; with ``save``, also store them durably (what
        :meth:`load_sweeps` returns) — in any case, keep how many they are, so that a
        status can be reported without them."""

    def load_sweeps(self) -> list[Any] | None:
        """The saved sweeps in order, or None when none were saved."""

    def grid_size(self) -> int | None:
        """How many elements the sweeps of the last writer's :meth:`set_sweeps` had (None:
        unknown)."""

    def claim(self, count: int, choose: Choose | None = None) -> list[Any]:
        """Claim up to ``count`` todo elements for this process, in sweeps order (or in the
        order ``choose`` returns, keeping only todo ones); returns them (``[]``: none)."""

    def take(self, element: Any, position: int | None = None) -> str | None:
        """Claim this very element if it is todo (skipped by another instance included) or
        skipped by this store object (``position``:
        where the caller believes it stands in the sweeps, a hint that spares an index of a
        large grid; a wrong one is only slower); None when claimed, else why not, for a
        person: ``"done"``, ``"failed"``, ``"in progress (host H, pid P)"``, ``"skipped (host
        H, pid P)"`` or ``"not in the sweeps"``."""

    def take_many(self, wanted: list[tuple[Any, int | None]]) -> list[str | None]:
        """:meth:`take` of each ``(element, position)`` pair, in order, at once (an element
        wanted twice is taken once): a reason, or None, for each pair."""

    def done(self, elements: list[Any]) -> None:
        """Mark ``elements`` done (idempotent; an element not in the sweeps is recorded too)
        and release the claims on them; visible at return, durable after :meth:`sync`."""

    def sync(self) -> None:
        """Return once every done record and result this object wrote is durable."""

    def give_back(self, elements: list[Any], skip: bool = False) -> None:
        """Release the claims on ``elements``: todo again (``cancel``, which also ends this
        object's skips on them), or, with ``skip``, SKIPPED for this store object (see
        :class:`State`). A done element given back without ``skip`` becomes
        todo for this store object only (others still see it done); done again, it writes a
        new done record."""

    def fail(self, elements: list[Any], error: str, max_attempts: int | None = None) -> list[Any]:
        """Count one failed attempt on each of ``elements`` that is not done, keep ``error``
        (already bounded by :func:`short_error`) as its last error, and release this process's
        claims and this store object's skips on them: the elements whose attempts reach
        ``max_attempts`` (None: no limit) become FAILED for every instance, the others todo.
        Returns those that became FAILED, in the order given. An element not in the sweeps is
        counted too. Visible at return, durable (as done records) after :meth:`sync`."""

    def release_mine(self, error: str | None = None, max_attempts: int | None = None) -> list[Any]:
        """Give back to todo every claim this store object took and did not finish (with
        ``error``, as :meth:`fail` with ``max_attempts``); returns them in the order they were
        claimed."""

    def reset(self, claims: bool = False, failed: bool = False) -> None:
        """Forget the skips of this store object (done stays); with ``claims``, release every
        claim and every skip record of every instance too; with ``failed``, clear every
        failed attempt count, everywhere: FAILED elements are todo again (durable after
        :meth:`sync`)."""

    def states(self) -> dict[State, list[Any]]:
        """Atomically, the elements of the sweeps in each state (every :class:`State` is a
        key), each list in sweeps order; read-only objects included, thread-safe."""

    def failures(self) -> list[Failure]:
        """Atomically, every element with failed attempts counted (whatever its state now):
        those of the sweeps in sweeps order, then the others; read-only objects included,
        thread-safe."""

    def holders(self) -> list[Holder]:
        """Every claim and skip, oldest first, with its owner and whether it is dead."""

    def heartbeat_ages(self) -> dict[Owner, float]:
        """Seconds since each owner known here last renewed its lease, as this host sees it
        (an owner missing: the medium does not know)."""
        ...

    def reclaim(self, older_than: float | None = None) -> list[Any]:
        """Give back what dead owners hold and, with ``older_than`` (seconds), every claim
        taken longer ago than that, whoever holds it; returns the elements."""

    def refresh(self, full: bool = False) -> None:
        """Catch up with others now (``full``: reload everything from scratch)."""

    def append_result(self, record: HashableDict) -> None:
        """Append a result record (visible at return, durable after :meth:`sync`)."""

    def read_results(self) -> list[Any]:
        """Every result record, in the order they were appended."""

    def add_run(self, record: dict[str, Any]) -> None:
        """Append a run record (a JSON object with a text ``id``: see
        :mod:`execo_engine.store.runs`); durable when it returns."""

    def read_runs(self) -> list[dict[str, Any]]:
        """Every run record, in the order they were appended (unreadable ones skipped with a
        warning); none in a store older than run records."""

    def done_texts(self) -> frozenset[str]:
        """The canonical texts (:meth:`Codec.encode`) of every done element, sweeps or not."""

    def close(self) -> None:
        """Release what the store object holds open (it is not used after)."""
