"""A worker for the lease, namespace and lock tests: claims and finishes elements until none is
left, and says so in a report.

``python liveness_worker.py DIR REPORT --lease L [--hostname H] [--work S] [--long I:S ...]``

Sets the host name first (in its own UTS namespace), then loops ``get_next``/``done`` on the
saved sweeps of DIR, each element ``{"i": ...}`` taking S seconds (or the seconds given by
``--long`` for element I). REPORT gets one line per event, written once it happened:
``begin I T`` when an element was handed out (T: when the ``get_next()`` call that returned it
started), ``done I T`` once ``done()`` returned (T: then); T is the system-wide monotonic clock.
The log goes to stdout. When nothing is todo but others hold
elements (perhaps dead owners whose claims are about to come back), it polls again.
"""

import argparse
import logging
import os
import socket
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("report")
    parser.add_argument("--lease", type=float, required=True)
    parser.add_argument("--hostname")
    parser.add_argument("--work", type=float, default=0.0)
    parser.add_argument("--long", action="append", default=[])
    args = parser.parse_args()
    if args.hostname:
        socket.sethostname(args.hostname)  # before execo_engine reads it
    from execo_engine.sweep import ParamSweeper

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")

    seconds = {int(i): float(s) for i, s in (item.split(":") for item in args.long)}
    report = os.open(args.report, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def say(event: str, i: int, when: float) -> None:
        os.write(report, f"{event} {i} {when:.3f}\n".encode())

    sweeper = ParamSweeper(args.directory, lease=args.lease)
    while True:
        asked = time.monotonic()
        element = sweeper.get_next()
        if element is None:
            if not sweeper.get_inprogress():
                return
            time.sleep(0.05)  # others hold the rest (dead owners, perhaps): look again
            continue
        say("begin", element["i"], asked)
        time.sleep(seconds.get(element["i"], args.work))  # the experiment itself
        sweeper.done(element)
        say("done", element["i"], time.monotonic())


if __name__ == "__main__":
    main()
