"""``--execo-sweep-dir``: deselect what is done, claim each combination, record its outcome.

- Each swept item is a unit of work of one *sweep* (see :mod:`pytest_execo.naming`): one
  ``ParamSweeper`` per sweep, in ``DIR/<sweep directory name>``. Items whose combination was
  done before the session (see :mod:`pytest_execo.snapshot`) are deselected (unless
  ``--execo-rerun-done``), and so are those failed for good (``--execo-max-attempts``).
- An item is claimed right before its test protocol, in the process that runs the protocol and
  receives its reports (under pytest-forked: the parent, before the fork). One done or held
  meanwhile by another live session is skipped with a reason that says so, located at the test.
- Its reports give an outcome, which the ``pytest_execo_state`` hook maps to a state (see
  :mod:`pytest_execo.outcome`); :meth:`SweepRecorder._record` applies it. No test body ran
  (``--setup-only``): the claim is given back; sessions that run no test body
  (``--collect-only``, ``--setup-plan``, ``--fixtures``...) claim nothing.
- Durability: an item's outcome is recorded when its last report (its teardown's) is logged,
  before any other plugin sees that report (the terminal, pytest-xdist, which sends it to the
  controller, junitxml, conftest hooks), before ``pytest_execo_recorded`` and before the next
  item starts: its records are written (in the kernel: they survive SIGKILL) and fsync'd within
  :data:`~pytest_execo.flusher.SYNC_INTERVAL` (:mod:`pytest_execo.flusher`). The session waits
  for every fsync at its end, before giving its unfinished claims back.
- Under pytest-xdist, workers deselect from the controller's snapshot and claim the items
  queued to them ahead (see :mod:`pytest_execo.xdist_handoff`, :mod:`pytest_execo.xdist_queue`).
  A process forked to run a test body (pytest-forked) puts the test's ``execo_record`` values on
  its reports for the process recording them.
- Open sweeps: each ``ParamSweeper`` holds a few file descriptors (a directory) or a connection
  (PostgreSQL). A session that runs more than :data:`OPEN_SWEEPERS` sweeps closes the least
  recently used ones that hold nothing of this process (no item running, claimed ahead or
  skipped), so that hundreds of swept test functions fit in ``ulimit -n 1024`` and in a
  server's ``max_connections``; an item of a closed sweep opens it again.

The options it reads: ``--execo-sweep-dir`` (ini ``execo_sweep_dir``), ``--execo-rerun-done``,
``--execo-all-done-ok`` and ``--execo-max-attempts`` (and their ini twins), declared by
:mod:`pytest_execo.plugin`.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Generator, Iterator
from typing import NamedTuple

import pytest

from execo_engine.elements import HashableDict
from execo_engine.errors import CannotConnectError
from execo_engine.store.locations import (
    check_location,
    child_location,
    local_directory,
    resolved,
)
from execo_engine.sweeper import ParamSweeper, canonical_text
from pytest_execo.flusher import BackgroundFlusher
from pytest_execo.items import RECORDED, swept_position
from pytest_execo.naming import extra_id, function_key, sweep_key, sweep_subdir_name
from pytest_execo.outcome import DEFAULT_STATES, STATES, Attempt, outcome_of
from pytest_execo.outcome import pytest_execo_state as default_state
from pytest_execo.snapshot import SessionSnapshot
from pytest_execo.xdist_handoff import (
    Counts,
    given_keeps_queues,
    given_snapshot,
    is_worker,
    send_counts,
)
from pytest_execo.xdist_queue import WorkerQueue

#: How many items (the first included) a serial session claims at once, in order
TAKE_AHEAD = 32
#: How many sweeps' ParamSweepers a session keeps open at most, besides those that hold
#: something of it (see the module docstring)
OPEN_SWEEPERS = 8
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
CARRIER = "execo-values-carrier"  #: the name of the _ValuesCarrier plugin


def sweep_location(config: pytest.Config) -> str:
    """Where ``--execo-sweep-dir`` (absolute; relative to the current directory) or the ini
    value ``execo_sweep_dir`` (relative to the ini file) points: a directory or a
    ``postgresql://`` URL."""
    location: str = config.getoption("execo_sweep_dir") or config.getini("execo_sweep_dir")
    if config.getoption("execo_sweep_dir"):
        return resolved(location, str(config.invocation_params.dir))
    base = config.inipath.parent if config.inipath else config.rootpath
    return resolved(location, str(base))


