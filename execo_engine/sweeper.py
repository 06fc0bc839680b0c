"""ParamSweeper: a persistent, thread-, process- and host-safe work queue over combinations.

The state machine lives here; the bytes on disk live in :mod:`execo_engine.dirstore`.

Each element is *todo*, *in progress* (claimed by some instance), *done* or *skipped*. Done and
in-progress states are shared through the persistence directory by every instance, thread,
process and host using it; skipped is private to an instance (forgotten by the next run).
Every operation takes the directory lock, reads only what other instances appended since its
last look, changes the state, appends its own records and releases the lock: its cost does not
grow with the grid nor with the number of elements in progress.
"""

from __future__ import annotations

import itertools
import operator
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from execo_engine.codec import Codec
from execo_engine.log import logger
from execo_engine.owner import Owner, current_owner
from execo_engine.records import CLAIM, Changes
from execo_engine.stores import Location, open_store
from execo_engine.sweep import HashableDict, SweepList

Filter = Callable[[list[Any]], Iterable[Any]]

#: The state of each position of the sweeps, one byte each (claimed: by any live instance).
TODO, DONE, SKIPPED, CLAIMED = 0, 1, 2, 3
#: Dead owners are looked for at most this often (seconds), on the next operation.
DEAD_OWNER_CHECK_INTERVAL = 0.1
#: The inprogress journal is compacted when it holds more records than this many, and more
#: than ``COMPACT_RATIO`` times the live claims.
COMPACT_MIN_RECORDS, COMPACT_RATIO = 1000, 4


def done_snapshot(persistence_dir: Location) -> frozenset[str]:
    """What is done in ``persistence_dir`` at this moment, as canonical texts (see
    :func:`canonical_text`): a view that stays the same while others keep working, and that
    can be sent to other processes."""
    return frozenset(open_store(persistence_dir, Codec(), read_only=True).done_texts())


def canonical_text(element: Any) -> str:
    """The canonical text of ``element``, as recorded on disk (text codec)."""
    return Codec().encode(element)


def _check_hashable(elements: Iterable[Any]) -> None:
    for element in elements:
        try:
            hash(element)
        except TypeError as error:
            raise TypeError(
                f"ParamSweeper: element {element!r} is unhashable ({error}); "
                f"use hashable values (tuples, not lists)"
            ) from None


def _unique(sweeps: Iterable[Any]) -> list[Any]:
    """A new list of the elements without duplicates (first one kept); ``TypeError`` naming an
    unhashable one.

    For HashableDicts (the output of ``sweep``), a quick pass hashes their items in C without
    caching anything, and sorts the hashes (less memory than a set; before copying a list, to
    keep the peak low); only when two hashes are equal does it fall back to exact
    deduplication.
    """
    if type(sweeps) is SweepList and sweeps.distinct:  # straight from sweep(): known distinct
        return list(sweeps)
    elements = sweeps if isinstance(sweeps, (list, tuple)) else list(sweeps)
    try:
        if set(map(type, elements)) <= {HashableDict}:
            hashes = sorted(map(hash, map(frozenset, map(dict.items, elements))))
            if not any(map(operator.eq, hashes, itertools.islice(hashes, 1, None))):
                del hashes
                return list(elements)
        return list(dict.fromkeys(elements))
    except TypeError:
        _check_hashable(elements)
        raise


