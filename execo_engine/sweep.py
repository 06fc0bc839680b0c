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
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from execo_engine.elements import SCALARS, HashableDict, SweepList

if TYPE_CHECKING:
    from execo_engine.sweeper import ParamSweeper

__all__ = ["HashableDict", "ParamSweeper", "SweepList", "geom", "igeom", "sweep", "sweep_stats"]


def _distinct(factors: list[list[tuple[tuple[Any, Any], ...]]]) -> bool:
    """Whether the product of these factors' parts gives all different combinations: each
    factor's parts differ as dicts (whatever the order of their items), no part repeats a key,
    and no two factors share a key."""
    seen_keys: set[Any] = set()
    try:
        for parts in factors:
            keys = {key for part in parts for key, _ in part}
            if (
                len(set(map(frozenset, parts))) != len(parts)
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


def _check_paired(factor: tuple[Any, ...]) -> None:
    """Fail naming a paired factor (a tuple key) that names no factor or one name twice."""
    if not factor:
        raise ValueError("sweep: the paired factor () names no factor")
    repeated = [name for name in dict.fromkeys(factor) if factor.count(name) > 1]
    if repeated:
        raise ValueError(f"sweep: paired factor {factor!r} names {repeated[0]!r} twice")


def _level_items(factor: Any, level: Any) -> tuple[tuple[Any, Any], ...]:
    """The items a level gives a combination: ``(factor, level)``, or for a paired factor (a
    tuple of names) each name with its value in the level tuple."""
    if not isinstance(factor, tuple):
        return ((factor, level),)
    if not isinstance(level, (tuple, list)):
        raise TypeError(
            f"sweep: each level of paired factor {factor!r} must be a tuple of {len(factor)} "
            f"values, one per name, got {type(level).__name__} {level!r}"
        )
    if len(level) != len(factor):
        raise ValueError(
            f"sweep: level {level!r} of paired factor {factor!r} has {len(level)} value(s), "
            f"needs {len(factor)}: one per name"
        )
    return tuple(zip(factor, level, strict=True))


def _factor_parts(factor: Any, levels: Any) -> list[tuple[tuple[Any, Any], ...]]:
    """The partial combinations (tuples of items) contributed by one factor."""
    if isinstance(factor, tuple):
        _check_paired(factor)
    if isinstance(levels, Mapping):
        parts: list[tuple[tuple[Any, Any], ...]] = []
        for level, sub_parameters in levels.items():
            if not isinstance(sub_parameters, Mapping):
                raise TypeError(
                    f"sweep: sub-sweep of factor {factor!r} at level {level!r} must be a dict, "
                    f"got {type(sub_parameters).__name__} {sub_parameters!r}"
                )
            items = _level_items(factor, level)
            parts.extend((*items, *tuple(sub.items())) for sub in _combinations(sub_parameters))
        return parts
    return [_level_items(factor, level) for level in _levels(factor, levels)]


def _plain(factors: list[list[tuple[tuple[Any, Any], ...]]]) -> bool:
    """Whether every name and value these factors' parts give is one of the
    :data:`~execo_engine.elements.SCALARS` (then so is every one of their combinations)."""
    return all(
        type(key) in SCALARS and type(value) in SCALARS
        for parts in factors
        for part in parts
        for key, value in part
    )


def _check_pairs_alone(parameters: Mapping[Any, Any]) -> None:
    """Fail naming a name that a paired factor shares with another factor of the same dict:
    the later one's level would silently replace the pair's in every combination. (Other
    factors that share a name, a sub-sweep's with its parent's, keep execo's meaning: the
    later level wins.)"""
    seen: dict[Any, Any] = {}
    for factor in parameters:
        for name in factor if isinstance(factor, tuple) else (factor,):
            other = seen.setdefault(name, factor)
            if other != factor and (isinstance(factor, tuple) or isinstance(other, tuple)):
                raise ValueError(
                    f"sweep: {name!r} is a name of both {other!r} and {factor!r}: a combination "
                    f"has one level per name; remove it from one of them"
                )


def _combinations(parameters: Mapping[Any, Any]) -> SweepList:
    _check_pairs_alone(parameters)
    factors = [
        parts for factor, levels in parameters.items() if (parts := _factor_parts(factor, levels))
    ]
    return SweepList(
        (
            HashableDict(itertools.chain.from_iterable(combination))
            for combination in itertools.product(*factors)
        ),
        _distinct(factors),
        _plain(factors),
    )


def _factor_names(parameters: Mapping[Any, Any]) -> dict[Any, None]:
    """Every factor name of a (valid) sweep dict, sub-sweeps and paired names included, in
    order of appearance."""
    names: dict[Any, None] = {}
    for factor, levels in parameters.items():
        names.update(dict.fromkeys(factor if isinstance(factor, tuple) else (factor,)))
        if isinstance(levels, Mapping):
            for sub_parameters in levels.values():
                names.update(_factor_names(sub_parameters))
    return names


Exclude: TypeAlias = Callable[[HashableDict], object] | Sequence[Mapping[Any, Any]]
"""What ``sweep(exclude=...)`` takes: a predicate on a combination, or partial dicts."""


def _check_partial(index: int, partial: Any, names: dict[Any, None]) -> None:
    """Fail naming ``exclude[index]`` unless it is a non-empty dict whose keys are factors of
    the sweep (a typo would otherwise exclude nothing, silently). Its levels are not checked:
    trimming a factor's levels for a quick run must not break the exclusions."""
    if not isinstance(partial, Mapping):
        raise TypeError(
            f"sweep: exclude[{index}] must be a partial dict of factor -> level, "
            f"got {type(partial).__name__} {partial!r}"
        )
    if not partial:
        raise ValueError(f"sweep: exclude[{index}] is empty: it would leave out every combination")
    for factor, level in partial.items():
        for name in factor if isinstance(factor, tuple) else (factor,):
            if name not in names:
                raise ValueError(
                    f"sweep: exclude[{index}] names {name!r}, which is no factor of the sweep "
                    f"(factors: {', '.join(map(repr, names)) or 'none'})"
                )
        if isinstance(factor, tuple):  # a paired factor's names, with a tuple of levels
            _level_items(factor, level)


def _exclusion(exclude: Exclude, names: dict[Any, None]) -> Callable[[HashableDict], object]:
    """The predicate telling which combinations of a sweep with factors ``names`` to leave out,
    or an error naming the bad part of ``exclude``."""
    if callable(exclude):
        return exclude
    if not isinstance(exclude, (list, tuple)):
        fix = f": wrap it in a list, exclude=[{exclude!r}]" if isinstance(exclude, Mapping) else ""
        raise TypeError(
            f"sweep: exclude must be a callable taking a combination or a list of partial "
            f"dicts, got {type(exclude).__name__}{fix}"
        )
    for index, partial in enumerate(exclude):
        _check_partial(index, partial, names)
    partials = [
        tuple(item for factor, level in partial.items() for item in _level_items(factor, level))
        for partial in exclude
    ]

    def matches_one(combination: HashableDict) -> bool:
        return any(
            all(factor in combination and combination[factor] == level for factor, level in p)
            for p in partials
        )

    return matches_one


def sweep(parameters: Mapping[Any, Any], exclude: Exclude | None = None) -> SweepList:
    """All combinations of the levels of each factor (full factorial design), less the excluded.

    ``parameters`` maps each factor to its levels: any non-string iterable (list, tuple, range,
    generator, consumed once; a set is sorted). When the levels are a dict instead, its keys are
    the levels and each value is a sub-sweep dict explored only at that level (recursive
    sub-sweep). A factor with no level contributes nothing.

    A tuple of names as a key is a *paired* factor: its levels are tuples of as many values, the
    names varying together (``{("model", "batch"): [("small", 256), ("large", 32)]}`` gives
    ``model`` and ``batch`` keys, 2 levels, not 4). It is one factor for the order, anywhere a
    factor can be (sub-sweeps too; dict levels are then keyed by tuples).

    ``exclude`` leaves combinations out, as if they had never been in the grid: a callable taking
    a combination (true: leave it out; it must not modify it), or a list of partial dicts (a
    combination is left out when it has, for every key of one of them, that key with an equal
    level; a paired factor's tuple of names is a key too, with a tuple of levels).

    Returns a list (a :class:`SweepList`) of :class:`HashableDict`, the first factor varying
    slowest, in a deterministic order (the order of the dict and of the levels); a combination
    has the keys of its factors in that order, a paired factor's names in tuple order, a
    sub-sweep's keys right after its factor's. Exclusion keeps the order of the rest.

    Raises ``TypeError`` naming the factor when its levels are a string, bytes, a scalar or None,
    naming factor and level when a sub-sweep is not a dict or a paired factor's level is not a
    tuple, and when ``exclude`` is neither a callable nor a list of dicts. Raises ``ValueError``
    naming the paired factor and level when a level tuple has the wrong length, the paired factor
    when it repeats a name or shares one with another factor of its dict, and the exclusion and
    key when it names no factor of the sweep.
    """
    if not isinstance(parameters, Mapping):
        raise TypeError(
            f"sweep: parameters must be a dict of factor -> levels, got {type(parameters).__name__}"
        )
    combinations = _combinations(parameters)
    if exclude is None:
        return combinations
    excluded = _exclusion(exclude, _factor_names(parameters))
    kept = (c for c in combinations if not excluded(c))
    return SweepList(kept, combinations.distinct, combinations.plain)


def _read_number(function: str, name: str, value: float | str) -> float:
    """``value`` as execo read it: an integer, or a string of one, stays exact (for igeom's
    integer parts); anything else ``float()`` reads becomes a float, a string of a number too
    (argparse options are strings)."""
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str | bytes):
        with contextlib.suppress(ValueError):
            return int(value)
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{function}: {name} must be a number, got {value!r}") from None
    except TypeError:
        raise TypeError(f"{function}: {name} must be a number, got {value!r}") from None


