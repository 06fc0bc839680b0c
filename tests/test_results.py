"""Results as flat rows and DataFrames, on both stores: what a user analysing a sweep gets from
``load_results``, ``results_frame`` and ``load_runs``."""

import datetime
import shutil
from pathlib import Path

import pytest

import execo_engine

try:  # before any pytester test, which forgets the modules imported during it
    import pandas
except ImportError:  # the analysis extra is not installed
    pandas = None
from execo_engine import provenance
from execo_engine.results import load_results, load_runs, results_frame
from execo_engine.sweep import HashableDict, ParamSweeper, sweep

GRID = {"size": [10, 20], "algo": ["quick", "merge"]}
GOLDEN = Path(__file__).parent / "golden" / "format1"
UTC = datetime.UTC


@pytest.fixture
def in_run(tmp_path):
    """A run of this process (an Engine run's), ended at the end of the test."""
    run = provenance.start_run(provenance.capture("engine", directory=tmp_path))
    yield run
    provenance.end_run()


def _grid_with_failures(location, max_attempts=2):
    """4 combinations: two done with results, one failed for good after 2 attempts (a result
    per attempt), one todo."""
    sweeps = sweep(GRID)
    sweeper = ParamSweeper(location, sweeps, save_sweeps=True, max_attempts=max_attempts)
    first, second, third = sweeps[:3]
    for combination, latency in ((first, 0.5), (second, 0.25)):
        assert sweeper.take(combination) is None
        sweeper.record_result(combination, {"latency": latency, "ok": True}, "passed", 1.5)
        sweeper.done(combination)
    for attempt in (1, 2):
        assert sweeper.take(third) is None
        sweeper.record_result(third, {"latency": None, "attempt": attempt}, "failed", 0.1)
        sweeper.fail(third, f"boom {attempt}")
    return sweeps


def test_rows_of_a_grid_with_failures(location, in_run):
    sweeps = _grid_with_failures(location("root/grid"))
    rows = load_results(location("root/grid"))
    columns = ["size", "algo", "latency", "ok", "attempt", "outcome", "attempts", "duration"]
    columns += ["host", "time", "sweep", "run", "commit", "dirty"]
    assert [list(row) for row in rows] == [columns] * 4
    assert [(r["size"], r["algo"], r["latency"], r["outcome"], r["attempts"]) for r in rows] == [
        (10, "quick", 0.5, "passed", 0),
        (10, "merge", 0.25, "passed", 0),
        (20, "quick", None, "failed", 2),
        (20, "quick", None, "failed", 2),
    ]
    assert [r["attempt"] for r in rows] == [None, None, 1, 2]
    assert {r["sweep"] for r in rows} == {ParamSweeper(location("root/grid"), read_only=True).name}
    assert {r["run"] for r in rows} == {in_run.id}
    assert all(r["time"].tzinfo is UTC for r in rows)
    assert abs(rows[0]["time"] - datetime.datetime.now(UTC)) < datetime.timedelta(minutes=5)

    pending = load_results(location("root/grid"), include_pending=True)
    assert list(pending[0])[-1] == "state"
    assert [(r["size"], r["algo"], r["outcome"], r["state"]) for r in pending] == [
        (10, "quick", "passed", "done"),
        (10, "merge", "passed", "done"),
        (20, "quick", "failed", "failed"),
        (20, "quick", "failed", "failed"),
        (20, "merge", None, "todo"),
    ]
    assert pending[-1]["attempts"] == 0 and pending[-1]["time"] is None
    assert dict(sweeps[3]) == {"size": 20, "algo": "merge"}


