"""A :class:`~execo_engine.store.contract.Store` over a record log: every instance appends
records and replays the others' into a :class:`~execo_engine.store.log.state.SweepState`.

The log is a medium (:class:`RecordLog`): today, a directory of journals
(:mod:`execo_engine.store.directory.store`).
Each operation takes the log's lock, reads only what was appended since its last look, gives
back what dead owners hold (owners are judged only by :meth:`RecordLog.dead_owners`), changes
the state, appends its own records and releases the lock; done records and results are flushed
to disk by :meth:`RecordLog.sync`, after the lock. This layer holds no file and no descriptor:
the medium is the log's.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from execo_engine.codec import Codec
from execo_engine.elements import HashableDict
from execo_engine.log import logger
from execo_engine.store.contract import Choose, Failure, Holder, State
from execo_engine.store.lease import DEAD_OWNER_CHECK_INTERVAL
from execo_engine.store.log.records import CLAIM, SKIP, Changes, Claim
from execo_engine.store.log.state import SweepState
from execo_engine.store.messages import reclaimed_dead, reclaimed_old
from execo_engine.store.owner import Owner, current_owner, new_instance

#: The claims stream is compacted when it holds more records than this many, and more than
#: ``COMPACT_RATIO`` times the live claims and skips.
COMPACT_MIN_RECORDS, COMPACT_RATIO = 1000, 4


class RecordLog(Protocol):
    """Where the records of a sweep are kept (see :mod:`execo_engine.store.log.records`).

    Every method but ``load_sweeps``, ``done_texts``, ``read_results``, ``read_runs`` and
    ``close`` is called inside ``with log.lock:``, appends after a :meth:`read` in the same
    locked section (to the claims stream, a :meth:`read` with ``claims``; ``read(claims=False)``
    reads the done stream alone and leaves what the claims stream gained for the next read;
    ``add_run`` reads and appends the runs file itself).
    ``kind`` is the kind of a hold: :data:`~execo_engine.store.log.records.CLAIM` or
    :data:`~execo_engine.store.log.records.SKIP`; a hold replaces the element's previous one.
    """

    path: str
    name: str
    read_only: bool
    codec: Codec
    dead_owner: str  #: how logs call an owner reported by dead_owners

    @property
    def lock(self) -> contextlib.AbstractContextManager[Any]:
        """Held around every operation: excludes every other instance."""

    def check_writable(self) -> None: ...
    def read(self, claims: bool = True) -> Changes: ...
    def restart(self) -> None: ...
    def rest(self) -> None:
        """Called by a reader after each read: release what it need not keep until the next."""

    def append_done(self, done: Iterable[tuple[int | None, Any]]) -> None: ...
    def append_failures(
        self, failures: Iterable[tuple[int | None, Failure]], reset: bool = False
    ) -> None: ...
    def append_holds(
        self,
        kind: str,
        taken: Iterable[tuple[int | None, Any]],
        owner: Owner,
        since: float,
        number: int | None = None,
    ) -> None: ...
    def append_releases(self, elements: Iterable[Any]) -> None: ...
    @property
    def claim_records(self) -> int:
        """How many records the claims stream holds (compaction is for the caller to decide)."""

    def rewrite_claims(self, claims: Iterable[Claim], skips: Iterable[Claim] = ()) -> None: ...
    def dead_owners(self, owners: Iterable[Owner], reading: bool = False) -> list[Owner]: ...
    def heartbeat_ages(self) -> dict[Owner, float]: ...
    def set_grid_size(self, size: int) -> None: ...
    def grid_size(self) -> int | None: ...
    def done_texts(self) -> list[str]: ...
    def append_result(self, record: HashableDict) -> None: ...
    def sync(self) -> None:
        """Flush what was appended to done, failures and results (called outside the lock:
        flushes of several processes then share one disk flush)."""

    def read_results(self) -> list[Any]: ...
    def add_run(self, record: dict[str, Any]) -> None: ...
    def read_runs(self) -> list[dict[str, Any]]: ...
    def load_sweeps(self) -> list[Any] | None: ...
    def save_sweeps(self, elements: Iterable[Any]) -> None: ...
    def close(self) -> None: ...


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (as it was before, after).

    Replaying or writing a big batch builds millions of small containers (records, pairs):
    each few hundred of them start a collection, and the rarer full ones walk every object of
    the process, a 1M-combination grid included: half of a resume's time. The records build no
    reference cycle, so nothing is left behind; collections resume, as their thresholds say,
    once the batch is done. (A thread that disables the collector meanwhile sees it enabled
    again after this section: the collector is process-wide.)"""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: A batch of more elements than this is recorded with the collector paused