def _sync_and_close(fd: int) -> None:
    """fsync a descriptor from the store (outside the lock: fsyncs of several processes can
    then share one disk flush), then close it."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _table(function: Callable[[int], int]) -> bytes:
    return bytes(function(i) for i in range(256))


#: ``bytes.translate`` tables: the mask of each state (1 where a position is in it), and
#: each state turned back into todo.
_MASKS = {state: _table(lambda i, s=state: int(i == s)) for state in (TODO, DONE, SKIPPED, CLAIMED)}
_BACK_TO_TODO = {
    state: _table(lambda i, s=state: TODO if i == s else i) for state in (DONE, SKIPPED, CLAIMED)
}


class ParamSweeper:
    """Persistent iterable container of elements (parameter combinations) to process.

    ``persistence_dir`` is a directory, created if needed (``NotADirectoryError`` if it is a
    file), or a ``postgresql://user@host/db?sweep=NAME`` URL (see :mod:`execo_engine.pgstore`).
    ``sweeps`` is what to iterate on, in that order (``get_next`` follows it); None loads the
    saved sweeps (``ValueError`` if there are none). ``save_sweeps=True`` saves them. ``name``
    appears in logs and ``str()`` (default: the directory's or the sweep's name).
    ``allow_pickle=True`` lets elements hold values the text format cannot carry, pickled (only
    where you trust every writer). ``read_only=True`` reads without locking and never writes
    (any change raises ``PermissionError``).

    Done and in-progress states persist and are shared; skipped does not. A claim whose process
    died (on this host, for a directory) or whose lease expired (PostgreSQL) goes back to todo
    at the next operation of any instance. Deleting the ``inprogress`` file releases every
    claim, even while instances run. Elements done but not in the current sweeps are kept and
    not reported. Returned collections are copies, in sweeps order.

    The old argument order ``ParamSweeper(sweeps, persistence_dir)`` still works, with a
    ``DeprecationWarning``.
    """

    def __init__(
        self,
        persistence_dir: Location,
        sweeps: Iterable[Any] | None = None,
        save_sweeps: bool = False,
        name: str | None = None,
        *,
        allow_pickle: bool = False,
        read_only: bool = False,
    ) -> None:
        if not isinstance(persistence_dir, (str, os.PathLike)) and isinstance(
            sweeps, (str, os.PathLike)
        ):
            warnings.warn(
                "ParamSweeper(sweeps, persistence_dir) is deprecated: use "
                "ParamSweeper(persistence_dir, sweeps)",
                DeprecationWarning,
                stacklevel=2,
            )
            persistence_dir, sweeps = sweeps, persistence_dir
        self._store = open_store(persistence_dir, Codec(allow_pickle), read_only)
        self.name = name or self._store.name
        self._lock = self._store.lock
        self._last_dead_check = 0.0
        self._done_extra: set[Any] = set()  # done elements that are not in the sweeps
        # element -> (owner, its position in the sweeps or None, time of the claim), for every
        # live claim
        self._claims: dict[Any, tuple[Owner, int | None, float]] = {}
        self._by_owner: dict[Owner, set[Any]] = {}
        self._mine: dict[Any, None] = {}  # claims taken by this instance, in claim order
        self._unsynced: list[int] = []  # descriptors to fsync, see flush()
        self._unsynced_lock = threading.Lock()
        self.set_sweeps(sweeps, save_sweeps)

    # -- sweeps -----------------------------------------------------------------------------

    def set_sweeps(self, sweeps: Iterable[Any] | None = None, save_sweeps: bool = False) -> None:
        """Change what to iterate on (None: load the saved sweeps); optionally save it."""
        if sweeps is None:
            loaded = self._store.load_sweeps()
            if loaded is None:
                raise ValueError(
                    f"ParamSweeper: no sweeps given and none saved in "
                    f"{self._store.path!r} (pass sweeps=..., with "
                    f"save_sweeps=True to save them)"
                )
            sweeps = loaded
        order = _unique(sweeps)
        with self._lock:
            if save_sweeps:
                self._store.save_sweeps(order)
            self._order, self._state, self._index = order, bytearray(len(order)), None
            self._cursor = 0
            self._store.restart()
            self._sync()

    def get_sweeps(self) -> list[Any]:
        """A copy of what to iterate on, in order."""
        return list(self._order)

    # -- positions and states ----------------------------------------------------------------

    def _position(self, element: Any, hint: Any = None) -> int | None:
        """Where ``element`` stands in the sweeps (None: not there).

        ``hint`` is where a record said it stood: one comparison checks it. Otherwise (no hint,
        or a record written with other sweeps) an index of the sweeps is built, once.
        """
        order = self._order
        if type(hint) is int and 0 <= hint < len(order) and order[hint] == element:
            return hint
        if self._index is None:
            self._index = {e: i for i, e in enumerate(order)}
        return self._index.get(element)

    def _known_position(self, element: Any) -> int | None:
        """The position of ``element``, from its claim when it has one."""
        claim = self._claims.get(element)
        return claim[1] if claim is not None else self._position(element)

    def _set(self, position: int, state: int) -> None:
        self._state[position] = state
        if state == TODO and position < self._cursor:
            self._cursor = position

    def _release(self, element: Any) -> None:
        claim = self._claims.pop(element, None)
        if claim is None:
            return
        owner, position, _ = claim
        held = self._by_owner[owner]
        held.discard(element)
        if not held:
            del self._by_owner[owner]
        self._mine.pop(element, None)
        if position is not None and self._state[position] == CLAIMED:
            self._set(position, TODO)

    def _claim(self, element: Any, owner: Owner, hint: Any, since: float) -> None:
        if element in self._claims:
            self._release(element)
        position = self._position(element, hint)
        if position is None:
            if element in self._done_extra:
                return
        elif self._state[position] == DONE:
            return
        elif self._state[position] == TODO:
            self._state[position] = CLAIMED
        self._claims[element] = (owner, position, since)
        self._by_owner.setdefault(owner, set()).add(element)

    def _mark_done(self, element: Any, hint: Any) -> None:
        position = self._position(element, hint)
        if position is None:
            self._done_extra.add(element)
        else:
            self._state[position] = DONE
        if self._claims and element in self._claims:
            self._release(element)

    def _mark_done_fast(self, records: list[list[Any]]) -> bool:
        """Mark ``[hint, element]`` done records done in one go, when every hint is right and
        nothing is claimed (a resume: millions of records); False changes nothing."""
        if self._claims:
            return False
        hints = list(map(operator.itemgetter(0), records))
        try:
            if (
                not all(
                    map(
                        operator.eq,
                        map(self._order.__getitem__, hints),
                        map(operator.itemgetter(1), records),
                    )
                )
                or min(hints, default=0) < 0
            ):
                return False
        except (IndexError, TypeError):  # a hint out of the sweeps, or none
            return False
        state = self._state
        for hint in hints:
            state[hint] = DONE
        return True

    def _clear_claims(self) -> None:
        """Forget every claim at once."""
        self._claims.clear()
        self._by_owner.clear()
        self._mine = {}
        self._state = self._state.translate(_BACK_TO_TODO[CLAIMED])
        self._cursor = 0

    # -- reading the shared state ----------------------------------------------------------

    def _apply(self, changes: Changes) -> None:
        if changes.done_restarted:  # done file deleted, truncated or replaced: start over
            self._state = self._state.translate(_BACK_TO_TODO[DONE])
            self._done_extra.clear()
            self._cursor = 0
        for records in changes.done:
            if not self._mark_done_fast(records):
                for hint, element in records:
                    self._mark_done(self._store.codec.from_plain(element), hint)
        mine = self._mine
        if changes.claims_restarted:  # inprogress file deleted or compacted
            self._clear_claims()
        for operation, owner, element, hint, since in changes.claims:
            if operation == CLAIM:
                self._claim(element, owner, hint, since or 0.0)  # type: ignore[arg-type]
            else:
                self._release(element)
        if changes.claims_restarted:  # this instance's claims that survived a compaction
            me = current_owner()
            self._mine = {
                element: None for element in mine if self._claims.get(element, (None,))[0] == me
            }

    def _sync(self) -> None:
        """Catch up with the directory (under the lock), reclaim dead owners, compact."""
        changes = self._store.read()
        if changes.changed:
            self._apply(changes)
        if self._store.read_only:
            return
        now = time.monotonic()
        if now - self._last_dead_check >= DEAD_OWNER_CHECK_INTERVAL:
            self._last_dead_check = now
            self._reclaim(self._dead_owners())
        records = self._store.claim_records
        if records > COMPACT_MIN_RECORDS and records > COMPACT_RATIO * len(self._claims):
            self._store.rewrite_claims(self._claim_records())

    def _claim_records(self) -> list[tuple[Any, Owner, int | None, float]]:
        return [
            (element, owner, position, since)
            for element, (owner, position, since) in self._claims.items()
        ]

    def _dead_owners(self) -> list[Owner]:
        me = current_owner()
        return self._store.dead_owners(owner for owner in self._by_owner if owner != me)

    def _reclaim(self, owners: list[Owner]) -> list[Any]:
        """Release every claim of ``owners`` (dead ones), with a log line for each."""
        reclaimed = []
        for owner in owners:
            elements = list(self._by_owner[owner])
            self._store.append_releases(elements)
            for element in elements:
                self._release(element)
            logger.warning(
                "%s: reclaimed %d combination(s) held by %s %s (pid %d)",
                self.name,
                len(elements),
                self._store.dead_owner,
                owner[0],
                owner[1],
            )
            reclaimed.extend(elements)
        return reclaimed

    def reclaim(self, older_than: float | None = None) -> list[Any]:
        """Give back to todo the claims of dead processes of this host and, with
        ``older_than`` (seconds), every claim older than that, whoever holds it (a host that
        went away). Returns the elements reclaimed."""
        with self._lock:
            self._sync()
            reclaimed = self._reclaim(self._dead_owners())
            if older_than is not None:
                limit = time.time() - older_than
                old = [e for e, (_, _, since) in self._claims.items() if since < limit]
                self._store.append_releases(old)
                for element in old:
                    self._release(element)
                if old:
                    logger.warning(
                        "%s: reclaimed %d combination(s) claimed more than %g s ago",
                        self.name,
                        len(old),
                        older_than,
                    )
                reclaimed.extend(old)
            return reclaimed

    def get_claims(self) -> list[tuple[Any, Owner, float, bool]]:
        """Every claim: ``(element, (host, pid, start), time of the claim, dead)``, oldest
        first; ``dead`` when its owner is known to be gone (a dead process of this host for a
        directory, an expired lease for PostgreSQL): the next operation of a writing instance
        reclaims it."""
        with self._lock:
            self._sync()
            dead = set(self._store.dead_owners(self._by_owner))
            return sorted(
                (
                    (e if position is None else self._order[position], owner, since, owner in dead)
                    for e, (owner, position, since) in self._claims.items()
                ),
                key=lambda claim: claim[2],
            )

    def update(self) -> None:
        """Catch up with what other instances wrote (reads only what is new)."""
        with self._lock:
            self._sync()

    def full_update(self) -> None:
        """Reload the whole state from the directory."""
        with self._lock:
            self._store.restart()
            self._sync()

    # -- handing out -------------------------------------------------------------------------

    def _claim_positions(self, positions: Iterable[int], count: int) -> list[Any]:
        me, now = current_owner(), time.time()
        taken = [
            (position, self._order[position]) for position in itertools.islice(positions, count)
        ]
        self._store.append_claims(taken, me, now)
        for position, element in taken:
            self._claim(element, me, position, now)
            self._mine[element] = None
        return [element for _, element in taken]

    def _todo_positions(self) -> Iterator[int]:
        """Todo positions in sweeps order (the cursor moves past those already handed out)."""
        while (position := self._state.find(TODO, self._cursor)) >= 0:
            self._cursor = position + 1  # it is about to be claimed
            yield position
        self._cursor = len(self._state)

    def _take(self, count: int, filtr: Filter | None) -> list[Any]:
        with self._lock:
            self._sync()
            if filtr is None:
                return self._claim_positions(self._todo_positions(), count)
            chosen = (self._position(element) for element in filtr(self._todo_list()))
            return self._claim_positions(
                (p for p in chosen if p is not None and self._state[p] == TODO), count
            )

    def get_next(self, filtr: Filter | None = None) -> Any:
        """Claim and return the next todo element, or None when there is none.

        ``filtr``, if given, receives the list of todo elements in order and returns those
        to consider, in the order to consider them.
        """
        taken = self._take(1, filtr)
        return taken[0] if taken else None

    def get_next_batch(self, num_combs: int, filtr: Filter | None = None) -> list[Any]:
        """Claim and return up to ``num_combs`` todo elements (see :meth:`get_next`)."""
        return self._take(num_combs, filtr)

    def take(self, combination: Any, position: int | None = None) -> str | None:
        """Claim this very element if it is todo (or skipped by this instance).

        ``position``, where the caller knows the element stands in the sweeps, spares building
        an index of the sweeps (one comparison checks it; a wrong one is only slower).
        Returns None when claimed, else why not: ``"done"``, ``"in progress (host H, pid P)"``
        or ``"not in the sweeps"``.
        """
        _check_hashable([combination])
        with self._lock:
            self._sync()
            position = self._position(combination, position)
            if position is None:
                return "not in the sweeps"
            if self._state[position] == DONE:
                return "done"
            claim = self._claims.get(combination)
            if claim is not None:
                return f"in progress (host {claim[0][0]}, pid {claim[0][1]})"
            self._store.check_writable()
            self._state[position] = TODO
            self._claim_positions([position], 1)
            return None

    def __iter__(self) -> Iterator[Any]:
        """Claim elements one by one, as :meth:`get_next`, until none is left."""
        while (element := self.get_next()) is not None:
            yield element

    @contextmanager
    def claim(self, filtr: Filter | None = None) -> Iterator[Any]:
        """Claim the next element (None if none): done on normal exit, cancelled on error."""
        element = self.get_next(filtr)
        try:
            yield element
        except BaseException:
            if element is not None:
                self.cancel(element)
            raise
        if element is not None:
            self.done(element)

    # -- state changes -----------------------------------------------------------------------

    def done_batch(self, combinations: Iterable[Any], *, wait: bool = True) -> None:
        """Mark elements done; returns once their records are on disk (fsync).

        ``wait=False`` returns once the records are written (they survive the death of this
        process, not yet a crash of the machine) and leaves their fsync to :meth:`flush`.
        """
        elements = list(combinations)
        _check_hashable(elements)
        with self._lock:
            self._sync()
            positions = {e: self._known_position(e) for e in elements}
            new = [
                (p, e)
                for e, p in positions.items()
                if (self._state[p] != DONE if p is not None else e not in self._done_extra)
            ]
            held = [e for _, e in new if e in self._claims]
            sync_fd = self._store.append_done(new)
            self._store.append_releases(held)
            for position, element in new:
                self._mark_done(element, position)
        self._sync_or_defer(sync_fd, wait)

    def done(self, combination: Any, *, wait: bool = True) -> None:
        """Mark an element done; returns once its record is on disk (fsync); ``wait=False``:
        see :meth:`done_batch`."""
        self.done_batch([combination], wait=wait)

    def _sync_or_defer(self, sync_fd: int | None, wait: bool) -> None:
        if sync_fd is None:
            return
        if wait:
            _sync_and_close(sync_fd)
            return
        with self._unsynced_lock:
            self._unsynced.append(sync_fd)

    def flush(self) -> None:
        """Put on disk (fsync) every record written with ``wait=False`` so far; callable from
        another thread than the one writing (a background flush)."""
        with self._unsynced_lock:
            sync_fds, self._unsynced = self._unsynced, []
        synced = set()  # one fsync per file covers every earlier write to it
        try:
            while sync_fds:
                fd = sync_fds.pop()
                status = os.fstat(fd)
                if (status.st_dev, status.st_ino) in synced:
                    os.close(fd)
                    continue
                synced.add((status.st_dev, status.st_ino))
                _sync_and_close(fd)
        finally:
            for fd in sync_fds:  # after a failed fsync: close the others, then raise
                os.close(fd)

    def _give_back(self, elements: list[Any], state: int) -> None:
        _check_hashable(elements)
        with self._lock:
            self._sync()
            positions = {e: self._known_position(e) for e in elements}
            held = [e for e in positions if e in self._claims]
            self._store.append_releases(held)
            for element in held:
                self._release(element)
            for position in positions.values():
                if position is not None and self._state[position] != DONE:
                    self._set(position, state)

    def skip_batch(self, combinations: Iterable[Any]) -> None:
        """Mark elements skipped (for this instance only; not persisted)."""
        self._give_back(list(combinations), SKIPPED)

    def skip(self, combination: Any) -> None:
        """Mark an element skipped (for this instance only; not persisted)."""
        self.skip_batch([combination])

    def cancel_batch(self, combinations: Iterable[Any]) -> None:
        """Give elements back to todo (not skipped): they will be handed out again."""
        self._give_back(list(combinations), TODO)

    def cancel(self, combination: Any) -> None:
        """Give an element back to todo (not skipped): it will be handed out again."""
        self.cancel_batch([combination])

    def release_claims(self) -> list[Any]:
        """Cancel every element this instance claimed and has not finished; returns them, in
        the order they were claimed."""
        with self._lock:
            self._sync()
            mine = list(self._mine)
            self._give_back(mine, TODO)
        return mine

    def reset(self, reset_inprogress: bool = False) -> None:
        """Forget skipped states (done stays); with ``reset_inprogress``, release every claim
        of every instance too."""
        with self._lock:
            self._sync()
            self._state = self._state.translate(_BACK_TO_TODO[SKIPPED])
            for _, position, _ in self._claims.values():  # skipped here, claimed elsewhere
                if position is not None and self._state[position] == TODO:
                    self._state[position] = CLAIMED
            if reset_inprogress:
                self._store.rewrite_claims([])
                self._clear_claims()
            self._cursor = 0

    # -- results ---------------------------------------------------------------------------

    def record_result(
        self,
        combination: Any,
        values: Mapping[str, Any],
        outcome: str | None = None,
        duration: float | None = None,
        *,
        wait: bool = True,
    ) -> None:
        """Append the results of a combination (``values``: name -> value) to the ``results``
        file of the directory, with its outcome, duration (seconds), host and time; returns
        once it is on disk (``wait=False``: see :meth:`done_batch`). Values must be of the
        types the text format carries."""
        record = HashableDict(
            combination=combination,
            values=HashableDict(values),
            outcome=outcome,
            duration=duration,
            host=socket.gethostname(),
            time=round(time.time(), 3),
        )
        with self._lock:
            sync_fd = self._store.append_result(record)
        self._sync_or_defer(sync_fd, wait)

    def get_results(self) -> list[HashableDict]:
        """Every recorded result, in the order they were recorded (see
        :meth:`record_result`)."""
        return self._store.read_results()

    # -- looking -----------------------------------------------------------------------------

    def _in_state(self, state: int) -> list[Any]:
        return list(itertools.compress(self._order, self._state.translate(_MASKS[state])))

    def _todo_list(self) -> list[Any]:
        return self._in_state(TODO)

    def stats(self) -> tuple[list[Any], list[Any], list[Any], list[Any], list[Any]]:
        """Atomically ``(sweeps, remaining, skipped, inprogress, done)``, each in order."""
        with self._lock:
            self._sync()
            return (
                list(self._order),
                self._in_state(TODO),
                self._in_state(SKIPPED),
                self._in_state(CLAIMED),
                self._in_state(DONE),
            )

    def get_remaining(self) -> list[Any]:
        """The todo elements, in order (a copy)."""
        return self.stats()[1]

    def get_skipped(self) -> list[Any]:
        """The elements this instance skipped, in order (a copy)."""
        return self.stats()[2]

    def get_inprogress(self) -> list[Any]:
        """The elements claimed by any live instance, in order (a copy)."""
        return self.stats()[3]

    def get_done(self) -> list[Any]:
        """The done elements of the current sweeps, in order (a copy)."""
        return self.stats()[4]

    def __str__(self) -> str:
        sweeps, remaining, skipped, inprogress, done = self.stats()
        return (
            f"{self.name} <{len(sweeps)} total, {len(done)} done, {len(skipped)} skipped, "
            f"{len(inprogress)} in progress, {len(remaining)} remaining>"
        )
