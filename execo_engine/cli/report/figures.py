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
import statistics
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


@dataclass(frozen=True)
class Figure:
    """One figure of the report."""

    sweep: str
    value: str
    factor: str
    spec: str  #: the plotly figure as JSON, safe inside a ``<script>`` element


def require_plotly() -> None:
    """Raise a :class:`UsageError` that says how to install plotly when it is missing."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise UsageError("report needs plotly: pip install 'execo_engine[report]'") from None


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
    """Whether ``value`` is drawn on a numeric axis (an int or a float, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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


@dataclass
class _Cell:
    """The results at one point of a line."""

    ys: list[float]

    def hover(self, value: str) -> str:
        mean = statistics.fmean(self.ys)
        spread = statistics.stdev(self.ys) if len(self.ys) > 1 else 0.0
        return (
            f"{label(value)}: mean {mean:.4g}<br>min {min(self.ys):.4g}, max {max(self.ys):.4g}, "
            f"std {spread:.3g}<br>n = {len(self.ys)} result(s)"
        )


def _levels(rows: Sequence[Mapping[str, Any]], factor: str, order: Sequence[Any]) -> list[Any]:
    """The levels of ``factor`` in ``rows``: numbers ascending, else in ``order`` (the sweeps')
    then in order of appearance."""
    present = {row.get(factor): None for row in rows if factor in row}
    if all(is_number(level) for level in present):
        return sorted(present)
    known = [level for level in order if level in present]
    return known + [level for level in present if level not in set(known)]


class _FigureMaker:
    """The figures of one sweep's rows."""

    def __init__(
        self,
        sweep: str,
        factors: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        orders: Mapping[str, Sequence[Any]],
    ) -> None:
        self.sweep, self.rows = sweep, rows
        levels = {f: _levels(rows, f, orders.get(f, ())) for f in factors}
        self.levels = {f: ls for f, ls in levels.items() if len(ls) > 1}
        self.numeric = {f: all(is_number(v) for v in ls) for f, ls in self.levels.items()}

    def _x(self, factor: str, level: Any) -> Any:
        return level if self.numeric[factor] else label(level)

    def _lines(
        self, value: str, factor: str, group: str | None, visible: bool
    ) -> list[dict[str, Any]]:
        """One trace per level of ``group`` (one trace for None): the means of ``value`` at each
        level of ``factor``."""
        cells: dict[Any, dict[Any, _Cell]] = {}
        for row in self.rows:
            y = row.get(value)
            if y is not None and factor in row:
                line = cells.setdefault(row.get(group) if group else None, {})
                line.setdefault(row[factor], _Cell([])).ys.append(y)
        traces = []
        group_levels = self.levels[group] if group else [None]
        for line_level in group_levels:
            points = cells.get(line_level, {})
            xs = [level for level in self.levels[factor] if level in points]
            if not xs:
                continue
            means = [statistics.fmean(points[x].ys) for x in xs]
            where = f"{label(group)}={label(line_level)}<br>" if group else ""
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{label(group)}={label(line_level)}" if group else "all results",
                    "x": [self._x(factor, x) for x in xs],
                    "y": means,
                    "error_y": {
                        "type": "data",
                        "symmetric": False,
                        "array": [max(points[x].ys) - m for x, m in zip(xs, means, strict=True)],
                        "arrayminus": [
                            m - min(points[x].ys) for x, m in zip(xs, means, strict=True)
                        ],
                        "thickness": 1,
                    },
                    "hovertext": [
                        f"{label(factor)}={label(x)}<br>{where}{points[x].hover(value)}" for x in xs
                    ],
                    "hoverinfo": "text",
                    "visible": visible,
                }
            )
        return traces

    def _dots(self, value: str, factor: str) -> list[dict[str, Any]]:
        """Every result as a dot, its combination on hover (none past :data:`MAX_POINTS`)."""
        kept = [row for row in self.rows if row.get(value) is not None and factor in row]
        if not kept or len(kept) > MAX_POINTS:
            return []
        names = [f for f in self.levels if f in kept[0]] or [factor]
        return [
            {
                "type": "scatter",
                "mode": "markers",
                "name": "each result",
                "x": [self._x(factor, row[factor]) for row in kept],
                "y": [row[value] for row in kept],
                "marker": {"color": _GREY, "size": 5},
                "hovertext": [
                    "<br>".join(f"{label(f)}={label(row.get(f))}" for f in names)
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

    maker = _FigureMaker(sweep, factors, rows, orders or {})
    drawn = []
    for value in numeric_values(rows, [*values, *EXTRA_VALUES]):
        for factor in maker.levels:
            spec = maker.figure(value, factor)
            checked = go.Figure(spec)  # plotly checks every attribute
            drawn.append(Figure(sweep, value, factor, plotly.io.to_json(checked, validate=False)))
    return drawn
