"""pytest_execo overhead: 10,000 trivial swept combinations against plain parametrize.

Usage::

    python benchmarks/bench_plugin.py [--count 10000]

Prints, in one run (compare the ratios, not the seconds, across machines):

- plain ``@pytest.mark.parametrize`` over COUNT values, and the same with
  ``@pytest.mark.execo_sweep`` and ``--execo-sweep-dir`` (fresh directory);
- a resumed session where 90% of the combinations are done, against a plain run of the other
  10%.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

PLAIN = """
import pytest

@pytest.mark.parametrize("i", range({count}))
def test_plain(i):
    pass
"""
SWEPT = """
import os, pytest

@pytest.mark.execo_sweep({{"i": list(range({count}))}})
def test_swept(i):
    assert i < {done} or not os.environ.get("BENCH_FAIL_TAIL")
"""


def run_pytest(directory: str, *args: str, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    count = parser.parse_args().count
    done = count * 9 // 10
    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "test_plain.py"), "w") as f:
            f.write(PLAIN.format(count=count))
        with open(os.path.join(directory, "test_plain_rest.py"), "w") as f:
            f.write(PLAIN.format(count=count - done).replace("test_plain", "test_rest"))
        with open(os.path.join(directory, "test_swept.py"), "w") as f:
            f.write(SWEPT.format(count=count, done=done))
        plain = run_pytest(directory, "test_plain.py")
        swept = run_pytest(directory, "test_swept.py", "--execo-sweep-dir=fresh")
        run_pytest(
            directory, "test_swept.py", "--execo-sweep-dir=resumed", env={"BENCH_FAIL_TAIL": "1"}
        )  # leaves 90% done, 10% to run again
        resumed = run_pytest(directory, "test_swept.py", "--execo-sweep-dir=resumed")
        plain_rest = run_pytest(directory, "test_plain_rest.py")
    print(f"{'workload':<52}{'seconds':>10}{'ratio':>8}")
    print(f"{f'plain parametrize, {count:,} tests':<52}{plain:>10.2f}")
    print(
        f"{f'execo_sweep + --execo-sweep-dir, {count:,} tests':<52}{swept:>10.2f}"
        f"{swept / plain:>7.2f}x"
    )
    print(f"{f'plain parametrize, {count - done:,} tests':<52}{plain_rest:>10.2f}")
    print(
        f"{f'resumed: {done:,} of {count:,} done, runs {count - done:,}':<52}{resumed:>10.2f}"
        f"{resumed / plain_rest:>7.2f}x"
    )


if __name__ == "__main__":
    main()
