"""Sessions with more swept test functions than a process can keep sweeps open for: every
open sweep holds file descriptors (a directory) or a connection (PostgreSQL), so a session
keeps only a few open, and each combination still runs once and is recorded."""

import importlib.util
import os
import resource
import subprocess
import sys
from collections import Counter

import pytest
from plugin_helpers import open_descriptors

from execo_engine.provenance import capture, end_run, start_run
from execo_engine.sweep import ParamSweeper, sweep

FUNCTIONS = 40  #: swept test functions, each its own sweep of 2 combinations
#: a descriptor limit that 40 open directory sweeps (5 descriptors each) exceed
LIMIT = 128
GRID = sweep({"i": [0, 1]})

MANY_TESTS = """
import pytest

RUNS = {runs!r}

def body(name, i):
    with open(RUNS, "a") as f:
        f.write(f"{{name}}-{{i}}\\n")
{functions}
"""

FUNCTION = """
@pytest.mark.execo_sweep({{"i": [0, 1]}})
def test_{k}(i, execo_record):
    body("{k}", i)
    execo_record(k={k})
"""

CONFTEST = """
import random, resource

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, hard))

def pytest_collection_modifyitems(items):
    if {shuffle}:  # the same order in every xdist worker
        random.Random(7).shuffle(items)
"""


def write_many(pytester, shuffle=False, limit=LIMIT):
    runs = pytester.path / "runs.txt"
    functions = "".join(FUNCTION.format(k=k) for k in range(FUNCTIONS))
    pytester.makepyfile(test_many=MANY_TESTS.format(runs=str(runs), functions=functions))
    pytester.makeconftest(CONFTEST.format(limit=limit, shuffle=shuffle))
    return runs


def ran(runs):
    return Counter(runs.read_text().split()) if runs.exists() else Counter()


def every_combination_once(runs):
    return Counter({f"{k}-{i}": 1 for k in range(FUNCTIONS) for i in (0, 1)}) == ran(runs)


@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "shuffled"])
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_more_sweeps_than_descriptors(pytester, shuffle, workers):
    """40 sweeps in a process allowed 128 descriptors: each combination runs once, every
    sweep is recorded done, and the next session runs nothing."""
    runs = write_many(pytester, shuffle)
    results = pytester.path / "results"
    first = pytester.runpytest_subprocess(f"--execo-sweep-dir={results}", *workers)
    first.assert_outcomes(passed=2 * FUNCTIONS)
    assert every_combination_once(runs)
    sweeps = sorted(os.listdir(results))
    assert len(sweeps) == FUNCTIONS
    for name in sweeps:
        view = ParamSweeper(str(results / name), read_only=True)
        assert sorted(c["i"] for c in view.get_done()) == [0, 1], name
        view.close()
    again = pytester.runpytest_subprocess(f"--execo-sweep-dir={results}", *workers)
    assert again.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert every_combination_once(runs)


