"""The state machine of a record-log store: replays records into todo / in progress / done /
skipped / failed for one instance's sweeps. No I/O: records come in as
:class:`~execo_engine.store.log.records.Changes`, and the caller writes its own records before
applying them here.

Each position of the sweeps has one state byte (:class:`~execo_engine.store.contract.State`).
Done wins over everything (a claim on a done element changes nothing, except for an element
this instance gave back after it was done: see :meth:`SweepState.undo_done`); failed wins over
holds (they are still kept, and count again once the failures are reset). An element has at
most one hold, a claim or a skip: a new one replaces it. Holds are kept per element with their
owner, the position they were written with, when they were taken and, for a skip, the number
of the instance that skipped. Failed attempts are kept per element
(:class:`~execo_engine.store.contract.Failure`), whatever its state.

Skips are the instance's (see :class:`~execo_engine.store.owner.Instance`): an element is
SKIPPED for the instance whose skip record holds it (any process it was forked into wrote
it), or that this very process skipped (:attr:`SweepState.own_skips`: kept while another
instance's hold replaced the record, so that two instances skipping the same element never
hand it to each other in turn; forgotten when this instance takes it, finishes it, cancels it
or resets), and TODO for every other instance; a skip record of format 2 or 3 (no instance
number) is SKIPPED for every instance, as it was then.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from execo_engine.store.contract import Failure, Holder, State
from execo_engine.store.log.records import CLAIM, FAIL, RELEASE, Changes, Claim
from execo_engine.store.owner import Instance, Owner

TODO, DONE, SKIPPED, CLAIMED, FAILED = (
    State.TODO,
    State.DONE,
    State.SKIPPED,
    State.CLAIMED,
    State.FAILED,
)
_STATES = tuple(State)  #: the state of each value of a position's byte (no enum call)
#: Decodes a plain done record element (see :meth:`Codec.from_plain`)
FromPlain = Callable[[Any], Any]


def _mask(state: State) -> bytes:
    """The ``bytes.translate`` table giving 1 where a position is in ``state``, else 0."""
    return bytes(int(i == state) for i in range(256))


def _to_todo(state: State) -> bytes:
    """The ``bytes.translate`` table turning ``state`` into todo."""
    return bytes(TODO if i == state else i for i in range(256))


_first = operator.itemgetter(0)
_MASKS = {state: _mask(state) for state in State}
_TO_TODO = {state: _to_todo(state) for state in State}


#: A hold: (owner, position, since, number of the skipping instance or None)
Hold = tuple[Owner, int | None, float, int | None]


class Holds:
    """The live holds of one kind (claims, or skips): element -> :data:`Hold`."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.by_element: dict[Any, Hold] = {}
        self.by_owner: dict[Owner, set[Any]] = {}

    def add(
        self,
        element: Any,
        owner: Owner,
        position: int | None,
        since: float,
        number: int | None = None,
    ) -> None:
        self.remove(element)
        self.by_element[element] = (owner, position, since, number)
        self.by_owner.setdefault(owner, set()).add(element)

    def remove(self, element: Any) -> Hold | None:
        """Forget the hold on ``element``; returns it (None: it was not held)."""
        hold = self.by_element.pop(element, None)
        if hold is not None:
            held = self.by_owner[hold[0]]
            held.discard(element)
            if not held:
                del self.by_owner[hold[0]]
        return hold

    def clear(self) -> None:
        self.by_element.clear()
        self.by_owner.clear()

    def records(self) -> list[Claim]:
        """The holds as records to rewrite a stream with."""
        return [(e, *hold) for e, hold in self.by_element.items()]


