"""ParamSweeper: a persistent, thread-, process- and host-safe work queue over combinations.

A thin transactional facade: it checks its arguments and turns each call into one operation of
its store (:mod:`execo_engine.store.contract`: a directory, or a PostgreSQL database), which
takes the lock, catches up with the others, changes the state, writes and, for done records
and results, makes them durable (:meth:`Store.sync`) before the call returns.

Each element is *todo*, *in progress* (claimed by a live process), *skipped*, *done* or *failed*
(its failed attempts reached ``max_attempts``: never handed out again until the failures are
reset). Done, in progress and failed are shared by every instance, thread, process and host
using the same location; claims of dead processes go back to todo (a process killed
mid-combination neither fails it nor counts an attempt). Two states are an instance's own, as
in execo: *skipped* is skipped for the instance that skipped it (and the processes it was
forked into) while the process that created it lives, and todo for every other instance (a
relaunch, another instance in the same process, another host), which see it with its holder in
:meth:`ParamSweeper.get_skips`; ``cancel()`` of a done element makes it todo again for this
instance only.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import numbers
import operator
import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Generic, NamedTuple, TypeVar, overload

from execo_engine.codec import (
    Codec,
    is_flat_plain,
    is_hashable,
    plain_equivalent,
    plain_equivalents,
)
from execo_engine.elements import HashableDict, SweepList
from execo_engine.handed import HandedOut
from execo_engine.ordered_set import OrderedSet
from execo_engine.preempt import watch_worker
from execo_engine.provenance import join, merge_runs
from execo_engine.store.contract import Failure, State, Store, short_error
from execo_engine.store.locations import Location, open_store
from execo_engine.store.log.records import result_text
from execo_engine.store.owner import Owner

E = TypeVar("E")
#: Receives the todo elements in order, returns those to consider, in the order to consider them
Filter = Callable[[list[E]], Iterable[E]]
#: An element, who holds it (host, pid, start[, ...]), since when (epoch seconds), whether dead
HeldBy = tuple[E, Owner, float, bool]
Stats = tuple[OrderedSet[E], OrderedSet[E], OrderedSet[E], OrderedSet[E], OrderedSet[E]]
#: The longest duration a result may record (seconds: some 30 million years)
MAX_DURATION = 1e15


class Snapshot(NamedTuple):
    """What is done, and what is failed for good (and not done), in a sweep at one moment, as
    canonical texts (see :func:`canonical_text`): a view that stays the same while others keep
    working, and that can be sent to other processes."""

    done: frozenset[str]
    failed: frozenset[str]


def snapshot(location: Location) -> Snapshot:
    """The :class:`Snapshot` of the sweep at ``location`` now (its done records are read once)."""
    store = open_store(location, Codec(), read_only=True)
    try:
        done = store.done_texts()
        return Snapshot(done, _failed_texts(store, done))
    finally:
        store.close()


def _failed_texts(store: Store, done_texts: frozenset[str]) -> frozenset[str]:
    """The canonical texts of the elements of ``store`` that failed for good and are not
    in ``done_texts``."""
    failed = (canonical_text(f.element) for f in store.failures() if f.failed)
    return frozenset(failed) - done_texts


_CANONICAL = Codec()  # its cache of the last text is safe to share: one tuple, read at once


def canonical_text(element: Any) -> str:
    """The canonical text of ``element``, as recorded on disk (text codec)."""
    return _CANONICAL.encode(element)


def _check_location_given(location: object) -> None:
    """``TypeError`` / ``ValueError`` naming a persistence location that is no path nor URL,
    or an empty one (which execo took for the current directory; a sweep there would mix
    its files with whatever the directory holds)."""
    if not isinstance(location, (str, os.PathLike)):
        raise TypeError(
            f"ParamSweeper: persistence_dir={location!r:.80}: give a directory path (str or "
            f"pathlib.Path) or a postgresql:// URL"
        )
    if not os.fspath(location):
        raise ValueError(
            "ParamSweeper: persistence_dir='' is empty: give a directory for the sweep's files "
            "(for the current directory, a subdirectory of it, such as 'sweep')"
        )


def check_elements(elements: Sequence[Any]) -> None:
    """Raise what a :class:`ParamSweeper` given ``elements`` as its sweeps raises for the first
    one it cannot keep (text codec): ``TypeError`` for an unhashable one,
    :class:`~execo_engine.errors.UnsupportedValueError` for one the text cannot carry."""
    _check_hashable(elements)
    plain = type(elements) is SweepList and elements.plain  # names and values are scalars
    for element in elements:
        if not plain or any(_maybe_unstorable(value) for value in element.values()):
            canonical_text(element)


def _maybe_unstorable(scalar: object) -> bool:
    """Whether a scalar may be one the text cannot carry in an element (NaN; an integer of
    thousands of digits): :func:`canonical_text` then decides."""
    if type(scalar) is float:
        return scalar != scalar
    return type(scalar) is int and scalar.bit_length() > 14_000


def source_location(path: str, line: int | None, root: str | os.PathLike[str] = ".") -> str:
    """``path:line``, the path relative to ``root`` (default: the current directory) when it
    lies below it."""
    relative = os.path.relpath(path, root) if os.path.isabs(path) else path
    return f"{path if relative.startswith('..') else relative}:{line}"


def error_text(error: str | BaseException | None) -> str:
    """The error text a failure keeps (see :func:`~execo_engine.store.contract.short_error`):
    a string as it is; an exception as ``file:line: Type: message``, where it was raised.
    ``TypeError`` naming anything else (before anything is written)."""
    if error is None:
        return ""
    if isinstance(error, str):
        return short_error(error)
    if not isinstance(error, BaseException):
        hint = (
            " is an exception class: pass an instance, such as ValueError('why')"
            if isinstance(error, type)
            else ": give a text, an exception instance (as caught by `except Exception as e`), "
            "or None"
        )
        raise TypeError(f"ParamSweeper: error={error!r:.80}{hint}")
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        text = f"{source_location(frames[-1].filename, frames[-1].lineno)}: {text}"
    return short_error(text)


def _require_mapping(values: Any, caller: str = "") -> None:
    """``TypeError`` (its message after ``caller``) when result ``values`` are no mapping."""
    if not isinstance(values, Mapping):
        raise TypeError(
            f"{caller}values={values!r:.80} is not a mapping: give a dict of name -> value, as "
            f"in record_result(combination, values, outcome, duration)"
        )


def check_result_values(values: Any) -> None:
    """Raise what :meth:`ParamSweeper.record_result` would raise for ``values`` (not a
    mapping: ``TypeError``; a value the text format cannot carry: ``UnsupportedValueError``
    naming it), for callers that collect values before recording them (the pytest
    ``execo_record`` fixture): the error comes at their call."""
    _require_mapping(values)
    record = HashableDict(
        combination=None, values=HashableDict(values), outcome=None, duration=None, host="", time=1
    )
    result_text(_CANONICAL, record)  # the same record shape, nested as deep


def _check_hashable(elements: Iterable[object], stored: Iterable[object] | None = None) -> None:
    """``TypeError`` naming the first of ``elements`` that is unhashable, or whose plain
    equivalent as ``stored`` is (a dict or a set inside a hashable type of the script's)."""
    given = list(elements)
    plains = given if stored is None else list(stored)
    try:
        collections.deque(map(hash, plains), maxlen=0)  # no Python loop for a big batch
        if stored is None:
            return
        collections.deque(map(hash, given), maxlen=0)
        return
    except TypeError:
        pass  # name the culprit
    for element, plain in zip(given, plains, strict=True):
        try:
            hash(element)
            hash(plain)
        except TypeError as error:
            raise TypeError(
                f"ParamSweeper: element {element!r} is unhashable ({error}); "
                f"use hashable values (tuples, not lists, or a list type with a __hash__; "
                f"HashableDict or frozenset, not dict or set, inside)"
            ) from None


def _distinct_values(order: list[E], inner: list[Any]) -> tuple[list[E], list[Any]]:
    """``order`` and its plain equivalents ``inner`` without the elements whose plain
    equivalent equals an earlier one's (the script's objects of two types with equal values,
    told apart by the script's own hash)."""
    first: dict[Any, int] = {}
    for index, element in enumerate(inner):
        first.setdefault(element, index)
    if len(first) == len(inner):
        return order, inner
    kept = sorted(first.values())
    return [order[i] for i in kept], [inner[i] for i in kept]


def _unique(sweeps: Iterable[E]) -> list[E]:
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


class ParamSweeper(Generic[E]):
    """Persistent iterable container of elements (parameter combinations) to process.

    ``persistence_dir`` is a directory, created if needed (``NotADirectoryError`` if it is a
    file), or a ``postgresql://user@host/db?sweep=NAME`` URL (see
    :mod:`execo_engine.store.postgresql.store`).
    ``sweeps`` is what to iterate on, in that order (``get_next`` follows it); None loads the
    saved sweeps (``ValueError`` if there are none). ``save_sweeps=True`` saves them (without
    them, the directory still keeps how many combinations there are, for ``execo-sweep
    status``). ``name`` appears in logs and ``str()`` (default: the directory's or the sweep's
    name). ``allow_pickle=True`` lets elements hold values the text format cannot carry,
    pickled (only where you trust every writer). ``read_only=True`` reads without locking and
    never writes (any change raises ``PermissionError``); it is thread-safe like a writer.
    ``lease`` (seconds, 60 by default, at least 1; directories only, a ``postgresql://`` URL
    takes ``&lease=``): how long a process may go without heartbeat before others take it for
    dead (see :mod:`execo_engine.store.lease`): shorter gives a vanished host's claims back
    sooner, but a process paused, starved or cut from the file server for longer loses its
    claims (it logs so; its ``done()`` still counts). ``max_attempts``: an element whose
    failed attempts (:meth:`fail`) reach this number is *failed* (None, the default: no limit,
    a failed element is todo again, as with :meth:`cancel`).

    Done and in-progress states persist and are shared; a claim whose process died (at once on
    this host and PID namespace) or whose lease expired (another host or container, or
    PostgreSQL) goes back to todo at the next operation of any instance. A skip is this
    instance's (see :meth:`skip_batch`). Deleting the ``inprogress`` file releases every claim,
    even while instances run. Elements done but
    not in the current sweeps are kept and not reported. The getters return new
    :class:`~execo_engine.ordered_set.OrderedSet` copies: sets, as in execo, that iterate in
    sweeps order.

    Elements may be of the script's own hashable container types (``class hashabledict(dict)``
    with a ``__hash__``, a list type, a named tuple): given in ``sweeps``, they are what the
    getters, ``stats()`` and ``get_next`` give back; they are stored as the canonical text of
    their value (see :mod:`execo_engine.codec`), and a reader without these sweeps gets the
    plain equivalents (HashableDict, :class:`~execo_engine.elements.HashableList`, tuple,
    frozenset), equal to them.

    ``get_next`` hands out a copy of each combination that is a dict, a list or a set (see
    :mod:`execo_engine.handed`): the script may change its copy (``x.update(...)``), and
    ``done``, ``skip``, ``cancel``, ``fail`` and ``record_result`` of that very copy act on the
    combination handed out, whatever was changed in between.

    ``with ParamSweeper(...) as sweeper:`` closes it at the end of the block (:meth:`close`).
    The old argument order ``ParamSweeper(sweeps, persistence_dir)`` still works, with a
    ``DeprecationWarning``.
    """

    @overload
    def __init__(
        self: ParamSweeper[Any],
        persistence_dir: Location,
        sweeps: None = None,
        save_sweeps: bool = False,
        name: str | None = None,
        *,
        allow_pickle: bool = False,
        read_only: bool = False,
        lease: float | None = None,
        max_attempts: int | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        persistence_dir: Location,
        sweeps: Iterable[E],
        save_sweeps: bool = False,
        name: str | None = None,
        *,
        allow_pickle: bool = False,
        read_only: bool = False,
        lease: float | None = None,
        max_attempts: int | None = None,
    ) -> None: ...
    def __init__(
        self,
        persistence_dir: Any,
        sweeps: Any = None,
        save_sweeps: bool = False,
        name: str | None = None,
        *,
        allow_pickle: bool = False,
        read_only: bool = False,
        lease: float | None = None,
        max_attempts: int | None = None,
    ) -> None:
        if max_attempts is not None and (type(max_attempts) is not int or max_attempts < 1):
            raise ValueError(
                f"ParamSweeper: max_attempts={max_attempts!r}: give a whole number >= 1, or "
                f"None for no limit"
            )
        self.max_attempts = max_attempts
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
        _check_location_given(persistence_dir)
        self._store = open_store(persistence_dir, Codec(allow_pickle), read_only, lease)
        self.name = name or self._store.name
        self._order: list[E] = []
        #: position of each element of the store, when the store's elements are the plain
        #: equivalents of the script's (None: they are the script's own objects)
        self._outer: dict[Any, int] | None = None
        self._handed = HandedOut()
        self.set_sweeps(sweeps, save_sweeps)
        #: What this process finished here in the current run (None: no run, or read-only).
        self._tally = None if read_only else join(self._store, self)
        if not read_only:
            watch_worker(self)  # in a submitted worker: give the claims back when preempted

    # -- sweeps -----------------------------------------------------------------------------

    def set_sweeps(self, sweeps: Iterable[E] | None = None, save_sweeps: bool = False) -> None:
        """Change what to iterate on (None: load the saved sweeps); optionally save it."""
        if sweeps is None:
            loaded = self._store.load_sweeps()
            if loaded is None:
                fix = (
                    "pass sweeps=..., or have the writer save them with save_sweeps=True"
                    if self._store.read_only
                    else "pass sweeps=..., with save_sweeps=True to save them"
                )
                raise ValueError(
                    f"ParamSweeper: no sweeps given and none saved in "
                    f"{self._store.location!r} ({fix})"
                )
            sweeps = loaded
        known_plain = type(sweeps) is SweepList and sweeps.plain  # straight from sweep()
        order = _unique(sweeps)
        inner = None if known_plain else plain_equivalents(order)
        if inner is not None:
            _check_hashable(order, inner)
            order, inner = _distinct_values(order, inner)
        self._store.set_sweeps(order if inner is None else inner, save_sweeps)
        self._order = order
        self._index: dict[Any, E] | None = None  # built when a plain dict is looked up
        self._outer = None if inner is None else {e: i for i, e in enumerate(inner)}

    # -- the script's objects and the store's elements --------------------------------------

    def _outward(self, elements: Iterable[Any]) -> list[E]:
        """The script's objects for elements of the store (an element outside the sweeps as
        the store has it)."""
        if self._outer is None:
            return elements if isinstance(elements, list) else list(elements)
        outer, order = self._outer, self._order
        return [order[p] if (p := outer.get(e)) is not None else e for e in elements]

    def _inward(self, combinations: Iterable[Any]) -> list[Any]:
        """The store's elements for what the script gives: the combination a copy was handed
        out for (by identity), else the plain equivalent of the value (a plain dict equal to a
        combination of the sweeps stands for it; ``TypeError`` naming an unhashable value, or
        a plain dict equal to no combination: one message for every method taking
        elements)."""
        if type(combinations) is list:  # done(), as a rule: no ABC check
            given = combinations
        elif combinations is None or isinstance(combinations, (Mapping, str, bytes)):
            what = "one combination" if isinstance(combinations, Mapping) else "the value"
            raise TypeError(
                f"ParamSweeper: expected a list of combinations, got {what} "
                f"{combinations!r:.80}: pass a list (or any iterable) of combinations, "
                f"[combination] for one"
            )
        else:
            given = list(combinations)
        elements = self._handed.resolve(given)
        if None in elements:
            for index, element in enumerate(elements):
                if element is None:
                    value = given[index]
                    if is_flat_plain(value):  # a combination of the sweeps, as a rule
                        elements[index] = value
                        continue
                    if type(value) is dict:  # stands for the combination it equals
                        value = self._combination_of(value)
                    elements[index] = plain_equivalent(value)
                    _check_hashable([value], [elements[index]])
        return elements

    def _hand_out(self, elements: list[Any]) -> list[E]:
        """What ``get_next`` gives the script for claimed ``elements`` (see
        :mod:`execo_engine.handed`)."""
        return self._handed.hand(elements, self._outward(elements))

    def _choose(self, filtr: Filter[E] | None) -> Filter[Any] | None:
        """``filtr`` for the store: it sees and returns the script's objects; ``TypeError``
        naming it when it is no function, or when what it returns is no iterable of
        combinations (checked before anything is claimed)."""
        if filtr is None:
            return None
        if not callable(filtr):
            raise TypeError(
                f"ParamSweeper: filtr={filtr!r:.80} is not callable: give a function taking the "
                f"todo combinations and returning those to consider, in order (or None)"
            )

        def chosen(todo: list[Any]) -> Iterable[Any]:
            result = filtr(todo if self._outer is None else self._outward(todo))
            if result is None or isinstance(result, (Mapping, str, bytes)):
                raise TypeError(
                    f"ParamSweeper: the filter {getattr(filtr, '__name__', filtr)!r:.80} returned "
                    f"{result!r:.80}: return the combinations to consider (a list or any "
                    f"iterable of some of those it was given), in order"
                )
            return result if self._outer is None else map(plain_equivalent, result)

        return chosen

    def _combination_of(self, plain: dict[Any, Any]) -> E:
        """The combination of the sweeps equal to ``plain``; ``TypeError`` naming it if there
        is none."""
        _check_hashable([HashableDict(plain)])  # the same message as for any unhashable value
        found = self._elements_of_sweeps().get(HashableDict(plain))
        if found is None:
            raise TypeError(
                f"ParamSweeper: element {plain!r} is a plain dict equal to no combination of "
                f"the sweeps: pass a combination as sweep() or get_next() gave it"
            )
        return found

    def get_sweeps(self) -> OrderedSet[E]:
        """What to iterate on, in order (a new set)."""
        return OrderedSet(self._order)

    # -- claims --------------------------------------------------------------------------------

    def reclaim(self, older_than: float | None = None) -> list[E]:
        """Give back to todo the claims and skips of dead owners and, with ``older_than``
        (seconds), every claim older than that, whoever holds it (a host that went away).
        Returns the elements given back."""
        return self._outward(self._store.reclaim(older_than))

    def _held(self, state: State) -> list[HeldBy[E]]:
        held = [h for h in self._store.holders() if h.state == state]
        elements = self._outward(h.element for h in held)
        return [(e, h.owner, h.since, h.dead) for e, h in zip(elements, held, strict=True)]

    def get_claims(self) -> list[HeldBy[E]]:
        """Every claim: ``(element, (host, pid, start), time of the claim, dead)``, oldest
        first; ``dead`` when its owner is known to be gone (a dead process of this host for a
        directory, an expired lease for PostgreSQL): the next operation of a writing instance
        reclaims it."""
        return self._held(State.CLAIMED)

    def get_skips(self) -> list[HeldBy[E]]:
        """Every skip of every instance, as :meth:`get_claims`: who skipped what (the process
        that created the skipping instance), since when; a skip is forgotten once its owner is
        dead. Only the instance that skipped an element sees it skipped (:meth:`get_skipped`)."""
        return self._held(State.SKIPPED)

    def heartbeat_ages(self) -> dict[Owner, float]:
        """Seconds since each owner holding something here last renewed its lease (as
        :meth:`get_claims` names owners; an owner missing: the store does not know)."""
        return self._store.heartbeat_ages()

    def update(self) -> None:
        """Catch up with what other instances wrote (reads only what is new)."""
        self._store.refresh()

    def full_update(self) -> None:
        """Reload the whole state from the store."""
        self._store.refresh(full=True)

    # -- handing out -------------------------------------------------------------------------

    def get_next(self, filtr: Filter[E] | None = None) -> E | None:
        """Claim and return the next todo element, or None when there is none.

        ``filtr``, if given, receives the list of todo elements in order and returns those
        to consider, in the order to consider them.
        """
        taken = self._store.claim(1, self._choose(filtr))
        return self._hand_out(taken)[0] if taken else None

    def get_next_batch(self, num_combs: float, filtr: Filter[E] | None = None) -> list[E]:
        """Claim and return up to ``num_combs`` todo elements (see :meth:`get_next`): none for
        0 or less; a fraction counts as the next whole number (``cores / 2``), as in execo.
        ``TypeError`` naming anything but a finite number."""
        if (
            not isinstance(num_combs, numbers.Real)  # NumPy's numbers too
            or isinstance(num_combs, bool)
            or not math.isfinite(num_combs)
        ):
            raise TypeError(
                f"ParamSweeper.get_next_batch: num_combs={num_combs!r:.80}: give how many "
                f"combinations to claim, a finite number (an int, or a float rounded up)"
            )
        count = math.ceil(num_combs)
        if count <= 0:
            return []
        return self._hand_out(self._store.claim(count, self._choose(filtr)))

    def take(self, combination: E, position: int | None = None) -> str | None:
        """Claim this very element if it is todo (skipped by another instance included), or
        skipped by this instance.

        ``position``, where the caller knows the element stands in the sweeps, spares building
        an index of the sweeps (one comparison checks it; a wrong one is only slower).
        Returns None when claimed, else why not: ``"done"``, ``"failed"``, ``"in progress
        (host H, pid P)"``, ``"skipped (host H, pid P)"`` (a skip of a version before this one,
        held by that process for every instance) or ``"not in the sweeps"``.
        """
        [element] = self._inward([combination])
        return self._store.take(element, position)

    def take_batch(
        self, combinations: Sequence[E], positions: Sequence[int | None] | None = None
    ) -> list[str | None]:
        """:meth:`take` each element (with its ``positions`` hint, if given), at once: one
        reason (or None: claimed) per element, in order; an element given twice is claimed
        once."""
        elements = self._inward(combinations)
        hints = positions if positions is not None else [None] * len(combinations)
        return self._store.take_many(list(zip(elements, hints, strict=True)))

    def __iter__(self) -> Iterator[E]:
        """Claim elements one by one, as :meth:`get_next`, until none is left."""
        while (element := self.get_next()) is not None:
            yield element

    @contextmanager
    def claim(self, filtr: Filter[E] | None = None) -> Iterator[E | None]:
        """Claim the next element (None if none): done on normal exit; failed (:meth:`fail`,
        with the exception's summary) when the body raises an ``Exception``; cancelled when it
        is interrupted (``KeyboardInterrupt``, ``SystemExit`` as SIGTERM raises under
        :class:`~execo_engine.engine.Engine`)."""
        element = self.get_next(filtr)
        try:
            yield element
        except Exception as error:
            if element is not None:
                self.fail(element, error)
            raise
        except BaseException:
            if element is not None:
                self.cancel(element)
            raise
        if element is not None:
            self.done(element)

    # -- state changes -----------------------------------------------------------------------

    def done_batch(self, combinations: Iterable[E], *, wait: bool = True) -> None:
        """Mark elements done; returns once their records are on disk (fsync). Done again
        after a :meth:`cancel`, an element gets a new done record.

        ``wait=False`` returns once the records are written (they survive the death of this
        process, not yet a crash of the machine) and leaves their fsync to :meth:`flush`.
        """
        elements = self._inward(combinations)
        self._store.done(elements)
        if self._tally is not None:
            self._tally.count(done=len(elements))
        self._handed.forget(elements)
        if wait:
            self._store.sync()

    def done(self, combination: E, *, wait: bool = True) -> None:
        """Mark an element done; returns once its record is on disk (fsync); ``wait=False``:
        see :meth:`done_batch`."""
        self.done_batch([combination], wait=wait)

    def flush(self) -> None:
        """Put on disk (fsync) every record written with ``wait=False`` so far; callable from
        another thread than the one writing (a background flush)."""
        self._store.sync()

    def skip_batch(self, combinations: Iterable[E]) -> None:
        """Mark elements skipped, for this instance: as execo's "the skipped state is not
        written to disk; if you relaunch your script later, the previously skipped
        combinations will again be iterated over". This instance, and the processes it was
        forked into (workers of one run), never hand them out again while the process that
        created it lives; every other instance (a relaunch, another ``ParamSweeper`` in the
        same process, another host) sees them todo. The skip is recorded with its holder,
        so that :meth:`get_skips` and ``execo-sweep status`` show who skipped what. A process
        remembers what it skipped itself even when another instance takes it over meanwhile
        (two instances that skip the same element never hand it to each other in turn)."""
        elements = self._inward(combinations)
        self._store.give_back(elements, skip=True)
        self._handed.forget(elements)

    def skip(self, combination: E) -> None:
        """Mark an element skipped (see :meth:`skip_batch`)."""
        self.skip_batch([combination])

    def cancel_batch(self, combinations: Iterable[E]) -> None:
        """Give elements back to todo: they will be handed out again. A done element becomes
        todo for this instance only, as in execo (to recompute it); other instances still
        see it done."""
        elements = self._inward(combinations)
        self._store.give_back(elements)
        self._handed.forget(elements)

    def cancel(self, combination: E) -> None:
        """Give an element back to todo (see :meth:`cancel_batch`)."""
        self.cancel_batch([combination])

    def fail_batch(
        self, combinations: Iterable[E], error: str | BaseException | None = None
    ) -> list[E]:
        """Give elements back counting one failed attempt each, and keep ``error`` (a text,
        or an exception: see :func:`error_text`) as their last error: those whose attempts
        reach ``max_attempts`` become *failed* for every instance (returned), the others are
        todo again. Done elements are left done (not counted). Every instance sees the
        attempts, and an attempt is counted exactly once per call, whatever the number of
        processes; returns once the failure records are on disk (fsync)."""
        elements = self._inward(combinations)
        failed = self._store.fail(elements, error_text(error), self.max_attempts)
        if self._tally is not None:
            self._tally.count(failed=len(elements))
        self._handed.forget(elements)
        self._store.sync()
        return self._outward(failed)

    def fail(self, combination: E, error: str | BaseException | None = None) -> bool:
        """Count a failed attempt of an element (see :meth:`fail_batch`); True when it is now
        *failed*."""
        return bool(self.fail_batch([combination], error))

    def release_claims(self, error: str | BaseException | None = None) -> list[E]:
        """Cancel every element this instance claimed and has not finished (with ``error``:
        :meth:`fail_batch` them instead); returns them, in the order they were claimed."""
        if error is None:
            released = self._store.release_mine()
        else:
            released = self._store.release_mine(error_text(error), self.max_attempts)
            if self._tally is not None:
                self._tally.count(failed=len(released))
            self._store.sync()
        self._handed.forget(released)
        return self._outward(released)

    def reset(self, reset_inprogress: bool = False, reset_failed: bool = False) -> None:
        """Forget what this instance skipped (done stays); with ``reset_inprogress``, release
        every claim and every skip record of every instance too (another live instance still
        remembers what it skipped itself, as in execo); with
        ``reset_failed``, clear every failed attempt count: failed elements are todo again."""
        self._store.reset(reset_inprogress, reset_failed)
        if reset_failed:
            self._store.sync()

    # -- results ---------------------------------------------------------------------------

    def record_result(
        self,
        combination: E,
        values: Mapping[str, Any],
        outcome: str | None = None,
        duration: float | None = None,
        *,
        wait: bool = True,
    ) -> None:
        """Append the results of a combination (``values``: name -> value) to the ``results``
        file of the directory, with its outcome, duration (seconds), host, time and the id of
        the current run (see :mod:`execo_engine.provenance`); returns once it is on disk
        (``wait=False``: see :meth:`done_batch`).

        Everything is checked before anything is written, so that every reader (another
        instance, ``execo-sweep results``...) reads back what was accepted: the combination as
        :meth:`done` takes it (a plain dict equal to a combination of the sweeps stands for
        it); ``values`` a mapping whose values the text format carries (see
        :mod:`execo_engine.codec`: ``UnsupportedValueError`` naming any other); ``outcome`` a
        string or None; ``duration`` a finite number of seconds >= 0 or None. A call with
        its first two arguments swapped is refused, saying so."""
        element = self._result_combination(combination, values)
        if outcome is not None and not isinstance(outcome, str):
            raise TypeError(
                f"ParamSweeper.record_result: outcome={outcome!r:.80}: give a string (such "
                f"as 'passed') or None"
            )
        if duration is not None and not (
            type(duration) in (int, float) and 0 <= duration < MAX_DURATION
        ):
            raise ValueError(
                f"ParamSweeper.record_result: duration={duration!r:.80}: give seconds (a "
                f"finite number >= 0, an int or a float) or None"
            )
        record = HashableDict(
            combination=element,
            values=HashableDict(values),
            outcome=None if outcome is None else str.__str__(outcome),
            duration=duration,
            host=socket.gethostname(),
            time=round(time.time(), 3),
        )
        if self._tally is not None:
            record["run"] = self._tally.run
        self._store.append_result(record)
        if self._tally is not None:
            self._tally.count(results=1)
        if wait:
            self._store.sync()

    def _result_combination(self, combination: Any, values: Any) -> Any:
        """The element ``record_result`` records for ``combination``, after checking that
        ``values`` is a mapping and that the two were not swapped."""
        _require_mapping(values, "ParamSweeper.record_result: ")
        suspect = type(values) is HashableDict or type(combination) is dict  # else no index
        if suspect and self._in_sweeps(values) and not self._in_sweeps(combination):
            raise TypeError(
                f"ParamSweeper.record_result: arguments swapped? The first, "
                f"{combination!r:.80}, is no combination of the sweeps, the second, "
                f"{values!r:.80}, is one: call record_result(combination, values, outcome, "
                f"duration)"
            )
        [element] = self._inward([combination])
        return element

    def _in_sweeps(self, value: Any) -> bool:
        """Whether ``value`` is a dict (plain or not) equal to a combination of the sweeps."""
        if not isinstance(value, dict) or not is_hashable(HashableDict(value)):
            return False
        return HashableDict(value) in self._elements_of_sweeps()

    def _elements_of_sweeps(self) -> dict[Any, E]:
        if self._index is None:
            self._index = {element: element for element in self._order}
        return self._index

    def get_results(self) -> list[HashableDict]:
        """Every recorded result, in the order they were recorded (see
        :meth:`record_result`); a combination of the sweeps is the script's object."""
        results: list[HashableDict] = self._store.read_results()
        if self._outer is not None:
            for result in results:
                [result["combination"]] = self._outward([result["combination"]])
        return results

    def get_runs(self) -> list[dict[str, Any]]:
        """The runs that wrote to this sweep, one summary each, in the order they started
        (see :func:`execo_engine.provenance.merge_runs`)."""
        return merge_runs(self._store.read_runs())

    # -- looking -----------------------------------------------------------------------------

    def stats(self) -> Stats[E]:
        """Atomically ``(sweeps, remaining, skipped, inprogress, done)``, each a new set in
        sweeps order (``sweep_stats`` takes it); failed elements are in none of the last
        four (see :meth:`get_failed`)."""
        states = self._store.states()
        return (
            OrderedSet(self._order),
            OrderedSet(self._outward(states[State.TODO])),
            OrderedSet(self._outward(states[State.SKIPPED])),
            OrderedSet(self._outward(states[State.CLAIMED])),
            OrderedSet(self._outward(states[State.DONE])),
        )

    def get_remaining(self) -> OrderedSet[E]:
        """The todo elements, in order (a new set)."""
        return OrderedSet(self._outward(self._store.states()[State.TODO]))

    def get_skipped(self) -> OrderedSet[E]:
        """The elements this instance skipped, in order (a new set): see :meth:`skip_batch`."""
        return OrderedSet(self._outward(self._store.states()[State.SKIPPED]))

    def get_inprogress(self) -> OrderedSet[E]:
        """The elements claimed by live processes, in order (a new set)."""
        return OrderedSet(self._outward(self._store.states()[State.CLAIMED]))

    def get_done(self) -> OrderedSet[E]:
        """The done elements of the current sweeps, in order (a new set)."""
        return OrderedSet(self._outward(self._store.states()[State.DONE]))

    def get_failed(self) -> dict[E, Failure]:
        """The *failed* elements, in sweeps order, each with its
        :class:`~execo_engine.store.contract.Failure` (attempts, last error, when)."""
        failed = set(self._store.states()[State.FAILED])
        return self._failures(f for f in self._store.failures() if f.element in failed)

    def get_failures(self) -> dict[E, Failure]:
        """Every element with failed attempts counted, whatever its state now (todo again,
        failed, done after all): those of the sweeps in sweeps order, then the others."""
        return self._failures(self._store.failures())

    def _failures(self, failures: Iterable[Failure]) -> dict[E, Failure]:
        """``{element: failure}``, each element (and ``failure.element``) the script's."""
        found = list(failures)
        if self._outer is not None:
            elements = self._outward(f.element for f in found)
            found = [
                dataclasses.replace(f, element=e) for f, e in zip(found, elements, strict=True)
            ]
        return {f.element: f for f in found}

    def counts(self) -> dict[str, int]:
        """``total``, ``done``, ``inprogress``, ``skipped``, ``remaining`` and ``failed``
        counts: from :meth:`stats` when this instance has sweeps; without sweeps (a status of
        a directory whose sweeps were not saved), from the number of combinations the store
        keeps (see :meth:`combinations`) and the records (done counts each done element once,
        so done records of elements that left the sweeps count too)."""
        total = self.combinations() if not self._order else None
        if total is None:
            sweeps, remaining, skipped, inprogress, done = self.stats()
            return {
                "total": len(sweeps),
                "done": len(done),
                "inprogress": len(inprogress),
                "skipped": len(skipped),
                "remaining": len(remaining),
                "failed": len(sweeps) - len(remaining) - len(skipped) - len(inprogress) - len(done),
            }
        held = [holder.state for holder in self._store.holders()]
        done_texts = self._store.done_texts()
        counts = {
            "total": total,
            "done": len(done_texts),
            "inprogress": held.count(State.CLAIMED),
            "skipped": held.count(State.SKIPPED),
            "failed": len(_failed_texts(self._store, done_texts)),
        }
        counts["remaining"] = max(
            0,
            total - counts["done"] - counts["inprogress"] - counts["skipped"] - counts["failed"],
        )
        return counts

    def combinations(self) -> int | None:
        """How many combinations the sweeps of the last writer had, even when they were not
        saved (None: unknown, a directory older than format 2 never opened by a writer)."""
        return self._store.grid_size()

    def close(self) -> None:
        """Release what this instance holds open (a database connection, open files); it is
        not used after. Optional: the process's exit releases it too. A process that opens
        many sweeps one after the other closes each when done with it: every open instance
        keeps a few file descriptors (a directory) or a connection (PostgreSQL)."""
        self._store.close()
        if self._tally is not None and self._tally.store is self._store:
            self._tally.store_closed = True

    def __enter__(self) -> ParamSweeper[E]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """``with ParamSweeper(...) as sweeper:`` closes it at the end of the block."""
        self.close()

    def __str__(self) -> str:
        states = self._store.states()
        failed = len(states[State.FAILED])
        return (
            f"{self.name} <{len(self._order)} total, {len(states[State.DONE])} done, "
            f"{len(states[State.SKIPPED])} skipped, {len(states[State.CLAIMED])} in progress, "
            f"{len(states[State.TODO])} remaining{f', {failed} failed' if failed else ''}>"
        )
