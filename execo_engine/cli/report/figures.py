"""The report's figures, made with plotly (the optional extra ``report``): for a sweep, each
numeric recorded value (and the duration) against each factor with more than one level, a line
per level of another factor (a menu in the figure picks which, or none), each point the mean of
the results there with min-max bars, its spread and count on hover, and, while a figure has at
most :data:`MAX_POINTS` results, every result as a dot whose hover shows its combination.

Plotly draws text as its own small HTML (``<br>``, ``<b>``, entities): every text of a figure
that comes from the user (names, levels, values) goes through :func:`label`, which escapes it,
so that plotly shows it as it is and never as markup. The figure JSON is plotly's own, which
escapes ``<``, ``>`` and ``/``: it can sit inside a ``<script>`` element as it is.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from execo_engine.cli.views import UsageError

#: A factor with more levels than this is not offered as a grouping (too many lines to read).
MAX_GROUP_LEVELS = 12
#: Up to this many results in a figure, each is also drawn as a dot that shows its combination.
MAX_POINTS = 3000
#: Up to this many levels of a numeric factor, each has its tick on the axis.
MAX_TICKS = 15
#: Value columns drawn besides the recorded values.
EXTRA_VALUES = ("duration",)
_GREY = "rgba(90, 90, 90, 0.35)"
_FLOAT_MAX = 2**1023


@dataclass(frozen=True)
class Figure:
    """One figure of the report."""

    sweep: str
    value: str
    factor: str
    spec: str  #: the plotly figure as JSON, safe inside a ``<script>`` element


def require_plotly() -> None:
    """Raise a :class:`UsageError` that says how to install plotly (and numpy, which sums the
    results up) when one is missing."""
    try:
        import numpy  # noqa: F401
        import plotly  # noqa: F401
    except ImportError as error:
        raise UsageError(
            f"report needs plotly and numpy ({error}): pip install 'execo_engine[report]'"
        ) from None


def plotly_js() -> str:
    """plotly.js, the library's own bundled copy, to inline once in a page."""
    from plotly.offline import get_plotlyjs

    script: str = get_plotlyjs()
    if "</script" in script.lower() or "<!--" in script:  # would end the <script> element
        raise RuntimeError("this plotly.js cannot be inlined in a <script> element")
    return script


def template() -> str:
    """The plotly layout template every figure of a page uses, as JSON (kept once in the page,
    not in each figure)."""
    import plotly.io
    import plotly.io.json

    chosen = plotly.io.templates["plotly_white"].to_plotly_json()
    spec: str = plotly.io.json.to_json_plotly(chosen)
    return spec


def text(value: Any) -> str:
    """How a level or value reads in the report: a string as it is, anything else its
    ``repr`` (``1``, ``1.5``, ``True``, ``(1, 2)``)."""
    return value if isinstance(value, str) else repr(value)


def label(value: Any) -> str:
    """:func:`text` of ``value``, escaped for plotly's text markup (shown as it is)."""
    return html.escape(text(value), quote=False)