class SweepState:
    """The states of the elements of ``sweeps`` (distinct, in order) for one ``instance``."""

    def __init__(self, sweeps: list[Any], from_plain: FromPlain, instance: Instance) -> None:
        self.order = sweeps
        self.instance = instance
        #: the elements this process skipped for this instance (see the module docstring)
        self.own_skips: set[Any] = set()
        self._from_plain = from_plain
        self._state = bytearray(len(sweeps))
        self._index: dict[Any, int] | None = None
        #: ``id()`` of each element of the sweeps -> its position: finds the very objects of
        #: the sweeps (what ``get_next`` and ``sweep()`` give) in a batch without hashing the
        #: whole grid; valid as long as ``order`` (which keeps them alive) is not changed
        self._identities: dict[int, int] | None = None
        self._cursor = 0  #: no todo position before it
        self.claims, self.skips = Holds(CLAIMED), Holds(SKIPPED)
        self.done_extra: set[Any] = set()  #: done elements that are not in the sweeps
        self.undone: set[int] = set()  #: done positions given back to todo here only
        self.mine: dict[Any, None] = {}  #: claims this instance took, in claim order
        #: claims this instance finished (done) while only the done stream was read since
        self.finished: dict[Any, None] = {}
        self.failures: dict[Any, Failure] = {}  #: element -> its failed attempts

    # -- positions -------------------------------------------------------------------------

    def position(self, element: Any, hint: Any = None) -> int | None:
        """Where ``element`` stands in the sweeps (None: not there).

        ``hint`` is where a record said it stood: one comparison checks it. Otherwise (no hint,
        or a record written with other sweeps) an index of the sweeps is built, once.
        """
        if (hinted := self._hinted(element, hint)) is not None:
            return hinted
        if self._index is None:
            self._index = {e: i for i, e in enumerate(self.order)}
        return self._index.get(element)

    def _hinted(self, value: Any, hint: Any) -> int | None:
        """``hint`` if the sweeps hold an element equal to ``value`` there, else None."""
        if type(hint) is int and 0 <= hint < len(self.order) and self.order[hint] == value:
            return hint
        return None

    def known_position(self, element: Any) -> int | None:
        """The position of ``element``, from its claim when it has one."""
        claim = self.claims.by_element.get(element)
        return claim[1] if claim is not None else self.position(element)

    def known_positions(self, elements: list[Any]) -> list[int | None]:
        """:meth:`known_position` of each of ``elements``; when nothing is claimed and each is
        the very object of the sweeps (a batch from ``sweep()``), found in one pass, without
        hashing any (an element mutated after it was handed to the sweeper, which the codec
        forbids too, is then taken for the combination it was)."""
        if not self.claims.by_element:
            if self._identities is None:
                self._identities = {id(e): i for i, e in enumerate(self.order)}
            found = list(map(self._identities.get, map(id, elements)))
            if None not in found and all(
                map(operator.is_, map(self.order.__getitem__, found), elements)  # type: ignore[arg-type]
            ):
                return found
        return [self.known_position(element) for element in elements]

    def state_of(self, position: int) -> State:
        return _STATES[self._state[position]]

    def _settle(self, position: int | None, element: Any) -> None:
        """Recompute the state of a position that is not done, from its failures and holds."""
        if position is None or self._state[position] == DONE:
            return
        failure = self.failures.get(element)
        if failure is not None and failure.failed:
            self._state[position] = FAILED
        elif element in self.claims.by_element:
            self._state[position] = CLAIMED
        elif self.skipped_here(element):
            self._state[position] = SKIPPED
        else:
            self._state[position] = TODO
            self._cursor = min(self._cursor, position)

    def skipped_here(self, element: Any) -> bool:
        """Whether ``element`` is skipped for this instance (see the module docstring)."""
        if element in self.own_skips:
            return True
        hold = self.skips.by_element.get(element)
        return hold is not None and (hold[3] is None or self._of_this_instance(hold))

    def is_mine(self, hold: Hold | None, me: Owner) -> bool:
        """Whether ``hold`` is a claim of ``me`` (this process) or a skip of this instance."""
        if hold is None:
            return False
        if hold[3] is None:
            return hold[0] == me
        return self._of_this_instance(hold)

    def _of_this_instance(self, hold: Hold) -> bool:
        """Whether ``hold`` is a skip that this instance recorded."""
        return (hold[0], hold[3]) == (self.instance.owner, self.instance.number)

    # -- replaying records -------------------------------------------------------------------

    def _hold(
        self,
        kind: str,
        element: Any,
        owner: Owner,
        hint: Any,
        since: float,
        number: int | None = None,
    ) -> None:
        """Replay a claim (``kind`` CLAIM) or a skip (SKIP, of instance ``number``): it
        replaces any previous hold."""
        position = self.position(element, hint)
        if position is None:
            if element in self.done_extra:
                return
        elif self._state[position] == DONE:
            return
        else:
            element = self.order[position]  # the same, its hash already computed
        self.claims.remove(element)
        self.skips.remove(element)
        if kind == CLAIM:
            self.claims.add(element, owner, position, since)
        else:
            self.skips.add(element, owner, position, since, number)
        self._settle(position, element)

    def release(self, element: Any, mine: bool = True) -> None:
        """Forget the hold (claim or skip) on ``element`` (and, with ``mine``, that this
        instance took it)."""
        hold = self.claims.remove(element) or self.skips.remove(element)
        if hold is None:
            return
        if mine:
            self.mine.pop(element, None)
        self._settle(hold[1], element)

    def hold_of(self, element: Any) -> Hold | None:
        """The claim or skip holding ``element`` (None: none)."""
        return self.claims.by_element.get(element) or self.skips.by_element.get(element)

    def is_held(self, element: Any) -> bool:
        """Whether ``element`` is claimed or skipped."""
        return element in self.claims.by_element or element in self.skips.by_element

    def mark_done(self, element: Any, hint: Any) -> None:
        """Record that ``element`` is done, which ends its hold (no release record is written
        for a done element); a position given back here stays todo here."""
        position = self.position(element, hint)
        if position is None:
            self.done_extra.add(element)
        elif position not in self.undone:
            self._state[position] = DONE
        if self.is_held(element):
            self.release(element)

    def _mark_done_fast(self, records: list[Any]) -> bool:
        """Mark records done in one go when each one is ``[position, element]`` with this
        state's own element at that position and nothing is held nor given back (a resume:
        millions of records); False changes nothing. ``records`` are any decoded JSON values,
        unchecked: a record equal to one of the sweeps' elements at its position is a done
        record, and only that element (never the decoded value) is used."""
        if self.claims.by_element or self.skips.by_element or self.undone:
            return False
        if not (set(map(type, records)) <= {list} and set(map(len, records)) <= {2}):
            return False
        hints = list(map(operator.itemgetter(0), records))
        if not set(map(type, hints)) <= {int} or min(hints, default=0) < 0:
            return False
        try:
            if not all(
                map(
                    operator.eq,
                    map(self.order.__getitem__, hints),
                    map(operator.itemgetter(1), records),
                )
            ):
                return False
        except IndexError:  # a position out of the sweeps
            return False
        state = self._state
        for hint in hints:
            state[hint] = DONE
        return True

    def forget_holds(self, mine: bool = True) -> None:
        """Forget every claim and skip at once (their stream restarted or was emptied) and,
        with ``mine``, that this instance took any; what this process skipped stays skipped
        here."""
        for holds in (self.claims, self.skips):
            holds.clear()
            self._state = self._state.translate(_TO_TODO[holds.state])
        self._cursor = 0
        if mine:
            self.mine = {}
        for element in self.own_skips:
            self._settle(self.position(element), element)

    def apply(
        self, changes: Changes, me: Callable[[], Owner], claims_read: bool = True
    ) -> list[Any]:
        """Replay what :meth:`RecordLog.read` returned; ``me()``: this process's owner (asked
        only after a compaction); ``claims_read``: the claims stream was read too (else the
        done stream alone). Returns this instance's claims that another instance gave back
        meanwhile (it took this process for dead, or reset every claim): lost claims, those
        finished since the claims stream was last read included."""
        if changes.done_restarted:  # done file deleted, truncated or replaced: start over
            self.forget_failures()
            self._state = self._state.translate(_TO_TODO[DONE])
            self.done_extra.clear()
            self._cursor = 0
            for holds in (self.claims, self.skips):
                for element, hold in holds.by_element.items():
                    self._settle(hold[1], element)
        for piece in changes.done:
            if not self._mark_done_fast(piece.records):
                for record in piece.checked():
                    if len(record) == 2:
                        hint, plain = record
                        if (hinted := self._hinted(plain, hint)) is not None:
                            self.mark_done(self.order[hinted], hinted)  # no copy to build
                        else:
                            self.mark_done(self._from_plain(plain), hint)
                    elif record[0] == FAIL:
                        self._replay_failure(record)
                    else:  # the failures were reset
                        self.forget_failures()
        # Replaying the claims stream from its start (deleted, compacted, or read again after
        # a failure), ``mine`` stays as it was until the end (an exception midway, say from a
        # signal handler, leaves it whole for the next replay), and the releases on the way
        # are history: what this instance took is what the stream ends up holding for it.
        restarted = changes.claims_restarted
        mine = self.mine
        if restarted:
            self.forget_holds(mine=False)
        lost = []
        for operation, owner, element, hint, since, number in changes.claims:
            if operation == RELEASE:
                if not restarted and (element in self.mine or element in self.finished):
                    lost.append(element)
                self.release(element, mine=not restarted)
            else:
                self._hold(operation, element, owner, hint, since or 0.0, number)  # type: ignore[arg-type]
        if restarted:  # this instance's claims that survived a compaction
            owner = me()
            self.mine = {
                e: None for e in mine if self.claims.by_element.get(e, (None,))[0] == owner
            }
            lost += [e for e in mine if e not in self.mine]
        if claims_read:
            self.finished = {}
        return lost

    def _replay_failure(self, record: list[Any]) -> None:
        """Replay a failure record (see :mod:`execo_engine.store.log.records`)."""
        _, element, hint, attempts, failed, since, error = record
        element = self._from_plain(element)
        self.count_failure(
            self.position(element, hint), Failure(element, attempts, error, since, failed)
        )

    # -- this instance's changes (after writing their records) ------------------------------

    def claim(self, taken: list[tuple[int, Any]], me: Owner, since: float) -> None:
        """This instance claimed ``(position, element)`` pairs."""
        for position, element in taken:
            self.skips.remove(element)
            self.own_skips.discard(element)
            self.claims.add(element, me, position, since)
            self._state[position] = CLAIMED
            self.mine[element] = None

    def skip(self, held: Sequence[tuple[int, Any]], since: float) -> None:
        """This process skipped ``(position, element)`` pairs (not done) for this instance
        (its records name the instance's owner and number)."""
        owner, number = self.instance
        for position, element in held:
            self.claims.remove(element)
            self.mine.pop(element, None)
            self.skips.add(element, owner, position, since, number)
            self.own_skips.add(element)
            self._settle(position, element)

    def unskip(self, elements: Iterable[Any]) -> None:
        """This process forgets that it skipped ``elements`` (taken back, cancelled, failed,
        reset); their holds are the caller's to release."""
        for element in elements:
            if element in self.own_skips:
                self.own_skips.discard(element)
                self._settle(self.position(element), element)

    def undo_done(self, position: int) -> None:
        """A done position becomes todo for this instance only (execo's cancel of a done
        element); done again, it is done again."""
        self.undone.add(position)
        self._state[position] = TODO
        self._settle(position, self.order[position])

    def done(self, done: list[tuple[int | None, Any]]) -> None:
        """This instance recorded ``(position, element)`` pairs done (its claims among them
        are checked against the claims stream when it is next read: see :meth:`apply`)."""
        if not self.claims.by_element and not self.skips.by_element:  # nothing held: bulk
            state, undone = self._state, self.undone
            for position, element in done:
                if position is None:
                    self.done_extra.add(element)
                else:
                    if undone:
                        undone.discard(position)
                    state[position] = DONE
            return
        for position, element in done:
            if position is not None:
                self.undone.discard(position)
            if element in self.mine:
                self.finished[element] = None
            self.own_skips.discard(element)
            self.mark_done(element, position)

    def count_failure(self, position: int | None, failure: Failure) -> None:
        """A failed attempt was counted on ``failure.element`` (at ``position``)."""
        self.failures[failure.element] = failure
        self._settle(position, failure.element)

    def forget_failures(self) -> None:
        """Forget every failed attempt (the failures were reset): FAILED is todo again."""
        failures, self.failures = self.failures, {}
        for element in failures:
            self._settle(self.position(element), element)

    # -- looking -----------------------------------------------------------------------------

    def failures_in_order(self) -> list[Failure]:
        """Every failure: those of elements of the sweeps in sweeps order (the elements as
        the sweeps hold them), then the others in the order they were first counted."""
        located = [(self.position(e), f) for e, f in self.failures.items()]
        in_sweeps = sorted(((p, f) for p, f in located if p is not None), key=_first)
        return [dataclasses.replace(f, element=self.order[p]) for p, f in in_sweeps] + [
            f for p, f in located if p is None
        ]

    def is_done(self, element: Any, position: int | None) -> bool:
        if position is None:
            return element in self.done_extra
        return self._state[position] == DONE

    def todo_positions(self) -> Iterator[int]:
        """Todo positions in sweeps order (the cursor moves past those already handed out)."""
        while (position := self._state.find(TODO, self._cursor)) >= 0:
            self._cursor = position + 1  # it is about to be claimed
            yield position
        self._cursor = len(self._state)

    def in_state(self, state: State) -> list[Any]:
        """The elements in ``state``, in sweeps order."""
        return list(itertools.compress(self.order, self._state.translate(_MASKS[state])))

    def states(self) -> dict[State, list[Any]]:
        return {state: self.in_state(state) for state in State}

    def holders(self, dead: Iterable[Owner]) -> list[Holder]:
        """Every hold, oldest first; ``dead``: the owners judged gone."""
        gone = set(dead)
        return sorted(
            (
                Holder(
                    element if position is None else self.order[position],
                    owner,
                    since,
                    holds.state,
                    owner in gone,
                )
                for holds in (self.claims, self.skips)
                for element, (owner, position, since, _) in holds.by_element.items()
            ),
            key=operator.attrgetter("since"),
        )

    def owners(self) -> set[Owner]:
        """Every owner holding something."""
        return self.claims.by_owner.keys() | self.skips.by_owner.keys()
