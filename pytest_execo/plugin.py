"""pytest hooks of pytest_execo (the ``pytest11`` entry point). All sweep state logic stays in
``ParamSweeper``; recording lives in :mod:`pytest_execo.recorder`, imported only by sessions
with a sweep dir, so that the entry point costs every other pytest session almost nothing.

- ``@pytest.mark.execo_sweep({...})`` parametrizes a test from a ``sweep()`` dict (or a list of
  combinations). The test gets the combination as ``combination``, and each factor whose name
  is an identifier as an argument of that name (None where a combination lacks it). Ids are
  the levels (see :mod:`pytest_execo.naming`).
- ``--execo-sweep-dir=DIR`` (ini ``execo_sweep_dir``) records outcomes (see
  :class:`pytest_execo.recorder.SweepRecorder`) and the session's run (see
  :mod:`pytest_execo.runs`; ini ``execo_record_versions``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sized
from typing import Any

import pytest

from execo_engine.sweep import HashableDict, sweep
from pytest_execo import hooks
from pytest_execo.items import (
    HIDDEN_ARG,
    MARKER,
    RECORDED,
    RECORDER,
    RUN_PLUGIN,
    SWEPT,
    VERSIONS_INI,
    SweptFunction,
    swept_position,
)
from pytest_execo.naming import combination_ids
from pytest_execo.outcome import pytest_execo_state as pytest_execo_state  # the default


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("execo", "execo parameter sweeps (pytest_execo)")
    group.addoption(
        "--execo-sweep-dir",
        dest="execo_sweep_dir",
        metavar="DIR",
        help="record the outcome of each execo_sweep combination in DIR (or in a "
        "postgresql://user@host/db?sweep=NAME database) and deselect the combinations "
        "already done there (ini: execo_sweep_dir)",
    )
    group.addoption(
        "--execo-rerun-done",
        dest="execo_rerun_done",
        action="store_true",
        default=None,
        help="do not deselect the combinations already done in the sweep dir: run them "
        "again (their state stays done; execo_record values are recorded; "
        "ini: execo_rerun_done)",
    )
    group.addoption(
        "--execo-all-done-ok",
        dest="execo_all_done_ok",
        action="store_true",
        default=None,
        help="exit with status 0, not 5 (no tests ran), when every selected combination "
        "is already done (for CI; ini: execo_all_done_ok)",
    )
    group.addoption(
        "--execo-max-attempts",
        dest="execo_max_attempts",
        metavar="N",
        help="a combination whose failed attempts (failed or erroring test) reach N is failed "
        "for good: deselected until execo-sweep reset DIR --failed (default: no limit; "
        "ini: execo_max_attempts)",
    )
    parser.addini(
        "execo_max_attempts", "failed attempts after which a combination is failed for good"
    )
    parser.addini(
        VERSIONS_INI,
        "packages whose installed versions each run records in the sweep dir (besides "
        "execo_engine and pytest), separated by spaces",
        type="args",
    )
    parser.addini(
        "execo_sweep_dir",
        "directory (relative to the ini file) or postgresql:// URL where execo_sweep "
        "outcomes are recorded",
    )
    parser.addini(
        "execo_rerun_done", "run combinations already done too", type="bool", default=False
    )
    parser.addini(
        "execo_all_done_ok",
        "exit 0 when every selected combination is already done",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(parameters): parametrize the test with every combination of "
        "sweep(parameters) (a dict of factor -> levels, or a list of combinations); "
        "the test receives `combination` and factors by name. With "
        "--execo-sweep-dir, outcomes are recorded and done combinations deselected.",
    )
    given = config.getoption("execo_sweep_dir")
    if given is not None and not given.strip():
        raise pytest.UsageError(
            f"--execo-sweep-dir={given!r}: empty (an unset variable?): give a directory or a "
            f"postgresql:// URL, or leave the option out to record nothing"
        )
    if given or config.getini("execo_sweep_dir"):
        _record(config)
    else:
        _refuse_options_without_sweep_dir(config)


#: The command-line options that act on a sweep dir only: given without one, they did nothing
_NEED_SWEEP_DIR = {
    "execo_rerun_done": "--execo-rerun-done",
    "execo_all_done_ok": "--execo-all-done-ok",
    "execo_max_attempts": "--execo-max-attempts",
}


def _refuse_options_without_sweep_dir(config: pytest.Config) -> None:
    """A usage error for options of the sweep dir given on the command line without one
    (their ini twins, shared by sessions with and without it, are left alone)."""
    given = [option for dest, option in _NEED_SWEEP_DIR.items() if config.getoption(dest)]
    if given:
        raise pytest.UsageError(
            f"{', '.join(given)}: acts on a sweep dir, and this session has none (nothing is "
            f"recorded, nothing deselected): add --execo-sweep-dir=DIR (or ini "
            f"execo_sweep_dir), or leave {'it' if len(given) == 1 else 'them'} out"
        )


def _record(config: pytest.Config) -> None:
    """Register the plugins of a session with a sweep dir (imported only for them)."""
    from pytest_execo.preemption import PreemptionGuard
    from pytest_execo.recorder import SweepRecorder
    from pytest_execo.summary import SweepSummary
    from pytest_execo.xdist_handoff import ControllerHandoff

    recorder = SweepRecorder(config)  # reads its options
    plugins = config.pluginmanager
    plugins.register(recorder, RECORDER)
    summary = SweepSummary(recorder)
    plugins.register(summary, "execo-summary")
    if not recorder.is_worker:
        handoff = ControllerHandoff(config, recorder.snapshot, summary.counts_from_worker)
        plugins.register(handoff, "execo-xdist-handoff")
    plugins.register(PreemptionGuard(), "execo-preemption")
    if recorder.records:  # the provenance of what it records
        from pytest_execo.runs import SessionRun

        plugins.register(SessionRun(config, recorder.location), RUN_PLUGIN)


# -- parametrization ------------------------------------------------------------------------


def _combinations_of(marker: pytest.Mark, test: str) -> list[HashableDict]:
    """The combinations of an ``execo_sweep`` marker: ``sweep(dict, exclude=...)``, or the given
    list of combinations (``exclude`` has no meaning there: leave them out of the list)."""
    unknown = sorted(set(marker.kwargs) - {"exclude"})
    if len(marker.args) != 1 or unknown:
        given = f" (got {len(marker.args)} argument(s)" + (
            f", and {', '.join(f'{k}=' for k in unknown)})" if unknown else ")"
        )
        raise TypeError(
            f"{test}: @pytest.mark.{MARKER} takes one argument, a sweep dict or a "
            f"list of combinations, and for a sweep dict exclude=...{given}"
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


def _check_one_marker(definition: pytest.Function, test: str) -> None:
    """A collection error when the node whose marker applies (the function, else its class
    or module) has several: only one would be used, and each item would then fail on a
    missing fixture, counting failed attempts."""
    nodes = [node for node, _ in definition.iter_markers_with_node(MARKER)]
    count = sum(1 for node in nodes if node is nodes[0])
    if count > 1:
        raise pytest.Collector.CollectError(
            f"{test}: @pytest.mark.{MARKER} is given {count} times on {nodes[0].name}: give "
            f"one, with every factor in one sweep dict (its grid is every combination of "
            f"their levels), or a list of combinations"
        )


#: config: id of an ``execo_sweep`` mark -> (that mark, its combinations)
_COMBINATIONS = pytest.StashKey[dict[int, tuple[pytest.Mark, list[HashableDict]]]]()


def _combinations_once(marker: pytest.Mark, test: str, config: pytest.Config) -> list[HashableDict]:
    """:func:`_combinations_of` ``marker``, computed once per mark: the methods of a class
    marked once share it, and a generator of levels (which ``sweep()`` accepts) is read once,
    not used up by the first method."""
    known = config.stash.setdefault(_COMBINATIONS, {})
    found = known.get(id(marker))
    if found is not None and found[0] is marker:
        return found[1]
    combinations = _combinations_of(marker, test)
    known[id(marker)] = (marker, combinations)  # the mark kept: its id is not reused
    return combinations


def _check_not_parametrized(definition: pytest.Function, argnames: list[str], test: str) -> None:
    """A collection error naming an argument that ``@pytest.mark.parametrize`` gives too (pytest
    says "duplicate parametrization", without naming the marker), or that is named
    ``request`` (pytest says it is reserved "in @pytest.mark.parametrize")."""
    given: set[str] = set()
    for mark in definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = names.split(",")
        given.update(name.strip() for name in names)
    for name in argnames:
        if name in given:
            raise pytest.Collector.CollectError(
                f"{test}: {name!r} is given by @pytest.mark.{MARKER} and by "
                f"@pytest.mark.parametrize: give its levels in one of them only"
            )
        if name == "request":  # pytest refuses it, naming @pytest.mark.parametrize
            raise pytest.Collector.CollectError(
                f"{test}: factor 'request' of @pytest.mark.{MARKER} has the name of pytest's "
                f"own fixture, which no test argument can take: rename the factor (the test "
                f"then takes it by its new name, or reads combination[...])"
            )


def _check_recordable(combinations: list[HashableDict], test: str) -> None:
    """In a session that records: the error a sweep of ``combinations`` would meet when its
    first item runs (an unhashable level, one the results cannot carry), and a combination
    given twice (one unit of work: its second item would be skipped as done), each naming the
    test, the combination and what to do."""
    from execo_engine.sweeper import check_elements  # a session that records imports it anyway

    try:
        check_elements(combinations)
    except TypeError as error:
        raise TypeError(f"{test}: @pytest.mark.{MARKER}: cannot be recorded: {error}") from None
    if len(set(combinations)) == len(combinations):
        return
    seen: set[HashableDict] = set()
    for combination in combinations:
        if combination in seen:
            raise ValueError(
                f"{test}: @pytest.mark.{MARKER} gives the combination {dict(combination)!r} "
                f"twice: a combination is one unit of work for --execo-sweep-dir (its second "
                f"item could only be skipped as done): remove the repeated level or combination"
            )
        seen.add(combination)


def _check_factors_given(
    marker: pytest.Mark, combinations: list[HashableDict], arguments: list[str], test: str
) -> None:
    """A collection error naming the factor and the test when the test asks for a factor of
    the marker's sweep dict that no combination has (``sweep()`` drops a factor without
    levels): without it, each item would fail on a missing fixture."""
    parameters = marker.args[0]
    if not isinstance(parameters, Mapping):
        return
    for key, levels in parameters.items():
        for name in key if isinstance(key, tuple) else (key,):
            if name not in arguments or name == "combination":
                continue
            if any(name in combination for combination in combinations):
                continue
            why = (
                f"has no levels ({levels!r}), so sweep() leaves it out of every combination"
                if isinstance(levels, Sized) and len(levels) == 0
                else "is in no combination"
            )
            raise pytest.Collector.CollectError(
                f"{test}: factor {name!r} of @pytest.mark.{MARKER} {why}, yet the test takes "
                f"an argument {name!r}: give the factor at least one level, or remove it and "
                f"the argument"
            )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize, directly (no fixture runs for them), exactly the arguments the test (or
    its fixtures) asks for: ``combination`` and factors; a test that asks for none gets a
    hidden argument, so that each combination is still an item. In a session that records
    (a sweep dir), each item carries the position of its combination as the value of that
    hidden argument (see :func:`~pytest_execo.items.swept_position`; a mark per item cost a
    recorded test about 1.5 % more instructions); other sessions need no position."""
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    test = metafunc.definition.nodeid
    _check_one_marker(metafunc.definition, test)
    recording = metafunc.config.pluginmanager.has_plugin(RECORDER)
    try:
        combinations = _combinations_once(marker, test, metafunc.config)
        if recording:
            _check_recordable(combinations, test)
    except (TypeError, ValueError) as error:  # a collection error showing the message only
        text = str(error)
        raise pytest.Collector.CollectError(text if test in text else f"{test}: {text}") from None
    _check_factors_given(marker, combinations, metafunc.fixturenames, test)
    factors = [
        factor
        for factor in dict.fromkeys(f for c in combinations for f in c)
        if isinstance(factor, str)
        and factor.isidentifier()
        and factor in metafunc.fixturenames
        and factor != "combination"
    ]
    if "combination" in metafunc.fixturenames:
        argnames = ["combination", *factors]
        values = [(c, *(c.get(f) for f in factors)) for c in combinations]
    else:
        argnames, values = factors, [tuple(c.get(f) for f in factors) for c in combinations]
    _check_not_parametrized(metafunc.definition, argnames, test)
    if not argnames or recording:  # the hidden argument (see pytest_execo.items.HIDDEN_ARG)
        metafunc.fixturenames.append(HIDDEN_ARG)
        positions = range(len(combinations)) if recording else [None] * len(combinations)
        argnames = [*argnames, HIDDEN_ARG]
        values = [(*v, p) for v, p in zip(values, positions, strict=True)]
    ids = combination_ids(combinations)
    metafunc.config.stash.setdefault(SWEPT, {})[metafunc.definition.nodeid] = SweptFunction(
        combinations, ids
    )
    metafunc.parametrize(argnames, values, ids=ids)


