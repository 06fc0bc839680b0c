"""``--execo-sweep-dir``: deselect what is done, claim each combination, record its outcome.

- Each swept item is a unit of work of one *sweep* (see :mod:`pytest_execo.naming`): one
  ``ParamSweeper`` per sweep, in ``DIR/<sweep directory name>``. Items whose sweep was done
  before the session are deselected (unless ``--execo-rerun-done``), and so are those failed
  for good (``--execo-max-attempts``), which the summary lists with their last error.
- An item is claimed right before its test protocol, in the process that runs the protocol and
  receives its reports (under pytest-forked: the parent, before the fork). One done or held
  meanwhile by another live session is skipped with a reason that says so, located at the test.
- Outcome (see :func:`outcome_of`): over the reports of the item's last attempt (pytest-
  rerunfailures reports earlier attempts as ``"rerun"``), failed or error → ``"failed"``,
  skipped (xfail too) → ``"skipped"``, a call phase that ran and passed → ``"passed"``. No call
  phase (``--setup-only``, ``--setup-plan``) gives the claim back; sessions that run no test
  body (``--collect-only``, ``--setup-plan``, ``--setup-only``, ``--fixtures``...) claim nothing.
  The ``pytest_execo_state`` hook maps the outcome to a state (default: passed → done, skipped →
  skip, failed → fail: one failed attempt counted, with the short text of the first report
  that did not pass, see :func:`pytest_execo.failures.failure_text`);
  :meth:`SweepRecorder._record` applies it.
- Durability: done records and their results are written in batches, without waiting for the
  next test (:class:`pytest_execo.writer.BackgroundWriter`): written within milliseconds of the
  end of their test, fsync'd within a fraction of a second; until written, the combination stays
  claimed by this process. The session waits for every write and fsync at its end, before giving
  its unfinished claims back: when pytest exits, every combination it reported done is on disk.
- Under pytest-xdist the controller reads "what is done" once and hands it to every worker, so
  that all workers deselect (and so collect) the same items, and tells them whether its
  scheduler keeps the items queued to a worker (then claimed ahead, see
  :mod:`pytest_execo.xdist_queue`); workers send their collection counts back, and the
  controller prints the collection line and the summary; a worker's reports carry their item's
  sweep name for it. A process forked to run a test body (pytest-forked) puts the test's
  ``execo_record`` values on its reports for the process recording them.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from execo_engine.elements import HashableDict
from execo_engine.errors import CannotConnectError
from execo_engine.store.locations import (
    check_location,
    child_location,
    child_locations,
    resolved,
    shown,
)
from execo_engine.sweeper import ParamSweeper, canonical_text, snapshot
from pytest_execo.failures import failure_text
from pytest_execo.naming import extra_id, function_key, sweep_key, sweep_subdir_name
from pytest_execo.plugin import DEFAULT_STATES, RECORDED, swept_position
from pytest_execo.plugin import pytest_execo_state as default_state
from pytest_execo.writer import BackgroundWriter, Result
from pytest_execo.xdist_queue import WorkerQueue, keeps_queues

if TYPE_CHECKING:
    from pytest import TerminalReporter

#: How many items (the first included) a serial session claims at once, in order
TAKE_AHEAD = 32
SNAPSHOT_KEY = "execo_done"  #: workerinput: the done snapshot
FAILED_KEY = "execo_failed"  #: workerinput: what was failed for good before the session
COUNTS_KEY = "execo_counts"  #: workeroutput: a worker's collection counts
KEEPS_QUEUES_KEY = "execo_keeps_queues"  #: workerinput: see pytest_execo.xdist_queue
STATES = ("done", "skip", "cancel", "fail")
_WORST_FIRST = ("failed", "skipped", "passed")
#: Options of pytest sessions that run no test body (they never record anything).
NO_TEST_BODY_OPTIONS = (
    "collectonly",
    "setuponly",
    "setupplan",
    "showfixtures",
    "show_fixtures_per_test",
    "markers",
    "cacheshow",
    "help",
    "version",
)
UNIT = pytest.StashKey["Unit | None"]()
CARRIER = "execo-values-carrier"  #: the name of the _ValuesCarrier plugin


def sweep_dir(config: pytest.Config) -> str:
    """Where ``--execo-sweep-dir`` (absolute; relative to the current directory) or the ini
    value ``execo_sweep_dir`` (relative to the ini file) points: a directory or a
    ``postgresql://`` URL."""
    location: str = config.getoption("execo_sweep_dir") or config.getini("execo_sweep_dir")
    if config.getoption("execo_sweep_dir"):
        return resolved(location, str(config.invocation_params.dir))
    base = config.inipath.parent if config.inipath else config.rootpath
    return resolved(location, str(base))


