"""A worker whose operations are interrupted at random instants by an exception from a signal
handler (as ``KeyboardInterrupt`` or a preemption raises one), for the tests of ambiguous
outcomes.

``python interrupted_worker.py LOCATION N``: claims and finishes the combinations
``{"i": 0..N-1}`` of LOCATION, one iteration (get_next, then done) after another. Every other
iteration, SIGALRM fires at a random instant within how long an iteration takes (the median of
the last 16 iterations that ran in peace: one slow fsync or reconnection does not make the
alarms come too late to interrupt anything for a while), its
handler raising wherever the main thread is (the loop catches any exception, and does not
finish what it was doing: an element it got and did not finish stays claimed); the others
run in peace, so that the grid gets done whatever the machine's speed. At the end (or after
120 s) it gives back its claims and prints, as JSON, what it saw and what a fresh read-only
view shows.
"""

import collections
import json
import os
import random
import signal
import statistics
import sys
import time

from execo_engine.sweep import ParamSweeper, sweep


class Interrupted(Exception):
    """Raised by the signal handler."""


armed = False


def interrupt(signum, frame):
    global armed
    if armed:
        armed = False
        raise Interrupted()


def main(location: str, n: int) -> None:
    global armed
    grid = sweep({"i": range(n), "pad": ["x" * 200]})
    sweeper = ParamSweeper(location, grid, save_sweeps=True)
    handed, acknowledged, interrupts, finished = [], [], 0, False
    signal.signal(signal.SIGALRM, interrupt)
    peaceful, rng = collections.deque([0.001], maxlen=16), random.Random()  # their durations
    deadline = time.monotonic() + 120
    for iteration in range(10 * n):
        if finished or time.monotonic() > deadline:
            break
        interrupted = iteration % 2 == 0
        if interrupted:
            signal.setitimer(signal.ITIMER_REAL, rng.uniform(1e-5, statistics.median(peaceful)))
        started = time.monotonic()
        try:
            armed = interrupted
            element = sweeper.get_next()
            if element is None:
                finished = True
            else:
                handed.append(element["i"])
                sweeper.done(element)
                acknowledged.append(element["i"])
            armed = False
        except Exception:  # Interrupted, or what a library made of it
            armed = False
            interrupts += 1
        signal.setitimer(signal.ITIMER_REAL, 0)
        if not interrupted:
            peaceful.append(time.monotonic() - started)
    sweeper.release_claims()
    view = ParamSweeper(location, read_only=True)
    found = {
        "finished": finished,
        "interrupts": interrupts,
        "handed": handed,
        "acknowledged": acknowledged,
        "done": [e["i"] for e in view.get_done()],
        "remaining": [e["i"] for e in view.get_remaining()],
        "claimed": [[e["i"], owner.pid] for e, owner, _, _ in view.get_claims()],
    }
    print(json.dumps(found), flush=True)


def check(location: str, n: int, timeout: float) -> None:
    """Run the worker on ``location`` and check what it found: it got to the end of the grid
    despite the interrupts; once it gave back its claims, the store shows none of this
    process (it never held a claim it did not know about); nothing was handed out twice;
    nothing acknowledged was lost."""
    import subprocess

    run = subprocess.run(
        [sys.executable, os.path.abspath(__file__), location, str(n)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, "\n".join(run.stderr.splitlines()[-20:])
    found = json.loads(run.stdout.splitlines()[-1])
    assert found["finished"], "it never got to the end of the grid"
    assert found["interrupts"] >= 25, "too few interrupts to say anything"
    assert found["claimed"] == [], f"claims left, [element, pid]: {found['claimed']}"
    assert len(found["handed"]) == len(set(found["handed"]))
    assert set(found["acknowledged"]) <= set(found["done"])
    assert sorted(found["done"] + found["remaining"]) == list(range(n))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
