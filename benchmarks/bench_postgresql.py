"""claim+done rates of the PostgreSQL store against the directory store, in one run.

Usage (needs PostgreSQL installed, e.g. Debian's ``postgresql`` package, and psycopg)::

    python benchmarks/bench_postgresql.py [--seconds 3]

It starts a throwaway server on 127.0.0.1 (as the tests do), then runs 1 and 4 worker processes
looping ``get_next()`` + ``done()`` on a directory and on a PostgreSQL sweep.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from bench_sweeper import measure_rate
from pg import Server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of a rate run")
    seconds = parser.parse_args().seconds
    server = Server()
    if not server.available:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    server.start()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            print(f"{'claim+done/s':<24}{'directory':>12}{'postgresql':>12}{'ratio':>8}")
            for processes in (1, 4):
                directory = measure_rate(sys.executable, workdir, processes, 0, seconds)
                database = measure_rate(
                    sys.executable, workdir, processes, 0, seconds, server.url(f"bench-{processes}")
                )
                print(
                    f"{f'{processes} process(es)':<24}{directory:>12,.0f}{database:>12,.0f}"
                    f"{database / directory:>7.2f}x"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