def runs_test_bodies(config: pytest.Config) -> bool:
    """Whether this session may run test bodies (see :data:`NO_TEST_BODY_OPTIONS`)."""
    return not any(getattr(config.option, name, False) for name in NO_TEST_BODY_OPTIONS)


class Unit(NamedTuple):
    """A swept item's unit of work: the combination at ``position`` of sweep ``sweep`` (a
    tuple: one is made per item at collection)."""

    sweep: str  #: the sweep's directory name
    key: str  #: the sweep's key (its name in logs)
    combinations: list[HashableDict]
    position: int

    @property
    def combination(self) -> HashableDict:
        return self.combinations[self.position]


# -- outcome -> state --------------------------------------------------------------------------


def is_rerun(report: pytest.TestReport) -> bool:
    """A failed attempt that pytest-rerunfailures runs again (an outcome pytest does not
    know)."""
    outcome: str = report.outcome
    return outcome == "rerun"


class Attempt:
    """The reports of an item's current attempt, as far as the recording needs them."""

    __slots__ = ("call_passed", "duration", "error", "values", "worst")

    def __init__(self) -> None:
        self.worst: str | None = None  #: "failed", else "skipped", if a report was so
        self.call_passed = False
        self.duration = 0.0
        self.values: dict[str, Any] | None = None  #: execo_record values a report carried
        self.error: str | None = None  #: the short text of the first report that did not pass

    def add(self, report: pytest.TestReport) -> None:
        """Take a report in; a ``"rerun"`` one (pytest-rerunfailures) starts a new attempt."""
        self.duration += report.duration
        outcome: str = report.outcome
        if outcome == "passed":
            if report.when == "call":
                self.call_passed = True
        elif is_rerun(report):
            self.worst, self.call_passed, self.error = None, False, None
        elif outcome == "failed" or (outcome == "skipped" and self.worst is None):
            self.worst = outcome
        values = getattr(report, "execo_record", None)
        if values:
            self.values = values


def outcome_of(attempt: Attempt) -> str | None:
    """``"failed"``, ``"skipped"``, ``"passed"``, or None when no test body ran."""
    return attempt.worst or ("passed" if attempt.call_passed else None)


class _Run:
    """A swept item being run: claimed by this session, or run again though done
    (``rerun_done``: only its results are recorded), or neither (held or done elsewhere:
    skipped, only its outcome is counted)."""

    __slots__ = ("attempt", "claimed", "rerun_done", "sweeper", "unit")

    def __init__(
        self, sweeper: ParamSweeper[HashableDict], unit: Unit, claimed: bool, rerun_done: bool
    ) -> None:
        self.sweeper, self.unit = sweeper, unit
        self.claimed, self.rerun_done = claimed, rerun_done
        self.attempt = Attempt()