def _flag(config: pytest.Config, name: str) -> bool:
    """A boolean option or its ini twin; a usage error naming an ini value that is no
    boolean."""
    if config.getoption(name):
        return True
    try:
        return bool(config.getini(name))
    except pytest.UsageError as error:  # pytest's "invalid truth value 'maybe'", unnamed
        raise pytest.UsageError(f"ini {name}: {error}: give true or false") from None


def _max_attempts(config: pytest.Config) -> int | None:
    """``--execo-max-attempts`` (or its ini twin): None for no limit; a usage error naming
    the value unless it is a whole number >= 1."""
    given = config.getoption("execo_max_attempts")
    value = given or config.getini("execo_max_attempts")
    if not value:
        return None
    try:
        attempts = int(value)
        if attempts < 1:
            raise ValueError(value)
    except ValueError:
        source = f"--execo-max-attempts={value}" if given else f"ini execo_max_attempts = {value}"
        raise pytest.UsageError(
            f"{source}: give a whole number >= 1 (the failed attempts after which a "
            f"combination is failed for good), or leave it unset for no limit"
        ) from None
    return attempts


def _check_writable(location: str) -> None:
    """A usage error when the directory of ``location`` cannot be made or written to (a
    read-only file system, no permission): said before anything runs, not by an internal
    error at the first swept item."""
    directory = local_directory(location)
    if directory is None:  # a database: its own errors say why
        return
    try:
        os.makedirs(directory, exist_ok=True)
        if not os.access(directory, os.W_OK | os.X_OK):
            read_only = os.statvfs(directory).f_flag & os.ST_RDONLY
            code = errno.EROFS if read_only else errno.EACCES
            raise OSError(code, os.strerror(code), directory)
    except OSError as error:
        raise pytest.UsageError(
            f"--execo-sweep-dir: {directory} is not a directory this session can write to "
            f"({error.strerror}): choose a writable directory (or fix its permissions)"
        ) from None


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


