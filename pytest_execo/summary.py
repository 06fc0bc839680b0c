"""What a session with ``--execo-sweep-dir`` prints: its header line, its collection line and the
per-sweep section of the terminal summary.

- Header: where it records, and how many combinations were done before the session.
- Collection line: ``execo: D/N combinations done [, F failed] in DIR, running R`` (see
  :attr:`pytest_execo.recorder.SweepRecorder.counts`), followed by a line for each sweep it
  runs whose earlier results came from other code (see :mod:`pytest_execo.runs`). Under
  pytest-xdist the workers collect and the controller does not: it prints the counts of the
  first worker that sends them (see :mod:`pytest_execo.xdist_handoff`) when that worker's
  collection reaches it, or in the summary section when they come at the worker's end.
- Summary: per sweep, its totals now and what this session's tests did (an item's worst report
  of its last attempt), and each combination failed for good with its last error. Under
  pytest-xdist a worker tags each report that counts (a call's, or one that did not pass) with
  its item's sweep for the controller, which prints the summary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from execo_engine.store.locations import shown
from pytest_execo.items import RUN_PLUGIN
from pytest_execo.outcome import is_rerun
from pytest_execo.xdist_handoff import Counts

if TYPE_CHECKING:
    from pytest import TerminalReporter

    from pytest_execo.recorder import SweepRecorder

_WORST_FIRST = ("failed", "skipped", "passed")


class SweepSummary:
    """The lines of ``recorder``'s session (see the module)."""

    def __init__(self, recorder: SweepRecorder) -> None:
        self._recorder = recorder
        self.outcomes: dict[str, dict[str, str]] = {}  #: sweep -> nodeid -> outcome
        self._lines_in_summary = False  # xdist controller: the counts came at a worker's end

    def pytest_report_header(self) -> str:
        recorder = self._recorder
        return (
            f"execo: recording in {shown(recorder.location)} "
            f"({recorder.snapshot.done_count()} combination(s) done before this session)"
        )

    def _collection_lines(self, counts: Counts | None) -> list[str]:
        if not counts or not counts["units"]:
            return []
        what = "combinations"
        if counts["units"] != counts["combinations"]:
            what = f"items ({counts['combinations']} combinations, several items each)"
        failed = f", {counts['failed']} failed" if counts.get("failed") else ""
        runs = self._recorder.config.pluginmanager.get_plugin(RUN_PLUGIN)
        return [
            f"execo: {counts['done']}/{counts['units']} {what} done{failed} in "
            f"{shown(self._recorder.location)}, running {counts['running']}",
            *(runs.lines(counts.get("sweeps", {})) if runs is not None else []),
        ]

    def pytest_report_collectionfinish(self) -> list[str]:
        return self._collection_lines(self._recorder.counts)

    def counts_from_worker(self, counts: Counts, at_collection: bool) -> None:
        """xdist controller: the first collection counts of a worker, printed now if they came
        at collection, else in the summary."""
        self._recorder.counts_from_worker(counts)
        reporter = self._recorder.config.pluginmanager.get_plugin("terminalreporter")
        if not at_collection or reporter is None:
            self._lines_in_summary = True
            return
        reporter.ensure_newline()
        for line in self._collection_lines(counts):
            reporter.write_line(line)

    @pytest.hookimpl(tryfirst=True)  # an xdist worker tags a report before sending it
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and report.outcome == "passed":  # counts nothing: untagged
            return
        nodeid = report.nodeid  # a property
        sweep = self._recorder.sweep_running(nodeid)
        if sweep is not None:
            if self._recorder.is_worker:
                report.execo_sweep = sweep  # type: ignore[attr-defined]
        else:  # the xdist controller: as the worker tagged it
            sweep = getattr(report, "execo_sweep", None)
        if sweep is None:
            return
        outcomes = self.outcomes.setdefault(sweep, {})
        if is_rerun(report):  # a new attempt follows
            outcomes.pop(nodeid, None)
        elif report.outcome in _WORST_FIRST:
            previous = outcomes.get(nodeid, "passed")
            outcomes[nodeid] = min(previous, report.outcome, key=_WORST_FIRST.index)

    def pytest_terminal_summary(self, terminalreporter: TerminalReporter) -> None:
        recorder = self._recorder
        if recorder.is_worker or not recorder.records:  # a session without test bodies
            return  # recorded nothing
        lines = self._collection_lines(recorder.counts) if self._lines_in_summary else []
        failed_before = {name for name, texts in recorder.snapshot.failed.items() if texts}
        names = sorted(self.outcomes.keys() | failed_before)
        if not names and not lines:
            return
        terminalreporter.section("execo sweeps")
        for line in lines:
            terminalreporter.write_line(line)
        for name in names:
            outcomes = list(self.outcomes.get(name, {}).values())
            with recorder.sweeper_of(name) as sweeper:
                sweeps, remaining, _, inprogress, done = sweeper.stats()
                failed = sweeper.get_failed()
            counts = {k: outcomes.count(k) for k in _WORST_FIRST}
            terminalreporter.write_line(
                f"{name}: {len(sweeps)} total, {len(done)} done, {len(inprogress)} in "
                f"progress, {len(remaining)} remaining, {len(failed)} failed | this session: "
                f"{counts['passed']} passed, {counts['skipped']} skipped, {counts['failed']} "
                f"failed"
            )
            for combination, failure in failed.items():  # each with its last error
                first_line = failure.error.splitlines()[0] if failure.error else ""
                terminalreporter.write_line(
                    f"    failed after {failure.attempts} attempt(s): {dict(combination)}: "
                    f"{first_line}"
                )
