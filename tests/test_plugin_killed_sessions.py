"""Killed sessions (issue 26): pytest sessions (serial, 200 times) and pytest-xdist workers
(``-n 2``, 100 times: each kill costs a new worker, an interpreter that imports pytest) SIGKILLed
at random instants right after a test's report: no combination reported done, nor announced
done by ``pytest_execo_recorded``, ever runs again.

A process that records is killed by its own conftest: at a random report of a passed item
(the teardown's: an item's last report), either at once, inside the hook that saw the report, or
from a thread a random 0-5 ms later (in the claim, the body or the recording of the next
tests). What each process saw is appended to one log with single ``write(2)`` calls (they
survive the kill, in the order they happened): ``run`` when a test body starts, ``reported``
when a passed item's last report reaches a ``pytest_runtest_logreport`` hook (in the process
that ran it and, under xdist, in the controller), ``recorded`` when ``pytest_execo_recorded``
says done. The sessions are run by ``killed_sessions.py``.
"""

import os
import subprocess
import sys
from collections import defaultdict

import pytest

from execo_engine.sweep import ParamSweeper

pytest_plugins = ["pytester"]

KILLS_GRID = """
import os, pytest

LOG = os.open("events.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

@pytest.mark.execo_sweep({"x": list(range(GRID))})
def test_cell(x):
    os.write(LOG, f"run {os.environ['KILLS_ROUND']} {x}\\n".encode())
"""
KILLS_CONFTEST = """
import os, random, signal, threading, time

LOG = os.open("events.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
ROUND = os.environ["KILLS_ROUND"]
WORKER = KILLER = None  # this process's xdist worker id; whether it kills itself
RANDOM = random.Random(f"{os.environ['KILLS_SEED']}-{os.getpid()}")
KILL_AT = RANDOM.randint(1, 6)  # the report after which this process dies
DELAY = RANDOM.choice([0.0, RANDOM.uniform(0, 0.005)])  # at once, or in the next tests
# pytest-xdist fails (INTERNALERROR) when both workers die before it handled the first
# death: a worker kills itself only once it created TOKEN, which the replacement of the worker
# killed last (gw2, gw3, ...) removes once it runs; meanwhile the other worker waits (else it
# would finish the grid before any replacement runs)
TOKEN = "kill.token"

def pytest_configure(config):
    global WORKER, KILLER
    WORKER = getattr(config, "workerinput", {}).get("workerid")
    # kill this process if it records: the serial session, or an xdist worker
    KILLER = os.environ["KILLS_MODE"] == ("xdist" if WORKER else "serial")
    if WORKER not in (None, "gw0", "gw1"):
        try:
            os.unlink(TOKEN)
        except FileNotFoundError:
            pass
passed, reports, dying = set(), 0, False

def log(what, x):
    os.write(LOG, f"{what} {ROUND} {x}\\n".encode())

def kill():
    log("kill", os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)

def may_kill():
    if not WORKER:
        return True
    try:
        os.close(os.open(TOKEN, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:  # the other worker was killed: wait for its replacement
        deadline = time.monotonic() + 60
        while os.path.exists(TOKEN) and time.monotonic() < deadline:
            time.sleep(0.01)  # polls the condition
        return False

def pytest_runtest_logreport(report):
    global reports, dying
    if report.when == "call" and report.passed:
        passed.add(report.nodeid)
    if report.when != "teardown" or report.nodeid not in passed or report.failed:
        return
    log("reported", report.nodeid.rpartition("[")[2][:-1])
    reports += 1
    if KILLER and not dying and (reports >= KILL_AT or os.path.exists(TOKEN)) and may_kill():
        dying = True
        if DELAY:
            threading.Thread(target=lambda: (time.sleep(DELAY), kill()), daemon=True).start()
        else:
            kill()

def pytest_execo_recorded(item, combination, outcome, state):
    if state == "done":
        log("recorded", combination["x"])
"""


def check_events(directory, rounds):
    """Every combination announced done (reported, or recorded) never ran again, and each
    round's grid is complete; returns how many were announced and how many processes were
    killed."""
    announced, ran_again, kills = set(), [], 0
    with open(directory / "events.log") as log:
        for line in log:
            what, round_, x = line.split()
            if what == "kill":
                kills += 1
            elif what in ("reported", "recorded"):
                announced.add((round_, x))
            elif (round_, x) in announced:  # "run"
                ran_again.append((round_, x))
    assert ran_again == [], f"announced done, then run again: {ran_again}"
    done = defaultdict(set)
    for round_ in range(1, rounds + 1):
        sweeper = ParamSweeper(next((directory / f"results-{round_}").iterdir()), read_only=True)
        done[str(round_)] = {str(c["x"]) for c in sweeper.get_done()}
        assert len(done[str(round_)]) == len(sweeper.get_sweeps()), f"round {round_} incomplete"
        assert sweeper.get_inprogress() == []
    assert all(x in done[round_] for round_, x in announced)
    return len(announced), kills


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "grid", "kills"), [("serial", 40, 200), ("xdist", 150, 100)])
def test_kills_right_after_reports_never_run_a_reported_combination_again(
    pytester, mode, grid, kills
):
    pytester.makepyfile(test_cells=KILLS_GRID.replace("GRID", str(grid)))
    pytester.makeconftest(KILLS_CONFTEST)
    killer = os.path.join(os.path.dirname(__file__), "killed_sessions.py")
    seed = int.from_bytes(os.urandom(4), "big")
    finished = subprocess.run(
        [sys.executable, killer, str(pytester.path), str(kills), str(seed), mode],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert finished.returncode == 0, f"seed {seed}: {finished.stderr}"
    announced, killed = check_events(pytester.path, int(finished.stdout))
    assert killed >= kills and announced >= kills, f"seed {seed}"
