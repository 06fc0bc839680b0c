"""``execo-sweep report`` on a large sweep: the file's size, the time to write it, the time a
browser takes to show it and to sort and filter its results table.

Usage::

    python benchmarks/bench_report.py                          # 100,000 combinations
    python benchmarks/bench_report.py --combinations 20000
    python benchmarks/bench_report.py --keep /tmp/bench-report # keep the sweep and the page

The sweep has 4 factors (10 x 4 x 50 x N/2000 levels) and 2 recorded values per result; about
1% of its combinations failed for good, a few are held by a dead process, the rest are done,
each with its result. Then:

- *write*: the wall time of ``execo-sweep report DIR -o report.html`` in a fresh process (the
  median of ``--rounds``), and the file's size (plotly.js included, once);
- *render*: Chromium (``/usr/bin/chromium``, headless) opens the file from ``file://``; the page
  records how many ms after the start of the navigation its tables and figures were drawn
  (``data-ready-ms``); then a click on a column of the results table sorts them, and a filter
  typed in a column's box filters them (each timed in the page, the filter's 200 ms debounce
  left out). The browser is driven over its DevTools pipe (``--remote-debugging-pipe``), with
  the standard library only.

Timings depend on the machine and its load: read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from execo_engine.sweep import ParamSweeper, sweep

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


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


class DevTools:
    """A headless Chromium driven over its DevTools pipe (JSON messages ended by NUL)."""

    def __init__(self) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        self._profile = tempfile.mkdtemp(prefix="bench-report-chromium-")
        # the browser reads commands on its fd 3 and writes answers on its fd 4: a shell
        # puts the pipe's ends there, then becomes the browser
        self.process = subprocess.Popen(
            [
                "sh", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}', CHROMIUM,
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
                "--window-size=1400,1000", "about:blank",
            ],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer, self._next = b"", 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]

    def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        """Send one command, return its result (events meanwhile are dropped)."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed its DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call(
            "Runtime.evaluate",
            self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 300.0) -> float:
        """Navigate to ``url``, wait for the page to say it is drawn; its ``data-ready-ms``."""
        self.call("Page.navigate", self.session, url=url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self.evaluate(
                "document.readyState === 'complete' && "
                "document.documentElement.getAttribute('data-ready-ms')"
            )
            if ready:
                return float(ready)
            time.sleep(0.05)  # polling the page's own flag
        raise RuntimeError(f"{url} not drawn within {timeout} s")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)


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


def browse(page: str) -> dict[str, Any]:
    """Render ``page`` in Chromium; the figures of :data:`SORT` and :data:`FILTER`."""
    browser = DevTools()
    try:
        ready = browser.open(f"file://{page}")
        figures = browser.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        columns = browser.evaluate(
            "Array.from(document.querySelectorAll('#table-results thead tr:first-child th'))"
            ".map(th => th.textContent)"
        )
        sort_ms = browser.evaluate(SORT % (columns.index("latency") + 1))
        filter_ms, shown = browser.evaluate(FILTER % (columns.index("latency"), json.dumps(">100")))
        return {
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
        writes = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "execo_engine", "report", directory, "-o", page],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            writes.append(time.perf_counter() - started)
        view = ParamSweeper(directory, read_only=True)
        print(f"combinations: {len(view.get_sweeps())}, results: {len(view.get_results())}")
        print(
            f"write: {statistics.median(writes):.2f} s (median of {args.rounds}: "
            f"{', '.join(f'{w:.2f}' for w in writes)})"
        )
        print(f"size: {os.path.getsize(page) / 1e6:.1f} MB")
        if not os.path.exists(CHROMIUM):
            print(f"render: skipped ({CHROMIUM} not found: apt-get install chromium)")
            return
        seen = browse(page)
        print(
            f"render: tables and {seen['figures']} figures drawn {seen['ready_ms'] / 1000:.2f} s "
            "after the navigation started"
        )
        print(f"sort the results by latency: {seen['sort_ms']:.0f} ms")
        print(f"filter latency >100: {seen['filter_ms']:.0f} ms ({seen['filter_shows']})")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
