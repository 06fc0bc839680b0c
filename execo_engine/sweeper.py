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

import heapq
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from execo_engine.codec import Codec
from execo_engine.dirstore import CLAIM, Changes, DirectoryStore
from execo_engine.log import logger
from execo_engine.owner import Owner, current_owner, is_dead

Filter = Callable[[list[Any]], Iterable[Any]]

TODO, DONE, SKIPPED = 0, 1, 2
#: Dead owners are looked for at most this often (seconds), on the next operation.
DEAD_OWNER_CHECK_INTERVAL = 0.1
#: The inprogress journal is compacted when it holds more records than this many, and more
#: than ``COMPACT_RATIO`` times the live claims.
COMPACT_MIN_RECORDS, COMPACT_RATIO = 1000, 4


def done_snapshot(persistence_dir: str | os.PathLike[str]) -> frozenset[str]:
    """What is done in ``persistence_dir`` at this moment, as canonical texts (see
    :func:`canonical_text`): a view that stays the same while others keep working, and that
    can be sent to other processes."""
    store = DirectoryStore(persistence_dir, Codec())
    with store.lock:
        return frozenset(store.done_texts())


def canonical_text(element: Any) -> str:
    """The canonical text of ``element``, as recorded on disk (text codec)."""
    return Codec().encode(element)


def _check_hashable(elements: Iterable[Any]) -> None:
    for element in elements:
        try:
            hash(element)
        except TypeError as error:
            raise TypeError(f"ParamSweeper: element {element!r} is unhashable ({error}); "
                            f"use hashable values (tuples, not lists)") from None


