"""Pure combinatorics of parameter sweeps: ``sweep``, ``HashableDict``, ``geom``, ``igeom``,
``sweep_stats``.

Nothing here touches the disk. ``ParamSweeper`` (the persistent work queue) lives in
:mod:`execo_engine.sweeper` and is re-exported here lazily, so that ``from execo_engine.sweep
import ParamSweeper`` works as in the original documentation without this module depending on the
store layers.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["HashableDict", "ParamSweeper", "SweepList", "geom", "igeom", "sweep", "sweep_stats"]

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


class HashableDict(dict):
    """A ``dict`` usable as a set member or dict key.

    Its hash depends only on its items (not on their order, and keys of mixed types are fine), so
    it is consistent with equality, including equality with a plain ``dict`` with the same items.
    The hash is computed once and cached; any mutation drops the cache, but a mutated dict that
    already sits in a set or as a key is lost there, as for any hashable: do not mutate it after
    its first use as a key. All values must be hashable for the hash to exist.
    """

    __slots__ = ("_hash",)

    def __hash__(self) -> int:  # type: ignore[override]
        cached: int | None = getattr(self, "_hash", None)
        if cached is None:
            cached = self._hash = hash(frozenset(self.items()))
        return cached

    def __reduce__(self) -> tuple[Any, ...]:
        # The cached hash is salted per process: never pickle it.
        return (HashableDict, (dict(self),))

    def __copy__(self) -> HashableDict:
        return HashableDict(self)


def _invalidating(name: str) -> Any:
    method = getattr(dict, name)

    def mutate(self: HashableDict, *args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(AttributeError):
            del self._hash
        return method(self, *args, **kwargs)

    mutate.__name__ = name
    mutate.__doc__ = method.__doc__
    return mutate


for _name in _MUTATORS:
    setattr(HashableDict, _name, _invalidating(_name))


class SweepList(list):  # type: ignore[type-arg]
    """The list :func:`sweep` returns: a plain list of HashableDicts that also knows, until it
    is changed, whether its combinations are all different (``distinct``), which spares
    ``ParamSweeper`` checking it. Changing a combination in place after ``sweep()`` is not seen:
    pass ``list(...)`` of it then."""

    __slots__ = ("distinct",)

    def __init__(self, combinations: Iterable[HashableDict] = (), distinct: bool = False) -> None:
        super().__init__(combinations)
        self.distinct = distinct


def _forgetting(name: str) -> Any:
    method = getattr(list, name)

    def mutate(self: SweepList, *args: Any, **kwargs: Any) -> Any:
        self.distinct = False
        return method(self, *args, **kwargs)

    mutate.__name__ = name
    mutate.__doc__ = method.__doc__
    return mutate


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert"):
    setattr(SweepList, _name, _forgetting(_name))


def _distinct(factors: list[list[tuple[tuple[Any, Any], ...]]]) -> bool:
    """Whether the product of these factors' parts gives all different combinations: each
    factor's parts differ, no part repeats a key, and no two factors share a key."""
    seen_keys: set[Any] = set()
    try:
        for parts in factors:
            keys = {key for part in parts for key, _ in part}
            if (
                len(set(parts)) != len(parts)
                or not keys.isdisjoint(seen_keys)
                or any(len({key for key, _ in part}) != len(part) for part in parts)
            ):
                return False
            seen_keys |= keys
    except TypeError:  # unhashable levels: nothing is known
        return False
    return True


def _levels(factor: Any, levels: Any) -> list[Any]:
    """The levels of ``factor`` as a list, or a ``TypeError`` naming the factor."""
    if (
        isinstance(levels, (str, bytes, bytearray))
        or levels is None
        or not isinstance(levels, Iterable)
    ):
        raise TypeError(
            f"sweep: levels of factor {factor!r} must be a non-string iterable (list, tuple, "
            f"range, ...), got {type(levels).__name__} {levels!r}"
        )
    if isinstance(levels, (set, frozenset)):
        # A set iterates in a per-process order (salted str hashes): make it deterministic.
        try:
            return sorted(levels)
        except TypeError:
            return sorted(levels, key=repr)
    return list(levels)


def _factor_parts(factor: Any, levels: Any) -> list[tuple[tuple[Any, Any], ...]]:
    """The partial combinations (tuples of items) contributed by one factor."""
    if isinstance(levels, Mapping):
        parts = []
        for level, sub_parameters in levels.items():
            if not isinstance(sub_parameters, Mapping):
                raise TypeError(
                    f"sweep: sub-sweep of factor {factor!r} at level {level!r} must be a dict, "
                    f"got {type(sub_parameters).__name__} {sub_parameters!r}"
                )
            parts.extend(
                ((factor, level), *tuple(sub.items())) for sub in _combinations(sub_parameters)
            )
        return parts
    return [((factor, level),) for level in _levels(factor, levels)]