def _number(function: str, name: str, value: float | str) -> float:
    """The bound ``name`` of ``function`` as a finite number (:func:`_read_number`)."""
    number = _read_number(function, name, value)
    try:
        finite = math.isfinite(number)
    except OverflowError:  # an int beyond a float's range
        finite = False
    if not finite:
        raise ValueError(
            f"{function}: {name} must be a finite number (within a float's range), got {value!r}"
        )
    return number


def _step_count(function: str, num_steps: float | str) -> int:
    """``num_steps`` as an int: a real number with a whole, non-negative value (``3``, ``3.0``,
    a NumPy integer) or a string of an int (``"3"``), as execo accepts them; a bool is no
    count."""
    wrong_type = f"{function}: num_steps must be an int or a string of one, got {num_steps!r}"
    if isinstance(num_steps, bool):
        raise TypeError(wrong_type)
    try:
        steps = int(num_steps)
    except TypeError:
        raise TypeError(wrong_type) from None
    except (ValueError, OverflowError):  # a string of no int, nan, inf
        steps = None
    if steps is None or (not isinstance(num_steps, str | bytes) and steps != num_steps):
        raise ValueError(f"{function}: num_steps must be a whole number, got {num_steps!r}")
    if steps < 0:
        raise ValueError(f"{function}: num_steps must be >= 0, got {num_steps!r}")
    return steps


