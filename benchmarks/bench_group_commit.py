"""Directory store throughput with 1, 4 and 8 processes, side by side with other code, in one run.

Usage::

    git worktree add /tmp/execo-before <commit>       # the code to compare with (optional)
    python benchmarks/bench_group_commit.py --baseline /tmp/execo-before --rounds 3

Each round probes the disk's append+fsync rate (the ceiling of one process's durable done()
rate), then runs ``get_next()`` + ``done()`` loops for ``--seconds`` with 1, 4 and 8 worker
processes on a new directory, for this checkout and the ``--baseline`` one (its package
imported through ``PYTHONPATH``), alternating. The table gives the median of the rounds and
the ratios the group-commit targets speak of: 4 processes / 1 process, 8 / 4, and 1 process /
the fsync probe; then the CPU time (user + system, all workers) per claim+done. The disk's
fsync rate drifts from minute to minute: compare ratios of one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from bench_sweeper import fsync_floor, read_result

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_sweeper.py")
PROCESSES = (1, 4, 8)


def rate(code: str | None, workdir: str, processes: int, seconds: float) -> tuple[float, float]:
    """claim+done per second of ``processes`` workers importing ``code`` (None: this one), and
    the CPU time (user + system) of a claim+done, in µs, over all of them."""
    directory = tempfile.mkdtemp(dir=workdir)
    go_file = os.path.join(tempfile.mkdtemp(dir=workdir), "go")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if code is not None:
        env["PYTHONPATH"] = code
    workers = [
        subprocess.Popen(
            [sys.executable, SCRIPT, "--role", "rate", directory, str(seconds), go_file],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=workdir,
        )
        for _ in range(processes)
    ]
    for worker in workers:
        read_result(worker)
    open(go_file, "w").close()
    results = [read_result(worker) for worker in workers]
    for worker in workers:
        worker.communicate()
    count = sum(r["count"] for r in results)
    return count / max(r["seconds"] for r in results), sum(r["cpu"] for r in results) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", help="a checkout of the code to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of a rate run")
    parser.add_argument("--dir", help="where to run (default: a temporary directory)")
    args = parser.parse_args()
    codes: dict[str, str | None] = {"this": None}
    if args.baseline:
        codes["baseline"] = os.path.abspath(args.baseline)
    runs: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as workdir:
        for round_ in range(args.rounds):
            runs.setdefault("fsync probe", []).append(fsync_floor(workdir))
            for processes in PROCESSES:
                for name, code in codes.items():
                    key = f"{name}, {processes} proc"
                    done_rate, cpu_per_op = rate(code, workdir, processes, args.seconds)
                    runs.setdefault(key, []).append(done_rate)
                    cpu.setdefault(key, []).append(cpu_per_op)
                    print(f"round {round_ + 1}: {key}: {done_rate:,.0f}/s", file=sys.stderr)
    median = {key: statistics.median(values) for key, values in runs.items()}
    print(f"\nmedian of {args.rounds} round(s), claim+done per second")
    print(
        f"{'':<12}" + "".join(f"{f'{p} proc':>10}" for p in PROCESSES) + "   4p/1p  8p/4p  1p/fsync"
    )
    for name in codes:
        row = [median[f"{name}, {p} proc"] for p in PROCESSES]
        ratios = (row[1] / row[0], row[2] / row[1], row[0] / median["fsync probe"])
        print(
            f"{name:<12}"
            + "".join(f"{value:>10,.0f}" for value in row)
            + "{:>8.2f}{:>7.2f}{:>10.2f}".format(*ratios)
        )
    print(f"fsync probe: {median['fsync probe']:,.0f} append+fsync/s")
    print("\nCPU (user + system) per claim+done, µs, median of the rounds")
    for name in codes:
        row = [statistics.median(cpu[f"{name}, {p} proc"]) for p in PROCESSES]
        print(f"{name:<12}" + "".join(f"{value:>10,.0f}" for value in row))


if __name__ == "__main__":
    main()
