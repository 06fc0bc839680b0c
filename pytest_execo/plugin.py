"""pytest hooks of pytest_execo. All sweep state logic stays in ``ParamSweeper``.

- ``@pytest.mark.execo_sweep({...})`` parametrizes a test from a ``sweep()`` dict (or a list of
  combinations). The test gets the combination as ``combination``, and each factor whose name
  is an identifier as an argument of that name (None where a combination lacks it).
- ``--execo-sweep-dir=DIR`` (ini ``execo_sweep_dir``) records outcomes in one ParamSweeper per
  swept test function, in ``DIR/<test name>-<hash>``: passed → done, skipped (xfail too) →
  skipped, failed or error → cancelled (see the ``pytest_execo_state`` hook to change this).
  Combinations done before the session are deselected (unless ``--execo-rerun-done``); each
  combination is claimed right before it runs, and one done or held meanwhile by another live
  session is skipped with a reason that says so. Claims left by a session that stops early
  are given back at its end; those of a killed one, by the dead-owner reclaim of the store.
- Under pytest-xdist the controller reads "what is done" once and hands it to every worker,
  so that all workers deselect (and so collect) the same items, and prints the summary.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from execo_engine.store.locations import child_location, child_locations, is_directory, shown
from execo_engine.sweep import HashableDict, ParamSweeper, sweep
from execo_engine.sweeper import canonical_text, done_snapshot
from execo_engine.utils import slugify
from pytest_execo import hooks
from pytest_execo.preemption import PreemptionGuard

MARKER = "execo_sweep"
STATES = ("done", "skip", "cancel")
HIDDEN_ARG = "_execo_combination"
WORKER_INPUT_KEY = "execo_done"
COMBINATIONS = pytest.StashKey[dict[str, list[HashableDict]]]()
_WORST_FIRST = ("failed", "skipped", "passed")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("execo", "execo parameter sweeps (pytest_execo)")
    group.addoption(
        "--execo-sweep-dir",
        dest="execo_sweep_dir",
        metavar="DIR",
        help="record the outcome of each execo_sweep combination in DIR and skip "
        "the combinations already done there (ini: execo_sweep_dir)",
    )
    group.addoption(
        "--execo-rerun-done",
        dest="execo_rerun_done",
        action="store_true",
        default=None,
        help="also run the combinations already done in the sweep "
        "dir (their state stays done; ini: execo_rerun_done)",
    )
    parser.addini(
        "execo_sweep_dir",
        "directory where execo_sweep outcomes are recorded, relative to the ini file",
    )
    parser.addini(
        "execo_rerun_done", "run combinations already done too", type="bool", default=False
    )


def _sweep_dir(config: pytest.Config) -> str | None:
    """The sweep dir (absolute), or a ``postgresql://`` URL, or None."""
    option = config.getoption("execo_sweep_dir")
    ini = config.getini("execo_sweep_dir")
    if not (option or ini):
        return None
    if not is_directory(option or ini):
        return option or ini
    if option:
        return os.path.join(config.invocation_params.dir, option)
    base = config.inipath.parent if config.inipath else config.rootpath
    return os.path.join(base, ini)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(parameters): parametrize the test with every combination of "
        "sweep(parameters) (a dict of factor -> levels, or a list of combinations); "
        "the test receives `combination` and factors by name. With "
        "--execo-sweep-dir, outcomes are recorded and done combinations skipped.",
    )
    directory = _sweep_dir(config)
    if directory:
        if is_directory(directory) and os.path.exists(directory) and not os.path.isdir(directory):
            raise pytest.UsageError(f"--execo-sweep-dir: {directory} is not a directory")
        config.pluginmanager.register(SweepRecorder(config, directory), "execo-recorder")
        config.pluginmanager.register(PreemptionGuard(), "execo-preemption")


# -- parametrization ------------------------------------------------------------------------


def _combinations_of(marker: pytest.Mark, test: str) -> list[HashableDict]:
    """The combinations of an ``execo_sweep`` marker: ``sweep(dict, exclude=...)``, or the given
    list of combinations (``exclude`` has no meaning there: leave them out of the list)."""
    if len(marker.args) != 1 or set(marker.kwargs) - {"exclude"}:
        raise TypeError(
            f"{test}: @pytest.mark.{MARKER} takes one argument, a sweep dict or a "
            f"list of combinations, and for a sweep dict exclude=..."
        )
    parameters = marker.args[0]
    if isinstance(parameters, Mapping):
        return sweep(parameters, **marker.kwargs)
    if marker.kwargs:
        raise TypeError(
            f"{test}: @pytest.mark.{MARKER}(exclude=...) needs a sweep dict: leave the "
            f"combinations out of the list instead"
        )
    if isinstance(parameters, (list, tuple)) and all(isinstance(c, Mapping) for c in parameters):
        return [HashableDict(c) for c in parameters]
    raise TypeError(
        f"{test}: @pytest.mark.{MARKER} needs a sweep dict or a list of "
        f"combinations (dicts), got {type(parameters).__name__}"
    )