@pytest.mark.slow
def test_more_sweeps_than_server_connections(pytester, tmp_path):
    """40 PostgreSQL sweeps on a server that takes 20 connections: the same."""
    from pg import Server

    server = Server("max_connections=20")
    if not server.available:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is not installed: .ci/run installs it")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server.start()
    try:
        runs = write_many(pytester, limit=1024)
        url = server.url("many")
        first = pytester.runpytest_subprocess(f"--execo-sweep-dir={url}")
        first.assert_outcomes(passed=2 * FUNCTIONS)
        assert every_combination_once(runs)
        again = pytester.runpytest_subprocess(f"--execo-sweep-dir={url}")
        assert again.ret == pytest.ExitCode.NO_TESTS_COLLECTED
        assert every_combination_once(runs)
        for name, command in COMMANDS.items():
            if command[0] == "report" and importlib.util.find_spec("plotly") is None:
                continue
            shown = execo_sweep(command, url, tmp_path, limit=1024)
            assert shown.returncode == 0, (name, shown.stderr)
            text = shown.stdout + ((tmp_path / "page.html").read_text() if "-o" in command else "")
            assert all(f"test_many-test_{k}-" in text for k in range(FUNCTIONS)), name
        dropped = subprocess.run(
            [sys.executable, "-W", "error::ResourceWarning", "-c", DROPPED_PG % server.url("d")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert (dropped.returncode, dropped.stderr) == (0, "")
    finally:
        server.stop()


#: 40 PostgreSQL sweepers never closed, on a server taking 20 connections
DROPPED_PG = """
import gc
from execo_engine.sweep import ParamSweeper, sweep

for k in range(40):
    sweeper = ParamSweeper("%s" + str(k), sweep({"i": [0, 1]}))
    sweeper.done(sweeper.get_next())
del sweeper
gc.collect()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_close_releases_every_descriptor_even_after_the_end_record(tmp_path):
    """A closed directory sweeper holds no descriptor, nor after the run's end record is
    written through it (the end record opens what it needs and closes it again)."""
    before = open_descriptors()
    start_run(capture("engine", directory=str(tmp_path)))
    try:
        sweeper = ParamSweeper(str(tmp_path / "s"), sweep({"i": [0, 1, 2]}), save_sweeps=True)
        combination = sweeper.get_next()
        sweeper.record_result(combination, {"x": 1})
        sweeper.done(combination)
        assert open_descriptors() - before  # journals, lock file and flush file
        sweeper.close()
        assert not open_descriptors() - before
    finally:
        end_run()
    assert not open_descriptors() - before
    runs = ParamSweeper(str(tmp_path / "s"), read_only=True).get_runs()
    assert [(run.get("done"), run.get("results")) for run in runs] == [(1, 1)]
    assert runs[0].get("end") is not None  # the end record, written after close()


def python(*args, cwd, limit):
    """``python ARGS...`` in ``cwd``, in a process allowed ``limit`` descriptors."""

    def limit_descriptors():
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        preexec_fn=limit_descriptors,
        timeout=300,
    )


COMMANDS = {
    "status": ["status"],
    "status-json": ["status", "--json"],
    "status-watch": ["status", "--watch", "--interval", "0.1"],
    "results": ["results"],
    "report": ["report", "-o", "page.html"],
    "report-watch": ["report", "-o", "page.html", "--watch", "1"],
    "reclaim": ["reclaim"],
    "reset": ["reset", "--failed"],
}


def execo_sweep(command, parent, cwd, limit):
    """``execo-sweep COMMAND PARENT ...`` in a process allowed ``limit`` descriptors."""
    return python(
        "-m", "execo_engine.cli", command[0], str(parent), *command[1:], cwd=cwd, limit=limit
    )


def complete_sweeps(parent):
    """40 complete sweeps below ``parent``, each with one result."""
    for k in range(FUNCTIONS):
        with ParamSweeper(str(parent / f"sweep{k}x"), sweep({"i": [0, 1]}), True) as sweeper:
            sweeper.record_result(sweeper.get_next(), {"k": k})
            sweeper.done_batch(sweeper.get_sweeps())


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_execo_sweep_goes_through_more_sweeps_than_descriptors(tmp_path, command):
    """``execo-sweep`` on 40 complete sweeps in a process allowed 48 descriptors: every sweep
    shown or changed (a view keeps no descriptor between its reads; each command closes what
    it opened for a sweep before the next)."""
    if command[0] == "report":
        pytest.importorskip("plotly", reason="the report needs the plot extra")
    parent = tmp_path / "sweeps"
    complete_sweeps(parent)
    shown = execo_sweep(command, parent, tmp_path, limit=48)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout + ((tmp_path / "page.html").read_text() if "-o" in command else "")
    assert all(f"sweep{k}x" in text for k in range(FUNCTIONS))


def test_a_view_keeps_no_descriptor_and_follows_appends_and_compaction(tmp_path):
    """A read-only view closes the journals after each read, and reads on from where it was:
    appended records, a claims journal replaced by compaction, then more records."""
    location = str(tmp_path / "s")
    writer = ParamSweeper(location, sweep({"i": range(3000)}), save_sweeps=True)
    view = ParamSweeper(location, read_only=True)

    def seen():
        before = open_descriptors()
        inprogress, done = view.get_inprogress(), view.get_done()
        assert not open_descriptors() - before  # nothing kept open by the view
        return list(inprogress), len(done)

    held = writer.get_next_batch(5)
    assert seen() == (held, 0)
    for _ in range(40):  # 2000 claim records: the inprogress journal is rewritten (a new file)
        writer.done_batch(writer.get_next_batch(50))
    assert len((tmp_path / "s" / "inprogress").read_text().splitlines()) < 2000
    assert seen() == (held, 2000)
    writer.done_batch(held)
    assert seen() == ([], 2005)


def test_a_submitted_worker_sees_nothing_left_in_more_sweeps_than_descriptors(tmp_path):
    """The first thing a submitted worker runs (``nothing-left``) on 40 complete sweeps, in a
    process allowed 48 descriptors: nothing left (status 0), not an error."""
    complete_sweeps(tmp_path / "sweeps")
    checked = python(
        "-m", "execo_engine.cli.submit", "nothing-left", "sweeps", cwd=tmp_path, limit=48
    )
    assert (checked.returncode, checked.stderr) == (0, "")


DROPPED = """
import os, sys
from execo_engine.sweep import ParamSweeper, sweep

for k in range(200):  # never closed, as execo 2.x scripts do (it had no close())
    sweeper = ParamSweeper(f"sweeps/s{k}", sweep({"i": [0, 1]}))
    combination = sweeper.get_next()
    sweeper.record_result(combination, {"k": k})
    sweeper.done(combination, wait=k % 2 == 0)  # half of them never flushed
print(len(os.listdir("/proc/self/fd")))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_sweepers_dropped_without_close_leave_no_descriptor(tmp_path):
    """An execo 2.x script opening 200 sweeps one after the other, never closing them, in a
    process allowed 128 descriptors: it runs (execo 2.8.2's does), and ends with the
    descriptors it started with, give or take the interpreter's."""
    ran = python("-c", DROPPED, cwd=tmp_path, limit=LIMIT)
    assert ran.returncode == 0, ran.stderr
    assert int(ran.stdout) < 16
    for k in range(200):
        view = ParamSweeper(str(tmp_path / "sweeps" / f"s{k}"), GRID, read_only=True)
        assert len(view.get_done()) == 1


def test_an_in_process_session_leaves_no_descriptor(pytester):
    """pytest run again and again in one process (an IDE, pytester): each session closes its
    sweeps when it ends, rather than when the garbage collector gets to them."""
    pytester.makepyfile(
        test_few="import pytest\n"
        + "".join(FUNCTION.format(k=k) for k in range(3)).replace("body(", "print(")
    )
    pytester.makeconftest("")
    before = open_descriptors()
    pytester.runpytest("--execo-sweep-dir=results", "-p", "no:cacheprovider").assert_outcomes(
        passed=6
    )
    # an in-process session leaves a socket of pytest's own, with or without a sweep dir
    assert {
        (fd, what) for fd, what in open_descriptors() - before if "socket:" not in what
    } == set()


def test_a_view_that_keeps_no_descriptor_sees_a_deleted_claims_journal(tmp_path):
    """Deleting ``inprogress`` releases every claim, for a view that closed it after its last
    read too; claims written after are seen."""
    location = str(tmp_path / "s")
    writer = ParamSweeper(location, sweep({"i": range(10)}), save_sweeps=True)
    view = ParamSweeper(location, read_only=True)
    held = writer.get_next_batch(3)
    assert list(view.get_inprogress()) == held
    (tmp_path / "s" / "inprogress").unlink()
    assert list(view.get_inprogress()) == []
    again = writer.get_next_batch(2)
    assert list(view.get_inprogress()) == again


def test_a_sweeper_used_after_close_reads_its_sweep_again(tmp_path):
    """What may use a sweeper after its close() (the run's end record, a preempted worker's
    last give-back) sees the sweep as it is: done, claims, skips, failures and results."""
    sweeper = ParamSweeper(str(tmp_path / "s"), sweep({"i": range(10)}), max_attempts=3)
    first, held, skipped = sweeper.get_next(), sweeper.get_next(), sweeper.get_next()
    sweeper.done(first)
    sweeper.skip(skipped)
    failing = sweeper.get_next()
    sweeper.fail(failing, "once")
    sweeper.record_result(first, {"v": 1})
    before = (sweeper.counts(), sweeper.get_failures(), sweeper.get_results())
    sweeper.close()
    assert (sweeper.counts(), sweeper.get_failures(), sweeper.get_results()) == before
    assert sweeper.release_claims() == [held]
    assert sweeper.get_next_batch(2) == [held, failing]  # todo again, in order
    sweeper.close()
