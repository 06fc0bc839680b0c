"""``execo-sweep report`` on a large sweep: the file's size, the time to write it, the time a
browser takes to show it and to sort and filter its results table.

Usage::

    python benchmarks/bench_report.py                          # 100,000 combinations
    python benchmarks/bench_report.py --combinations 20000
    python benchmarks/bench_report.py --keep /tmp/bench-report # keep the sweep and the page

The sweep has 4 factors (10 x 4 x 50 x N/2000 levels) and 2 recorded values per result; about
1% of its combinations failed for good, a few are held by a dead process, the rest are done,
each with its result. Then:

- *write*: the wall time and the CPU time of ``execo-sweep report DIR -o report.html`` in a
  fresh process (the median of ``--rounds``), and the file's size (plotly.js included, once);
- *render*: Chromium (Debian's ``chromium``, headless) opens the file from ``file://``: when
  the page first painted (its progress and tables), and when its last figure was drawn (the page
  records it in ``data-ready-ms``), both after the start of the navigation, and the CPU time
  its renderer spent (DevTools' ``ThreadTime`` and ``ProcessTime``); then a click on a
  column of the results table sorts them, and a filter typed in a column's box filters them
  (each timed in the page, the filter's 200 ms debounce left out). The browser is driven over
  its DevTools pipe by ``tests/browser.py``.

Timings depend on the machine and its load (printed before and after): read them as orders of
magnitude, and the CPU time where the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from execo_engine.sweep import ParamSweeper, sweep

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from browser import DevTools, find_chromium


def _children_cpu() -> float:
    """CPU seconds (user and system) of the waited-for child processes so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def build(directory: str, combinations: int) -> None:
    """A sweep of about ``combinations`` combinations in ``directory``, as the module says."""
    grid = sweep(
        {
            "size": [2**k for k in range(10)],
            "algo": ["quick", "merge", "heap", "tim"],
            "threads": list(range(1, 51)),
            "seed": list(range(max(1, combinations // 2000))),
        }
    )
    sweeper = ParamSweeper(directory, grid, save_sweeps=True, max_attempts=1)
    rng = random.Random(1)
    taken = sweeper.get_next_batch(len(grid))
    failed = [c for c in taken if rng.random() < 0.01]
    done = [c for c in taken if c not in set(failed)][:-5]  # 5 stay claimed
    for c in done:
        latency = c["size"] / c["threads"] * (1 + rng.random())
        sweeper.record_result(
            c,
            {"latency": latency, "speedup": c["threads"] * rng.random()},
            "passed",
            0.01,
            wait=False,
        )
    sweeper.flush()
    sweeper.done_batch(done)
    sweeper.fail_batch(failed, "AssertionError: too slow\n  in test_sort")
    # the 5 claims left stay with this process, which exits: a dead owner in the report


SORT = """(() => {
  const header = document.querySelector('#table-results thead th:nth-child(%d)');
  const start = performance.now();
  header.click();
  return performance.now() - start;
})()"""

FILTER = """new Promise(resolve => {
  const box = document.querySelectorAll('#table-results tr.filters input')[%d];
  const count = document.querySelector('#holder-results .count');
  const before = count.textContent;
  const start = performance.now();
  box.value = %s;
  box.dispatchEvent(new Event('input'));
  const poll = () => count.textContent !== before
      ? resolve([performance.now() - start - 200, count.textContent])
      : setTimeout(poll, 5);
  poll();
})"""


def browse(chromium: str, page: str) -> dict[str, Any]:
    """Render ``page`` in Chromium; the figures of :data:`SORT` and :data:`FILTER`."""
    browser = DevTools(chromium)
    try:
        browser.call("Performance.enable", browser.session)
        ready = browser.open(f"file://{page}")
        metrics = browser.call("Performance.getMetrics", browser.session)["metrics"]
        cpu = {metric["name"]: metric["value"] for metric in metrics}
        painted = browser.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0].startTime"
        )
        figures = browser.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        columns = browser.evaluate(
            "Array.from(document.querySelectorAll('#table-results thead tr:first-child th'))"
            ".map(th => th.textContent)"
        )
        sort_ms = browser.evaluate(SORT % (columns.index("latency") + 1))
        filter_ms, shown = browser.evaluate(FILTER % (columns.index("latency"), json.dumps(">100")))
        return {
            "thread_cpu_s": cpu.get("ThreadTime"),
            "process_cpu_s": cpu.get("ProcessTime"),
            "painted_ms": painted,
            "ready_ms": ready,
            "figures": figures,
            "sort_ms": sort_ms,
            "filter_ms": filter_ms,
            "filter_shows": shown,
        }
    finally:
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--combinations", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="writes timed (median)")
    parser.add_argument("--keep", help="build the sweep and write the page in this directory")
    args = parser.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="bench-report-")
    os.makedirs(work, exist_ok=True)
    directory, page = os.path.join(work, "sweep"), os.path.join(work, "report.html")
    try:
        if not os.path.exists(directory):
            started = time.perf_counter()
            build(directory, args.combinations)
            print(f"built the sweep in {time.perf_counter() - started:.1f} s")
        print(f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
        writes, cpu = [], []
        for _ in range(args.rounds):
            started, used = time.perf_counter(), _children_cpu()
            subprocess.run(
                [sys.executable, "-m", "execo_engine", "report", directory, "-o", page],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            writes.append(time.perf_counter() - started)
            cpu.append(_children_cpu() - used)
        view = ParamSweeper(directory, read_only=True)
        print(f"combinations: {len(view.get_sweeps())}, results: {len(view.get_results())}")
        print(
            f"write: {statistics.median(writes):.2f} s (median of {args.rounds}: "
            f"{', '.join(f'{w:.2f}' for w in writes)}), CPU {statistics.median(cpu):.2f} s"
        )
        print(f"size: {os.path.getsize(page) / 1e6:.1f} MB")
        chromium = find_chromium()
        if chromium is None:
            print("render: skipped (no chromium: apt-get install chromium)")
            return
        seen = browse(chromium, page)
        print(
            f"render: first paint (progress, tables) {seen['painted_ms'] / 1000:.2f} s, the "
            f"{seen['figures']} figures drawn {seen['ready_ms'] / 1000:.2f} s after the "
            "navigation started"
        )
        print(
            f"render CPU: the page's main thread {seen['thread_cpu_s']:.2f} s, its renderer "
            f"process {seen['process_cpu_s']:.2f} s"
        )
        print(f"sort the results by latency: {seen['sort_ms']:.0f} ms")
        print(f"filter latency >100: {seen['filter_ms']:.0f} ms ({seen['filter_shows']})")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