def test_several_sweeps_below_one_location_and_name_collisions(location):
    # two sweeps, as a pytest sweep dir holds them: the second's factors come in another order
    # and one of them, "host", is the name of a column; a recorded value is named "duration"
    ParamSweeper(location("root/b"), sweep({"host": ["h1"], "size": [1]}), save_sweeps=True)
    b = ParamSweeper(location("root/b"), read_only=False)
    b.record_result(b.get_next(), {"duration": 3.0, "host": "value"}, "passed", 0.5)
    a = ParamSweeper(location("root/a"), sweep({"size": [2], "n": [7]}), save_sweeps=True)
    a.record_result(a.get_next(), {"speed": 1}, "passed", 0.1)
    rows = load_results(location("root"))
    assert list(rows[0]) == [
        "size",
        "n",
        "factor_host",
        "speed",
        "value_duration",
        "value_host",
        *("outcome", "attempts", "duration", "host", "time", "sweep", "run", "commit", "dirty"),
    ]
    assert [r["sweep"].rsplit("/", 1)[-1] for r in rows] == ["a", "b"]  # sorted by name
    assert (rows[0]["size"], rows[0]["n"], rows[0]["speed"], rows[0]["factor_host"]) == (
        2,
        7,
        1,
        None,
    )
    second = rows[1]
    assert (second["factor_host"], second["value_host"], second["value_duration"]) == (
        "h1",
        "value",
        3.0,
    )
    assert second["duration"] == 0.5 and second["host"] != "value"
    assert second["run"] is None and second["commit"] is None  # recorded outside a run


def test_a_frame_of_the_same_rows(location, in_run):
    if pandas is None:
        pytest.skip("pandas is not installed (the analysis extra)")
    _grid_with_failures(location("grid"))
    sweeper = ParamSweeper(location("grid"), read_only=True)
    ParamSweeper(location("grid"), sweeper.get_sweeps()).record_result(
        sweeper.get_sweeps()[0], {"latency": 0.75}, "passed", 0.2
    )  # a second result of the first combination, recorded last
    assert [r["latency"] for r in load_results(location("grid"), include_pending=True)] == [
        0.5,
        0.75,  # with pending rows: in sweeps order
        0.25,
        None,
        None,
        None,
    ]
    frame = results_frame(location("grid"))
    assert list(frame.columns) == list(load_results(location("grid"))[0])
    assert len(frame) == 5
    assert str(frame["time"].dtype).startswith("datetime64") and str(frame["time"].dt.tz) == "UTC"
    means = frame[frame.outcome == "passed"].groupby("algo")["latency"].mean()
    assert means.to_dict() == {"merge": 0.25, "quick": 0.625}
    assert frame.loc[frame.outcome == "failed", "attempts"].tolist() == [2, 2]
    assert (frame["commit"] == in_run.commit).all() or in_run.commit is None
    empty = results_frame(location("grid"), include_pending=True).iloc[0:0]
    assert "state" in empty.columns
    assert isinstance(frame, pandas.DataFrame)


def test_runs_listing_counts_what_each_run_finished(location):
    sweeps = sweep(GRID)
    first = provenance.start_run(provenance.capture("engine"))
    sweeper = ParamSweeper(location("grid"), sweeps, save_sweeps=True)
    for combination in sweeps[:3]:
        sweeper.take(combination)
        sweeper.record_result(combination, {"x": 1}, "passed")
        sweeper.done(combination)
    provenance.end_run()
    second = provenance.start_run(provenance.capture("worker"))
    ParamSweeper(location("grid"), sweeps).done(sweeps[3])
    provenance.end_run()
    runs = load_runs(location("grid"))
    assert [(r["id"], r["kind"], r["done"], r["results"], r["processes"]) for r in runs] == [
        (first.id, "engine", 3, 3, 1),
        (second.id, "worker", 1, 0, 1),
    ]
    assert runs[0]["start"] <= runs[1]["start"] and runs[0]["start"].tzinfo is UTC


def test_older_directories_without_runs_stay_readable(tmp_path):
    directory = shutil.copytree(GOLDEN / "mixed", tmp_path / "mixed")
    rows = load_results(directory)
    assert [r["outcome"] for r in rows] == ["passed", "failed"]
    assert {r["run"] for r in rows} == {None} and load_runs(directory) == []
    states = [r["state"] for r in load_results(directory, include_pending=True)]
    assert states == ["done"] * 3 + ["inprogress"] * 3 + ["todo"] * 3 + ["done"] + ["todo"] * 2
    # the first sweep element is a tuple: combinations that are not dicts get one column
    assert rows[0]["combination"] == (1, "a", (2.5, None))
    assert rows[1]["a"] == 1 and rows[1]["b"] == "x"
    assert rows[0]["time"] == datetime.datetime.fromtimestamp(1795877442.016, UTC)


