"""Claim+done rates of two implementations side by side, interleaved, in one run.

Usage::

    python benchmarks/compare_sweeper.py --base-python OTHER_VENV/bin/python [--rounds 5]

Runs the claim+done workloads of ``bench_sweeper.py`` (1 and 4 worker processes, 0 and 500
elements held in progress by another process) alternately with this Python and with
``--base-python`` (another checkout's virtualenv, e.g. of ``main``), ``--rounds`` times each, so
that the load of a shared machine hits both alike; prints the median rates and the ratio
this/base of the medians. Timings depend on the machine and its load: compare ratios.

The rates are bounded by the disk (one fsync per done), which other processes of a shared
machine also use; so it also measures the CPU time a process spends per claim+done, with
``os.fsync`` stubbed out (the code's own cost, which the disk's noise hides), for 1 and 4
processes sharing a directory (lower is better there).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sweeper import measure_rate

_CPU = """
import os, sys, time
os.fsync = lambda fd: None  # the code's own cost, not the disk's
from execo_engine.sweep import ParamSweeper, sweep
sweeper = ParamSweeper(sys.argv[1], sweep({"i": range(40000)}))
start = time.process_time()
for _ in range(2000):
    sweeper.done(sweeper.get_next())
print((time.process_time() - start) / 2000 * 1e6)
"""


def cpu_microseconds(python: str, workdir: str, processes: int) -> float:
    """CPU microseconds per claim+done (fsync stubbed out), averaged over ``processes``
    processes working on one new directory (each also replays the others' records)."""
    directory = tempfile.mkdtemp(dir=workdir)
    workers = [
        subprocess.Popen(
            [python, "-c", _CPU, directory], stdout=subprocess.PIPE, text=True, cwd=workdir
        )
        for _ in range(processes)
    ]
    return statistics.mean(float(worker.communicate()[0]) for worker in workers)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-python", required=True, help="python of the base implementation")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each workload per side")
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of a rate run")
    args = parser.parse_args()
    sides = {"this": sys.executable, "base": args.base_python}
    rates: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for round_number in range(args.rounds):
            for processes in (1, 4):
                key = f"CPU us per claim+done (no fsync), {processes} proc"
                order = sides.items() if round_number % 2 == 0 else reversed(sides.items())
                for name, python in order:
                    rates.setdefault(key, {}).setdefault(name, []).append(
                        cpu_microseconds(python, workdir, processes)
                    )
            for processes in (1, 4):
                for held in (0, 500):
                    key = f"claim+done/s, {processes} proc, {held} in progress"
                    order = sides.items() if round_number % 2 == 0 else reversed(sides.items())
                    for name, python in order:
                        os.sync()  # earlier runs' dirty pages must not be written back in this one
                        rate = measure_rate(python, workdir, processes, held, args.seconds)
                        rates.setdefault(key, {}).setdefault(name, []).append(rate)
                        print(f"  round {round_number} {name} {key}: {rate:,.0f}", file=sys.stderr)
    print(f"\n{'workload (median of ' + str(args.rounds) + ')':<46}{'this':>10}{'base':>10}  ratio")
    for key, per_side in rates.items():
        this, base = statistics.median(per_side["this"]), statistics.median(per_side["base"])
        print(f"{key:<46}{this:>10,.0f}{base:>10,.0f}  {this / base:.2f}x")


if __name__ == "__main__":
    main()
