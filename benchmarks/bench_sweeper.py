"""ParamSweeper benchmark: this execo_engine side by side with execo 2.8.2, in one run.

Usage::

    python benchmarks/bench_sweeper.py                       # this implementation only
    python3 -m venv /tmp/execo-venv && /tmp/execo-venv/bin/pip install execo==2.8.2
    python benchmarks/bench_sweeper.py --execo-python /tmp/execo-venv/bin/python

Workloads (each in fresh processes, with the same script and the same public API):

- claim+done rate: 1 and 4 worker processes loop ``get_next()`` + ``done()`` for a fixed time on
  a shared directory, with 0 and 500 elements held in progress by another live process;
- a 1,000,000-combination grid: ``sweep()`` time, first open, then 500,000 marked done, and in a
  fresh process resume (open + first ``get_next()``) time and the process's peak RSS.

``--runs N`` runs each side N times, alternating which goes first, and shows medians;
``--no-rates`` keeps only the grid (``done_batch`` of 500,000 is timed there).

Timings depend on the machine and its load: compare the ratios of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time

RATE_GRID = 400_000
BIG_GRID = {
    "a": list(range(10)),
    "b": list(range(100)),
    "c": [f"x{i}" for i in range(100)],
    "d": [0.5 * i for i in range(10)],
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(**result: object) -> None:
    print(json.dumps(result), flush=True)


# -- worker roles (run with the python of the implementation under test) --------------------


def role_holder(directory: str, held: int) -> None:
    from execo_engine.sweep import ParamSweeper, sweep

    sweeper = ParamSweeper(directory, sweep({"i": range(RATE_GRID)}))
    sweeper.get_next_batch(held)
    emit(ready=True)
    sys.stdin.read()  # hold the claims until the orchestrator closes our stdin


def wait_for_go(go_file: str) -> None:
    """Wait until the orchestrator creates ``go_file`` (its workers start at once). Our stdin is
    a pipe from it: at its end of file the orchestrator is gone (killed, timed out), and we
    exit instead of polling forever as an orphan."""
    while not os.path.exists(go_file):
        if select.select([sys.stdin], [], [], 0.001)[0] and not sys.stdin.read(1):
            sys.exit("benchmark worker: the benchmark process is gone")


def role_rate(directory: str, seconds: float, go_file: str) -> None:
    from execo_engine.sweep import ParamSweeper, sweep

    sweeper = ParamSweeper(directory, sweep({"i": range(RATE_GRID)}))
    emit(ready=True)
    wait_for_go(go_file)
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        sweeper.done(sweeper.get_next())
        count += 1
    emit(count=count, seconds=time.perf_counter() - start, cpu=time.process_time() - cpu)


def role_grid_setup(directory: str) -> None:
    from execo_engine.sweep import ParamSweeper, sweep

    start = time.perf_counter()
    sweeps = sweep(BIG_GRID)
    sweep_time = time.perf_counter() - start
    start = time.perf_counter()
    sweeper = ParamSweeper(directory, sweeps)
    open_time = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    sweeper.done_batch(sweeps[:500_000])
    emit(
        sweep_time=sweep_time,
        open_time=open_time,
        done_batch_time=time.perf_counter() - start,
        done_batch_cpu=time.process_time() - cpu,
    )


def role_grid_resume(directory: str) -> None:
    from execo_engine.sweep import ParamSweeper, sweep

    sweeps = sweep(BIG_GRID)
    start = time.perf_counter()
    sweeper = ParamSweeper(directory, sweeps)
    first = sweeper.get_next()
    emit(
        resume_time=time.perf_counter() - start,
        peak_rss_mib=peak_rss_mib(),
        first_is_500000th=first == sweeps[500_000],
    )


# -- orchestrator ------------------------------------------------------------------------------


def spawn(python: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(
        [python, os.path.abspath(__file__), "--role", *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),
    )


def read_result(process: subprocess.Popen[str]) -> dict[str, float]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"benchmark worker {process.args!r} died (exit {process.wait()})")
    return json.loads(line)


def measure_rate(
    python: str,
    workdir: str,
    processes: int,
    held: int,
    seconds: float,
    location: str | None = None,
) -> float:
    """claim+done per second of ``processes`` workers on a new directory (or ``location``)."""
    directory = location or tempfile.mkdtemp(dir=workdir)
    go_file = os.path.join(tempfile.mkdtemp(dir=workdir), "go")
    holder = None
    if held:
        holder = spawn(python, "holder", directory, str(held))
        read_result(holder)
    workers = [spawn(python, "rate", directory, str(seconds), go_file) for _ in range(processes)]
    for worker in workers:
        read_result(worker)
    open(go_file, "w").close()
    results = [read_result(worker) for worker in workers]
    for process in workers + ([holder] if holder else []):
        process.communicate()
    return sum(r["count"] for r in results) / max(r["seconds"] for r in results)


def measure_grid(python: str, workdir: str) -> dict[str, float]:
    directory = tempfile.mkdtemp(dir=workdir)
    setup = spawn(python, "grid-setup", directory)
    result = read_result(setup)
    setup.communicate()
    resume = spawn(python, "grid-resume", directory)
    result.update(read_result(resume))
    resume.communicate()
    return result


def fsync_floor(workdir: str, count: int = 2000) -> float:
    """Appends+fsyncs per second on this disk: the ceiling of a durable done() rate."""
    fd = os.open(os.path.join(workdir, "floor"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    start = time.perf_counter()
    for _ in range(count):
        os.write(fd, b'{"i":123456}\n')
        os.fsync(fd)
    os.close(fd)
    return count / (time.perf_counter() - start)


def run_all(python: str, seconds: float, grid: bool, rates: bool = True) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as workdir:
        results["append+fsync/s on this disk (1 proc ceiling)"] = fsync_floor(workdir)
        for processes in (1, 4) if rates else ():
            for held in (0, 500):
                key = f"claim+done/s, {processes} proc, {held} in progress"
                results[key] = measure_rate(python, workdir, processes, held, seconds)
                print(f"  {key}: {results[key]:,.0f}", file=sys.stderr, flush=True)
        if grid:
            g = measure_grid(python, workdir)
            results["1M grid: sweep() s"] = g["sweep_time"]
            results["1M grid: first open s"] = g["open_time"]
            results["1M grid: done_batch of 500,000 s"] = g["done_batch_time"]
            results["1M grid: done_batch of 500,000, CPU s"] = g["done_batch_cpu"]
            results["1M grid: resume + first get_next s"] = g["resume_time"]
            results["1M grid: resume peak RSS MiB"] = g["peak_rss_mib"]
            results["1M grid: resume hands out #500,000 (1=yes)"] = g["first_is_500000th"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--execo-python", help="python of a virtualenv with execo==2.8.2")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of a rate run")
    parser.add_argument("--no-grid", action="store_true", help="skip the 1M-combination grid")
    parser.add_argument("--no-rates", action="store_true", help="skip the claim+done rates")
    parser.add_argument("--runs", type=int, default=1, help="runs of each side (medians shown)")
    parser.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        role, *rest = args.role
        {
            "holder": lambda: role_holder(rest[0], int(rest[1])),
            "rate": lambda: role_rate(rest[0], float(rest[1]), rest[2]),
            "grid-setup": lambda: role_grid_setup(rest[0]),
            "grid-resume": lambda: role_grid_resume(rest[0]),
        }[role]()
        return
    columns = {"this": sys.executable}
    if args.execo_python:
        columns["execo 2.8.2"] = args.execo_python
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in columns}
    for index in range(args.runs):
        names = list(columns)
        for name in names[index % len(names) :] + names[: index % len(names)]:  # each first in turn
            print(f"{name} ({columns[name]}):", file=sys.stderr, flush=True)
            runs[name].append(
                run_all(columns[name], args.seconds, not args.no_grid, not args.no_rates)
            )
    table = {
        name: {key: statistics.median(run[key] for run in results) for key in results[0]}
        for name, results in runs.items()
    }
    if args.runs > 1:
        print(f"\nmedians of {args.runs} runs", end="")
    print(
        f"\n{'workload':<46}"
        + "".join(f"{name:>14}" for name in table)
        + ("  this/execo" if len(table) == 2 else "")
    )
    for key in table["this"]:
        values = [table[name][key] for name in table]
        row = f"{key:<46}" + "".join(f"{v:>14,.2f}" for v in values)
        if len(values) == 2 and values[1]:
            row += f"{values[0] / values[1]:>11.2f}x"
        print(row)


if __name__ == "__main__":
    main()
