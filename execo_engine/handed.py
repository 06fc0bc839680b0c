"""What a ParamSweeper handed out: a copy of each combination for the script, and the way back.

``get_next`` (and ``get_next_batch``, iteration, ``claim()``) gives the script a shallow copy of
each combination that is a mutable container (a dict, a list, a set: the combinations of
``sweep()`` are dicts), never the object the sweeper keeps. A script may then change its copy
(a campaign runner adds ``x.update({"backup_dir": ...})``) without changing the sweeps, the
state the store replays, nor what another call encodes. When the script gives that very copy
back (``done(x)``, ``skip``, ``cancel``, ``fail``, ``record_result``), :meth:`HandedOut.resolve`
finds the combination that was handed out by the copy's identity: the call acts on it, whatever
the script did to the copy meanwhile. A combination given back by value (an equal dict built by
the script) is found by its value, as before. Values nested in a combination are shared with
the sweeper's own: change only the combination itself.

No lock: each entry is written by the one thread that claimed its combination, and every
change is one dictionary operation (atomic in CPython), so threads and forked children (which
inherit a copy of the table) need none.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from execo_engine.elements import HashableDict

_MUTABLE = (dict, list, set)  #: what the script could change in place (and its own subtypes)


class HandedOut:
    """The copies handed out and not finished yet, each with the element of the store it
    stands for (both kept alive here, so that an identity is never reused meanwhile)."""

    def __init__(self) -> None:
        self._copies: dict[int, tuple[Any, Any]] = {}  # id(copy) -> (copy, store element)
        self._by_element: dict[Any, int] = {}  # store element -> id(its copy)

    def hand(self, elements: Sequence[Any], originals: Sequence[Any]) -> list[Any]:
        """What to give the script for ``elements`` of the store, whose objects of the script
        are ``originals``: a copy of each mutable one (remembered), the others as they are."""
        given = []
        copies, by_element = self._copies, self._by_element
        for element, original in zip(elements, originals, strict=True):
            if type(original) is HashableDict:  # the combinations of sweep(): a quick copy
                duplicate: Any = HashableDict(original)
            elif isinstance(original, _MUTABLE):
                duplicate = copy.copy(original)
            else:
                given.append(original)
                continue
            earlier = by_element.pop(element, None)  # handed out before (and given back)
            if earlier is not None:
                copies.pop(earlier, None)
            copies[id(duplicate)] = (duplicate, element)
            by_element[element] = id(duplicate)
            given.append(duplicate)
        return given

    def resolve(self, given: Iterable[Any]) -> list[Any | None]:
        """For each value the script gives back: the element of the store that value was
        handed out for, if it is one of the copies handed out (by identity), else None."""
        found: list[Any | None] = []
        for value in given:
            entry = self._copies.get(id(value))
            found.append(entry[1] if entry is not None and entry[0] is value else None)
        return found

    def forget(self, elements: Iterable[Any]) -> None:
        """The script is done with the copies of ``elements`` (elements of the store, or
        values equal to them)."""
        for element in elements:
            copy_id = self._by_element.pop(element, None)
            if copy_id is not None:
                self._copies.pop(copy_id, None)
