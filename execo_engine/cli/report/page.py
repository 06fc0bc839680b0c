"""The report as one HTML page that needs nothing else: its style, its scripts (plotly.js once,
and the page's own), its data and its figures are all inside, so that it opens from ``file://``
on a node without network.

Escaping, the one rule of this module: every text that comes from a sweep (names, factors,
levels, values, errors, hosts, locations) reaches the page either through :func:`h` (escaped
HTML text) or as JSON in a ``<script type="application/json">`` element, made :func:`inert`
so that it cannot end the element (the figures' JSON too, though plotly escapes it already);
the page's script puts it in the page as text (``textContent``) only, and plotly gets it
escaped for its own markup (see :mod:`.figures`). A Content-Security-Policy allows only the
page's own scripts (by their hashes) and no network at all, as a second line of defence.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import json
import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import execo_engine
from execo_engine.cli.report.collect import STATES, ReportData, SweepData
from execo_engine.cli.report.figures import Figure, text
from execo_engine.results import COMBINATION_COLUMN

#: Per factor, at most this many levels are listed in the per-factor tables.
MAX_LEVEL_ROWS = 200
#: Table columns whose cells never wrap (sweep names break badly at their hyphens).
NOWRAP = frozenset({"sweep"})
#: Up to this many sweeps, the per-factor tables of each are open; past it, one click away.
OPEN_SWEEPS = 3
_STATE_NAMES = {
    "done": "done",
    "failed": "failed",
    "inprogress": "in progress",
    "skipped": "skipped",
    "remaining": "remaining",
}
_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def h(value: Any) -> str:
    """``value`` as escaped HTML text (quotes too: safe in attributes)."""
    return html.escape(text(value), quote=True)


def script_json(value: Any) -> str:
    """``value`` as JSON that can sit inside a ``<script>`` element: ``<``, ``>`` and ``&``
    (and U+2028, U+2029) are written as ``\\u`` escapes, which JSON reads back as the same
    text."""
    return inert(json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")))


def inert(encoded: str) -> str:
    """JSON text ``encoded`` with ``<``, ``>``, ``&``, U+2028 and U+2029 written as ``\\u``
    escapes (they only appear inside JSON strings, where the escape means the same)."""
    for unsafe, safe in _SCRIPT_ESCAPES.items():
        encoded = encoded.replace(unsafe, safe)
    return encoded


def _asset(name: str) -> str:
    return resources.files("execo_engine.cli.report").joinpath("assets", name).read_text("utf-8")


def _utc(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float) -> str:
    """``seconds`` for a person: ``42 s``, ``3 min 05 s``, ``2 h 07 min``, ``3 d 04 h``."""
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600:02d} h"


def rate(per_second: float | None) -> str:
    """A rate of combinations for a person (per second, minute, hour or day)."""
    if not per_second:
        return "-"
    for unit, scale in (("s", 1), ("min", 60), ("h", 3600)):
        if per_second * scale >= 1:
            return f"{per_second * scale:.3g}/{unit}"
    return f"{per_second * 86400:.3g}/day"


def _bar(counts: Mapping[str, int], total: int, small: bool = False) -> str:
    """A bar of the states of ``counts`` (remaining is the background)."""
    title = ", ".join(f"{counts.get(s, 0)} {_STATE_NAMES[s]}" for s in STATES)
    spans = "".join(
        f'<span class="{s}" style="width:{100 * counts.get(s, 0) / total:.3f}%"></span>'
        for s in STATES
        if s != "remaining" and total and counts.get(s, 0)
    )
    return f'<div class="bar{" small" if small else ""}" title="{h(title)}">{spans}</div>'


def _legend() -> str:
    return (
        '<p class="legend">'
        + "".join(f'<span><i class="{s}"></i>{_STATE_NAMES[s]}</span>' for s in STATES)
        + "</p>"
    )


# -- tables whose rows the page's script shows (sort, filter, pages) ------------------------


def _cell(value: Any) -> Any:
    """A value as the tables carry it: a finite number, a text, or None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, datetime.datetime):
        return round(value.timestamp(), 3)
    return text(value)


