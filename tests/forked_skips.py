"""A run of an execo 2.x style script whose workers are forked from one ParamSweeper instance
(issue 28).

``python forked_skips.py LOCATION REPORT [RELAUNCH_SCRIPT]``: the parent creates one
ParamSweeper on a grid of 24 combinations and forks 4 workers (``os.fork``); a worker appends
each combination it runs to REPORT and skips a failing one (``i % 4 == 0``). The first worker
gives up at its first failure (it claims the first combination, which fails, before the others
are forked): it skips it and exits at once, while the others go on. Once they all ended, the
parent prints one JSON line: what it sees (its own instance), what a second ParamSweeper made in
the same process sees, and what a relaunch in another process sees (the output of ``python
RELAUNCH_SCRIPT LOCATION``, run while this parent still lives).
"""

import json
import os
import subprocess
import sys

from execo_engine.sweep import ParamSweeper, sweep

WORKERS, FAILING = 4, 4


def work(sweeper, report, claimed=None):
    """A forked worker: runs combinations until none is left, skipping the failing ones; with
    ``claimed`` (a pipe to write to once it claimed its first one), it exits at its first."""
    fd = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    while True:
        combination = sweeper.get_next()
        if claimed is not None:
            os.write(claimed, b"claimed")
        if combination is None:
            os._exit(0)
        os.write(fd, b"%d\n" % combination["i"])
        if combination["i"] % FAILING == 0:
            sweeper.skip(combination)
            if claimed is not None:
                os._exit(3)  # this worker gives up early
        else:
            sweeper.done(combination)


def fork(sweeper, report, claimed=None):
    pid = os.fork()
    if pid == 0:
        try:
            work(sweeper, report, claimed)
        finally:
            os._exit(1)
    return pid


def numbers(combinations):
    return sorted(c["i"] for c in combinations)


def main(location, report, relaunch=None):
    grid = sweep({"i": list(range(24))})
    sweeper = ParamSweeper(location, grid)
    read, write = os.pipe()
    children = [fork(sweeper, report, claimed=write)]
    assert os.read(read, 7) == b"claimed"  # it holds the first combination, which fails
    children += [fork(sweeper, report) for _ in range(WORKERS - 1)]
    statuses = [os.waitpid(pid, 0)[1] for pid in children]
    assert [os.WEXITSTATUS(status) for status in statuses] == [3] + [0] * (WORKERS - 1)
    other = ParamSweeper(location, grid)  # a second instance, in the same process
    seen = {
        "parent": os.getpid(),
        "skipped": numbers(sweeper.get_skipped()),
        "done": len(sweeper.get_done()),
        "remaining": numbers(sweeper.get_remaining()),
        "other_skipped": numbers(other.get_skipped()),
        "other_remaining": numbers(other.get_remaining()),
    }
    seen["skips"] = [(c["i"], owner[1], dead) for c, owner, _, dead in other.get_skips()]
    if relaunch is not None:
        seen["relaunch"] = json.loads(
            subprocess.run(
                [sys.executable, relaunch, location], capture_output=True, check=True, text=True
            ).stdout
        )
    print(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:])
