"""OrderedSet: what the ParamSweeper getters return, a set that iterates in sweeps order.

execo returns ``set`` objects; scripts combine them (``get_remaining() | get_done()``,
``get_sweeps().difference(get_done())``), test membership and compare them with sets. An
:class:`OrderedSet` does all of that (it is a ``MutableSet``: ``|``, ``&``, ``-``, ``^``, ``<=``,
``in`` in O(1), ``add``, ``discard``..., and set's named methods: ``union``, ``difference``,
``issubset``, ``update``...), though ``isinstance(s, set)`` is false; it also iterates in a
known order: the order it was built in (sweeps order for the getters). The result of a set
operation keeps the order of its left operand, then the new elements of the right one.

Printed as a set is (``{1, 2}``, ``set()`` when empty), in its order.

Equality: equal to any set (``set``, ``frozenset``, OrderedSet) with the same elements, whatever
the order; equal to a ``list`` or ``tuple`` holding the same elements in the same order (the
getters returned lists before). Indexing and slicing (``s[0]``, ``s[:3]``) follow the order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, MutableSet
from collections.abc import Set as AbstractSet
from typing import Any, TypeVar, overload

T = TypeVar("T")
S = TypeVar("S")


class OrderedSet(MutableSet[T]):
    """A set that remembers insertion order (see the module docstring)."""

    __slots__ = ("_items",)
    __hash__ = None  # type: ignore[assignment]  # mutable, as a set

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items: dict[T, None] = dict.fromkeys(items)

    @classmethod
    def _from_iterable(cls, items: Iterable[Any]) -> OrderedSet[Any]:
        return cls(items)

    def __contains__(self, item: object) -> bool:
        try:
            return item in self._items
        except TypeError:  # unhashable (a plain dict equal to a HashableDict): as a list does
            return any(item == member for member in self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, value: T) -> None:
        """Add ``value`` at the end (nothing if it is already there)."""
        self._items[value] = None

    def discard(self, value: T) -> None:
        """Remove ``value`` if it is there."""
        self._items.pop(value, None)

    def copy(self) -> OrderedSet[T]:
        return OrderedSet(self._items)

    # Set operations, typed as such (the ABC's say AbstractSet), in the order of ``self``.

    def __or__(self, other: Iterable[S]) -> OrderedSet[T | S]:
        return OrderedSet(itertools.chain(self._items, other))

    def __and__(self, other: Iterable[object]) -> OrderedSet[T]:
        other = other if isinstance(other, AbstractSet) else set(other)
        return OrderedSet(item for item in self._items if item in other)

    def __sub__(self, other: Iterable[object]) -> OrderedSet[T]:
        other = other if isinstance(other, AbstractSet) else set(other)
        return OrderedSet(item for item in self._items if item not in other)

    def __xor__(self, other: Iterable[S]) -> OrderedSet[T | S]:
        other = OrderedSet(other)
        return OrderedSet(
            itertools.chain(self - other, (item for item in other if item not in self._items))
        )

    # The named methods of set (execo scripts call them), taking any iterables, as set's do.

    def union(self, *others: Iterable[S]) -> OrderedSet[T | S]:
        return OrderedSet(itertools.chain(self._items, *others))

    def intersection(self, *others: Iterable[object]) -> OrderedSet[T]:
        result = self.copy()
        result.intersection_update(*others)
        return result

    def difference(self, *others: Iterable[object]) -> OrderedSet[T]:
        result = self.copy()
        result.difference_update(*others)
        return result

    def symmetric_difference(self, other: Iterable[S]) -> OrderedSet[T | S]:
        return self ^ other

    def issubset(self, other: Iterable[object]) -> bool:
        other = other if isinstance(other, AbstractSet) else set(other)
        return all(item in other for item in self._items)

    def issuperset(self, other: Iterable[object]) -> bool:
        return all(item in self for item in other)

    def update(self, *others: Iterable[T]) -> None:
        for other in others:
            self._items.update(dict.fromkeys(other))

    def intersection_update(self, *others: Iterable[object]) -> None:
        for other in others:
            self._items = dict.fromkeys(self & other)

    def difference_update(self, *others: Iterable[object]) -> None:
        for other in others:
            self._items = dict.fromkeys(self - other)

    def symmetric_difference_update(self, other: Iterable[T]) -> None:
        self._items = dict.fromkeys(self ^ other)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return list(self._items)[index]
        if index < 0:
            index += len(self._items)
        if not 0 <= index < len(self._items):
            raise IndexError("OrderedSet index out of range")
        return next(itertools.islice(self._items, index, None))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple)):
            return len(other) == len(self._items) and all(
                a == b for a, b in zip(self._items, other, strict=True)
            )
        if isinstance(other, AbstractSet):
            return len(other) == len(self._items) and all(item in other for item in self._items)
        return NotImplemented

    def __repr__(self) -> str:
        """As the set it replaces prints (``{1, 2}``, ``set()``), in its order: a script that
        logs ``'%s/%s' % (sweeper.get_done(), sweeper.get_sweeps())`` prints what it printed
        with execo."""
        if not self._items:
            return "set()"
        return "{" + ", ".join(map(repr, self._items)) + "}"
