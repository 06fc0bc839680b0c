"""CPU per operation of the directory store, this checkout side by side with others, in one run.

Usage::

    python benchmarks/bench_cpu.py                               # this checkout only
    git worktree add /tmp/perf-before <commit>
    python benchmarks/bench_cpu.py --baseline /tmp/perf-before   # and that checkout
    python benchmarks/bench_cpu.py --baseline /tmp/perf-before --profile 12

Workloads (each in a fresh process, on a directory in ``--dir``, ``/dev/shm`` by default: on
tmpfs an ``fsync`` is free, so what is measured is the store's own CPU):

- *claim+done*: ``s.done(s.get_next())`` in a loop on ``sweep({"i": range(400000)})``,
  ``time.process_time()`` per operation (after 2,000 to warm up);
- *done_batch*: ``done_batch`` of the first 500,000 combinations of the 1,000,000 of
  ``bench_sweeper.py``'s grid, on a freshly created directory;
- *resume*: in a fresh process, ``sweep()`` of that grid (not counted), then open and first
  ``get_next()``: CPU per done record.

The checkouts alternate, each first in turn, ``--runs`` times; medians are shown, and the ratio
of each median to this checkout's. ``--profile N`` also prints, for each checkout, the N
functions of a claim+done with the most time of their own (``cProfile``, ``tottime``: the
profiler inflates Python calls, compare the shares, not the absolute times).
Timings depend on the machine and its load: compare the ratios of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

from side_by_side import HERE, alternate, run_role

OPS, WARMUP, RATE_GRID = 20_000, 2_000, 400_000
BIG_GRID = {
    "a": list(range(10)),
    "b": list(range(100)),
    "c": [f"x{i}" for i in range(100)],
    "d": [0.5 * i for i in range(10)],
}
HALF = 500_000


def role_claim_done(directory: str, profile: int) -> dict[str, Any]:
    from execo_engine.sweep import ParamSweeper, sweep

    sweeper = ParamSweeper(directory, sweep({"i": range(RATE_GRID)}))
    for _ in range(WARMUP):
        sweeper.done(sweeper.get_next())
    start = time.process_time()
    for _ in range(OPS):
        sweeper.done(sweeper.get_next())
    result: dict[str, Any] = {"us": (time.process_time() - start) / OPS * 1e6}
    if profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(OPS // 2):
            sweeper.done(sweeper.get_next())
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(profile)
        result["profile"] = text.getvalue()
    return result


def role_done_batch(directory: str) -> dict[str, Any]:
    from execo_engine.sweep import ParamSweeper, sweep

    grid = sweep(BIG_GRID)
    sweeper = ParamSweeper(directory, grid)
    start = time.process_time()
    sweeper.done_batch(grid[:HALF])
    return {"s": time.process_time() - start}


def role_resume(directory: str) -> dict[str, Any]:
    from execo_engine.sweep import ParamSweeper, sweep

    grid = sweep(BIG_GRID)
    start = time.process_time()
    sweeper = ParamSweeper(directory, grid)
    sweeper.get_next()
    return {"us": (time.process_time() - start) / HALF * 1e6}


def measure(checkout: str, base: str, profile: int) -> dict[str, Any]:
    """One run of every workload with the code of ``checkout``."""
    work = tempfile.mkdtemp(dir=base)
    try:
        rate = run_role(__file__, checkout, "claim-done", os.path.join(work, "rate"), str(profile))
        grid = os.path.join(work, "grid")
        batch = run_role(__file__, checkout, "done-batch", grid)
        resume = run_role(__file__, checkout, "resume", grid)
    finally:
        shutil.rmtree(work)
    return {
        "claim+done CPU us/op": rate["us"],
        "done_batch 500k CPU s": batch["s"],
        "resume CPU us/done record": resume["us"],
        "profile": rate.get("profile", ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", action="append", default=[], help="another checkout")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default="/dev/shm", help="where the directories are made")
    parser.add_argument("--profile", type=int, default=0, help="top N functions of a profile")
    parser.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        role, directory, *rest = args.role
        if role == "claim-done":
            result = role_claim_done(directory, int(rest[0]))
        elif role == "done-batch":
            result = role_done_batch(directory)
        else:
            result = role_resume(directory)
        print(json.dumps(result))
        return
    checkouts, runs = alternate(
        args.baseline,
        args.runs,
        lambda checkout, index: measure(checkout, args.dir, args.profile if index == 0 else 0),
    )
    figures = [key for key in runs[HERE][0] if key != "profile"]
    medians = {
        checkout: {key: statistics.median(run[key] for run in results) for key in figures}
        for checkout, results in runs.items()
    }
    for checkout in checkouts:
        print(f"== {checkout} (medians of {args.runs} runs; ratio to {HERE})")
        for key in figures:
            value = medians[checkout][key]
            print(f"  {key:30} {value:10.2f}   x{value / medians[HERE][key]:.2f}")
    for checkout in checkouts:
        if runs[checkout][0]["profile"]:
            print(f"== profile of a claim+done, {checkout}\n{runs[checkout][0]['profile']}")


if __name__ == "__main__":
    main()
