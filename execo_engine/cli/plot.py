"""``execo-sweep plot``: a recorded value against a factor, with its spread and counts.

Each point is the mean of the results at one level of the x factor (and of the hue factor),
over every other factor and every repetition; a band shows the spread (from the smallest to
the largest of those results), and the number of results of each point is written beside it
(in the title when every point has as many). Lines come in the order of the hue levels in the
grid; the x axis is numeric (logarithmic when the levels span decades, as ``geom`` makes
them), or the levels in grid order. The command prints what it drew, point by point.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, NamedTuple

from execo_engine.results import load_results, result_table


class Point(NamedTuple):
    """One point of a series: the x level and the results there."""

    x: Any
    mean: float
    low: float  #: the smallest result
    high: float  #: the largest result
    results: int  #: how many


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def grid_order(location: str, column: str) -> dict[Any, int]:
    """The rank of each level of the factor shown as ``column``, in the order the levels first
    appear in the grids (sweeps order)."""
    order: dict[Any, int] = {}
    for row in load_results(location, include_pending=True):  # rows in sweeps order
        level = row.get(column)
        if level is not None and _hashable(level):
            order.setdefault(level, len(order))
    return order


def plot_series(
    rows: Iterable[dict[str, Any]], x: str, y: str, hue: str | None, order: dict[Any, int]
) -> dict[Any, list[Point]]:
    """``{series label: points}``: the numeric ``y`` values of ``rows`` grouped by ``hue``
    level (one series, labelled ``y``, without ``hue``) and ``x`` level; series in ``order``
    (of the hue levels), points by ``x`` (numbers ascending, other levels in ``order``)."""
    values: dict[Any, dict[Any, list[float]]] = {}
    for row in rows:
        value, level = row.get(y), row.get(x)
        if level is None or not _hashable(level):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            label = row.get(hue) if hue else y  # a number, not NaN
            values.setdefault(label, {}).setdefault(level, []).append(float(value))
    last = len(order)

    def x_key(level: Any) -> tuple[int, Any]:
        return (0, level) if _is_number(level) else (1, order.get(level, last))

    return {
        label: [
            Point(level, sum(ys) / len(ys), min(ys), max(ys), len(ys))
            for level, ys in sorted(points.items(), key=lambda item: x_key(item[0]))
        ]
        for label, points in sorted(values.items(), key=lambda item: order.get(item[0], last))
    }


def _spans_decades(values: list[float]) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 100


def _check(names: Iterable[str], available: list[str], what: str) -> None:
    for name in names:
        if name not in available:
            raise ValueError(
                f"unknown {what} {name!r} (available: {', '.join(available) or 'none'})"
            )


def plot(location: str, x: str, y: str, hue: str | None, output: str) -> list[str]:
    """Draw ``y`` against ``x`` (one line per ``hue`` level) into the file ``output``, in the
    format of its extension (PNG, ``.png`` added, when it has none); returns the lines that
    tell what was drawn and the file written. ``ValueError`` naming an unknown factor or
    value, or when no numeric ``y`` was recorded; ``ImportError`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot needs matplotlib: pip install 'execo_engine[plot]'") from None

    _, factors, values, rows = result_table(location)
    _check([x] + ([hue] if hue else []), factors, "factor")
    _check([y], [*values, "duration"], "value")
    series = plot_series(rows, x, y, hue, grid_order(location, hue) if hue else {})
    if not series:
        raise ValueError(f"no numeric {y!r} value recorded in {location}")
    levels = {point.x for points in series.values() for point in points}
    positions: dict[Any, int] = {}
    if not all(map(_is_number, levels)):  # levels drawn in grid order, evenly spaced
        order = grid_order(location, x)
        ranked = sorted(levels, key=lambda level: order.get(level, len(order)))
        positions = {level: i for i, level in enumerate(ranked)}
    counts = {point.results for points in series.values() for point in points}
    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    for label, points in series.items():
        xs = [positions.get(p.x, p.x) for p in points]
        name = f"{hue}={label}" if hue else str(label)
        line = axes.plot(xs, [p.mean for p in points], marker="o", label=name)[0]
        colour = line.get_color()
        axes.fill_between(
            xs, [p.low for p in points], [p.high for p in points], color=colour, alpha=0.2
        )
        for x_value, point in zip(xs, points, strict=True):
            if len(counts) > 1:
                axes.annotate(
                    f"n={point.results}",
                    (x_value, point.mean),
                    textcoords="offset points",
                    xytext=(0, 6),
                    ha="center",
                    fontsize=7,
                    color=colour,
                )
    if positions:
        axes.set_xticks(list(positions.values()), [str(level) for level in positions])
    elif _spans_decades([float(level) for level in levels]):
        axes.set_xscale("log")
    if _spans_decades([v for ps in series.values() for p in ps for v in (p.low, p.high)]):
        axes.set_yscale("log")
    axes.set_xlabel(x)
    axes.set_ylabel(f"{y} (mean; band: smallest to largest)")
    per_point = f"{next(iter(counts))} result(s) per point" if len(counts) == 1 else "n results"
    axes.set_title(f"{y} by {x}" + (f" and {hue}" if hue else "") + f" ({per_point})")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    written = output if os.path.splitext(output)[1] else f"{output}.png"  # as savefig would
    figure.savefig(written)
    plt.close(figure)
    lines = [f"wrote {written}: {len(series)} series, mean and spread (smallest to largest)"]
    for label, points in series.items():
        name = f"{hue}={label}" if hue else str(label)
        lines.append(
            f"  {name}: "
            + ", ".join(
                f"{p.x}: {p.mean:.4g} [{p.low:.4g}, {p.high:.4g}] n={p.results}" for p in points
            )
        )
    return lines
