"""Skips and read-only views under real concurrency: forked workers, worker processes, real
threads."""

import json
import math
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from execo_engine.store import lease
from execo_engine.store.log import replay
from execo_engine.store.postgresql import store as pgstore
from execo_engine.sweep import ParamSweeper, sweep

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
FAILING = [0, 4, 8, 12, 16, 20]  #: the combinations of forked_skips.py that fail


def forked_run(python, location, report):
    """Run tests/forked_skips.py with ``python``; what it printed."""
    result = subprocess.run(
        [
            python,
            str(HERE / "forked_skips.py"),
            location,
            str(report),
            str(HERE / "relaunch_view.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_forked_workers_of_one_instance_never_run_its_skips_again(location, tmp_path):
    url = location()
    seen = forked_run(sys.executable, url, tmp_path / "report")
    runs = Counter(int(line) for line in (tmp_path / "report").read_text().split())
    assert runs == Counter(range(24))  # each exactly once: no worker took a skip of another
    assert seen["skipped"] == FAILING and seen["done"] == 18 and seen["remaining"] == []
    # every other instance sees them todo: another one in the same process...
    assert seen["other_skipped"] == [] and seen["other_remaining"] == FAILING
    # ... which also shows who holds each skip: the process that created the instance, alive
    assert sorted(seen["skips"]) == [[i, seen["parent"], False] for i in FAILING]
    # ... and a relaunch in another process, while that process still lives
    assert seen["relaunch"] == {"skipped": [], "remaining": FAILING}
    # once it ended, its skips are gone for every instance: the next run retries them
    assert ParamSweeper(url, sweep({"i": range(24)})).get_skips() == []


# A worker of a script run, its own process and instance: claims combinations until none is
# left; a failing one is skipped (as a script does with what it does not want to retry in
# this run). Every run is reported. Once it finds nothing left, it waits for its fellow
# workers to find nothing left either before exiting, as the workers of one run end together.
_WORKER = """
import os, sys, time
from execo_engine.sweep import ParamSweeper
directory, report, finished, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sweeper = ParamSweeper(directory)
fd = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
while True:
    combination = sweeper.get_next()
    if combination is None:
        if not sweeper.get_inprogress():
            break
        time.sleep(0.01)  # others still work: look again
        continue
    os.write(fd, b"%d\\n" % combination["i"])
    if combination["i"] % 4 == 0:
        sweeper.skip(combination)  # fails: not again in this run
    else:
        sweeper.done(combination)
open(os.path.join(finished, str(os.getpid())), "w").close()
while len(os.listdir(finished)) < workers:
    time.sleep(0.01)
"""


def _run(url, tmp_path, name, workers=4):
    """One run of the script: ``workers`` processes; returns how often each combination ran."""
    report, finished = tmp_path / f"{name}.report", tmp_path / f"{name}.finished"
    finished.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, str(report), str(finished), str(workers)]
        )
        for _ in range(workers)
    ]
    for process in processes:
        assert process.wait(timeout=300) == 0
    return Counter(int(line) for line in report.read_text().split())


def test_independent_workers_each_run_a_failing_combination_at_most_once(location, tmp_path):
    url = location(lease="5")
    grid = sweep({"i": range(24)})
    ParamSweeper(url, grid, save_sweeps=True)
    failing = {c["i"] for c in grid if c["i"] % 4 == 0}
    runs = _run(url, tmp_path, "first")
    # each worker is an instance of its own: another's skip is todo there, as in execo; a
    # worker never runs again what it skipped itself, even once another took it over
    assert {i: n for i, n in runs.items() if i not in failing} == dict.fromkeys(
        set(range(24)) - failing, 1
    )
    assert set(runs) >= failing and all(1 <= runs[i] <= 4 for i in failing)
    view = ParamSweeper(url, read_only=True)
    assert {c["i"] for c in view.get_done()} == set(range(24)) - failing
    assert ParamSweeper(url).get_skips() == []  # the run ended: the next one retries them


