"""What catching up with other processes costs a directory store's operation, by how many
records are new and whether the process slept since its last operation.

Usage::

    python benchmarks/bench_catch_up.py                               # this checkout only
    git worktree add /tmp/perf-before <commit>
    python benchmarks/bench_catch_up.py --baseline /tmp/perf-before   # and that checkout

Every operation of a directory store first reads what the other processes appended since its
last one. One process (the *reader*) holds an open ``ParamSweeper`` (and one claim, as a worker
does); a second process (the *other*) does ``done(get_next())`` when the reader tells it to,
through a pipe. Timed in the reader: the wall clock of ``update()`` (``time.perf_counter``),
per call, on a directory in ``--dir`` (``/dev/shm`` by default: no fsync involved):

- *nothing new, back to back*: ``update()`` in a loop, nothing appended meanwhile;
- *nothing new, after a round trip*: the reader waits for the other, which does nothing, before
  each ``update()``: its caches are as cold as a worker's between two of its operations;
- *one claim+done of the other*: the other does one before each ``update()``: what a worker
  pays, per operation of each other worker, when the operations alternate;
- *a batch*: the other does ``--batch`` claim+done, then one ``update()``: per operation read
  (a compaction of the claims stream included, as it comes).

Each figure is the median of ``--rounds`` rounds of ``--ops`` calls; the checkouts alternate,
each first in turn. Timings depend on the machine and its load: compare the figures of one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from side_by_side import HERE, alternate, run_role

GRID = {"a": list(range(400)), "b": [f"x{i}" for i in range(1000)]}

# The other process: one claim+done per line "g" on stdin, nothing for "n"; "k" when done.
OTHER = f"""
import sys
from execo_engine.sweep import ParamSweeper, sweep
sweeper = ParamSweeper(sys.argv[1], sweep({GRID!r}))
print("ready", flush=True)
for line in map(str.strip, sys.stdin):
    for _ in range(int(line[1:] or 1) if line[0] == "g" else 0):
        sweeper.done(sweeper.get_next())
    print("k", flush=True)
"""


def role_measure(directory: str, ops: int, batch: int) -> dict[str, float]:
    """One round of every workload with the code on ``sys.path`` (run as a role)."""
    from execo_engine.sweep import ParamSweeper, sweep

    reader = ParamSweeper(directory, sweep(GRID))
    reader.get_next()  # a worker holds its claim: what others finish is then replayed one by one
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER, directory],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdin is not None and other.stdout is not None
    assert other.stdout.readline() == "ready\n"

    def ask(command: str) -> None:
        assert other.stdin is not None and other.stdout is not None
        other.stdin.write(command + "\n")
        other.stdin.flush()
        assert other.stdout.readline() == "k\n"

    def timed(command: str | None) -> float:
        total = 0.0
        for _ in range(ops):
            if command is not None:
                ask(command)
            start = time.perf_counter()
            reader.update()
            total += time.perf_counter() - start
        return total / ops * 1e6

    result = {
        "nothing new, back to back (us)": timed(None),
        "nothing new, after a round trip (us)": timed("n"),
        "one claim+done of the other (us)": timed("g"),
    }
    ask(f"g{batch}")
    start = time.perf_counter()
    reader.update()
    result["a batch, per claim+done read (us)"] = (time.perf_counter() - start) / batch * 1e6
    other.stdin.close()
    other.wait()
    return result


def measure(checkout: str, base: str, ops: int, batch: int) -> dict[str, Any]:
    """One round of every workload with the code of ``checkout``, on a new directory."""
    work = tempfile.mkdtemp(dir=base)
    try:
        return run_role(__file__, checkout, work, str(ops), str(batch))
    finally:
        shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", action="append", default=[], help="another checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ops", type=int, default=2000, help="calls per figure and round")
    parser.add_argument("--batch", type=int, default=20000, help="claim+done read at once")
    parser.add_argument("--dir", default="/dev/shm", help="where the directories are made")
    parser.add_argument("--role", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        directory, ops, batch = args.role
        print(json.dumps(role_measure(directory, int(ops), int(batch))))
        return
    checkouts, runs = alternate(
        args.baseline,
        args.rounds,
        lambda checkout, _: measure(checkout, args.dir, args.ops, args.batch),
    )
    for checkout in checkouts:
        print(f"== {checkout} (medians of {args.rounds} rounds of {args.ops} calls)")
        for key in runs[HERE][0]:
            value = statistics.median(run[key] for run in runs[checkout])
            mine = statistics.median(run[key] for run in runs[HERE])
            print(f"  {key:40} {value:8.1f}   x{value / mine:.2f} of {HERE}")


if __name__ == "__main__":
    main()
