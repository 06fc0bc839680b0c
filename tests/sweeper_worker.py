"""A worker process for the concurrency tests: claims and finishes elements until none is left.

``python sweeper_worker.py DIR REPORT INSTANCES THREADS [WORK]``: INSTANCES ParamSweeper instances
on DIR (sweeps loaded from DIR), each used by THREADS threads, each element taking WORK seconds
of simulated work (default 0). Each thread loops get_next/done and
appends the element to REPORT only after done() returned. When nothing is todo but elements are
still held by others (perhaps dead processes whose claims are about to be reclaimed), it waits.
"""

import json
import os
import sys
import threading
import time

from execo_engine.sweep import ParamSweeper


def work(sweeper: ParamSweeper, report_fd: int, seconds: float) -> None:
    while True:
        element = sweeper.get_next()
        if element is None:
            if not sweeper.get_inprogress() and not sweeper.get_remaining():  # none reclaimed
                return
            time.sleep(0.01)  # others hold the rest: look again
            continue
        time.sleep(seconds)  # the experiment itself
        sweeper.done(element)
        os.write(report_fd, (json.dumps(element["i"]) + "\n").encode())


def main(directory: str, report: str, instances: int, threads: int, seconds: float) -> None:
    report_fd = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    sweepers = [ParamSweeper(directory) for _ in range(instances)]
    workers = [
        threading.Thread(target=work, args=(sweeper, report_fd, seconds))
        for sweeper in sweepers
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main(
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        float(sys.argv[5]) if len(sys.argv) > 5 else 0.0,
    )
