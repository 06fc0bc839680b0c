"""The element types of sweeps: :class:`HashableDict` (a combination), :class:`HashableList`
(a list level, as a reader without the caller's sweeps gets it back) and :class:`SweepList`
(the grid as ``sweep()`` returns it). Imports nothing of this package, so that every layer
(combinatorics, codec, stores, sweeper) can use them without importing the others."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

__all__ = ["HashableDict", "HashableList", "SweepList"]

_MUTATORS = (
    "__setitem__",
    "__delitem__",
    "__ior__",
    "clear",
    "pop",
    "popitem",
    "setdefault",
    "update",
)


class HashableDict(dict):  # type: ignore[type-arg]
    """A ``dict`` usable as a set member or dict key.

    Its hash depends only on its items (not on their order, and keys of mixed types are fine), so
    it is consistent with equality, including equality with a plain ``dict`` with the same items.
    The hash is computed once and cached; any mutation drops the cache, but a mutated dict that
    already sits in a set or as a key is lost there, as for any hashable: do not mutate it after
    its first use as a key. All values must be hashable for the hash to exist.
    """

    __slots__ = ("_hash",)
    _hash: int

    def __hash__(self) -> int:  # type: ignore[override]
        try:
            return self._hash
        except AttributeError:  # not computed yet, or dropped by a mutation
            self._hash = hash(frozenset(self.items()))
            return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        # The cached hash is salted per process: never pickle it.
        return (HashableDict, (dict(self),))

    def __copy__(self) -> HashableDict:
        return HashableDict(self)


#: How many times a HashableDict was changed in place in this process (see SweepList).
_mutations = 0


def _invalidating(name: str) -> Any:
    method = getattr(dict, name)

    def mutate(self: HashableDict, *args: Any, **kwargs: Any) -> Any:
        global _mutations
        _mutations += 1
        with contextlib.suppress(AttributeError):
            del self._hash
        return method(self, *args, **kwargs)

    mutate.__name__ = name
    mutate.__doc__ = method.__doc__
    return mutate


for _name in _MUTATORS:
    setattr(HashableDict, _name, _invalidating(_name))


class HashableList(list):  # type: ignore[type-arg]
    """A ``list`` usable as a set member or dict key: the plain equivalent of a list level.

    A script may use its own hashable list type as levels (``class hashablelist(list)`` with a
    ``__hash__``); the text format stores such a level as a JSON list, and a reader that does
    not have the script's sweeps (a read-only view, ``execo-sweep status``, saved sweeps read
    back) gets a ``HashableList`` back: equal to the script's list (list equality), hashable by
    its items in order. Its hash is not cached: do not mutate it after its first use as a key.
    """

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (HashableList, (list(self),))

    def __copy__(self) -> HashableList:
        return HashableList(self)


#: The types of the scalar values a combination may hold as they are (its text form is theirs).
SCALARS = (str, int, float, bool, type(None))


class SweepList(list):  # type: ignore[type-arg]
    """The list :func:`sweep` returns: a plain list of HashableDicts that also knows, until it
    or any HashableDict is changed, whether its combinations are all different (``distinct``)
    and whether every name and value in them is one of :data:`SCALARS` (``plain``), which
    spares ``ParamSweeper`` checking each combination (1,000,000 of them: a second). A
    combination changed in place after ``sweep()`` (``for c in grid: c["x"] = 1``) may make
    two equal, or hold a list: after any change of any HashableDict of the process, the list
    no longer vouches for either, and ``ParamSweeper`` checks each combination."""

    __slots__ = ("_distinct", "_mutations", "_plain")

    def __init__(
        self, combinations: Iterable[HashableDict] = (), distinct: bool = False, plain: bool = False
    ) -> None:
        super().__init__(combinations)
        self._distinct, self._plain = distinct, plain
        self._mutations = _mutations

    def __reduce__(self) -> tuple[Any, ...]:
        # What it vouches for now, in this process (another one counts its own changes).
        return (SweepList, (list(self), self.distinct, self.plain))

    @property
    def distinct(self) -> bool:
        """Whether its combinations are known to be all different."""
        return self._distinct and self._mutations == _mutations

    @property
    def plain(self) -> bool:
        """Whether every name and value in its combinations is known to be a scalar."""
        return self._plain and self._mutations == _mutations


def _forgetting(name: str) -> Any:
    method = getattr(list, name)

    def mutate(self: SweepList, *args: Any, **kwargs: Any) -> Any:
        self._distinct = self._plain = False
        return method(self, *args, **kwargs)

    mutate.__name__ = name
    mutate.__doc__ = method.__doc__
    return mutate


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert"):
    setattr(SweepList, _name, _forgetting(_name))
