"""Helpers of the pytest_execo tests: a small swept grid that logs its runs, and readers of what
a session left in the sweep directory."""

import contextlib
import os
from collections import Counter

from execo_engine.sweep import ParamSweeper

GRID_TEST = """
import os, time, pytest
from execo_engine.sweep import ParamSweeper

RUNS = {runs!r}

def wait_until_others_done(me):
    # before a crash: the combinations that started before this one are finished and written
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = set(open(RUNS).read().split()) - {{me}}
        sweeps = [os.path.join("results", d) for d in os.listdir("results")]
        done = [ParamSweeper(s, read_only=True).get_done() for s in sweeps]
        if {{f"{{c['size']}}-{{c['algo']}}" for d in done for c in d}} >= started:
            return
        time.sleep(0.01)

@pytest.mark.execo_sweep({{"size": [1, 2, 3], "algo": ["a", "b"]}})
def test_grid(combination, size, algo):
    with open(RUNS, "a") as f:
        f.write(f"{{size}}-{{algo}}\\n")
    {body}
"""


def write_grid(pytester, body="pass"):
    runs = pytester.path / "runs.txt"
    pytester.makepyfile(test_grid=GRID_TEST.format(runs=str(runs), body=body))
    return runs


def runs_of(runs):
    return Counter(runs.read_text().split()) if runs.exists() else Counter()


def sweeper_of(pytester, test="test_grid"):
    """The ParamSweeper of the one sweep of ``test`` in ``results/``."""
    [directory] = (pytester.path / "results").glob(f"*{test}-*")
    return ParamSweeper(directory)


def ids(combinations):
    return sorted(f"{c['size']}-{c['algo']}" for c in combinations)


ALL = ["1-a", "1-b", "2-a", "2-b", "3-a", "3-b"]


BIG_GRID_TEST = """
import os, pytest

@pytest.mark.execo_sweep({{"i": list(range(40)), "j": ["x", "y"]}})
def test_big(combination, i, j):
    with open({runs!r}, "a") as f:
        f.write(f"{{i}}-{{j}}\\n")
    assert i % 7 != 3
    if i % 5 == 1:
        pytest.skip("later")
"""


def open_descriptors():
    """This process's descriptors, each with what it leads to: tests look for new ones (a
    number reused for another file counts as new; one that the garbage collector closes
    meanwhile, another test's, does not matter)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own, closed since
            found.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
    return found