def _bounds(function: str, range_min: float | str, range_max: float | str) -> tuple[float, float]:
    """Both bounds as finite numbers (:func:`_number`), non-zero, of the same sign."""
    low = _number(function, "range_min", range_min)
    high = _number(function, "range_max", range_max)
    if low == 0 or high == 0 or (low < 0) != (high < 0):
        raise ValueError(
            f"{function}: no geometric progression from {range_min!r} to {range_max!r} "
            f"(bounds must be non-zero and of the same sign)"
        )
    return low, high


def _geom(
    function: str, range_min: float | str, range_max: float | str, num_steps: float | str
) -> list[float]:
    """:func:`geom`, its errors naming ``function``."""
    low, high = (float(bound) for bound in _bounds(function, range_min, range_max))
    steps = _step_count(function, num_steps)
    if steps == 0:
        return []
    if steps == 1:
        return [low]
    span = high / low
    if span == 0 or math.isinf(span):
        raise ValueError(
            f"{function}: range_max / range_min ({range_max!r} / {range_min!r}) is beyond a "
            f"float's range: bring the bounds closer"
        )
    ratio = span ** (1 / (steps - 1))
    return [low * ratio**i for i in range(steps - 1)] + [high]


def geom(range_min: float | str, range_max: float | str, num_steps: float | str) -> list[float]:
    """A geometric progression of ``num_steps`` floats from ``range_min`` to ``range_max``.

    The same floats as execo 2.8.2, to the last bit (file names made from them stay the same):
    with ``ratio = (range_max / range_min) ** (1 / (num_steps - 1))``, element ``i`` is
    ``range_min * ratio ** i``, and the last one is ``range_max`` itself.
    ``geom(1, 100, 3) == [1.0, 10.0, 100.0]``; 1 step gives ``[range_min]``, 0 steps ``[]``.
    As in execo, the bounds may be strings of numbers and ``num_steps`` a string of an int (an
    argparse option): ``geom("1", "100", "3") == [1.0, 10.0, 100.0]``.

    Raises ``ValueError`` when a bound is a string of no number, infinite, NaN or zero, when the
    bounds are of different signs or, for 2 steps or more, so far apart that ``range_max /
    range_min`` is 0 or infinite as a float (execo answered with ``inf`` and ``nan`` elements),
    or when ``num_steps`` is negative or not a whole number (an integral float such as ``3.0``
    is accepted); ``TypeError`` when a bound or ``num_steps`` is neither a number nor a string,
    or ``num_steps`` is a bool. Each error names the argument.
    """
    return _geom("geom", range_min, range_max, num_steps)


def igeom(range_min: float | str, range_max: float | str, num_steps: float | str) -> list[int]:
    """Sorted, distinct integers along ``geom(range_min, range_max, num_steps)``, as execo
    2.8.2 gives them: each value rounded to the nearest integer (``round``, ties to even), plus
    the integer parts (``int``, towards zero) of both bounds; so fractional bounds can give more
    integers than steps: ``igeom(1.5, 10.5, 3) == [1, 2, 4, 10]``. One step gives
    ``[int(range_min)]``, 0 steps ``[]``. Strings and errors as :func:`geom`, the errors
    starting with ``igeom:``.
    """
    values = _geom("igeom", range_min, range_max, num_steps)
    if len(values) <= 1:
        return [int(value) for value in values]
    low, high = _bounds("igeom", range_min, range_max)
    return sorted({round(value) for value in values} | {int(low), int(high)})


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
    level of the total. Factors are the keys of the combinations: each name of a paired factor
    is a factor of its own.
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
