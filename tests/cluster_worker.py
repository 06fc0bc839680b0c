"""A worker for the launch tests, started by ``execo-sweep submit`` as COMMAND.

``python cluster_worker.py REPORT HOLD_WORKER WORK``: works the sweep of
``EXECO_SWEEP_LOCATION`` (sweeps saved there by the test) until nothing is todo nor in progress,
each combination taking WORK seconds of simulated work. Worker number HOLD_WORKER
(``EXECO_WORKER_INDEX``; ``all``: every worker; -1: none), on its first run only
(``SLURM_RESTART_COUNT`` unset or 0, and no ``holding`` event of that worker in REPORT yet: an
OAR resubmission is a new job), holds its first combination until it is signalled or killed;
the other workers start once a worker holds (so that it surely gets one, however late it
starts). Appends JSON lines to REPORT, with the worker's index, pid and OAR job id (``job``,
when it runs in an OAR job): ``claimed``, ``holding``, ``done`` (after ``done()`` returned), and
at exit ``exited`` with the claims its process still held in the sweep as seen by a fresh
read-only view (the process is still alive then, so nobody else can have reclaimed them).
"""

import atexit
import json
import os
import sys
import time

from execo_engine.sweep import ParamSweeper

LOCATION = os.environ["EXECO_SWEEP_LOCATION"]
INDEX = int(os.environ["EXECO_WORKER_INDEX"])
RESTART = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
JOB = os.environ.get("OAR_JOB_ID")


def report(fd: int, event: str, **fields) -> None:
    line = {"event": event, "worker": INDEX, "pid": os.getpid(), "restart": RESTART, **fields}
    if JOB:
        line["job"] = JOB
    os.write(fd, (json.dumps(line) + "\n").encode())


def still_held(fd: int) -> None:
    """Runs after the sweeper gave its claims back (atexit: last registered, first run)."""
    view = ParamSweeper(LOCATION, read_only=True)
    mine = [c["i"] for c, owner, _, _ in view.get_claims() if owner[1] == os.getpid()]
    report(fd, "exited", held=mine)


def holding(report_path: str, worker: int | None = None) -> bool:
    """Whether REPORT has a holding event (of ``worker``, or of anyone)."""
    with open(report_path) as report:
        found = [json.loads(line) for line in report if line.strip()]
    return any(e["event"] == "holding" and worker in (None, e["worker"]) for e in found)


def main(report_path: str, hold_worker: str, work: float) -> None:
    fd = os.open(report_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    atexit.register(still_held, fd)  # before the sweeper: runs after its give-back
    sweeper = ParamSweeper(LOCATION)
    holder = hold_worker in ("all", str(INDEX))
    hold = holder and RESTART == 0 and not holding(report_path, INDEX)
    while hold_worker != "-1" and not hold and not holding(report_path):
        time.sleep(0.05)  # the holder has not taken its combination yet
    while True:
        combination = sweeper.get_next()
        if combination is None:
            if not sweeper.get_inprogress():
                return
            time.sleep(0.05)  # others hold the rest: look again
            continue
        report(fd, "claimed", i=combination["i"])
        if hold:
            report(fd, "holding", i=combination["i"])
            while True:  # until signalled or killed
                time.sleep(0.05)
        time.sleep(work)  # the experiment itself
        sweeper.done(combination)
        report(fd, "done", i=combination["i"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