def _column(name: str, cells: list[Any], kind: str | None = None) -> dict[str, Any]:
    """A table column: its ``type`` (number, time, text) and its cells, as ``levels`` and
    ``codes`` when they repeat much (factor levels, hosts), else as ``values``."""
    present = {type(cell) for cell in cells} - {type(None)}
    kind = kind or ("number" if present and present <= {int, float} else "text")
    column: dict[str, Any] = {"name": name, "type": kind}
    levels = dict.fromkeys(cells)  # 1 and 1.0 are one level: the page shows both as 1
    if len(levels) * 4 > len(cells) + 16:
        column["values"] = cells
    else:
        index = {level: k for k, level in enumerate(levels)}
        column["levels"], column["codes"] = list(levels), [index[cell] for cell in cells]
    return column


def table(
    table_id: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    kinds: Mapping[str, str] | None = None,
    pre: Iterable[str] = (),
) -> dict[str, Any]:
    """The JSON of a table of ``rows`` with ``columns`` (``kinds``: a column's type when not
    guessed, ``time`` for seconds since the epoch; ``pre``: columns shown as preformatted
    text)."""
    kinds, pre = kinds or {}, set(pre)
    specs = []
    for name in columns:
        spec = _column(name, [_cell(row.get(name)) for row in rows], kinds.get(name))
        if name in pre:
            spec["pre"] = True
        if name in NOWRAP:
            spec["nowrap"] = True
        specs.append(spec)
    return {"id": table_id, "rows": len(rows), "columns": specs}


# -- sections ---------------------------------------------------------------------------------


def _summary(data: ReportData) -> str:
    total = sum(s.counts["total"] for s in data.sweeps)
    done = sum(s.counts["done"] for s in data.sweeps)
    failed = sum(s.counts["failed"] for s in data.sweeps)
    workers = sorted({w for s in data.sweeps for w in s.workers})
    state = "complete" if data.complete else f"{len(workers)} live worker(s)"
    return (
        f"{len(data.sweeps)} sweep(s): {done} of {total} combinations done, {failed} failed, "
        f"{state}"
    )


def _progress(data: ReportData) -> str:
    heads = ["Sweep", "Progress", "Done", "Failed", "In progress", "Skipped", "Remaining"]
    heads += ["Total", "Rate", "Time left", "Live workers", "Dead owners"]
    rows = []
    for index, sweep in enumerate(data.sweeps):
        counts, total = sweep.counts, sweep.counts["total"]
        percent = f"{100 * counts['done'] / total:.1f}%" if total else "-"
        left = sweep.time_left
        when = "complete" if sweep.complete else "-" if left is None else duration(left)
        dead = sweep.dead_owners
        # a rate only while someone works: past results say nothing of when the rest is done
        pace = rate(sweep.rate) if sweep.workers else "-" if sweep.complete else "idle"
        numbers = "".join(f'<td class="num n-{s}">{counts[s]}</td>' for s in STATES)
        rows.append(
            f'<tr id="sweep-{index}"><td><span class="name">{h(sweep.name)}</span>'
            f'<span class="loc">{h(sweep.location)}</span></td>'
            f"<td>{_bar(counts, total)}<span class='loc'>{percent} done</span></td>{numbers}"
            f'<td class="num n-total">{total}</td>'
            f'<td class="num n-rate" title="{h(sweep.rate_basis)}">{pace}</td>'
            f'<td class="num n-left">{when}</td>'
            f'<td class="n-workers">{len(sweep.workers)}<span class="loc">'
            f"{h(', '.join(sweep.workers))}</span></td>"
            f'<td class="n-dead{" dead" if dead else ""}">{len(dead)}<span class="loc">'
            f"{h(', '.join(dead))}</span></td></tr>"
        )
    header = "".join(f"<th{' class=num' if i > 1 else ''}>{t}</th>" for i, t in enumerate(heads))
    dead_note = (
        '<p class="note dead">Dead owners still hold claims: <code>execo-sweep reclaim '
        f"{h(shlex.quote(data.location))}</code> gives them back (any writer does too).</p>"
        if any(s.dead_owners for s in data.sweeps)
        else ""
    )
    return (
        f'<section id="progress"><h2>Progress</h2>{_legend()}<div class="scroll">'
        f'<table id="progress-table"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}'
        f"</tbody></table></div>{dead_note}</section>"
    )


