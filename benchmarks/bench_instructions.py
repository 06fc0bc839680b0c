"""Instructions per operation, counted by valgrind: figures that the machine's load does not move.

Usage (needs ``valgrind``: ``apt-get install valgrind``)::

    python benchmarks/bench_instructions.py                           # this checkout
    git worktree add /tmp/before <commit>
    python benchmarks/bench_instructions.py --baseline /tmp/before    # and that checkout

Timings on a shared machine swing by tens of per cent from one minute to the next; the number
of instructions a piece of code runs moves far less (see below).
Each workload runs in a fresh process under ``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``)
at two sizes, ``--small`` and ``--large``; the difference of their counts divided by the
difference of the sizes is the cost of one more operation, without the start-up (imports,
pytest's own start, the sweep's creation):

- *claim+done*: ``s.done(s.get_next())`` on a directory in ``--dir`` (tmpfs by default: the
  ``fsync`` costs no waiting there), per operation;
- *plain*: a pytest session of trivial tests, ``@pytest.mark.parametrize`` over N values, per
  test; *marker*: the same test with ``@pytest.mark.execo_sweep`` and no sweep dir; *recording*:
  the same with ``--execo-sweep-dir`` (serial: valgrind runs one thread at a time).

The counts of one version move by about 1 % from one run or one code change to the next,
mostly with the garbage collector: a full collection more or less in one of the two runs
(each walks every live object) shifts the figure per test by 10-15 k instructions; larger
sizes make that smaller.

It prints the counts per operation for each checkout and the ratios of the marker and of the
recording to plain parametrize (the plugin's targets, counted rather than timed). Instructions
are not time: cache misses, system calls and waits count one instruction each, or none; use
``bench_cpu.py`` and ``bench_plugin.py`` for times. The workloads run in parallel, one per CPU.
"""

from __future__ import annotations

import argparse
import compileall
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile

from side_by_side import HERE

CLAIM_DONE = """
import sys, tempfile
from execo_engine.sweep import ParamSweeper, sweep
count = int(sys.argv[1])
sweeper = ParamSweeper(tempfile.mkdtemp(dir=sys.argv[2]), sweep({"i": range(100_000)}))
for _ in range(count):
    sweeper.done(sweeper.get_next())
"""
TEST = """
import pytest

@pytest.mark.%s
def test_one(i):
    assert i >= 0
"""
MARKS = {
    "plain": 'parametrize("i", range(%d))',
    "marker": 'execo_sweep({"i": list(range(%d))})',
    "recording": 'execo_sweep({"i": list(range(%d))})',
}
WORKLOADS = ("claim+done", *MARKS)
_COLLECTED = re.compile(r"Collected : (\d+)")


def command(workload: str, size: int, work: str) -> list[str]:
    """The command of ``workload`` at ``size``, run in ``work`` (a new directory)."""
    if workload == "claim+done":
        script = os.path.join(work, "claim_done.py")
        with open(script, "w") as file:
            file.write(CLAIM_DONE)
        return [sys.executable, script, str(size), work]
    with open(os.path.join(work, "test_one.py"), "w") as file:
        file.write(TEST % (MARKS[workload] % size))
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if workload == "recording":
        pytest.append("--execo-sweep-dir=" + os.path.join(work, "sweeps"))
    return pytest


def run(checkout: str, workload: str, size: int, base: str, *prefix: str) -> str:
    """Run ``workload`` at ``size`` with the code of ``checkout``, in a new directory under
    ``base``, under ``prefix`` (valgrind, or nothing); its standard error. ``RuntimeError``
    with its output if it failed."""
    work = tempfile.mkdtemp(dir=base)
    try:
        result = subprocess.run(
            [*prefix, *command(workload, size, work)],
            env=dict(os.environ, PYTHONPATH=checkout, PYTHONHASHSEED="0"),
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"{workload} ({size}) with {checkout} failed:\n{result.stdout[-2000:]}"
            f"{result.stderr[-2000:]}"
        )
    return result.stderr


def warm_up(checkout: str, workload: str, base: str) -> None:
    """Run ``workload`` once, small and without valgrind: pytest then caches the bytecode it
    rewrites of the plugin's modules, which no counted run then pays (else whichever of the
    two sizes gets there first pays it alone)."""
    run(checkout, workload, 2, base)


def count(checkout: str, workload: str, size: int, base: str) -> int:
    """Instructions of one run of ``workload`` at ``size`` with the code of ``checkout``."""
    stderr = run(
        checkout,
        workload,
        size,
        base,
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
    )
    found = _COLLECTED.search(stderr)
    if found is None:
        raise RuntimeError(f"{workload} ({size}) with {checkout}: no count in {stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", action="append", default=[], help="another checkout")
    parser.add_argument("--small", type=int, default=200, help="operations of the small run")
    parser.add_argument("--large", type=int, default=1000, help="operations of the large run")
    parser.add_argument("--dir", default="/dev/shm", help="where the runs work (tmpfs)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    if not 0 < args.small < args.large:
        sys.exit(f"--small {args.small} --large {args.large}: give 0 < small < large")
    checkouts = [HERE, *map(os.path.abspath, args.baseline)]
    for checkout in checkouts:  # as pip install does: no run counts the compilation
        for package in ("execo_engine", "pytest_execo"):
            compileall.compile_dir(os.path.join(checkout, package), quiet=1)
        for workload in WORKLOADS:
            warm_up(checkout, workload, args.dir)
    jobs = [
        (checkout, workload, size)
        for checkout in checkouts
        for workload in WORKLOADS
        for size in (args.small, args.large)
    ]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        found = pool.map(lambda job: count(job[0], job[1], job[2], args.dir), jobs)
        counts = dict(zip(jobs, found, strict=True))
    steps = args.large - args.small
    print(
        f"instructions per operation ((count at {args.large} - count at {args.small}) / "
        f"{steps}), thousands"
    )
    print(f"{'':<40}" + "".join(f"{w:>12}" for w in WORKLOADS) + f"{'marker':>9}{'record':>9}")
    print(f"{'':<40}" + " " * 12 * len(WORKLOADS) + f"{'/plain':>9}{'/plain':>9}")
    for checkout in checkouts:
        per = {
            w: (counts[checkout, w, args.large] - counts[checkout, w, args.small]) / steps
            for w in WORKLOADS
        }
        print(
            f"{checkout[-39:]:<40}"
            + "".join(f"{per[w] / 1e3:>12,.1f}" for w in WORKLOADS)
            + f"{per['marker'] / per['plain']:>9.3f}{per['recording'] / per['plain']:>9.3f}"
        )


if __name__ == "__main__":
    main()
