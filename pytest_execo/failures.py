"""The short text a failed combination keeps as its last error (see ``ParamSweeper.fail``)."""

from __future__ import annotations

import os

import pytest

from execo_engine.sweeper import source_location


def failure_text(report: pytest.TestReport, root: str | os.PathLike[str]) -> str:
    """``file:line: exception line`` of a report that did not pass (a failure, an error, a
    skip), the file relative to ``root`` when it lies below it, prefixed by the phase
    (``setup: ``, ``teardown: ``) outside the call; the first line of the report's text when it
    carries no location (a crash of an xdist worker, a text made by a plugin)."""
    phase = "" if report.when == "call" else f"{report.when}: "
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, message)
        path, line, message = longrepr
    elif crash is not None:
        path, line, message = crash.path, crash.lineno, crash.message
    else:
        lines = report.longreprtext.strip().splitlines()
        return phase + (lines[0] if lines else report.outcome)
    return f"{phase}{source_location(path, line, root)}: {message}"