def test_public_names_and_errors(tmp_path):
    assert execo_engine.load_results is load_results
    assert execo_engine.results_frame is results_frame
    assert execo_engine.load_runs is load_runs
    with pytest.raises(FileNotFoundError, match="missing: no such directory"):
        load_results(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: not a sweep directory"):
        load_results(tmp_path / "empty")


def test_elements_that_are_not_plain_dicts(tmp_path):
    sweeper = ParamSweeper(tmp_path / "s", [HashableDict({1: "a"}), 5], save_sweeps=True)
    for element in sweeper.get_sweeps():
        sweeper.record_result(element, {"v": 1})
    rows = load_results(tmp_path / "s")
    assert [(r["1"], r["combination"]) for r in rows] == [("a", None), (None, 5)]


@pytest.mark.slow
def test_a_database_made_before_run_records(postgresql):
    # its own schema, so that dropping a table touches no other test's sweeps
    postgresql.execute("CREATE SCHEMA before_runs")
    url = postgresql.url("old", options="-c%20search_path%3Dbefore_runs")
    sweeps = sweep(GRID)
    ParamSweeper(url, sweeps, save_sweeps=True).record_result(sweeps[0], {"x": 1})
    postgresql.execute("DROP TABLE before_runs.execo_runs")  # as a version 4 database was made
    assert [r["x"] for r in load_results(url)] == [1]  # a reader: no runs there
    assert load_runs(url) == []
    run = provenance.start_run(provenance.capture("engine"))
    try:
        writer = ParamSweeper(url, sweeps)  # a writer adds the table
        writer.record_result(sweeps[1], {"x": 2})
    finally:
        provenance.end_run()
    assert [r["run"] for r in load_results(url)] == [None, run.id]
    assert [r["id"] for r in load_runs(url)] == [run.id]


SEVERAL_ITEMS = """
import pytest

@pytest.mark.parametrize("rep", [1, 2])
@pytest.mark.execo_sweep({"size": [1, 2], "algo": ["a", "b"]})
def test_grid(size, algo, rep, execo_record):
    execo_record(latency=size * rep)
    assert (size, algo) != (2, "b")
"""


@pytest.mark.slow
def test_rows_and_frame_of_a_pytest_sweep_with_failures_and_several_items(pytester, location):
    if pandas is None:
        pytest.skip("pandas is not installed (the analysis extra)")
    pytester.makepyfile(test_grid=SEVERAL_ITEMS)
    where = location("sweepdir")
    result = pytester.runpytest_subprocess(f"--execo-sweep-dir={where}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6, failed=2)
    rows = load_results(where)
    assert len(rows) == 8 and len({r["sweep"] for r in rows}) == 2  # one sweep per repetition
    assert list(rows[0])[:3] == ["size", "algo", "latency"]
    failed = [(r["size"], r["algo"], r["attempts"]) for r in rows if r["outcome"] == "failed"]
    assert failed == [(2, "b", 1), (2, "b", 1)]
    assert len({r["run"] for r in rows}) == 1 and rows[0]["run"] is not None
    frame = results_frame(where, include_pending=True)
    assert len(frame) == 8 and set(frame["state"]) == {"done", "todo"}
    latency = (
        frame[frame.outcome == "passed"].groupby(["size", "algo"])["latency"].agg(["mean", "count"])
    )
    assert latency.to_dict("index") == {
        (1, "a"): {"mean": 1.5, "count": 2},
        (1, "b"): {"mean": 1.5, "count": 2},
        (2, "a"): {"mean": 3.0, "count": 2},
    }
    assert isinstance(frame, pandas.DataFrame)
