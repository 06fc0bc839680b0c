"""pytest_execo cost per test: COUNT trivial swept combinations against plain parametrize.

Usage::

    python benchmarks/bench_plugin.py [--count 10000] [--rounds 5] [--million]
    python benchmarks/bench_plugin.py --pairs [--count 5000] [--rounds 7] [--baseline CHECKOUT]

Runs, side by side in one run (each round runs every workload once, in turn; the figure is the
median over the rounds; compare the ratios, not the seconds, across machines):

- plain ``@pytest.mark.parametrize`` over COUNT values without the plugin (``-p no:execo``)
  and with it installed but unused;
- plain ``@pytest.mark.parametrize`` over COUNT values, and the same with
  ``@pytest.mark.execo_sweep`` without a sweep dir (the marker alone);
- the marker with ``--execo-sweep-dir`` (a fresh directory each time: every test is claimed,
  run and recorded), serial and with ``-n 2`` (pytest-xdist), each against plain
  parametrize in the same mode;
- a resumed session where 90% of the combinations are done, against a plain run of the other
  10%.

Each workload gets its wall-clock seconds and its CPU seconds (user + system of pytest and its
xdist workers): on a machine shared with other work, the CPU ratios move less than the wall ones.

The bytecode of ``execo_engine`` and ``pytest_execo`` is compiled first, as ``pip install``
does: an environment with ``PYTHONDONTWRITEBYTECODE`` set (this project's CI machines) would
otherwise compile them from source in every session and xdist worker, which pytest and the
other installed plugins never do.

``--baseline CHECKOUT`` adds the recording workloads (serial and ``-n 2``) run with another
checkout of this project first on ``PYTHONPATH`` (``git worktree add /tmp/before REV``), in the
same rounds, so that a change of the plugin is measured against its previous version side by
side (the ratios are against the same plain runs).

``--pairs`` measures the ratios the documentation quotes instead: each comparison (recording
against plain parametrize, serial and ``-n 2``; the marker alone; the plugin installed and
unused against ``-p no:execo``; with ``--baseline``, recording against the baseline checkout)
runs its two sessions one right after the other, ``--rounds`` times, and prints the median of
the ratios of the pairs and their range: a ratio taken pair by pair holds while a shared
machine's speed drifts, which the medians of whole rounds do not.

``--million`` also times the first ``take()`` of a 1,000,000-combination sweep with the
position the item knows and without it (then an index of the sweep is built), with the memory
each allocates (tracemalloc).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable

#: The same body as the swept test (the assertion costs the same when it holds), so that the
#: ratios measure the plugin alone.
PLAIN = """
import os, pytest

@pytest.mark.parametrize("i", range({count}))
def test_plain(i):
    assert i < {count} or not os.environ.get("BENCH_FAIL_TAIL")
"""
SWEPT = """
import os, pytest

@pytest.mark.execo_sweep({{"i": list(range({count}))}})
def test_swept(i):
    assert i < {done} or not os.environ.get("BENCH_FAIL_TAIL")
