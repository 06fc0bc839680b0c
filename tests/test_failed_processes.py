"""Failed attempts with real processes, on every store: a flaky script run again and again,
four workers sharing a sweep, a worker killed in the middle of a combination."""

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest

from execo_engine.sweep import HashableDict, ParamSweeper, sweep

pytestmark = pytest.mark.slow


def _line_of(script, text):
    """The line number of the first line of ``script`` holding ``text``."""
    return next(n for n, line in enumerate(script.split("\n"), 1) if text in line)


# A user's script: works through the grid with claim(); the body of combination i=1 fails on its
# first two runs (it counts its runs in a file), then passes. An exception ends the script, as
# an uncaught one does; the user runs it again.
_FLAKY = """
import os, sys
from execo_engine.sweep import HashableDict, ParamSweeper, sweep
location, runs, max_attempts = sys.argv[1], sys.argv[2], int(sys.argv[3])
sweeper = ParamSweeper(location, sweep({"i": [0, 1, 2]}), max_attempts=max_attempts)
while True:
    with sweeper.claim() as combination:
        if combination is None:
            break
        with open(os.path.join(runs, str(combination["i"])), "a+") as counter:
            counter.write("run\\n")
            counter.seek(0)
            count = len(counter.readlines())
        if combination["i"] == 1 and count <= 2:
            raise RuntimeError(f"flaky: run {count}")
"""


@pytest.mark.parametrize("max_attempts", [3, 2])
def test_a_body_that_fails_twice_then_passes(location, tmp_path, max_attempts):
    script, runs, url = tmp_path / "flaky.py", tmp_path / "runs", location()
    script.write_text(_FLAKY)
    runs.mkdir()
    statuses = [
        subprocess.run(
            [sys.executable, str(script), url, str(runs), str(max_attempts)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        for _ in range(4)
    ]
    assert [s.returncode for s in statuses][:2] == [1, 1]
    assert "RuntimeError: flaky: run 2" in statuses[1].stderr
    assert [s.returncode for s in statuses][2:] == [0, 0]
    view = ParamSweeper(url, sweep({"i": [0, 1, 2]}))
    ran = {name: (runs / name).read_text().count("run") for name in os.listdir(runs)}
    failure = view.get_failures()[HashableDict(i=1)]
    assert failure.attempts == 2
    if max_attempts == 3:  # the third attempt passed
        assert ran == {"0": 1, "1": 3, "2": 1}
        assert view.get_done() == sweep({"i": [0, 1, 2]}) and view.get_failed() == {}
    else:  # two attempts failed: failed, never run again, its error kept
        assert ran == {"0": 1, "1": 2, "2": 1}
        assert list(view.get_failed()) == [{"i": 1}]
        assert view.get_done() == [{"i": 0}, {"i": 2}]
    line = _line_of(_FLAKY, "raise RuntimeError")
    assert failure.error == f"{script}:{line}: RuntimeError: flaky: run 2"


# A worker: claims until nothing is left; the body of every third combination always fails.
# Each attempt is reported once claim() has returned (so once fail() or done() returned).
_WORKER = """
import os, sys, time
from execo_engine.sweep import ParamSweeper
sweeper = ParamSweeper(sys.argv[1], max_attempts=3)
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
while True:
    try:
        with sweeper.claim() as combination:
            if combination is None:
                if sweeper.get_inprogress():
                    time.sleep(0.01)  # others still hold some, that may fail: look again
                    continue
                break
            if combination["i"] % 3 == 0:
                raise ValueError(combination["i"])
        if combination is not None:
            os.write(fd, b"done %d\\n" % combination["i"])
    except ValueError:
        os.write(fd, b"failed %d\\n" % combination["i"])
"""


def test_four_processes_count_each_failure_exactly_once(location, tmp_path):
    url, report = location(lease="5"), tmp_path / "report"
    grid = sweep({"i": range(24)})
    ParamSweeper(url, grid, save_sweeps=True)
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, url, str(report)]) for _ in range(4)
    ]
    assert [worker.wait(timeout=300) for worker in workers] == [0] * 4
    reported = Counter(report.read_text().splitlines())
    failing_ones = [c for c in grid if c["i"] % 3 == 0]
    line = _line_of(_WORKER, "raise ValueError")
    view = ParamSweeper(url, read_only=True)
    failed = view.get_failed()
    assert list(failed) == failing_ones
    for combination in grid:
        i = combination["i"]
        if i % 3 == 0:  # run exactly max_attempts times, each failure counted exactly once
            assert (reported[f"failed {i}"], reported[f"done {i}"]) == (3, 0)
            assert failed[combination].attempts == 3
            assert failed[combination].error == f"<string>:{line}: ValueError: {i}"
        else:
            assert (reported[f"failed {i}"], reported[f"done {i}"]) == (0, 1)
    assert view.get_done() == [c for c in grid if c["i"] % 3] and view.get_failures() == failed