@pytest.fixture
def _execo_combination() -> None:
    """Placeholder, replaced by the parametrization of execo_sweep tests."""
    return


@pytest.fixture
def combination() -> HashableDict:
    """The execo_sweep combination of this test (a HashableDict); execo_sweep tests get it
    from their parametrization, this fixture only serves the others (an error)."""
    raise pytest.UsageError(f"the `combination` fixture needs @pytest.mark.{MARKER}")


@pytest.fixture
def execo_record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record result values of this combination: ``execo_record(latency=0.3, size=12)``.

    With a sweep dir, they are written to the sweep's ``results`` file with the outcome and
    duration of the test (see ``execo-sweep results``); they also go to the test's
    ``user_properties`` (junitxml). A value the results cannot carry fails the test at this
    call, naming it (see ``ParamSweeper.record_result``).
    """
    values = request.node.stash.setdefault(RECORDED, {})
    recorder = request.config.pluginmanager.get_plugin(RECORDER)
    if recorder is not None:
        recorder.carry_values()
    unkept = recorder is not None and swept_position(request.node) is None

    def record(**named: Any) -> None:
        __tracebackhide__ = True  # a refused value shows at the test's line, not in the codec
        from execo_engine.sweeper import check_result_values  # on first use: a cheap entry point

        try:  # refused here, in the test, not when written
            check_result_values({**values, **named})
        except (TypeError, ValueError) as error:
            raise error.with_traceback(None) from None
        if unkept:  # at the test's line
            warnings.warn(
                pytest.PytestWarning(
                    f"execo_record in {request.node.nodeid}, a test without "
                    f"@pytest.mark.{MARKER}: no sweep keeps its values (only the test's "
                    f"user_properties, for junitxml); mark the test to record them"
                ),
                stacklevel=2,
            )
        values.update(named)
        request.node.user_properties.extend(named.items())

    return record