class ParamSweeper:
    """Persistent iterable container of elements (parameter combinations) to process.

    ``persistence_dir`` is created if needed (``NotADirectoryError`` if it is a file).
    ``sweeps`` is what to iterate on, in that order (``get_next`` follows it); None loads the
    sweeps saved in the directory (``ValueError`` if there are none). ``save_sweeps=True``
    writes them to the directory. ``name`` appears in logs and ``str()`` (default: the
    directory's name). ``allow_pickle=True`` lets elements hold values the text format cannot
    carry, pickled (only for directories whose writers you trust).

    Done and in-progress states persist and are shared; skipped does not. A claim whose process
    died (on this host) goes back to todo at the next operation of any instance. Deleting the
    ``inprogress`` file releases every claim, even while instances run. Elements done but not
    in the current sweeps are kept on disk and not reported. Returned collections are copies,
    in sweeps order.

    The old argument order ``ParamSweeper(sweeps, persistence_dir)`` still works, with a
    ``DeprecationWarning``.
    """

    def __init__(self, persistence_dir: str | os.PathLike[str], sweeps: Iterable[Any] | None = None,
                 save_sweeps: bool = False, name: str | None = None, *,
                 allow_pickle: bool = False) -> None:
        if not isinstance(persistence_dir, (str, os.PathLike)) \
                and isinstance(sweeps, (str, os.PathLike)):
            warnings.warn("ParamSweeper(sweeps, persistence_dir) is deprecated: use "
                          "ParamSweeper(persistence_dir, sweeps)", DeprecationWarning,
                          stacklevel=2)
            persistence_dir, sweeps = sweeps, persistence_dir
        self._store = DirectoryStore(persistence_dir, Codec(allow_pickle))
        self.name = name or os.path.basename(os.path.normpath(self._store.path))
        self._lock = self._store.lock
        self._last_dead_check = 0.0
        self._done_extra: set[Any] = set()  # done elements that are not in the sweeps
        self._claims: dict[Any, Owner] = {}  # element -> owner, for every live claim
        # owner -> {element: its position in the claimer's sweeps (a hint), or None}
        self._by_owner: dict[Owner, dict[Any, int | None]] = {}
        self._mine: dict[Any, None] = {}  # claims taken by this instance, in claim order
        self.set_sweeps(sweeps, save_sweeps)

    # -- sweeps -----------------------------------------------------------------------------

    def set_sweeps(self, sweeps: Iterable[Any] | None = None, save_sweeps: bool = False) -> None:
        """Change what to iterate on (None: load the saved sweeps); optionally save it."""
        if sweeps is None:
            loaded = self._store.load_sweeps()
            if loaded is None:
                raise ValueError(f"ParamSweeper: no sweeps given and none saved in "
                                 f"{self._store.path!r} (pass sweeps=..., with "
                                 f"save_sweeps=True to save them)")
            sweeps = loaded
        elements = list(sweeps)
        try:
            state = dict.fromkeys(elements, TODO)
        except TypeError:
            _check_hashable(elements)
            raise
        order = list(state) if len(state) != len(elements) else elements
        with self._lock:
            if save_sweeps:
                self._store.save_sweeps(order)
            self._order, self._state = order, state
            self._store.restart()
            self._sync()

    def get_sweeps(self) -> list[Any]:
        """A copy of what to iterate on, in order."""
        return list(self._order)

    # -- reading the shared state ----------------------------------------------------------

    def _rewind(self) -> None:
        self._cursor = 0
        self._requeued: list[int] = []

    def _requeue(self, element: Any, position: int | None) -> None:
        """``element`` may be todo again: make sure the scan of ``get_next`` sees it.

        ``position`` is where the element was believed to be in the sweeps; when it is not
        there (unknown, or claimed with other sweeps), the scan starts over instead.
        """
        if position is None or position >= len(self._order) or self._order[position] != element:
            self._rewind()
        elif position < self._cursor:
            heapq.heappush(self._requeued, position)

    def _release(self, element: Any) -> None:
        owner = self._claims.pop(element, None)
        if owner is None:
            return
        held = self._by_owner[owner]
        position = held.pop(element)
        if not held:
            del self._by_owner[owner]
        self._mine.pop(element, None)
        if self._state.get(element) == TODO:
            self._requeue(element, position)

    def _claim(self, element: Any, owner: Owner, position: int | None) -> None:
        if element in self._claims:
            self._release(element)
        self._claims[element] = owner
        self._by_owner.setdefault(owner, {})[element] = position

    def _mark_done(self, element: Any) -> None:
        if element in self._state:
            self._state[element] = DONE
        else:
            self._done_extra.add(element)
        self._release(element)

    def _clear_claims(self) -> None:
        """Forget every claim at once (the scan starts over instead of requeueing each)."""
        self._claims.clear()
        self._by_owner.clear()
        self._mine = {}
        self._rewind()

    def _is_done(self, element: Any) -> bool:
        return self._state.get(element) == DONE or element in self._done_extra

    def _apply(self, changes: Changes) -> None:
        if changes.done_restarted:  # done file deleted, truncated or replaced: start over
            for element, state in self._state.items():
                if state == DONE:
                    self._state[element] = TODO
            self._done_extra.clear()
            self._rewind()
        state, claims = self._state, self._claims
        for element in changes.done:  # the hot loop of a resume: _mark_done, one lookup
            size = len(state)
            state[element] = DONE
            if len(state) != size:  # not in the sweeps
                del state[element]
                self._done_extra.add(element)
            if claims and element in claims:
                self._release(element)
        mine = self._mine
        if changes.claims_restarted:  # inprogress file deleted or compacted
            self._clear_claims()
        for operation, owner, element, position in changes.claims:
            if operation != CLAIM:
                self._release(element)
            elif not self._is_done(element):
                self._claim(element, owner, position)  # type: ignore[arg-type]
        if changes.claims_restarted:  # this instance's claims that survived a compaction
            me = current_owner()
            self._mine = {element: None for element in mine if self._claims.get(element) == me}

    def _sync(self) -> None:
        """Catch up with the directory (under the lock), reclaim dead owners, compact."""
        changes = self._store.read()
        if changes.changed:
            self._apply(changes)
        now = time.monotonic()
        if now - self._last_dead_check >= DEAD_OWNER_CHECK_INTERVAL:
            self._last_dead_check = now
            self._reclaim_dead_owners()
        records = self._store.claim_records
        if records > COMPACT_MIN_RECORDS and records > COMPACT_RATIO * len(self._claims):
            self._store.rewrite_claims(self._claim_records())

    def _claim_records(self) -> list[tuple[Any, Owner, int | None]]:
        return [(element, owner, position) for owner, held in self._by_owner.items()
                for element, position in held.items()]

    def _reclaim_dead_owners(self) -> None:
        me = current_owner()
        for owner in [owner for owner in self._by_owner if owner != me and is_dead(owner)]:
            elements = list(self._by_owner[owner])
            self._store.append_releases(elements)
            for element in elements:
                self._release(element)
            logger.warning("%s: reclaimed %d combination(s) held by dead process %s (pid %d)",
                           self.name, len(elements), owner[0], owner[1])

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

    def _is_todo(self, element: Any) -> bool:
        return self._state.get(element) == TODO and element not in self._claims

    def _todo_in_order(self) -> Iterator[tuple[int, Any]]:
        """``(position, element)`` of todo elements in sweeps order, from the requeued ones
        and the scan cursor."""
        order, n, heap, state, claims = (self._order, len(self._order), self._requeued,
                                         self._state, self._claims)
        while True:
            while heap and not self._is_todo(order[heap[0]]):
                heapq.heappop(heap)
            cursor = self._cursor
            while cursor < n:  # the hot loop of a resume: inlined _is_todo
                element = order[cursor]
                if state[element] == TODO and not (claims and element in claims):
                    break
                cursor += 1
            self._cursor = cursor
            position = min(heap[0], cursor) if heap else cursor
            if position >= n:
                return
            yield position, order[position]

    def _take(self, count: int, filtr: Filter | None) -> list[Any]:
        with self._lock:
            self._sync()
            if filtr is None:
                candidates: Iterable[tuple[int | None, Any]] = self._todo_in_order()
            else:
                candidates = ((None, e) for e in filtr(self._todo_list()) if self._is_todo(e))
            taken: list[tuple[int | None, Any]] = []
            me = current_owner()
            for position, element in candidates:
                if len(taken) == count:
                    break
                self._claim(element, me, position)  # claimed now: the scan moves past it
                taken.append((position, element))
            try:
                self._store.append_claims(taken, me)
            except BaseException:
                for _, element in taken:
                    self._release(element)
                raise
            elements = [element for _, element in taken]
            self._mine.update(dict.fromkeys(elements))
            return elements

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

    def take(self, combination: Any) -> str | None:
        """Claim this very element if it is todo (or skipped by this instance).

        Returns None when claimed, else why not: ``"done"``, ``"in progress (host H, pid P)"``
        or ``"not in the sweeps"``.
        """
        _check_hashable([combination])
        with self._lock:
            self._sync()
            state = self._state.get(combination)
            if state is None:
                return "not in the sweeps"
            if state == DONE:
                return "done"
            owner = self._claims.get(combination)
            if owner is not None:
                return f"in progress (host {owner[0]}, pid {owner[1]})"
            self._state[combination] = TODO
            me = current_owner()
            self._store.append_claims([(None, combination)], me)
            self._claim(combination, me, None)
            self._mine[combination] = None
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

    def done_batch(self, combinations: Iterable[Any]) -> None:
        """Mark elements done; returns once their records are on disk (fsync)."""
        elements = list(combinations)
        _check_hashable(elements)
        with self._lock:
            self._sync()
            new = [e for e in dict.fromkeys(elements) if not self._is_done(e)]
            held = [e for e in new if e in self._claims]
            sync_fd = self._store.append_done(new)
            self._store.append_releases(held)
            for element in new:
                self._mark_done(element)
        if sync_fd is not None:
            try:
                os.fsync(sync_fd)
            finally:
                os.close(sync_fd)

    def done(self, combination: Any) -> None:
        """Mark an element done; returns once its record is on disk (fsync)."""
        self.done_batch([combination])

    def _give_back(self, elements: list[Any], state: int) -> None:
        _check_hashable(elements)
        with self._lock:
            self._sync()
            held = [e for e in dict.fromkeys(elements) if e in self._claims]
            self._store.append_releases(held)
            for element in elements:
                if self._state.get(element) in (TODO, SKIPPED):
                    self._state[element] = state
            for element in held:
                self._release(element)
            if state == TODO:  # skipped ones are todo again
                self._rewind()

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
            for element, state in self._state.items():
                if state == SKIPPED:
                    self._state[element] = TODO
            if reset_inprogress:
                self._store.rewrite_claims([])
                self._clear_claims()
            self._rewind()

    # -- looking -----------------------------------------------------------------------------

    def _todo_list(self) -> list[Any]:
        return [e for e, state in self._state.items() if state == TODO and e not in self._claims]

    def stats(self) -> tuple[list[Any], list[Any], list[Any], list[Any], list[Any]]:
        """Atomically ``(sweeps, remaining, skipped, inprogress, done)``, each in order."""
        with self._lock:
            self._sync()
            items = self._state.items()
            return (list(self._order), self._todo_list(),
                    [e for e, state in items if state == SKIPPED],
                    [e for e, state in items if state == TODO and e in self._claims],
                    [e for e, state in items if state == DONE])

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
        return (f"{self.name} <{len(sweeps)} total, {len(done)} done, {len(skipped)} skipped, "
                f"{len(inprogress)} in progress, {len(remaining)} remaining>")
