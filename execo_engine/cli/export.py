"""``execo-sweep results`` and ``execo-sweep runs``: the rows of :mod:`execo_engine.results`
written as CSV, JSON lines, Parquet or a Markdown table, and the runs of a sweep listed.

Every format has the columns of :func:`~execo_engine.results.load_results`, in its order.
Text formats write ``time`` in ISO 8601 (UTC, ``+00:00``), a missing value as an empty cell
(CSV, Markdown) or ``null`` (JSON), and a value that is a list, a dict or a tuple as its JSON
text (CSV, Markdown, Parquet); JSON lines keep them as JSON. ``pandas.read_csv(FILE,
parse_dates=["time"])``, ``pandas.read_json(FILE, lines=True)`` and ``pandas.read_parquet(FILE)``
read them back.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from execo_engine.provenance import code_label
from execo_engine.results import ANALYSIS_EXTRA, load_runs, result_table
from execo_engine.store.locations import Location

FORMATS = ("csv", "jsonl", "parquet", "markdown")
#: The format a file name's extension says, when no --format is given.
_BY_EXTENSION = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet", ".md": "markdown"}


def format_of(output_format: str | None, output: str | None) -> str:
    """The format to write: ``output_format`` if given, else the one the extension of
    ``output`` names (``.csv``, ``.jsonl``, ``.parquet``, ``.md``), else CSV. ``ValueError``
    when ``output_format`` contradicts a known extension (``-o r.parquet --format csv``)."""
    named = _BY_EXTENSION.get(os.path.splitext(output or "")[1].lower())
    if output_format is None:
        return named or "csv"
    if named is not None and named != output_format:
        raise ValueError(
            f"-o {output} names a {named} file, but --format {output_format}: leave out "
            f"--format (the extension decides), or give a matching file name"
        )
    return output_format


def _json_ready(value: Any) -> Any:
    """``value`` as JSON holds it: tuples as lists, keys as text, datetimes in ISO 8601."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset)):
        return [_json_ready(item) for item in value]
    if isinstance(value, bytes):
        return repr(value)
    return value


def _cell(value: Any) -> Any:
    """``value`` in a table cell: a scalar stays, anything else becomes its JSON text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return json.dumps(_json_ready(value), ensure_ascii=False, default=repr)


def _markdown_cell(value: Any) -> str:
    text = "" if value is None else str(_cell(value))
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _write_text(
    out: IO[str], output_format: str, columns: list[str], rows: list[dict[str, Any]]
) -> None:
    if output_format == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([_cell(row[c]) for c in columns] for row in rows)
    elif output_format == "jsonl":
        for row in rows:
            out.write(json.dumps(_json_ready(row), ensure_ascii=False, default=repr) + "\n")
    else:
        out.write("| " + " | ".join(map(_markdown_cell, columns)) + " |\n")
        out.write("|" + "---|" * len(columns) + "\n")
        for row in rows:
            out.write("| " + " | ".join(_markdown_cell(row[c]) for c in columns) + " |\n")


def _parquet_column(values: list[Any]) -> list[Any]:
    """The cells of a column as Parquet holds them: of one type (ints and floats together),
    or else as text."""
    cells = [_cell(value) for value in values]
    kinds = {type(cell) for cell in cells if cell is not None}
    if len(kinds) > 1 and not kinds <= {int, float}:
        return [None if cell is None else str(cell) for cell in cells]
    return cells


def _write_parquet(output: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
    try:
        import pandas
    except ImportError:
        raise ImportError(f"--format parquet needs pandas and pyarrow: {ANALYSIS_EXTRA}") from None
    frame = pandas.DataFrame(
        {
            c: [row[c] for row in rows] if c == "time" else _parquet_column([r[c] for r in rows])
            for c in columns
        },
        columns=columns,
    )
    frame["time"] = pandas.to_datetime(frame["time"], utc=True)
    try:
        frame.to_parquet(output, index=False)
    except ImportError:
        raise ImportError(f"--format parquet needs pyarrow: {ANALYSIS_EXTRA}") from None


def export(location: Location, output_format: str, output: str | None) -> str | None:
    """Write the results at ``location`` in ``output_format`` to the file ``output`` (None:
    standard output; Parquet needs a file); returns what was written, for a person (None when
    written to standard output). ``ValueError`` for a bad format, ``ImportError`` naming the
    ``analysis`` extra when Parquet cannot be written."""
    if output_format not in FORMATS:
        raise ValueError(f"format {output_format!r}: expected one of {', '.join(FORMATS)}")
    columns, _, _, rows = result_table(location)
    if output_format == "parquet":
        if output is None:
            raise ValueError("--format parquet writes a file: give it with -o FILE")
        _write_parquet(output, columns, rows)
    else:
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(output, "w", newline="")) if output else sys.stdout
            _write_text(out, output_format, columns, rows)
    if output is None:
        return None
    return f"wrote {len(rows)} result(s), {len(columns)} columns, as {output_format} to {output}"


def _finished(run: dict[str, Any]) -> str:
    done = "?" if run["done"] is None else str(run["done"])
    text = f"{done} done"
    if run["failed"]:
        text += f", {run['failed']} failed attempt(s)"
    missing = run["processes"] - run["ended"]
    if missing > 0:
        text += (
            f" (+ what {missing} of its {run['processes']} process(es) did: no end record, "
            f"running or killed)"
        )
    return text


def run_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    """The lines of ``execo-sweep runs``: per sweep, one line per run."""
    lines, sweep = [], None
    for run in runs:
        if run["sweep"] != sweep:
            sweep = run["sweep"]
            lines.append(f"{sweep}:")
        start = run["start"].strftime("%Y-%m-%d %H:%M:%S UTC") if run["start"] else "?"
        who = f"{run['user'] or '?'}@{run['host'] or '?'}"
        lines.append(
            f"  {run['id']}  {start}  {run['kind'] or '?'}  {who}  "
            f"{code_label(run['commit'], run['dirty'], run['diff'])}  {_finished(run)}, "
            f"{run['results']} result(s)"
        )
        if run["command"]:
            lines.append(f"      {run['command']}")
    return lines


def runs_json(runs: Sequence[dict[str, Any]]) -> str:
    """``execo-sweep runs --json``: every field of every run."""
    return json.dumps({"runs": _json_ready(list(runs))}, ensure_ascii=False, indent=1)


def list_runs(location: Location, as_json: bool) -> None:
    """Print the runs recorded at ``location`` (see :func:`run_lines`)."""
    runs = load_runs(location)
    if as_json:
        print(runs_json(runs))
    elif not runs:
        print(f"{location}: no run recorded (results written before run records, or outside a run)")
    else:
        print("\n".join(run_lines(runs)))