def _id_of(combination: Mapping[Any, Any]) -> str:
    def text(value: Any) -> str:
        return str(value) if isinstance(value, (str, int, float, type(None))) else repr(value)

    return "-".join(f"{text(factor)}={text(level)}" for factor, level in combination.items())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    combinations = _combinations_of(marker, metafunc.definition.nodeid)
    metafunc.config.stash.setdefault(COMBINATIONS, {})[metafunc.definition.nodeid] = combinations
    factors = [
        factor
        for factor in dict.fromkeys(f for c in combinations for f in c)
        if isinstance(factor, str)
        and factor.isidentifier()
        and factor in metafunc.fixturenames
        and factor != "combination"
    ]
    values = [(c, *(c.get(f) for f in factors)) for c in combinations]
    if HIDDEN_ARG not in metafunc.fixturenames:  # tests that request no factor nor combination
        metafunc.fixturenames.append(HIDDEN_ARG)
    metafunc.parametrize([HIDDEN_ARG, *factors], values, ids=[_id_of(c) for c in combinations])


@pytest.fixture
def _execo_combination() -> None:
    """Placeholder, replaced by the parametrization of execo_sweep tests."""
    return


@pytest.fixture
def combination(_execo_combination: HashableDict | None) -> HashableDict:
    """The execo_sweep combination of this test (a HashableDict)."""
    if _execo_combination is None:
        raise pytest.UsageError(f"the `combination` fixture needs @pytest.mark.{MARKER}")
    return _execo_combination


RECORDED = pytest.StashKey[dict[str, Any]]()


@pytest.fixture
def execo_record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record result values of this combination: ``execo_record(latency=0.3, size=12)``.

    With a sweep dir, they are written to the sweep's ``results`` file with the outcome and
    duration of the test (see ``execo-sweep results``); they also go to the test's
    ``user_properties`` (junitxml).
    """
    values = request.node.stash.setdefault(RECORDED, {})

    def record(**named: Any) -> None:
        values.update(named)
        request.node.user_properties.extend(named.items())

    return record


# -- recording ---------------------------------------------------------------------------------


def _combination_of(item: pytest.Item) -> HashableDict | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get(HIDDEN_ARG) if callspec is not None else None


def _function_id(nodeid: str) -> str:
    return nodeid.partition("[")[0]


@functools.lru_cache(maxsize=1024)
def sweep_subdir_name(function_id: str) -> str:
    """The readable, unique name of a test function's ParamSweeper directory."""
    digest = hashlib.sha1(function_id.encode()).hexdigest()[:8]
    test = function_id.rpartition("/")[2].replace(".py::", "::")
    readable = slugify(test.replace("::", " "), separator="-")[:60]
    return f"{readable}-{digest}"


@pytest.hookimpl(trylast=True)
def pytest_execo_state(outcome: str) -> str:
    """The default outcome -> state mapping (runs last)."""
    return {"passed": "done", "skipped": "skip"}.get(outcome, "cancel")


@dataclass
class _Run:
    sweeper: ParamSweeper[HashableDict]
    combination: HashableDict
    outcomes: list[str] = field(default_factory=list)
    duration: float = 0.0