# A writer process working through a grid: claims, skips, cancels, finishes.
_WRITER = """
import sys
from execo_engine.sweep import ParamSweeper
sweeper = ParamSweeper(sys.argv[1])
for combination in sweeper:
    if combination["i"] % 7 == 0:
        sweeper.skip(combination)
    elif combination["i"] % 11 == 0 and not combination.get("again"):
        sweeper.cancel(combination)
        sweeper.done(sweeper.get_next())
    else:
        sweeper.done(combination)
"""


def test_eight_threads_read_a_read_only_view_while_a_process_writes(tmp_path):
    grid = sweep({"i": range(3000)})
    ParamSweeper(tmp_path, grid, save_sweeps=True)
    view = ParamSweeper(tmp_path, read_only=True)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)])
    errors, looks = [], Counter()

    def look(thread):
        try:
            while writer.poll() is None or looks[thread] < 10:
                sweeps, remaining, skipped, inprogress, done = view.stats()
                sizes = [len(remaining), len(skipped), len(inprogress), len(done)]
                assert sum(sizes) == len(sweeps) == len(grid), sizes
                assert len(remaining | skipped | inprogress | done) == len(grid)
                looks[thread] += 1
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=look, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert writer.wait(timeout=60) == 0
    assert errors == []
    assert all(looks[n] >= 10 for n in range(8))
    view.update()  # right after update(), the view is exactly the final state
    skipped = [c for c in grid if c["i"] % 7 == 0]
    assert view.get_done() == [c for c in grid if c["i"] % 7 != 0]
    # a read-only view never writes: it shows the skips of the exited writer, known dead, and
    # sees them todo (they are that writer's own)
    assert view.get_inprogress() == [] and view.get_skipped() == []
    assert view.get_remaining() == skipped
    assert all(dead for _, _, _, dead in view.get_skips())
    writer = ParamSweeper(tmp_path)
    assert writer.get_remaining() == skipped and writer.get_skips() == []  # given back


_HOLDER = """
import sys
from execo_engine.sweep import ParamSweeper
print(ParamSweeper(sys.argv[1]).get_next()["i"], flush=True)
sys.stdin.read()  # holds its claim until killed
"""


_TAKER = """
import sys
from execo_engine.sweep import HashableDict, ParamSweeper
print(ParamSweeper(sys.argv[1]).take(HashableDict(i=0), 0))
"""


def test_a_take_never_takes_what_a_live_process_holds(location):
    """Two fresh processes number their store operations alike (the PostgreSQL store once
    took a live claim whose ticket equalled its own)."""
    url = location()
    ParamSweeper(url, sweep({"i": range(3)}), save_sweeps=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline().strip() == b"0"
        taker = subprocess.run(
            [sys.executable, "-c", _TAKER, url], capture_output=True, text=True, timeout=120
        )
        assert taker.stdout.startswith("in progress (host "), taker.stdout + taker.stderr
        [claim] = ParamSweeper(url, read_only=True).get_claims()
        assert (claim[0]["i"], claim[1].pid) == (0, holder.pid)
    finally:
        holder.kill()
        holder.wait(timeout=60)


def test_take_of_an_element_whose_holder_just_died_claims_it(location, monkeypatch):
    """take() does not wait for the next periodic look for dead owners (an xdist worker
    crashed, and the items it had claimed ahead go to another worker)."""
    for module in (lease, replay, pgstore):  # no periodic look at all (the users' copies too)
        monkeypatch.setattr(module, "DEAD_OWNER_CHECK_INTERVAL", math.inf)
    url = location()
    grid = sweep({"i": range(3)})
    taker = ParamSweeper(url, grid, save_sweeps=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdout.readline().strip() == b"0"
    assert taker.take(grid[0], position=0).startswith("in progress")  # it lives
    holder.kill()
    holder.wait(timeout=60)
    assert taker.take(grid[0], position=0) is None
    assert [claim[0] for claim in taker.get_claims()] == [grid[0]]