_BIG_BATCH = 1000


def _who(owner: Owner) -> str:
    return f"host {owner[0]}, pid {owner[1]}"


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _operation(
    method: Callable[Concatenate[ReplayStore, _P], _R],
) -> Callable[Concatenate[ReplayStore, _P], _R]:
    """A method of :class:`ReplayStore` that is one operation, under the lock. One that fails
    midway (a full disk or an I/O error in the middle of an append, an exception from a signal
    handler, a corrupt record) may have written records it did not apply, or read records it
    did not apply: the log is read again from the start by the next read, and what a failed
    claim took is given back (:meth:`ReplayStore._give_back_unsure`) at once if the log can be
    read, else by the next operation. The store never holds a claim it does not know about,
    and its state is what the files say.

    A decorator rather than a generator context manager, which costs about a microsecond more
    per operation (each claim and each done); the lock is a ``with`` of its own, so that an
    exception raised anywhere (a signal handler's) never leaves it held."""

    @functools.wraps(method)
    def operation(self: ReplayStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except BaseException:
                self._failed()
                raise

    return operation


class ReplayStore:
    """The :class:`~execo_engine.store.contract.Store` of a :class:`RecordLog`."""

    def __init__(self, log: RecordLog, location: str) -> None:
        self._log = log
        self.name, self.location, self.read_only = log.name, location, log.read_only
        # A read-only log has no lock of its own: still one thread at a time per object.
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if log.read_only else log.lock
        )
        self._last_dead_check = 0.0
        self._instance = new_instance()  # what this object's skips name (see SweepState)
        self._state = SweepState([], log.codec.from_plain, self._instance)
        self._claiming: list[Any] = []  # what the claim being written takes
        # Claimed by operations that failed midway (see _operation): their caller never got
        # them, whether their records were written or not.
        self._unsure: set[Any] = set()

    def _failed(self) -> None:
        """What an operation that raised leaves behind (see :func:`_operation`)."""
        self._unsure.update(self._claiming)
        self._claiming = []
        self._log.restart()
        if self._unsure and not self.read_only:
            with contextlib.suppress(Exception):
                self._catch_up()

    # -- sweeps ------------------------------------------------------------------------------

    @_operation
    def set_sweeps(self, sweeps: list[Any], save: bool) -> None:
        if save:
            self._log.save_sweeps(sweeps)
        if not self.read_only:
            self._log.set_grid_size(len(sweeps))
        own_skips = self._state.own_skips  # the skips of this instance stay its own
        self._state = SweepState(sweeps, self._log.codec.from_plain, self._instance)
        self._state.own_skips = own_skips
        self._log.restart()
        self._catch_up(reading=True)

    def load_sweeps(self) -> list[Any] | None:
        return self._log.load_sweeps()

    @_operation
    def grid_size(self) -> int | None:
        """How many elements the last writer's sweeps had (None: unknown)."""
        return self._log.grid_size()

    # -- catching up -------------------------------------------------------------------------

    def _catch_up(self, claims: bool = True, reading: bool = False) -> None:
        """Replay what others appended (under the lock), give back dead owners', compact;
        without ``claims``, only what they did and failed (the claims are read next time);
        ``reading``: for an operation that only reads (see
        :mod:`execo_engine.store.messages`)."""
        try:
            self._replay(claims)
        except BaseException:
            self._log.restart()  # what was read and not applied is read again
            raise
        if self.read_only or not claims:
            return
        if self._unsure:
            try:
                self._give_back_unsure()
            except OSError:  # a full disk, say: the next operation tries again
                self._log.restart()
        if time.monotonic() - self._last_dead_check >= DEAD_OWNER_CHECK_INTERVAL:
            self._reclaim_dead(reading)
        records = self._log.claim_records
        live = len(self._state.claims.by_element) + len(self._state.skips.by_element)
        if records > COMPACT_MIN_RECORDS and records > COMPACT_RATIO * live:
            self._log.rewrite_claims(self._state.claims.records(), self._state.skips.records())

    def _replay(self, claims: bool) -> None:
        """Read what was appended since the last read and apply it to the state."""
        changes, state = self._log.read(claims), self._state
        if not changes.changed:
            if claims:  # nobody gave back what this instance finished meanwhile
                state.finished.clear()
            lost = []
        else:
            with _collector_paused():
                lost = state.apply(changes, current_owner, claims)
        if self.read_only:
            self._log.rest()
        if lost:
            logger.warning(
                "%s: lost the claim on %d combination(s), given back by another instance "
                "(this process was taken for dead, or claims were reset), e.g. %r: they may "
                "run twice; done() on them still counts",
                self.name,
                len(lost),
                lost[0],
            )

    def _give_back_unsure(self) -> None:
        """Give back what claims that failed midway took and the log shows this process
        holding (their caller never got them: nobody would finish them, and this live
        process would hold them until it exits); called with the log read to its end."""
        me, claims = current_owner(), self._state.claims.by_element
        held = [e for e in self._unsure if claims.get(e, (None,))[0] == me]
        if held:
            self._release(held)
            logger.warning(
                "%s: gave back %d combination(s) claimed by an operation of this process "
                "that failed midway (its caller never got them)",
                self.name,
                len(held),
            )
        self._unsure = set()

    def _dead_owners(self, reading: bool = False) -> list[Owner]:
        me = current_owner()
        others = (owner for owner in self._state.owners() if owner != me)
        return self._log.dead_owners(others, reading)

    def _reclaim_dead(self, reading: bool = False) -> list[Any]:
        """Look for dead owners now (the periodic check restarts from here) and give back
        what they held (see :meth:`_reclaim`); returns it."""
        self._last_dead_check = time.monotonic()
        return self._reclaim(self._dead_owners(reading), reading)

    def _release(self, elements: list[Any]) -> None:
        """Release the claims and skips of ``elements``."""
        self._log.append_releases(elements)
        for element in elements:
            self._state.release(element)

    def _reclaim(self, owners: list[Owner], reading: bool = False) -> list[Any]:
        """Give back every claim and skip of ``owners`` (dead ones), with a log line each (at
        DETAIL when ``reading``)."""
        reclaimed = []
        state = self._state
        for owner in owners:
            claimed = list(state.claims.by_owner.get(owner, ()))
            skipped = list(state.skips.by_owner.get(owner, ()))
            self._release(claimed + skipped)
            reclaimed_dead(
                self.name,
                len(claimed) + len(skipped),
                self._log.dead_owner,
                owner[0],
                owner[1],
                len(skipped),
                reading,
            )
            reclaimed.extend(claimed + skipped)
        return reclaimed

    @_operation
    def refresh(self, full: bool = False) -> None:
        if full:
            self._log.restart()
        self._catch_up(reading=True)

    @_operation
    def reclaim(self, older_than: float | None = None) -> list[Any]:
        self._catch_up()
        reclaimed = self._reclaim_dead()
        if older_than is not None:
            limit = time.time() - older_than
            claims = self._state.claims
            old = [e for e, hold in claims.by_element.items() if hold[2] < limit]
            self._release(old)
            if old:
                reclaimed_old(self.name, len(old), older_than)
            reclaimed.extend(old)
        return reclaimed

    # -- handing out -------------------------------------------------------------------------

    def _claim_positions(self, positions: Iterable[int], count: int) -> list[Any]:
        me, now, order = current_owner(), time.time(), self._state.order
        taken = [(position, order[position]) for position in itertools.islice(positions, count)]
        self._claiming = [element for _, element in taken]  # unsure until applied
        self._log.append_holds(CLAIM, taken, me, now)
        self._state.claim(taken, me, now)
        self._claiming = []
        return [element for _, element in taken]

    @_operation
    def claim(self, count: int, choose: Choose | None = None) -> list[Any]:
        """Claim up to ``count`` todo elements; when fewer are todo, the dead owners are
        looked for at once (not after the periodic interval) and what they held is claimed
        too: a worker that died a moment ago never makes a claim come back short."""
        self._catch_up()
        self._log.check_writable()
        taken = self._claim_todo(count, choose)
        if len(taken) < count and self._reclaim_dead():
            taken += self._claim_todo(count - len(taken), choose)
        return taken

    def _claim_todo(self, count: int, choose: Choose | None) -> list[Any]:
        state = self._state
        if choose is None:
            return self._claim_positions(state.todo_positions(), count)
        chosen = (state.position(element) for element in choose(state.in_state(State.TODO)))
        return self._claim_positions(
            (p for p in chosen if p is not None and state.state_of(p) == State.TODO), count
        )

    def take(self, element: Any, position: int | None = None) -> str | None:
        return self.take_many([(element, position)])[0]

    @_operation
    def take_many(self, wanted: list[tuple[Any, int | None]]) -> list[str | None]:
        self._catch_up()
        self._reclaim_holders(element for element, _ in wanted)
        reasons: list[str | None] = []
        chosen: dict[int, None] = {}  # positions to claim, in order
        for element, hint in wanted:
            reason, position = self._why_not(element, hint)
            if reason is None and position is not None:
                if position in chosen:  # wanted twice
                    reason = f"in progress ({_who(current_owner())})"
                chosen[position] = None
            reasons.append(reason)
        if chosen:
            self._log.check_writable()
            self._claim_positions(chosen, len(chosen))  # replaces this process's skips
        return reasons

    def _reclaim_holders(self, elements: Iterable[Any]) -> None:
        """Give back what dead owners among those holding ``elements`` (claimed or skipped by
        another owner) held, without waiting for the next periodic check: an element whose
        owner just died (an xdist worker that crashed, whose items go to another) is free."""
        state, me = self._state, current_owner()
        holders = {
            hold[0]
            for element in elements
            for hold in (state.claims.by_element.get(element), state.skips.by_element.get(element))
            if hold is not None and hold[0] != me
        }
        if holders:
            self._reclaim(self._log.dead_owners(holders))

    def _why_not(self, element: Any, hint: int | None) -> tuple[str | None, int | None]:
        """Why ``element`` cannot be taken (None: it can), and its position."""
        state = self._state
        position = state.position(element, hint)
        if position is None:
            return "not in the sweeps", None
        if state.state_of(position) == State.DONE:
            return "done", position
        if state.state_of(position) == State.FAILED:
            return "failed", position
        claim = state.claims.by_element.get(element)
        if claim is not None:
            return f"in progress ({_who(claim[0])})", position
        skip = state.skips.by_element.get(element)
        if skip is not None and skip[3] is None and skip[0] != current_owner():
            return f"skipped ({_who(skip[0])})", position  # a skip of format 2 or 3
        return None, position  # todo, or skipped: by this instance, or for another one only

    # -- state changes -------------------------------------------------------------------------

    @_operation
    def done(self, elements: list[Any]) -> None:
        self._catch_up(claims=False)  # others' claims change nothing here
        if len(elements) > _BIG_BATCH:
            with _collector_paused():
                self._done(elements)
        else:
            self._done(elements)

    def _done(self, elements: list[Any]) -> None:
        """Record ``elements`` done (see :meth:`done`), under the lock."""
        state = self._state
        if len(elements) == 1:  # done(): the position of its claim, as a rule
            found = [state.known_position(elements[0])]
        else:
            found = state.known_positions(elements)
        if None in found or len(set(found)) != len(found):  # some twice, or not in sweeps
            positions = dict(zip(elements, found, strict=True))  # the first of equal ones
            pairs: Iterable[tuple[int | None, Any]] = ((p, e) for e, p in positions.items())
        else:  # distinct elements of the sweeps: no hashing
            pairs = zip(found, elements, strict=True)
        new = [(p, e) for p, e in pairs if not state.is_done(e, p)]
        # A done record releases the element's hold for every reader: no release record.
        self._log.append_done(new)
        state.done(new)

    def sync(self) -> None:
        self._log.sync()

    @_operation
    def give_back(self, elements: list[Any], skip: bool = False) -> None:
        self._catch_up()
        self._log.check_writable()
        state = self._state
        positions = {e: state.known_position(e) for e in elements}
        skipped = [
            (p, e)
            for e, p in positions.items()
            if skip and p is not None and not state.is_done(e, p)
        ]
        skipping = {e for _, e in skipped}
        self._release([e for e in positions if state.is_held(e) and e not in skipping])
        if skip:
            owner, number = self._instance
            now = time.time()
            self._log.append_holds(SKIP, skipped, owner, now, number)  # replaces claims
            state.skip(skipped, now)
            return
        state.unskip(positions)
        for element, position in positions.items():
            if position is not None and state.is_done(element, position):
                state.undo_done(position)

    @_operation
    def fail(self, elements: list[Any], error: str, max_attempts: int | None = None) -> list[Any]:
        self._catch_up()
        self._log.check_writable()
        state, me, now = self._state, current_owner(), round(time.time(), 3)
        counted: dict[Any, tuple[int | None, Failure]] = {}
        for element in elements:
            position = state.known_position(element)
            if element in counted or state.is_done(element, position):
                continue
            previous = state.failures.get(element)
            attempts = 1 + (previous.attempts if previous is not None else 0)
            failed = max_attempts is not None and attempts >= max_attempts
            counted[element] = (position, Failure(element, attempts, error, now, failed))
        self._release([e for e in counted if state.is_mine(state.hold_of(e), me)])
        state.unskip(counted)
        self._log.append_failures(counted.values())
        for position, failure in counted.values():
            state.count_failure(position, failure)
        return [element for element, (_, failure) in counted.items() if failure.failed]

    @_operation
    def release_mine(self, error: str | None = None, max_attempts: int | None = None) -> list[Any]:
        self._catch_up()  # what another instance marked done meanwhile is no longer held
        mine = list(self._state.mine)
        if error is None:
            self.give_back(mine)
        else:
            self.fail(mine, error, max_attempts)
        return mine

    @_operation
    def reset(self, claims: bool = False, failed: bool = False) -> None:
        self._catch_up()
        state, me = self._state, current_owner()
        skips = state.skips.by_element
        mine = [e for e, hold in skips.items() if hold[3] is not None and state.is_mine(hold, me)]
        state.unskip(list(state.own_skips))
        if mine:
            self._release(mine)
        if claims:
            self._log.rewrite_claims([])
            state.forget_holds()
        if failed:
            self._log.append_failures([], reset=True)
            state.forget_failures()

    # -- results -------------------------------------------------------------------------------

    @_operation
    def append_result(self, record: HashableDict) -> None:
        self._log.append_result(record)

    def read_results(self) -> list[Any]:
        return self._log.read_results()

    def add_run(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._log.add_run(record)

    def read_runs(self) -> list[dict[str, Any]]:
        return self._log.read_runs()

    # -- looking -------------------------------------------------------------------------------

    @_operation
    def states(self) -> dict[State, list[Any]]:
        self._catch_up(reading=True)
        return self._state.states()

    @_operation
    def failures(self) -> list[Failure]:
        self._catch_up(reading=True)
        return self._state.failures_in_order()

    @_operation
    def holders(self) -> list[Holder]:
        self._catch_up(reading=True)
        dead = self._log.dead_owners(self._state.owners(), reading=True)
        return self._state.holders(dead)

    def done_texts(self) -> frozenset[str]:
        return frozenset(self._log.done_texts())

    def heartbeat_ages(self) -> dict[Owner, float]:
        return self._log.heartbeat_ages()

    @_operation
    def close(self) -> None:
        self._log.close()