class _ValuesCarrier:
    """Registered in a process that runs test bodies for the recording one (the child that
    pytest-forked forks): puts the ``execo_record`` values on each report, which that
    process receives."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        values = item.stash.get(RECORDED, None)
        if values:
            report.execo_record = dict(values)  # type: ignore[attr-defined]
        return report


class SweepRecorder:
    """Per-session state of ``--execo-sweep-dir``: snapshot, sweepers, claims, counts."""

    def __init__(
        self,
        config: pytest.Config,
        directory: str,
        rerun_done: bool,
        all_done_ok: bool,
        max_attempts: int | None = None,
    ) -> None:
        self.config = config
        self.directory = directory
        self.rerun_done = rerun_done
        self.all_done_ok = all_done_ok
        self.max_attempts = max_attempts
        self.records = runs_test_bodies(config)
        try:  # a usage error, not a crash: a file in the way, a malformed URL
            check_location(directory)
        except (NotADirectoryError, ValueError) as error:
            raise pytest.UsageError(f"--execo-sweep-dir: {error}") from None
        self.is_worker = hasattr(config, "workerinput")
        self._queue = WorkerQueue(
            config,
            self.is_worker and config.workerinput.get(KEEPS_QUEUES_KEY, False),  # type: ignore[attr-defined]
        )
        #: {sweep name: canonical texts} done, and failed for good, before the session
        try:
            self._done, self._failed = self._snapshots()
        except CannotConnectError as error:  # a database never reached: a usage error
            raise pytest.UsageError(f"--execo-sweep-dir: {error}") from None
        self._sweeps: dict[tuple[str, str], tuple[str, str]] = {}  # (function, extra) -> sweep
        self.sweepers: dict[str, ParamSweeper[HashableDict]] = {}
        self.running: dict[str, _Run] = {}
        self._ahead: set[str] = set()  #: items claimed with an item before them, not run yet
        self._order: dict[str, int] | None = None  #: nodeid -> index in the session's items
        self.writer = BackgroundWriter()
        self.pid = os.getpid()
        #: whether pytest_execo_state and pytest_execo_recorded have implementations other
        #: than the default (known once the first item is recorded)
        self._hooked: tuple[bool, bool] | None = None
        #: collection counts: units selected, distinct combinations, deselected as done,
        #: units left to run after every deselection
        self.counts: dict[str, int] | None = None
        self.counted_by_workers = False  #: xdist controller: the line goes in the summary
        self.session_outcomes: dict[str, dict[str, str]] = {}  # sweep -> nodeid -> outcome

    def _snapshots(self) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
        """What is done and what is failed for good in each sweep of the sweep dir now (the
        controller), or as the controller handed it to this xdist worker (``workerinput``)."""
        if self.is_worker:
            given: dict[str, dict[str, list[str]]] = self.config.workerinput  # type: ignore[attr-defined]
            done, failed = given[SNAPSHOT_KEY], given[FAILED_KEY]
            return (
                {name: frozenset(texts) for name, texts in done.items()},
                {name: frozenset(texts) for name, texts in failed.items()},
            )
        snapshots = {name: snapshot(at) for name, at in child_locations(self.directory).items()}
        return (
            {name: taken.done for name, taken in snapshots.items()},
            {name: taken.failed for name, taken in snapshots.items()},
        )

    # -- units -------------------------------------------------------------------------------

    def unit_of(self, item: pytest.Item) -> Unit | None:
        """The unit of work of a swept item (None for other items), computed once."""
        if UNIT in item.stash:  # no KeyError raised for each item at collection
            return item.stash[UNIT]
        found = swept_position(item)
        unit = None
        if found is not None:
            swept, position = found
            function = item.nodeid.partition("[")[0]
            extra = extra_id(item.callspec.id, swept.ids[position])  # type: ignore[attr-defined]
            if (function, extra) not in self._sweeps:
                self._sweeps[function, extra] = self._sweep_of(item, function, extra)
            name, key = self._sweeps[function, extra]
            unit = Unit(name, key, swept.combinations, position)
        item.stash[UNIT] = unit
        return unit

    def _sweep_of(self, item: pytest.Item, function: str, extra: str) -> tuple[str, str]:
        """``(directory name, key)`` of a sweep; a sweep without extra id whose directory
        exists only under the name older versions gave it (derived from the rootdir-relative
        node id) keeps that directory."""
        key = sweep_key(function_key(item.path, function, self.config.inipath), extra)
        name = sweep_subdir_name(key)
        if not extra and name not in self._done:
            legacy = sweep_subdir_name(function)
            if legacy in self._done:
                return legacy, key
        return name, key

    def _sweeper(self, unit: Unit) -> ParamSweeper[HashableDict]:
        if unit.sweep not in self.sweepers:
            self.sweepers[unit.sweep] = ParamSweeper(
                child_location(self.directory, unit.sweep),
                unit.combinations,
                save_sweeps=True,
                name=unit.key,
                max_attempts=self.max_attempts,
            )
        return self.sweepers[unit.sweep]

    # -- collection --------------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller: every worker deselects from the same snapshot."""
        node.workerinput[SNAPSHOT_KEY] = {name: list(texts) for name, texts in self._done.items()}
        node.workerinput[FAILED_KEY] = {name: list(texts) for name, texts in self._failed.items()}
        node.workerinput[KEEPS_QUEUES_KEY] = keeps_queues(self.config)

    def pytest_report_header(self) -> str:
        done = sum(len(texts) for texts in self._done.values())
        return (
            f"execo: recording in {shown(self.directory)} ({done} combination(s) done before "
            f"this session)"
        )

    @pytest.hookimpl(trylast=True)  # after -k/-m: count what this session selected
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        keep, deselected, combinations, units, failed = [], [], set(), 0, 0
        for item in items:
            unit = self.unit_of(item)
            if unit is None:
                keep.append(item)
                continue
            units += 1
            combinations.add((item.nodeid.partition("[")[0], unit.position))
            done, failed_before = self._done.get(unit.sweep), self._failed.get(unit.sweep)
            text = canonical_text(unit.combination) if done or failed_before else None
            if failed_before and text in failed_before:
                failed += 1
                deselected.append(item)
            elif done and not self.rerun_done and text in done:
                deselected.append(item)
            else:
                keep.append(item)
        self.counts = {
            "units": units,
            "combinations": len(combinations),
            "done": len(deselected) - failed,
            "failed": failed,
        }
        for name, _ in self._sweeps.values():  # refuse a planted link before writing through it
            try:
                child_location(self.directory, name)
            except NotADirectoryError as error:
                raise pytest.UsageError(f"execo: {error}") from None
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = keep

    @pytest.hookimpl(tryfirst=True)  # before the terminal asks for the collection line
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Count what is left to run after every deselection (``--lf`` runs after us)."""
        if self.counts is None:
            return
        self.counts["running"] = sum(1 for item in session.items if self.unit_of(item))
        if self.is_worker:
            self.config.workeroutput[COUNTS_KEY] = self.counts  # type: ignore[attr-defined]

    def _collection_line(self) -> str | None:
        counts = self.counts
        if not counts or not counts["units"]:
            return None
        what = "combinations"
        if counts["units"] != counts["combinations"]:
            what = f"items ({counts['combinations']} combinations, several items each)"
        failed = f", {counts['failed']} failed" if counts.get("failed") else ""
        return (
            f"execo: {counts['done']}/{counts['units']} {what} done{failed} in "
            f"{shown(self.directory)}, running {counts['running']}"
        )

    def pytest_report_collectionfinish(self) -> str | None:
        return self._collection_line()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any) -> None:
        """xdist controller: the collection counts of the first worker that sends them."""
        counts = getattr(node, "workeroutput", {}).get(COUNTS_KEY)
        if counts is not None and self.counts is None:
            self.counts, self.counted_by_workers = counts, True

    # -- running -----------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        unit = self.unit_of(item) if self.records else None
        if unit is None:
            return (yield)
        run = self.running[item.nodeid] = self._claim(item, unit, nextitem)
        try:
            result = yield
        except BaseException:  # interrupted (KeyboardInterrupt, exit): run it again
            del self.running[item.nodeid]
            if run.claimed:
                run.sweeper.cancel(run.unit.combination)
            raise
        del self.running[item.nodeid]
        if run.claimed or run.rerun_done:
            self._record(item, run)
        return result

    def _claim(self, item: pytest.Item, unit: Unit, nextitem: pytest.Item | None) -> _Run:
        sweeper = self._sweeper(unit)
        if item.nodeid in self._ahead:  # claimed with an item before it
            self._ahead.remove(item.nodeid)
            why_not = None
        else:
            why_not = self._take(item, unit, sweeper, nextitem)
        rerun_done = why_not == "done" and self.rerun_done
        if why_not is not None and not rerun_done:
            # a skip mark, not pytest.skip() here: the skip is reported at the test, and it
            # also reaches a protocol run in a forked child
            reason = f"execo: combination {why_not} by another session"
            item.add_marker(pytest.mark.skip(reason=reason))
        return _Run(sweeper, unit, claimed=why_not is None, rerun_done=rerun_done)

    def carry_values(self) -> None:
        """Called by ``execo_record``: in a process forked from this one to run the test
        (pytest-forked), have the reports carry the values back (see
        :class:`_ValuesCarrier`); in this process, :meth:`_record` reads them off the item."""
        if os.getpid() != self.pid and not self.config.pluginmanager.has_plugin(CARRIER):
            self.config.pluginmanager.register(_ValuesCarrier(), CARRIER)

    def _take(
        self,
        item: pytest.Item,
        unit: Unit,
        sweeper: ParamSweeper[HashableDict],
        nextitem: pytest.Item | None,
    ) -> str | None:
        """Claim ``item``'s combination, and with it, in one store operation, those of the
        items of the same sweep this process runs next: the next :data:`TAKE_AHEAD` - 1 in a
        session that runs its items in order; in an xdist worker, ``nextitem`` (xdist never
        takes it back) and, where the scheduler never moves queued items, those queued after
        it, up to :data:`TAKE_AHEAD` - 1 in all (see :mod:`pytest_execo.xdist_queue`). Those
        not claimed ask again at their turn; what the session does not run is given back at
        its end."""
        items = item.session.items
        if self.is_worker:
            following = [nextitem] if nextitem is not None else []
            if following:
                following += [items[i] for i in self._queue.upcoming(TAKE_AHEAD - 2)]
        else:
            if self._order is None or len(self._order) != len(items):
                self._order = {other.nodeid: i for i, other in enumerate(items)}
            start = self._order.get(item.nodeid, len(items))
            following = items[start + 1 : start + TAKE_AHEAD]
        batch = [(item, unit)]
        for other in following:
            other_unit = self.unit_of(other)
            if (
                other_unit is not None
                and other_unit.sweep == unit.sweep
                and other.nodeid not in self._ahead
            ):
                batch.append((other, other_unit))
        reasons = sweeper.take_batch(
            [u.combination for _, u in batch], [u.position for _, u in batch]
        )
        self._ahead.update(
            other.nodeid for (other, _), r in zip(batch[1:], reasons[1:], strict=True) if r is None
        )
        return reasons[0]

    @pytest.hookimpl(tryfirst=True)  # an xdist worker tags a report before sending it
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        run = self.running.get(report.nodeid)
        sweep: str | None
        if run is not None:
            sweep = run.unit.sweep
            if self.is_worker:  # for the controller's summary
                report.execo_sweep = sweep  # type: ignore[attr-defined]
            if run.claimed or run.rerun_done:
                attempt = run.attempt
                attempt.add(report)
                if attempt.error is None and not report.passed and not is_rerun(report):
                    attempt.error = failure_text(report, self.config.rootpath)
        else:  # the xdist controller: as the worker tagged it
            sweep = getattr(report, "execo_sweep", None)
        if sweep is None or (report.passed and report.when != "call"):
            return
        outcomes = self.session_outcomes.setdefault(sweep, {})
        if is_rerun(report):  # a new attempt follows
            outcomes.pop(report.nodeid, None)
        elif report.outcome in _WORST_FIRST:
            previous = outcomes.get(report.nodeid, "passed")
            outcomes[report.nodeid] = min(previous, report.outcome, key=_WORST_FIRST.index)

    def _record(self, item: pytest.Item, run: _Run) -> None:
        """Apply the outcome of a finished item to its sweep (the one place where states
        change): a done record and results are handed to the background writer; other states
        are written at once, after the results (a crash in between must not lose results)."""
        combination, sweeper, attempt = run.unit.combination, run.sweeper, run.attempt
        outcome = outcome_of(attempt)
        values = attempt.values if attempt.values is not None else item.stash.get(RECORDED, None)
        result = None
        if outcome is not None and values is not None:
            result = Result(dict(values), outcome, round(attempt.duration, 6))
        if run.rerun_done:  # run again on request: its state stays done
            if result is not None:
                self.writer.add(sweeper, combination, result, done=False)
            return
        if outcome is None:  # no test body ran: give it back
            sweeper.cancel(combination)
            return
        hook = self.config.hook
        if self._hooked is None:  # after collection: conftest.py files are loaded
            self._hooked = (
                [i.function for i in hook.pytest_execo_state.get_hookimpls()] != [default_state],
                bool(hook.pytest_execo_recorded.get_hookimpls()),
            )
        if self._hooked[0]:
            state = hook.pytest_execo_state(item=item, combination=combination, outcome=outcome)
        else:
            state = DEFAULT_STATES[outcome]  # what the hook would return, without calling it
        if state == "done":
            self.writer.add(sweeper, combination, result, done=True)
        else:
            if result is not None:
                sweeper.record_result(combination, result.values, result.outcome, result.duration)
            if state == "skip":
                sweeper.skip(combination)
            elif state == "fail":
                error = run.attempt.error or f"{outcome} (pytest_execo_state: fail)"
                sweeper.fail(combination, error)
            else:
                sweeper.cancel(combination)
                if state != "cancel":
                    raise pytest.UsageError(
                        f"pytest_execo_state returned {state!r} for {item.nodeid}: "
                        f"expected one of {', '.join(STATES)}"
                    )
        if self._hooked[1]:
            hook.pytest_execo_recorded(
                item=item, combination=combination, outcome=outcome, state=state
            )

    # -- end ---------------------------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Wait until every record is on disk, give back what this session claimed and did
        not finish (-x, Ctrl-C, ...), and apply ``--execo-all-done-ok``."""
        try:
            self.writer.close()  # first: a combination waiting for its done record is claimed
        finally:
            for sweeper in self.sweepers.values():
                sweeper.release_claims()
                sweeper.reset()  # forget this session's skips: the next session retries them
        if (
            self.all_done_ok
            and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
            and self.counts
            and self.counts["done"]
        ):
            session.exitstatus = pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: TerminalReporter) -> None:
        if self.is_worker or not self.records:  # a session without test bodies recorded nothing
            return
        line = self._collection_line() if self.counted_by_workers else None
        failed_before = {name for name, texts in self._failed.items() if texts}
        names = sorted(self.session_outcomes.keys() | failed_before)
        if not names and line is None:
            return
        terminalreporter.section("execo sweeps")
        if line is not None:
            terminalreporter.write_line(line)
        for name in names:
            outcomes = list(self.session_outcomes.get(name, {}).values())
            sweeper = self.sweepers.get(name)  # up to date: it reads only what is new
            if sweeper is None:
                sweeper = ParamSweeper(child_location(self.directory, name), read_only=True)
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