def _combinations(parameters: Mapping[Any, Any]) -> SweepList:
    factors = [
        parts for factor, levels in parameters.items() if (parts := _factor_parts(factor, levels))
    ]
    return SweepList(
        (
            HashableDict(itertools.chain.from_iterable(combination))
            for combination in itertools.product(*factors)
        ),
        _distinct(factors),
    )


def sweep(parameters: Mapping[Any, Any]) -> SweepList:
    """All combinations of the levels of each factor (full factorial design).

    ``parameters`` maps each factor to its levels: any non-string iterable (list, tuple, range,
    generator, consumed once; a set is sorted). When the levels are a dict instead, its keys are
    the levels and each value is a sub-sweep dict explored only at that level (recursive
    sub-sweep). A factor with no level contributes nothing.

    Returns a list (a :class:`SweepList`) of :class:`HashableDict`, the first factor varying
    slowest, in a deterministic order (the order of the dict and of the levels).

    Raises ``TypeError`` naming the factor when its levels are a string, bytes, a scalar or None,
    and naming factor and level when a sub-sweep is not a dict.
    """
    if not isinstance(parameters, Mapping):
        raise TypeError(
            f"sweep: parameters must be a dict of factor -> levels, got {type(parameters).__name__}"
        )
    return _combinations(parameters)


def geom(range_min: float, range_max: float, num_steps: int) -> list[float]:
    """A geometric progression of ``num_steps`` floats from ``range_min`` to ``range_max``.

    ``geom(1, 100, 3) == [1.0, 10.0, 100.0]``; 1 step gives ``[range_min]``, 0 steps ``[]``.
    Both bounds must be of the same sign and non-zero (``ValueError`` otherwise).
    """
    if not isinstance(num_steps, int) or isinstance(num_steps, bool):
        raise TypeError(f"geom: num_steps must be an int, got {num_steps!r}")
    if num_steps < 0:
        raise ValueError(f"geom: num_steps must be >= 0, got {num_steps}")
    if range_min == 0 or range_max == 0 or (range_min < 0) != (range_max < 0):
        raise ValueError(
            f"geom: no geometric progression from {range_min!r} to {range_max!r} "
            f"(bounds must be non-zero and of the same sign)"
        )
    if range_min < 0:
        return [-x for x in geom(-range_min, -range_max, num_steps)]
    if num_steps == 0:
        return []
    if num_steps == 1:
        return [float(range_min)]
    ratio = range_max / range_min
    values = [range_min * ratio ** (i / (num_steps - 1)) for i in range(num_steps)]
    values[-1] = range_max
    return [float(x) for x in values]


def igeom(range_min: float, range_max: float, num_steps: int) -> list[int]:
    """The sorted, unique integers nearest to ``geom(range_min, range_max, num_steps)``."""
    return sorted({round(x) for x in geom(range_min, range_max, num_steps)})


_STATS = ("remaining", "skipped", "inprogress", "done", "failed")


def _count(combinations: Iterable[Mapping[Any, Any]]) -> dict[Any, dict[Any, int]]:
    counts: dict[Any, dict[Any, int]] = {}
    for combination in combinations:
        for factor, level in combination.items():
            per_level = counts.setdefault(factor, {})
            per_level[level] = per_level.get(level, 0) + 1
    return counts


def sweep_stats(stats: Sequence[Iterable[Mapping[Any, Any]]]) -> dict[str, dict[Any, Any]]:
    """Per factor and per level counts and ratios of a ``ParamSweeper.stats()`` tuple.

    ``stats`` is ``(sweeps, remaining, skipped, inprogress, done)``, optionally followed by the
    failed combinations (``ParamSweeper.get_failed()``). The result has the keys ``total``, and
    for each state ``remaining``, ``skipped``, ``inprogress``, ``done`` (and ``failed``) the counts
    ``{factor: {level: count}}`` (levels with no combination in that state are absent) and the
    ratios ``<state>_ratio`` ``{factor: {level: count / total count of that level}}`` for every
    level of the total.
    """
    sweeps, *states = stats
    total = _count(sweeps)
    result: dict[str, dict[Any, Any]] = {"total": total}
    for name, combinations in zip(_STATS, states, strict=False):
        counts = _count(combinations)
        result[name] = counts
        result[name + "_ratio"] = {
            factor: {level: counts.get(factor, {}).get(level, 0) / n for level, n in levels.items()}
            for factor, levels in total.items()
        }
    return result


def __getattr__(name: str) -> Any:
    # ParamSweeper sits on the store layers, above this module: import it only when asked.
    if name == "ParamSweeper":
        from execo_engine.sweeper import ParamSweeper

        return ParamSweeper
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