class _Run:
    """A swept item being run: claimed by this session, or run again though done
    (``rerun_done``: only its results are recorded), or neither (held or done elsewhere:
    skipped, only its outcome is counted)."""

    __slots__ = ("attempt", "claimed", "item", "recorded", "rerun_done", "sweeper", "unit")

    def __init__(
        self,
        item: pytest.Item,
        sweeper: ParamSweeper[HashableDict],
        unit: Unit,
        claimed: bool,
        rerun_done: bool,
    ) -> None:
        self.item, self.sweeper, self.unit = item, sweeper, unit
        self.claimed, self.rerun_done = claimed, rerun_done
        self.attempt = Attempt()
        self.recorded = False  #: its outcome applied (it is no longer this session's to undo)


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
    """Per-session state of ``--execo-sweep-dir``: its options, the snapshot, sweepers,
    claims, collection counts. ``UsageError`` naming a bad option value."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.location = sweep_location(config)
        self.rerun_done = _flag(config, "execo_rerun_done")
        self.all_done_ok = _flag(config, "execo_all_done_ok")
        self.max_attempts = _max_attempts(config)
        self.records = runs_test_bodies(config)
        try:  # a usage error, not a crash: a file in the way, a malformed URL
            check_location(self.location)
        except (NotADirectoryError, ValueError) as error:
            raise pytest.UsageError(f"--execo-sweep-dir: {error}") from None
        if self.records:
            _check_writable(self.location)
        self.is_worker = is_worker(config)
        self._queue = WorkerQueue(config, given_keeps_queues(config))
        #: what was done, and failed for good, before the session
        try:
            self.snapshot = given_snapshot(config) or SessionSnapshot.read(self.location)
        except CannotConnectError as error:  # a database never reached: a usage error
            raise pytest.UsageError(f"--execo-sweep-dir: {error}") from None
        self._sweeps: dict[tuple[str, str], tuple[str, str]] = {}  # (function, extra) -> sweep
        self._units: dict[pytest.Item, Unit | None] = {}  #: see unit_of
        #: the open sweepers, the least recently used first
        self.sweepers: dict[str, ParamSweeper[HashableDict]] = {}
        self._skipping: set[str] = set()  #: sweeps in which this session skipped something
        self.running: dict[str, _Run] = {}
        self._ahead: set[pytest.Item] = set()  #: items claimed with an item before them, not run
        self._order: dict[pytest.Item, int] | None = None  #: item -> index in the session's items
        self.flusher = BackgroundFlusher()
        self.root = config.rootpath  #: where the error texts' paths are relative to
        self.pid = os.getpid()
        #: whether pytest_execo_state and pytest_execo_recorded have implementations other
        #: than the default (known once the first item is recorded)
        self._hooked: tuple[bool, bool] | None = None
        #: collection counts: units selected, distinct combinations, deselected as done,
        #: failed for good, units left to run after every deselection (None: not collected)
        self.counts: Counts | None = None

    # -- units -------------------------------------------------------------------------------

    def unit_of(self, item: pytest.Item) -> Unit | None:
        """The unit of work of a swept item (None for other items), computed once."""
        if item in self._units:
            return self._units[item]
        found = swept_position(item)
        unit = None
        if found is not None:
            function, swept, position = found
            extra = extra_id(item.callspec.id, swept.ids[position])  # type: ignore[attr-defined]
            if (function, extra) not in self._sweeps:
                self._sweeps[function, extra] = self._sweep_of(item, function, extra)
            name, key = self._sweeps[function, extra]
            unit = Unit(name, key, swept.combinations, position)
        self._units[item] = unit
        return unit

    def _sweep_of(self, item: pytest.Item, function: str, extra: str) -> tuple[str, str]:
        """``(directory name, key)`` of a sweep; a sweep without extra id whose directory
        exists only under the name older versions gave it (derived from the rootdir-relative
        node id) keeps that directory."""
        key = sweep_key(function_key(item.path, function, self.config.inipath), extra)
        name = sweep_subdir_name(key)
        if not extra and name not in self.snapshot.done:
            legacy = sweep_subdir_name(function)
            if legacy in self.snapshot.done:
                return legacy, key
        return name, key

    def _sweeper(self, unit: Unit) -> ParamSweeper[HashableDict]:
        """The open sweeper of ``unit``'s sweep (opened if need be), now the most recently
        used."""
        sweeper = self.sweepers.pop(unit.sweep, None)
        if sweeper is None:
            self._close_idle(OPEN_SWEEPERS - 1)
            sweeper = ParamSweeper(
                child_location(self.location, unit.sweep),
                unit.combinations,
                save_sweeps=True,
                name=unit.key,
                max_attempts=self.max_attempts,
            )
        self.sweepers[unit.sweep] = sweeper
        return sweeper

    def _close_idle(self, keep: int) -> None:
        """Close the least recently used sweepers beyond ``keep`` that hold nothing of this
        process: no item running, claimed ahead or skipped (closing them would end that hold,
        or forget it). Their records are fsync'd first."""
        excess = len(self.sweepers) - keep
        if excess <= 0:
            return
        busy = self._skipping | {run.unit.sweep for run in self.running.values()}
        busy.update(unit.sweep for item in self._ahead if (unit := self._units[item]))
        for name in [name for name in self.sweepers if name not in busy][:excess]:
            sweeper = self.sweepers.pop(name)
            try:
                sweeper.flush()
            finally:
                sweeper.close()

    # -- collection --------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)  # after -k/-m: count what this session selected
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        keep, deselected, combinations, units, failed = [], [], set(), 0, 0
        running: dict[str, str] = {}  # the sweeps with items to run: name -> key
        for item in items:
            unit = self.unit_of(item)
            if unit is None:
                keep.append(item)
                continue
            units += 1
            combinations.add((item.nodeid.partition("[")[0], unit.position))
            done = self.snapshot.done.get(unit.sweep)
            failed_before = self.snapshot.failed.get(unit.sweep)
            text = canonical_text(unit.combination) if done or failed_before else None
            if failed_before and text in failed_before:
                failed += 1
                deselected.append(item)
            elif done and not self.rerun_done and text in done:
                deselected.append(item)
            else:
                keep.append(item)
                running[unit.sweep] = unit.key
        self.counts = {
            "units": units,
            "combinations": len(combinations),
            "done": len(deselected) - failed,
            "failed": failed,
            "sweeps": running,
        }
        for name, _ in self._sweeps.values():  # refuse a planted link before writing through it
            try:
                child_location(self.location, name)
            except NotADirectoryError as error:
                raise pytest.UsageError(f"execo: {error}") from None
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = keep

    @pytest.hookimpl(tryfirst=True)  # before the terminal asks for the collection line
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Count what is left to run after every deselection (``--lf`` runs after us); an
        xdist worker hands the counts to the controller (see :mod:`pytest_execo.xdist_handoff`)."""
        if self.counts is None:
            return
        self.counts["running"] = sum(1 for item in session.items if self.unit_of(item))
        if self.is_worker:  # for the controller's collection line
            send_counts(self.config, self.counts)

    def counts_from_worker(self, counts: Counts) -> None:
        """xdist controller (which collects nothing): the collection counts of a worker."""
        if self.counts is None:
            self.counts = counts

    # -- running -----------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        unit = self.unit_of(item) if self.records else None
        if unit is None:
            return (yield)
        nodeid = item.nodeid  # a property that builds it
        run = self.running[nodeid] = self._claim(item, unit, nextitem)
        try:
            result = yield
        except BaseException:  # interrupted (KeyboardInterrupt, exit): run it again
            del self.running[nodeid]
            if run.claimed and not run.recorded:
                run.sweeper.cancel(run.unit.combination)
            raise
        del self.running[nodeid]
        if (run.claimed or run.rerun_done) and not run.recorded:  # its last report never came
            self._record(run)
        return result

    def _claim(self, item: pytest.Item, unit: Unit, nextitem: pytest.Item | None) -> _Run:
        sweeper = self._sweeper(unit)
        if item in self._ahead:  # claimed with an item before it
            self._ahead.remove(item)
            why_not = None
        else:
            why_not = self._take(item, unit, sweeper, nextitem)
        rerun_done = why_not == "done" and self.rerun_done
        if why_not is not None and not rerun_done:
            # a skip mark, not pytest.skip() here: the skip is reported at the test, and it
            # also reaches a protocol run in a forked child
            reason = f"execo: combination {why_not} by another session"
            item.add_marker(pytest.mark.skip(reason=reason))
        return _Run(item, sweeper, unit, claimed=why_not is None, rerun_done=rerun_done)

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
                self._order = {other: i for i, other in enumerate(items)}
            start = self._order.get(item, len(items))
            following = items[start + 1 : start + TAKE_AHEAD]
        batch = [(item, unit)]
        for other in following:
            other_unit = self.unit_of(other)
            if (
                other_unit is not None
                and other_unit.sweep == unit.sweep
                and other not in self._ahead
            ):
                batch.append((other, other_unit))
        reasons = sweeper.take_batch(
            [u.combination for _, u in batch], [u.position for _, u in batch]
        )
        self._ahead.update(
            other for (other, _), r in zip(batch[1:], reasons[1:], strict=True) if r is None
        )
        return reasons[0]

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # before the others see the report
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, None, None]:
        """Take each report of a claimed item in; at its last one (see
        :meth:`~pytest_execo.outcome.Attempt.add`), record its outcome before the report goes
        on to every other implementation (but a ``tryfirst`` wrapper registered later): the
        terminal, xdist's worker (which sends it to the controller), junitxml, conftest
        hooks."""
        run = self.running.get(report.nodeid)
        if (
            run is not None
            and (run.claimed or run.rerun_done)
            and not run.recorded
            and run.attempt.add(report, self.root)  # the item's last report
        ):
            self._record(run)
        return (yield)

    def sweep_running(self, nodeid: str) -> str | None:
        """The sweep (directory name) of the item ``nodeid`` if this process runs it now."""
        run = self.running.get(nodeid)
        return run.unit.sweep if run is not None else None

    @contextlib.contextmanager
    def sweeper_of(self, name: str) -> Iterator[ParamSweeper[HashableDict]]:
        """The sweeper of sweep ``name``: this session's open one (up to date: it reads only
        what is new), else a read-only one, closed after."""
        sweeper = self.sweepers.get(name)
        if sweeper is not None:
            yield sweeper
            return
        with ParamSweeper(child_location(self.location, name), read_only=True) as view:
            yield view

    def _record(self, run: _Run) -> None:
        """Apply the outcome of a finished item to its sweep (the one place where states
        change), then call ``pytest_execo_recorded``. Every record is written before this
        returns: results first, then the state (a crash in between never loses the results
        of a done combination). Done records and results are written without waiting for
        their fsync (see :mod:`pytest_execo.flusher`); failure records are fsync'd at once."""
        run.recorded = True
        item, combination, sweeper, attempt = (
            run.item,
            run.unit.combination,
            run.sweeper,
            run.attempt,
        )
        outcome = outcome_of(attempt)
        values = attempt.values
        if values is None and RECORDED in item.stash:  # (Stash.get raises a KeyError inside)
            values = item.stash[RECORDED]
        if outcome is not None and values is not None:
            sweeper.record_result(
                combination, dict(values), outcome, round(attempt.duration, 6), wait=False
            )
            self.flusher.written(sweeper)
        if run.rerun_done:  # run again on request: its state stays done
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
            sweeper.done(combination, wait=False)
            self.flusher.written(sweeper)
        elif state == "skip":
            self._skipping.add(run.unit.sweep)
            sweeper.skip(combination)
        elif state == "fail":
            sweeper.fail(combination, attempt.error or f"{outcome} (pytest_execo_state: fail)")
        else:
            sweeper.cancel(combination)
            if state != "cancel":  # stop after this item, every process: an exception raised
                # here would stop only this one, and xdist would lose its message
                item.session.shouldstop = (
                    f"pytest_execo_state returned {state!r} for {item.nodeid}: "
                    f"expected one of {', '.join(STATES)}"
                )
                return
        if self._hooked[1]:
            hook.pytest_execo_recorded(
                item=item, combination=combination, outcome=outcome, state=state
            )

    # -- end ---------------------------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Wait until every record is on disk, give back what this session claimed and did
        not finish (-x, Ctrl-C, ...), and apply ``--execo-all-done-ok``."""
        try:
            self.flusher.close()
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

    def pytest_unconfigure(self) -> None:
        """Close the sweepers (after the summary, which reads them) and the flusher's alarm: a
        process that runs sessions one after the other (an IDE, pytester) keeps none of their
        descriptors open."""
        sweepers, self.sweepers = self.sweepers, {}
        for sweeper in sweepers.values():
            sweeper.close()
        self.flusher.dispose()
