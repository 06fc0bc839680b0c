"""Where a durable claim+done's time goes, on this machine and disk, with 1, 4 and 8 processes.

Usage::

    python benchmarks/bench_done_anatomy.py --dir /path/on/the/disk --rounds 3

Two parts, both on this checkout (they explain the group-commit figures of
``bench_group_commit.py``; they compare no code):

- *after a pause*: one process on a directory in ``/dev/shm`` (an ``fsync`` is free there) times
  the CPU of ``s.done(s.get_next())`` (``time.thread_time()`` around it only) back to back, then
  after sleeping 0.1, 0.3 and 1 ms before each one, as a process does when its ``done()`` waits
  for the disk. The same code costs more CPU after its process slept: caches and predictors
  went cold, the CPU may have slowed down.
- *processes*: 1, 4 and 8 worker processes run ``s.done(s.get_next())`` on one directory in
  ``--dir`` for ``--seconds``. Each worker times its calls to ``os.fsync``, to ``fcntl.lockf``
  (the directory lock) and to ``fcntl.fcntl`` (the flush lock of the group commit) by wrapping
  those functions in its own process before it opens the sweep. The table gives the rate, how
  many ``done()``s one ``fsync`` covered, how long an ``fsync`` took, and per claim+done the
  waits for the two locks and the CPU (user + system) of all workers.

Medians of ``--rounds``. Timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench_sweeper import emit, read_result, wait_for_go

PAUSES = (0.0, 0.0001, 0.0003, 0.001)
PROCESSES = (1, 4, 8)
GRID = 400_000


def role_pause(directory: str) -> dict[str, Any]:
    """CPU per claim+done, in µs, back to back and after each pause of :data:`PAUSES`."""
    from execo_engine.sweep import ParamSweeper, sweep

    sweeper = ParamSweeper(directory, sweep({"i": range(GRID)}))
    for _ in range(1_000):
        sweeper.done(sweeper.get_next())
    result = {}
    for pause in PAUSES:
        cpu, count = 0.0, 3_000
        for _ in range(count):
            if pause:
                time.sleep(pause)
            start = time.thread_time()
            sweeper.done(sweeper.get_next())
            cpu += time.thread_time() - start
        result[str(pause)] = cpu / count * 1e6
    return result


def _timed(function: Callable[..., Any], totals: dict[str, float], key: str) -> Callable[..., Any]:
    """``function``, adding the seconds of each call to ``totals[key]`` and counting calls."""

    def wrapper(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args)
        finally:
            totals[key] += time.perf_counter() - start
            totals[key + " calls"] += 1

    return wrapper


def role_worker(directory: str, seconds: str, go_file: str) -> dict[str, Any]:
    """claim+done for ``seconds`` once ``go_file`` exists; the counts and times it spent."""
    names = ("fsync", "lockf", "fcntl")
    totals = dict.fromkeys([*names, *(name + " calls" for name in names)], 0.0)
    os.fsync = _timed(os.fsync, totals, "fsync")  # type: ignore[assignment]
    fcntl.lockf = _timed(fcntl.lockf, totals, "lockf")  # type: ignore[assignment]
    fcntl.fcntl = _timed(fcntl.fcntl, totals, "fcntl")  # type: ignore[assignment]
    from execo_engine.sweep import ParamSweeper, sweep

    sweeper = ParamSweeper(directory, sweep({"i": range(GRID)}))
    emit(ready=True)
    wait_for_go(go_file)
    totals.update(dict.fromkeys(totals, 0.0))  # opening the sweep does not count
    operations, start, cpu = 0, time.perf_counter(), os.times()
    while time.perf_counter() - start < float(seconds):
        sweeper.done(sweeper.get_next())
        operations += 1
    end = os.times()
    return dict(
        totals,
        operations=operations,
        seconds=time.perf_counter() - start,
        cpu=end.user + end.system - cpu.user - cpu.system,
    )


def _role(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--role", *args],
        stdin=subprocess.PIPE,  # closed at the end: a worker left alone exits (wait_for_go)
        stdout=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),
    )


def processes_run(workdir: str, processes: int, seconds: float) -> dict[str, float]:
    """One run of ``processes`` workers on a new directory in ``workdir``."""
    directory = tempfile.mkdtemp(dir=workdir)
    go_file = os.path.join(tempfile.mkdtemp(dir=workdir), "go")
    try:
        workers = [_role("worker", directory, str(seconds), go_file) for _ in range(processes)]
        for worker in workers:
            read_result(worker)  # ready: the sweep is open
        open(go_file, "w").close()
        results = [read_result(worker) for worker in workers]
        for worker in workers:
            worker.communicate()
    finally:
        shutil.rmtree(directory)
        shutil.rmtree(os.path.dirname(go_file))

    def total(key: str) -> float:
        return sum(float(result[key]) for result in results)

    operations, fsyncs = total("operations"), max(total("fsync calls"), 1.0)
    return {
        "claim+done/s": operations / max(float(result["seconds"]) for result in results),
        "done()s per fsync": operations / fsyncs,
        "fsync, µs": total("fsync") / fsyncs * 1e6,
        "directory lock, µs/op": total("lockf") / operations * 1e6,
        "flush lock, µs/op": total("fcntl") / operations * 1e6,
        "CPU, µs/op": total("cpu") / operations * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="where the processes run (default: a temporary directory)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of a run")
    parser.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        role, *rest = args.role
        result = role_pause(*rest) if role == "pause" else role_worker(*rest)
        emit(**result)
        return
    pauses: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        shm = tempfile.mkdtemp(dir="/dev/shm")
        try:
            process = _role("pause", shm)
            pauses.append(read_result(process))
            process.communicate()
        finally:
            shutil.rmtree(shm)
    print(f"CPU per claim+done on tmpfs, µs, median of {args.rounds} round(s)")
    for pause in PAUSES:
        median = statistics.median(run[str(pause)] for run in pauses)
        label = "back to back" if not pause else f"after sleeping {pause * 1000:g} ms"
        print(f"  {label:<26}{median:8.0f}")
    workdir = args.dir or tempfile.mkdtemp()
    runs: dict[int, list[dict[str, float]]] = {count: [] for count in PROCESSES}
    for _ in range(args.rounds):
        for count in PROCESSES:
            runs[count].append(processes_run(workdir, count, args.seconds))
    keys = list(runs[PROCESSES[0]][0])
    print(f"\n{workdir}: median of {args.rounds} round(s)")
    print(f"{'':24}" + "".join(f"{count:>10} proc" for count in PROCESSES))
    for key in keys:
        cells = (statistics.median(run[key] for run in runs[count]) for count in PROCESSES)
        print(f"{key:<24}" + "".join(f"{cell:>15,.1f}" for cell in cells))


if __name__ == "__main__":
    main()