class SweepRecorder:
    """Per-session state of ``--execo-sweep-dir``: snapshot, sweepers, claims, counts."""

    def __init__(self, config: pytest.Config, directory: str) -> None:
        self.config = config
        self.directory = directory
        self.rerun_done = bool(
            config.getoption("execo_rerun_done") or config.getini("execo_rerun_done")
        )
        self.is_worker = hasattr(config, "workerinput")
        self.snapshot: dict[str, list[str]] = (
            config.workerinput[WORKER_INPUT_KEY]  # type: ignore
            if self.is_worker
            else self._read_snapshot()
        )
        self._done = {name: frozenset(texts) for name, texts in self.snapshot.items()}
        self.sweepers: dict[str, ParamSweeper[HashableDict]] = {}
        self.running: dict[str, _Run] = {}
        self.collected = self.deselected = 0
        self.session_outcomes: dict[str, dict[str, str]] = {}  # sweep -> nodeid -> outcome

    def _read_snapshot(self) -> dict[str, list[str]]:
        return {
            name: sorted(done_snapshot(location))
            for name, location in child_locations(self.directory).items()
        }

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller: every worker deselects from the same snapshot."""
        node.workerinput[WORKER_INPUT_KEY] = self.snapshot

    def pytest_report_header(self) -> str:
        done = sum(len(texts) for texts in self.snapshot.values())
        return (
            f"execo: recording in {shown(self.directory)} ({done} combination(s) done before "
            f"this session)"
        )

    @pytest.hookimpl(trylast=True)  # after -k/-m: count what this session selected
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        keep, deselected, names = [], [], set()
        for item in items:
            combination = _combination_of(item)
            if combination is None:
                keep.append(item)
                continue
            self.collected += 1
            names.add(name := sweep_subdir_name(_function_id(item.nodeid)))
            done = self._done.get(name, frozenset())
            if not self.rerun_done and canonical_text(combination) in done:
                deselected.append(item)
            else:
                keep.append(item)
        for name in names:  # refuse a planted link before anything is written through it
            try:
                child_location(self.directory, name)
            except NotADirectoryError as error:
                raise pytest.UsageError(f"execo: {error}") from None
        if deselected:
            self.deselected = len(deselected)
            config.hook.pytest_deselected(items=deselected)
            items[:] = keep

    def pytest_report_collectionfinish(self) -> str:
        return (
            f"execo: {self.deselected}/{self.collected} combinations done in "
            f"{shown(self.directory)}, running {self.collected - self.deselected}"
        )

    def _sweeper(self, item: pytest.Item) -> ParamSweeper[HashableDict]:
        function_id = _function_id(item.nodeid)
        name = sweep_subdir_name(function_id)
        if name not in self.sweepers:
            combinations = self.config.stash[COMBINATIONS][function_id]
            self.sweepers[name] = ParamSweeper(
                child_location(self.directory, name),
                combinations,
                save_sweeps=True,
                name=function_id,
            )
        return self.sweepers[name]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        combination = _combination_of(item)
        if combination is None:
            return
        sweeper = self._sweeper(item)
        why_not = sweeper.take(combination)
        if why_not == "done" and self.rerun_done:
            return  # run again on request; its state stays done
        if why_not is not None:
            pytest.skip(f"execo: combination {why_not} by another session")
        self.running[item.nodeid] = _Run(sweeper, combination)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        run = self.running.get(report.nodeid)
        if run is not None:
            run.outcomes.append(report.outcome)
            run.duration += report.duration
        if MARKER in report.keywords and (report.when == "call" or not report.passed):
            name = sweep_subdir_name(_function_id(report.nodeid))
            outcomes = self.session_outcomes.setdefault(name, {})
            previous = outcomes.get(report.nodeid, "passed")
            outcomes[report.nodeid] = min(previous, report.outcome, key=_WORST_FIRST.index)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, None]:
        result = yield
        run = self.running.pop(item.nodeid, None)
        if run is None:
            return
        if result.excinfo is not None:  # interrupted (KeyboardInterrupt, exit): run it again
            run.sweeper.cancel(run.combination)
            return
        outcome = min(run.outcomes, key=_WORST_FIRST.index, default="failed")
        hook = self.config.hook
        state = hook.pytest_execo_state(item=item, combination=run.combination, outcome=outcome)
        if state not in STATES:
            run.sweeper.cancel(run.combination)
            raise pytest.UsageError(
                f"pytest_execo_state returned {state!r} for {item.nodeid}: "
                f"expected one of {', '.join(STATES)}"
            )
        if RECORDED in item.stash:  # before done: a crash in between must not lose results
            run.sweeper.record_result(
                run.combination, item.stash[RECORDED], outcome, round(run.duration, 6)
            )
        {"done": run.sweeper.done, "skip": run.sweeper.skip, "cancel": run.sweeper.cancel}[state](
            run.combination
        )
        hook.pytest_execo_recorded(
            item=item, combination=run.combination, outcome=outcome, state=state
        )

    def pytest_sessionfinish(self) -> None:
        """Give back what this session claimed and did not finish (-x, Ctrl-C, ...), and
        forget its skips: the next session (perhaps in this same process) retries them."""
        for sweeper in self.sweepers.values():
            sweeper.release_claims()
            sweeper.reset()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or not self.session_outcomes:
            return
        terminalreporter.section("execo sweeps")
        for name, outcomes in sorted(self.session_outcomes.items()):
            sweeper = ParamSweeper(child_location(self.directory, name), read_only=True)
            sweeps, remaining, _, inprogress, done = sweeper.stats()
            counts = {k: list(outcomes.values()).count(k) for k in _WORST_FIRST}
            terminalreporter.write_line(
                f"{name}: {len(sweeps)} total, {len(done)} done, {len(inprogress)} in "
                f"progress, {len(remaining)} remaining | this session: {counts['passed']} "
                f"passed, {counts['skipped']} skipped, {counts['failed']} failed"
            )