def is_number(value: Any) -> bool:
    """Whether ``value`` is drawn on a numeric axis: a finite float, or an int (not a bool)
    that a float holds."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < _FLOAT_MAX


def numeric_values(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """The names among ``names`` whose values in ``rows`` are all numbers or None, one at least
    a number, in the order given."""
    kept = []
    for name in names:
        seen = [row[name] for row in rows if row.get(name) is not None]
        if seen and all(is_number(v) for v in seen):
            kept.append(name)
    return kept


def _spans_decades(values: Sequence[float]) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 100


def _levels(rows: Sequence[Mapping[str, Any]], factor: str, order: Sequence[Any]) -> list[Any]:
    """The levels of ``factor`` in ``rows`` (None: the row has none): numbers ascending, else in
    ``order`` (the sweeps') then in order of appearance; none when a level is unhashable."""
    try:
        present = dict.fromkeys(row.get(factor) for row in rows)
    except TypeError:  # a level that is a list or a dict: not drawn
        return []
    present.pop(None, None)
    if all(is_number(level) for level in present):
        return sorted(present)
    known = [level for level in order if level in present]
    return known + [level for level in present if level not in set(known)]


@dataclass(frozen=True)
class _Cells:
    """The results of one value at each (line, x) cell of a figure: arrays of shape
    ``(lines, xs)``; a cell without results has ``count`` 0 and NaN elsewhere."""

    count: Any
    mean: Any
    low: Any
    high: Any
    std: Any  #: the sample standard deviation (0 for one result)


def _cells(x: Any, line: Any, y: Any, shape: tuple[int, int]) -> _Cells:
    """Aggregate ``y`` (floats, NaN: no result) by ``(line, x)`` codes (-1: no level)."""
    import numpy

    keep = ~numpy.isnan(y) & (x >= 0) & (line >= 0)
    cell, y = (line * shape[1] + x)[keep], y[keep]
    size = shape[0] * shape[1]
    count = numpy.bincount(cell, minlength=size)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        mean = numpy.bincount(cell, weights=y, minlength=size) / count
        squares = numpy.bincount(cell, weights=(y - mean[cell]) ** 2, minlength=size)
        std = numpy.where(count > 1, numpy.sqrt(squares / (count - 1)), 0.0)
    low, high = numpy.full(size, numpy.nan), numpy.full(size, numpy.nan)
    if len(cell):
        order = numpy.argsort(cell, kind="stable")
        cell, y = cell[order], y[order]
        starts = numpy.flatnonzero(numpy.r_[True, cell[1:] != cell[:-1]])
        low[cell[starts]] = numpy.minimum.reduceat(y, starts)
        high[cell[starts]] = numpy.maximum.reduceat(y, starts)
    return _Cells(*(a.reshape(shape) for a in (count, mean, low, high, std)))


class _FigureMaker:
    """The figures of one sweep's rows."""

    def __init__(
        self,
        factors: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        orders: Mapping[str, Sequence[Any]],
    ) -> None:
        import numpy

        self.rows, self.factors = rows, list(factors)
        levels = {f: _levels(rows, f, orders.get(f, ())) for f in factors}
        self.levels = {f: ls for f, ls in levels.items() if len(ls) > 1}
        self.numeric = {f: all(is_number(v) for v in ls) for f, ls in self.levels.items()}
        self.codes: dict[str | None, Any] = {None: numpy.zeros(len(rows), dtype=numpy.int64)}
        for factor, ls in self.levels.items():  # per factor, its level's index in each row
            index = {level: k for k, level in enumerate(ls)}
            self.codes[factor] = numpy.fromiter(
                (index.get(row.get(factor), -1) for row in rows),
                dtype=numpy.int64,
                count=len(rows),
            )
        self._values: dict[str, Any] = {}

    def _y(self, value: str) -> Any:
        """The values named ``value`` of the rows as floats (NaN: none)."""
        if value not in self._values:
            import numpy

            self._values[value] = numpy.array(
                [numpy.nan if row.get(value) is None else row[value] for row in self.rows],
                dtype=float,
            )
        return self._values[value]

    def _x(self, factor: str, level: Any) -> Any:
        return level if self.numeric[factor] else label(level)

    def _lines(
        self, value: str, factor: str, group: str | None, visible: bool
    ) -> list[dict[str, Any]]:
        """One trace per level of ``group`` (one trace for None): the means of ``value`` at each
        level of ``factor``."""
        xs, lines = self.levels[factor], self.levels[group] if group else [None]
        cells = _cells(self.codes[factor], self.codes[group], self._y(value), (len(lines), len(xs)))
        traces = []
        for k, line_level in enumerate(lines):
            at = [i for i in range(len(xs)) if cells.count[k, i]]
            if not at:
                continue
            mean, low, high = (a[k, at].tolist() for a in (cells.mean, cells.low, cells.high))
            where = f"{label(group)}={label(line_level)}<br>" if group else ""
            hovers = [
                f"{label(factor)}={label(xs[i])}<br>{where}{label(value)}: mean "
                f"{cells.mean[k, i]:.4g}<br>min {cells.low[k, i]:.4g}, max {cells.high[k, i]:.4g}"
                f", std {cells.std[k, i]:.3g}<br>n = {cells.count[k, i]} result(s)"
                for i in at
            ]
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{label(group)}={label(line_level)}" if group else "all results",
                    "x": [self._x(factor, xs[i]) for i in at],
                    "y": mean,
                    "error_y": {
                        "type": "data",
                        "symmetric": False,
                        "array": [h - m for h, m in zip(high, mean, strict=True)],
                        "arrayminus": [m - lo for lo, m in zip(low, mean, strict=True)],
                        "thickness": 1,
                    },
                    "hovertext": hovers,
                    "hoverinfo": "text",
                    "visible": visible,
                }
            )
        return traces

    def _dots(self, value: str, factor: str) -> list[dict[str, Any]]:
        """Every result as a dot, its combination on hover (none past :data:`MAX_POINTS`)."""
        import numpy

        if numpy.count_nonzero(~numpy.isnan(self._y(value))) > MAX_POINTS:
            return []
        kept = [
            row for row in self.rows if row.get(value) is not None and row.get(factor) is not None
        ]
        if not kept:
            return []
        return [
            {
                "type": "scatter",
                "mode": "markers",
                "name": "each result",
                "x": [self._x(factor, row[factor]) for row in kept],
                "y": [row[value] for row in kept],
                "marker": {"color": _GREY, "size": 5},
                "hovertext": [
                    "<br>".join(
                        f"{label(f)}={label(row[f])}"
                        for f in self.factors
                        if row.get(f) is not None
                    )
                    + f"<br>{label(value)} = {label(row[value])}"
                    + (f"<br>outcome: {label(row['outcome'])}" if row.get("outcome") else "")
                    for row in kept
                ],
                "hoverinfo": "text",
            }
        ]

    def figure(self, value: str, factor: str) -> dict[str, Any]:
        """The figure of ``value`` against ``factor``, as a plotly figure dict."""
        groups = [g for g in self.levels if g != factor and len(self.levels[g]) <= MAX_GROUP_LEVELS]
        options: list[str | None] = [*groups, None]
        traces: list[dict[str, Any]] = []
        spans = []
        for index, group in enumerate(options):
            lines = self._lines(value, factor, group, visible=index == 0)
            spans.append((len(traces), len(traces) + len(lines)))
            traces += lines
        dots = self._dots(value, factor)
        buttons = [
            {
                "label": f"lines by {label(group)}" if group else "one line",
                "method": "restyle",
                "args": [
                    {"visible": [start <= i < end for i in range(len(traces))] + [True] * len(dots)}
                ],
            }
            for group, (start, end) in zip(options, spans, strict=True)
        ]
        ys = [y for t in traces for y in t["y"]] + [y for t in dots for y in t["y"]]
        layout: dict[str, Any] = {
            "title": {"text": f"{label(value)} by {label(factor)}", "x": 0.02},
            "xaxis": {"title": {"text": label(factor)}},
            "yaxis": {"title": {"text": f"{label(value)} (mean, bars: min-max)"}},
            "height": 400,
            "margin": {"l": 60, "r": 20, "t": 70, "b": 50},
            "hovermode": "closest",
            "legend": {"orientation": "h", "y": -0.2},
            "template": "none",  # the page gives every figure its template, once
        }
        if self.numeric[factor] and _spans_decades(self.levels[factor]):
            layout["xaxis"]["type"] = "log"  # levels spanning decades, as geom() makes them
        if self.numeric[factor] and len(self.levels[factor]) <= MAX_TICKS:
            layout["xaxis"].update(tickmode="array", tickvals=self.levels[factor])
        elif not self.numeric[factor]:
            layout["xaxis"].update(
                type="category",
                categoryorder="array",
                categoryarray=[label(level) for level in self.levels[factor]],
            )
        if _spans_decades(ys):
            layout["yaxis"]["type"] = "log"
        if len(buttons) > 1:
            layout["updatemenus"] = [
                {"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.18, "yanchor": "top"}
            ]
        return {"data": traces + dots, "layout": layout}


def figures(
    sweep: str,
    factors: Sequence[str],
    values: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    orders: Mapping[str, Sequence[Any]] | None = None,
) -> list[Figure]:
    """The figures of one sweep: each numeric one of ``values`` (and the duration) in
    ``rows`` against each of ``factors`` with more than one level (``orders``: the levels of
    each factor in sweeps order, for factors whose levels are not all numbers)."""
    import plotly.graph_objects as go
    import plotly.io

    maker = _FigureMaker(factors, rows, orders or {})
    drawn = []
    for value in numeric_values(rows, [*values, *EXTRA_VALUES]):
        for factor in maker.levels:
            spec = maker.figure(value, factor)
            checked = go.Figure(spec)  # plotly checks every attribute
            drawn.append(Figure(sweep, value, factor, plotly.io.to_json(checked, validate=False)))
    return drawn