"""


def run_pytest(
    directory: str, *args: str, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Seconds of wall-clock time and of CPU time (user + system, xdist workers included) of
    a pytest session."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *args,
        ],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def fresh(directory: str, name: str) -> str:
    shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    return f"--execo-sweep-dir={name}"


def workloads(directory: str, baseline: str | None) -> dict[str, Callable[[], tuple[float, float]]]:
    def resumed() -> tuple[float, float]:
        run_pytest(
            directory,
            "test_swept.py",
            fresh(directory, "resumed"),
            env={"BENCH_FAIL_TAIL": "1"},
        )  # leaves 90% done, 10% to run again
        return run_pytest(directory, "test_swept.py", "--execo-sweep-dir=resumed")

    before = {"PYTHONPATH": baseline or ""}
    compared = {
        "recording (baseline)": lambda: run_pytest(
            directory, "test_swept.py", fresh(directory, "fresh"), env=before
        ),
        "recording -n 2 (baseline)": lambda: run_pytest(
            directory, "test_swept.py", fresh(directory, "fresh2"), "-n", "2", env=before
        ),
    }
    return {
        **(compared if baseline else {}),
        "plain": lambda: run_pytest(directory, "test_plain.py"),
        "no plugin": lambda: run_pytest(directory, "test_plain.py", "-p", "no:execo"),
        "marker": lambda: run_pytest(directory, "test_swept.py"),
        "recording": lambda: run_pytest(directory, "test_swept.py", fresh(directory, "fresh")),
        "plain -n 2": lambda: run_pytest(directory, "test_plain.py", "-n", "2"),
        "recording -n 2": lambda: run_pytest(
            directory, "test_swept.py", fresh(directory, "fresh2"), "-n", "2"
        ),
        "plain rest": lambda: run_pytest(directory, "test_plain_rest.py"),
        "resumed": resumed,
    }


#: The comparisons of ``--pairs``: label, the session measured, the one it is compared with
PAIRS = [
    ("recording, serial, against plain parametrize", "recording", "plain"),
    ("recording, -n 2, against plain parametrize -n 2", "recording -n 2", "plain -n 2"),
    ("the marker alone (no sweep dir), against plain parametrize", "marker", "plain"),
    ("the plugin installed, tests unmarked, against -p no:execo", "plain", "no plugin"),
]
BASELINE_PAIRS = [
    ("recording, serial, against the baseline checkout", "recording", "recording (baseline)"),
    (
        "recording, -n 2, against the baseline checkout",
        "recording -n 2",
        "recording -n 2 (baseline)",
    ),
]


def pairs(
    runs: dict[str, Callable[[], tuple[float, float]]],
    compared: list[tuple[str, str, str]],
    rounds: int,
) -> None:
    """Run each comparison's two sessions one after the other, ``rounds`` times; print the
    median ratio of the pairs (wall clock and CPU) and its range."""
    print(f"ratio of each pair (the session, then the one it is compared with), {rounds} pairs")
    print(f"{'comparison':<64}{'wall: median (range)':>24}{'CPU: median (range)':>24}")
    for label, name, base in compared:
        walls, cpus = [], []
        for _ in range(rounds):
            wall, cpu = runs[name]()
            wall_base, cpu_base = runs[base]()
            walls.append(wall / wall_base)
            cpus.append(cpu / cpu_base)
        figures = [
            f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})" for r in (walls, cpus)
        ]
        print(f"{label:<64}{figures[0]:>24}{figures[1]:>24}", flush=True)


def million() -> None:
    from execo_engine.sweep import ParamSweeper, sweep

    combinations = sweep({"i": list(range(1000)), "j": list(range(1000))})
    target = combinations[765_432]
    with tempfile.TemporaryDirectory() as directory:
        for label, position in (("with its position", 765_432), ("without", None)):
            sweeper = ParamSweeper(os.path.join(directory, label), combinations)
            tracemalloc.start()
            start = time.perf_counter()
            sweeper.take(target, position)
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(
                f"first take() of a 1,000,000 sweep, {label}: {seconds * 1e3:.1f} ms, "
                f"{peak / 2**20:.1f} MiB allocated"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--baseline", metavar="CHECKOUT", help="another checkout to compare")
    parser.add_argument(
        "--pairs", action="store_true", help="the ratios of sessions run in pairs (see above)"
    )
    options = parser.parse_args()
    for package in ("execo_engine", "pytest_execo"):
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        compileall.compile_dir(spec.submodule_search_locations[0], quiet=1)
        if options.baseline:
            compileall.compile_dir(os.path.join(options.baseline, package), quiet=1)
    count = options.count
    done = count * 9 // 10
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "test_plain.py"), "w") as f:
            f.write(PLAIN.format(count=count))
        with open(os.path.join(directory, "test_plain_rest.py"), "w") as f:
            f.write(PLAIN.format(count=count - done).replace("test_plain", "test_rest"))
        with open(os.path.join(directory, "test_swept.py"), "w") as f:
            f.write(SWEPT.format(count=count, done=done))
        runs = workloads(directory, options.baseline)
        if options.pairs:
            pairs(runs, PAIRS + (BASELINE_PAIRS if options.baseline else []), options.rounds)
            return
        seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for _ in range(options.rounds):
            for name, run in runs.items():
                seconds[name].append(run())
    median = {name: statistics.median(w for w, _ in values) for name, values in seconds.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in seconds.items()}
    rows = [
        (f"plain parametrize, {count:,} tests, without pytest_execo", "no plugin", None, count),
        ("the same, pytest_execo installed (unused)", "plain", "no plugin", count),
        ("execo_sweep marker, no sweep dir", "marker", "plain", count),
        ("execo_sweep + --execo-sweep-dir (fresh)", "recording", "plain", count),
        ("plain parametrize, -n 2", "plain -n 2", None, count),
        ("execo_sweep + --execo-sweep-dir, -n 2", "recording -n 2", "plain -n 2", count),
        *(
            [
                ("  the same, baseline checkout, serial", "recording (baseline)", "plain", count),
                (
                    "  the same, baseline checkout, -n 2",
                    "recording -n 2 (baseline)",
                    "plain -n 2",
                    count,
                ),
            ]
            if options.baseline
            else []
        ),
        (f"plain parametrize, {count - done:,} tests", "plain rest", None, count - done),
        (
            f"resumed: {done:,} of {count:,} done, runs {count - done:,}",
            "resumed",
            "plain rest",
            count - done,
        ),
    ]
    print(f"median of {options.rounds} rounds; CPU: user + system time, xdist workers included")
    print(f"{'workload':<58}{'seconds':>9}{'ratio':>8}{'us/test':>9}{'CPU s':>8}{'ratio':>8}")
    for label, name, base, tests in rows:
        line = f"{label:<58}{median[name]:>9.2f}"
        if base is not None:
            extra = (median[name] - median[base]) / tests * 1e6
            line += f"{median[name] / median[base]:>7.2f}x{extra:>+9.0f}"
        else:
            line += " " * 17
        line += f"{cpu[name]:>8.2f}"
        if base is not None:
            line += f"{cpu[name] / cpu[base]:>7.2f}x"
        print(line)
    if options.million:
        million()


if __name__ == "__main__":
    main()