#: The columns of the failures and claims tables after the factors.
FAILURE_COLUMNS = ("attempts", "state", "last error", "when")
CLAIM_COLUMNS = ("state", "owner", "host", "pid", "since", "for (s)")
#: The columns of the runs table, those the runs have (``diff``, a digest, and the owners of
#: the processes are left out).
RUN_COLUMNS = (
    *("sweep", "kind", "start", "end", "host", "user", "commit", "dirty", "results"),
    *("processes", "ended", "done", "failed", "command", "python", "versions", "id"),
)


def _combination_rows(
    data: ReportData,
    entries: Iterable[tuple[str, Mapping[Any, Any], dict[str, Any]]],
    fixed: Sequence[str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of ``(sweep, combination, other cells)`` entries, a column per factor (named as
    in the results table where it can, ``factor_`` before a name that is one of ``fixed``);
    the rows and the factor columns, in the results' order first."""
    rows, seen = [], {}
    for sweep, combination, cells in entries:
        if not isinstance(combination, Mapping):  # an element that is not a dict: one column
            combination = {COMBINATION_COLUMN: combination}
        named = {}
        for factor, level in combination.items():
            name = text(factor)
            named[f"factor_{name}" if name in fixed or name == "sweep" else name] = level
        seen.update(dict.fromkeys(named))
        rows.append({"sweep": sweep, **named, **cells})
    ordered = [f for f in data.factors if f in seen]
    return rows, ordered + [f for f in seen if f not in set(ordered)]


def _failure_rows(data: ReportData) -> tuple[list[dict[str, Any]], list[str]]:
    entries = (
        (
            sweep.name,
            failure.combination,
            {
                "attempts": failure.attempts,
                "state": failure.state,
                "last error": failure.error,
                "when": failure.since,
            },
        )
        for sweep in data.sweeps
        for failure in sweep.failures
    )
    return _combination_rows(data, entries, FAILURE_COLUMNS)


def _holding_rows(data: ReportData) -> tuple[list[dict[str, Any]], list[str]]:
    entries = (
        (
            sweep.name,
            held.combination,
            {
                "state": held.state,
                "owner": "dead" if held.dead else "alive",
                "host": held.host,
                "pid": held.pid,
                "since": held.since,
                "for (s)": round(data.generated - held.since),
            },
        )
        for sweep in data.sweeps
        for held in sweep.holdings
    )
    return _combination_rows(data, entries, CLAIM_COLUMNS)


def _run_rows(data: ReportData) -> tuple[list[dict[str, Any]], list[str]]:
    """The runs as table rows (versions as ``name version`` text) and their columns."""
    rows = []
    for run in data.runs:
        versions = run.get("versions")
        if isinstance(versions, dict):
            versions = ", ".join(f"{name} {version}" for name, version in versions.items())
        rows.append({**run, "versions": versions})
    return rows, [c for c in RUN_COLUMNS if any(c in run for run in rows)]


def _factors_section(data: ReportData) -> str:
    parts = []
    for sweep in data.sweeps:
        if sweep.by_factor is None:
            parts.append(
                f"<h3>{h(sweep.name)}</h3><p class='note'>Per-factor counts need saved sweeps "
                "of dicts: this sweep has none (create it with ParamSweeper(..., "
                "save_sweeps=True)).</p>"
            )
            continue
        tables = []
        for factor, levels in sweep.by_factor.items():
            heads = "".join(f"<th class=num>{_STATE_NAMES[s]}</th>" for s in STATES)
            body = "".join(
                f"<tr><td>{h(level.level)}</td><td>{_bar(level.counts, level.total, True)}</td>"
                f"<td class=num>{level.total}</td>"
                + "".join(f'<td class="num n-{s}">{level.counts[s]}</td>' for s in STATES)
                + "</tr>"
                for level in levels[:MAX_LEVEL_ROWS]
            )
            more = (
                f"<p class='note'>{len(levels) - MAX_LEVEL_ROWS} more levels not listed.</p>"
                if len(levels) > MAX_LEVEL_ROWS
                else ""
            )
            tables.append(
                f'<div><table class="factor" data-factor="{h(factor)}"><thead><tr>'
                f"<th>{h(factor)}</th><th></th><th class=num>total</th>{heads}</tr></thead>"
                f"<tbody>{body}</tbody></table>{more}</div>"
            )
        parts.append(
            f"<details{' open' if len(data.sweeps) <= OPEN_SWEEPS else ''}>"
            f"<summary>{h(sweep.name)}</summary>"
            f'<div class="factors">{"".join(tables)}</div></details>'
        )
    return f'<section id="factors"><h2>Per factor</h2>{"".join(parts)}</section>'


def _figures_section(sweeps: Sequence[SweepData], figures: Sequence[Figure]) -> str:
    parts = []
    for sweep in sweeps:
        mine = [(k, f) for k, f in enumerate(figures) if f.sweep == sweep.name]
        if not mine:
            parts.append(
                f"<h3>{h(sweep.name)}</h3><p class='note'>No numeric value recorded yet (record "
                "some with the execo_record fixture or ParamSweeper.record_result).</p>"
            )
            continue
        holders = "".join(
            f'<div class="figure" id="figure-{k}" data-value="{h(f.value)}" '
            f'data-factor="{h(f.factor)}"></div>'
            for k, f in mine
        )
        parts.append(f'<h3>{h(sweep.name)}</h3><div class="figures">{holders}</div>')
    note = (
        "<p class='note'>Each point is the mean of the results at that level, its bars the "
        "minimum and maximum; hover for the spread and the count. The menu of a figure draws "
        "a line per level of another factor, or one line.</p>"
    )
    return f'<section id="figures"><h2>Figures</h2>{note}{"".join(parts)}</section>'


@dataclass(frozen=True)
class _TableSpec:
    """A section holding a table the page's script draws (sort, filter, pages)."""

    id: str
    title: str
    rows: Sequence[Mapping[str, Any]]
    columns: Sequence[str]
    kinds: Mapping[str, str]
    note: str
    empty: str  #: what the section says when there is no row
    pre: Sequence[str] = ()

    def table(self) -> dict[str, Any]:
        return table(self.id, self.rows, self.columns, self.kinds, self.pre)

    def section(self) -> str:
        body = (
            f"<p class='note'>{self.note}</p><div class='holder' id='holder-{self.id}'></div>"
            if self.rows
            else f"<p class='note'>{self.empty}</p>"
        )
        return (
            f'<section id="{self.id}"><h2>{self.title} <span class="count">'
            f"({len(self.rows)})</span></h2>{body}</section>"
        )


# -- the page ---------------------------------------------------------------------------------


def _script(code: str) -> tuple[str, str]:
    """A ``<script>`` element of ``code`` and its CSP source (its hash)."""
    digest = base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii")
    return f"<script>{code}</script>", f"'sha256-{digest}'"


def render(
    data: ReportData,
    figures: Sequence[Figure],
    plotly_js: str,
    template: str,
    reload_seconds: float | None = None,
    note: str = "",
) -> str:
    """The page of ``data`` with ``figures`` (``plotly_js``: the library, inlined once;
    ``template``: the plotly layout template JSON every figure uses; ``reload_seconds``: the
    page reloads itself that often, for ``--watch``; ``note``: a line under the title)."""
    failures, failure_factors = _failure_rows(data)
    holdings, holding_factors = _holding_rows(data)
    runs, run_columns = _run_rows(data)
    lead = ["sweep"] if len(data.sweeps) > 1 else []  # one sweep: no sweep column
    failed = sum(s.counts["failed"] for s in data.sweeps)
    specs = [
        _TableSpec(
            "failures",
            "Failures",
            failures,
            [*lead, *failure_factors, *FAILURE_COLUMNS],
            {"when": "time"},
            f"{failed} combination(s) failed for good; every combination with failed attempts "
            "is listed, with its state now and its last error.",
            "No failed attempt.",
            pre=("last error",),
        ),
        _TableSpec(
            "claims",
            "Claims",
            holdings,
            [*lead, *holding_factors, *CLAIM_COLUMNS],
            {"since": "time"},
            "Combinations held now: in progress, or skipped by a live session; a dead owner's "
            "are given back by the next writer.",
            "No combination is held.",
        ),
        _TableSpec(
            "runs",
            "Runs",
            runs,
            [c for c in run_columns if c != "sweep" or lead],
            {"start": "time", "end": "time"},
            "Who ran the sweeps, with which code: each pytest session, Engine run and worker.",
            "No run record in these sweeps (written by the sessions, Engine runs and workers of "
            "execo_engine 3 and later).",
        ),
        _TableSpec(
            "results",
            "Results",
            data.rows,
            [*lead, *(c for c in data.columns if c != "sweep")],
            {"time": "time"},
            "Click a column to sort; type in its box to filter (text it contains, or a "
            "comparison: >3, <=0.5, =2, !=a).",
            "No result recorded yet.",
        ),
    ]
    tables = [spec.table() for spec in specs if spec.rows]
    section = {spec.id: spec.section() for spec in specs}
    sections = [
        _progress(data),
        section["failures"],
        section["claims"],
        _factors_section(data),
        _figures_section(data.sweeps, figures),
        section["runs"],
        section["results"],
    ]
    nav = "".join(
        f'<a href="#{anchor}">{name}</a>'
        for anchor, name in (
            ("progress", "Progress"),
            ("failures", "Failures"),
            ("claims", "Claims"),
            ("factors", "Per factor"),
            ("figures", "Figures"),
            ("runs", "Runs"),
            ("results", "Results"),
        )
    )
    if reload_seconds:
        nav += (
            f'<span class="watching">reloads every {reload_seconds:g} s '
            '<label><input type="checkbox" id="pause-reload"> pause</label></span>'
        )
    payload = "".join(
        [
            f'<script type="application/json" id="report-tables">{script_json(tables)}</script>',
            '<script type="application/json" id="report-figures">[',
            ",".join(inert(f.spec) for f in figures),  # plotly escapes them too: belt and braces
            "]</script>",
            f'<script type="application/json" id="report-template">{inert(template)}</script>',
        ]
    )
    scripts = [_script(plotly_js), _script(_asset("report.js"))]
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
        f"script-src {' '.join(source for _, source in scripts)}"
    )
    return "".join(
        [
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
            f'<meta http-equiv="Content-Security-Policy" content="{h(policy)}">',
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>Sweep report: {h(data.location)}</title>",
            f"<style>{_asset('report.css')}</style></head>",
            f'<body data-reload="{f"{reload_seconds:g}" if reload_seconds else ""}">'
            "<header><h1>Sweep report</h1>",
            f'<p class="where">{h(data.location)} · {_utc(data.generated)} UTC · execo_engine '
            f"{h(execo_engine.__version__)}</p>",
            f'<p class="summary" id="summary">{h(_summary(data))}</p>',
            f"<p class='note'>{h(note)}</p>" if note else "",
            f"<nav>{nav}</nav></header><main>",
            *sections,
            "</main>",
            payload,
            *(element for element, _ in scripts),
            "</body></html>\n",
        ]
    )
