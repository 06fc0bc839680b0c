"""No element handed out twice, none lost: threads, instances, processes, and a kill storm."""

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from execo_engine.sweep import ParamSweeper, sweep

WORKER = Path(__file__).with_name("sweeper_worker.py")
N = 2000


def make_grid(directory, n=N):
    sweeps = sweep({"i": range(n)})
    ParamSweeper(directory, sweeps, save_sweeps=True)
    return sweeps


def check_complete(directory, handed_out, n=N):
    """Every element handed out exactly once and done on disk, checked from a fresh instance."""
    assert len(handed_out) == n, f"{len(handed_out) - len(set(handed_out))} duplicates"
    assert sorted(handed_out) == list(range(n))
    fresh = ParamSweeper(directory)
    assert [e["i"] for e in fresh.get_done()] == list(range(n))
    assert fresh.get_remaining() == [] and fresh.get_inprogress() == []
    lines = (Path(directory) / "done").read_bytes().splitlines()
    assert len(lines) == len(set(lines)) == n


def run_threads(sweepers, threads_each):
    handed_out = []
    lock = threading.Lock()

    def work(sweeper):
        while (element := sweeper.get_next()) is not None:
            sweeper.done(element)
            with lock:
                handed_out.append(element["i"])

    threads = [
        threading.Thread(target=work, args=(s,)) for s in sweepers for _ in range(threads_each)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return handed_out


@pytest.mark.slow
def test_one_instance_eight_threads(tmp_path):
    make_grid(tmp_path)
    check_complete(tmp_path, run_threads([ParamSweeper(tmp_path)], 8))


@pytest.mark.slow
def test_four_instances_in_one_process_one_thread_each(tmp_path):
    make_grid(tmp_path)
    check_complete(tmp_path, run_threads([ParamSweeper(tmp_path) for _ in range(4)], 1))


def start_worker(directory, report, instances=1, threads=1, seconds=0.0):
    return subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            str(directory),
            str(report),
            str(instances),
            str(threads),
            str(seconds),
        ]
    )


def reported(report_dir):
    return [
        int(line)
        for report in sorted(Path(report_dir).glob("*.txt"))
        for line in report.read_text().splitlines()
    ]


@pytest.mark.slow
@pytest.mark.parametrize("processes,instances,threads", [(4, 1, 1), (2, 2, 2)])
def test_processes(tmp_path, processes, instances, threads):
    directory = tmp_path / "sweep"
    make_grid(directory)
    workers = [
        start_worker(directory, tmp_path / f"{k}.txt", instances, threads) for k in range(processes)
    ]
    assert [w.wait(timeout=300) for w in workers] == [0] * processes
    check_complete(directory, reported(tmp_path))


def wait_until_reporting(worker, report, timeout=30.0):
    """Wait until ``worker`` has finished one more element (so it is inside its loop)."""
    size = report.stat().st_size if report.exists() else 0
    deadline = time.monotonic() + timeout
    while worker.poll() is None and time.monotonic() < deadline:
        if report.exists() and report.stat().st_size > size:
            return
        time.sleep(0.001)


@pytest.mark.slow
def test_kill_storm(tmp_path):
    """Workers killed with SIGKILL at random moments: nothing reported is lost, the directory
    always loads, and the grid completes by itself (dead owners' claims are reclaimed)."""
    directory, reports = tmp_path / "sweep", tmp_path / "reports"
    reports.mkdir()
    n = 10000
    make_grid(directory, n)
    rng = random.Random(20261127)
    serial = iter(range(10**6))

    def new_worker():
        report = reports / f"{next(serial)}.txt"
        return start_worker(directory, report, seconds=0.001), report

    workers = [new_worker() for _ in range(4)]
    kills = 0
    while kills < 60:
        k = rng.randrange(len(workers))
        worker, report = workers[k]
        wait_until_reporting(worker, report)
        time.sleep(rng.uniform(0, 0.005))
        if worker.poll() is not None:  # it ran out of work: the grid is done too early
            break
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
        kills += 1
        ParamSweeper(directory)  # the directory loads after every kill
        workers[k] = new_worker()
    assert kills >= 50, f"only {kills} kills before the grid was done: make it bigger"
    assert [w.wait(timeout=300) for w, _ in workers] == [0] * len(workers)

    fresh = ParamSweeper(directory)
    done = [e["i"] for e in fresh.get_done()]
    assert done == list(range(n))
    assert fresh.get_inprogress() == [] and fresh.get_remaining() == []
    assert set(reported(reports)) <= set(done)
    lines = (directory / "done").read_bytes().splitlines()
    assert len(lines) == len(set(lines)) == n
