"""``execo-sweep report LOCATION -o report.html``: one HTML file that shows where the sweeps of
LOCATION stand and what they found, and that opens anywhere, offline (see :mod:`.page`).

:mod:`.collect` reads the sweeps, :mod:`.figures` draws them with plotly (the optional extra
``report``), :mod:`.page` writes the page. This module writes the file, atomically (a reader
never sees half a page), once or, with ``--watch``, again every SECONDS until every sweep is
complete (the page reloads itself meanwhile).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import TextIO

from execo_engine.cli.options import check_seconds
from execo_engine.cli.report import figures as drawing
from execo_engine.cli.report.collect import Reader, ReportData
from execo_engine.cli.report.page import render
from execo_engine.cli.views import UsageError

__all__ = ["UsageError", "build", "run", "write_atomically"]


def build(data: ReportData, reload_seconds: float | None = None, note: str = "") -> str:
    """The page of ``data`` (see :func:`~execo_engine.cli.report.page.render`)."""
    drawn = []
    for sweep in data.sweeps:
        rows = [row for row in data.rows if row["sweep"] == sweep.name]
        orders = {f: [level.level for level in ls] for f, ls in (sweep.by_factor or {}).items()}
        drawn += drawing.figures(sweep.name, sweep.factors, data.values, rows, orders)
    return render(data, drawn, drawing.plotly_js(), drawing.template(), reload_seconds, note)


def write_atomically(path: str, content: str) -> None:
    """Replace the file ``path`` by ``content`` at once: written beside it, then renamed over
    it, so that a browser reloading it reads the old page or the new one, whole."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def run(location: str, output: str, watch: float | None = None, out: TextIO = sys.stdout) -> int:
    """Write the report of ``location`` to ``output``; with ``watch`` (seconds), again every
    ``watch`` seconds until every sweep is complete (returns 0) or Ctrl-C (130, after a last
    page that no longer reloads). Bad input is a :class:`UsageError`."""
    drawing.require_plotly()
    if watch is not None:
        check_seconds("--watch", watch)
    if os.path.isdir(output):
        raise UsageError(f"-o {output}: a directory; give the path of the HTML file to write")
    reader = Reader(location)
    try:
        return _write(reader, output, watch, out)
    finally:
        reader.close()


def _write(reader: Reader, output: str, watch: float | None, out: TextIO) -> int:
    """:func:`run`'s loop: a page, then (``watch``) a page every ``watch`` seconds."""
    data = reader.read()
    try:
        while True:
            started = time.monotonic()
            reload = None if watch is None or data.complete else watch
            write_atomically(output, build(data, reload))
            print(f"wrote {output} ({_one_line(data)})", file=out, flush=True)
            if reload is None:
                return 0
            time.sleep(max(0.0, reload - (time.monotonic() - started)))  # pace, not synchronise
            data = reader.read()
    except KeyboardInterrupt:
        note = f"--watch stopped at {time.strftime('%Y-%m-%d %H:%M:%S')}: this page is not updated"
        write_atomically(output, build(data, None, note))
        print(f"wrote {output}: watch stopped", file=out)
        return 130


def _one_line(data: ReportData) -> str:
    done = sum(s.counts["done"] for s in data.sweeps)
    total = sum(s.counts["total"] for s in data.sweeps)
    return f"{done}/{total} done" + (", complete" if data.complete else "")