# Claims one combination, says so, and works on it until killed.
_STUCK = """
import sys
from execo_engine.sweep import ParamSweeper
sweeper = ParamSweeper(sys.argv[1], max_attempts=1)
with sweeper.claim() as combination:
    print("working on", combination["i"], flush=True)
    sys.stdin.read()
"""


def test_sigkill_mid_body_is_neither_a_failure_nor_an_attempt(location, tmp_path, poll):
    url = location(lease="3")  # PostgreSQL judges other processes by their lease
    grid = sweep({"i": range(3)})
    ParamSweeper(url, grid, save_sweeps=True)
    stuck = subprocess.Popen(
        [sys.executable, "-c", _STUCK, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert stuck.stdout.readline() == b"working on 0\n"
    os.kill(stuck.pid, signal.SIGKILL)
    stuck.wait(timeout=60)
    sweeper = ParamSweeper(url, max_attempts=1)
    poll(lambda: sweeper.get_inprogress() == [], "the claim of the killed process to return")
    assert sweeper.get_remaining() == grid and sweeper.get_failures() == {}
    assert sweeper.get_next() == grid[0]
    assert sweeper.fail(grid[0], "a real failure") is True  # its first attempt: failed now
    assert sweeper.get_failed()[grid[0]].attempts == 1


# An Engine script whose run() raises on combination i=1; the user continues it with -c.
_ENGINE = """
from execo_engine import Engine, sweep
class Flaky(Engine):
    def run(self):
        sweeper = self.sweeper(sweep({"i": [0, 1, 2]}), max_attempts=2)
        for combination in sweeper:
            if combination["i"] == 1:
                raise RuntimeError("no luck with i=1")
            sweeper.done(combination)
Flaky().start()
"""


def test_an_engine_run_that_raises_fails_its_unfinished_combination(tmp_path):
    script = tmp_path / "flaky_engine.py"
    script.write_text(_ENGINE)

    def run(*args):
        return subprocess.run(
            [sys.executable, str(script), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = run()
    assert first.returncode == 1
    assert "1 unfinished combination(s) failed" in first.stdout + first.stderr
    [result_dir] = [p for p in tmp_path.iterdir() if p.name.startswith("Flaky_")]
    assert [run("-c", str(result_dir)).returncode for _ in range(2)] == [1, 0]
    view = ParamSweeper(result_dir / "sweeps", read_only=True)
    failure = view.get_failed()[HashableDict(i=1)]
    line = _line_of(_ENGINE, "raise RuntimeError")
    assert failure.attempts == 2
    assert failure.error == f"flaky_engine.py:{line}: RuntimeError: no luck with i=1"
    assert view.get_done() == [{"i": 0}, {"i": 2}]


# Claims two combinations, says so, then waits to be killed.
_HOLDS_UNTIL_KILLED = """
import sys
from execo_engine.sweep import ParamSweeper, sweep
ParamSweeper(sys.argv[1], sweep({"i": list(range(6))})).get_next_batch(2)
print("holding", flush=True)
sys.stdin.read()
"""


def test_a_claim_right_after_a_worker_died_gets_what_it_held(location):
    """The periodic dead-owner check (every DEAD_OWNER_CHECK_INTERVAL) has just seen the worker
    alive; it is killed; a claim at once finds too little todo and looks again instead of
    coming back short."""
    url = location()
    sweeper = ParamSweeper(url, sweep({"i": list(range(6))}))
    worker = subprocess.Popen(
        [sys.executable, "-c", _HOLDS_UNTIL_KILLED, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None and worker.stdout.readline() == "holding\n"
    assert len(sweeper.get_inprogress()) == 2  # a read: the periodic check sees it alive
    worker.kill()
    worker.wait()
    assert set(sweeper.get_next_batch(6)) == set(sweep({"i": list(range(6))}))
