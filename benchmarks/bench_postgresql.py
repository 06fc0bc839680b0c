"""The PostgreSQL store against a plain SKIP LOCKED queue table, side by side on one server.

Usage (needs PostgreSQL installed, e.g. Debian's ``postgresql`` package, and psycopg)::

    python benchmarks/bench_postgresql.py [--runs 3] [--no-grid | --grid-only]
    git worktree add /tmp/pg-before main   # the code to compare with (its own checkout)
    python benchmarks/bench_postgresql.py --grid-only --baseline /tmp/pg-before

It starts one throwaway server on 127.0.0.1 (``tests/pg.py``, ``synchronous_commit`` on,
``pg_stat_statements`` loaded), runs each side once to warm it up, then, for 1, 4 and 8 worker
processes, the median of ``--runs`` runs (the two sides alternating, each first in turn) of
the time to finish 5,000 trivial combinations:

- *this store*: each worker loops ``ParamSweeper.get_next()`` + ``done()`` until none is left;
- *plain queue*: a table ``(id, state)`` with a partial index on the todo rows; each worker loops
  ``UPDATE q SET state = 'claimed' WHERE id = (SELECT id ... ORDER BY id LIMIT 1 FOR UPDATE
  SKIP LOCKED) RETURNING id`` then ``UPDATE q SET state = 'done' WHERE id = ...``, autocommit.

Statements per claim+done are counted by the server (``pg_stat_statements``, utility
statements included), over every statement of the run (lease renewals, dead-owner checks and
the end-of-grid polls too): in autocommit, each one is one network round trip. The CPU time
per claim+done of the worker processes (client) and the server's time per claim+done,
planning and execution (``pg_stat_statements`` with ``track_planning``: a statement planned
again on every call shows there), are shown too: on a host whose cores are all busy, the rate
follows their sum.

Then the 1,000,000-combination grid of ``bench_sweeper.py`` (its roles): create (``sweep()``
+ first open), 500,000 marked done (``done_batch``), and resume in a fresh process (open +
first ``get_next``), on a directory and on this store; and the creation of 300 sweeps of 10
combinations in one database, one after the other in one process (the sweeps of a pytest
session's sweep directory). The medians of ``--runs`` runs, each ``--baseline`` checkout's
code (imported through ``PYTHONPATH``, in a schema of its own) run alternately with this
one's, with the server's write-ahead log written meanwhile (records, full-page images, MiB:
``pg_stat_wal``). ``--setting NAME=VALUE`` (repeatable) starts the server with more settings
(``max_wal_size=16GB``, say), to see what the server's tuning changes. Timings depend on the
machine and its load: compare the ratios of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from bench_sweeper import read_result, wait_for_go
from pg import Server

HERE = os.path.abspath(__file__)
SWEEPER = os.path.join(os.path.dirname(HERE), "bench_sweeper.py")

GRID = 5_000
SMALL_SWEEPS = 300
PROCESSES = (1, 4, 8)
QUEUE_CLAIM = (
    "UPDATE queue SET state = 'claimed' WHERE id = (SELECT id FROM queue WHERE state = 'todo' "
    "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
)
QUEUE_DONE = "UPDATE queue SET state = 'done' WHERE id = %s"


def emit(**result: object) -> None:
    print(json.dumps(result), flush=True)


def wait_for(go_file: str) -> float:
    emit(ready=True)
    wait_for_go(go_file)
    return time.monotonic()


# -- worker roles ------------------------------------------------------------------------------


def role_store(url: str, go_file: str) -> None:
    from execo_engine.sweep import ParamSweeper

    sweeper = ParamSweeper(url)
    start, cpu, count = wait_for(go_file), time.process_time(), 0
    while (element := sweeper.get_next()) is not None:
        sweeper.done(element)
        count += 1
    emit(count=count, start=start, end=time.monotonic(), cpu=time.process_time() - cpu)


def role_small_sweeps(url: str) -> None:
    from execo_engine.sweep import ParamSweeper, sweep

    start = time.perf_counter()
    for index in range(SMALL_SWEEPS):
        ParamSweeper(url.replace("sweep=", f"sweep=small{index}-"), sweep({"i": range(10)})).close()
    emit(seconds=time.perf_counter() - start)


def role_queue(conninfo: str, go_file: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as connection:
        start, cpu, count = wait_for(go_file), time.process_time(), 0
        while (row := connection.execute(QUEUE_CLAIM).fetchone()) is not None:
            connection.execute(QUEUE_DONE, row)
            count += 1
        emit(count=count, start=start, end=time.monotonic(), cpu=time.process_time() - cpu)


# -- orchestrator ------------------------------------------------------------------------------


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--role", *args],
        stdin=subprocess.PIPE,  # see wait_for_go
        stdout=subprocess.PIPE,
        text=True,
    )


def prepare_store(server: Server, name: str) -> str:
    from execo_engine.sweep import ParamSweeper, sweep

    url = server.url(name)
    ParamSweeper(url, sweep({"i": range(GRID)}), save_sweeps=True)
    return url


def prepare_queue(server: Server, name: str) -> str:  # noqa: ARG001 (same shape)
    server.execute("DROP TABLE IF EXISTS queue")
    server.execute("CREATE TABLE queue (id serial PRIMARY KEY, state text NOT NULL)")
    server.execute("CREATE INDEX ON queue (id) WHERE state = 'todo'")
    server.execute("INSERT INTO queue (state) SELECT 'todo' FROM generate_series(1, %s)", GRID)
    return server.conninfo


def statements(server: Server) -> tuple[int, float]:
    """(statements, milliseconds of planning and execution) since the last reset."""
    rows = server.execute(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(total_plan_time + total_exec_time), 0) "
        "FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%'"
    )
    return int(rows[0][0]), float(rows[0][1])


def run(server: Server, kind: str, processes: int, name: str) -> tuple[float, ...]:
    """(claim+done per second, statements, client CPU us, server us (planning + execution)
    per claim+done) of one run."""
    target = (prepare_store if kind == "store" else prepare_queue)(server, name)
    with tempfile.TemporaryDirectory() as workdir:
        go_file = os.path.join(workdir, "go")
        workers = [spawn(kind, target, go_file) for _ in range(processes)]
        for worker in workers:
            read_result(worker)
        server.execute("SELECT pg_stat_statements_reset()")
        open(go_file, "w").close()
        results: list[dict[str, Any]] = [read_result(worker) for worker in workers]
        for worker in workers:
            worker.communicate()
    done = sum(r["count"] for r in results)
    if done != GRID:
        raise RuntimeError(f"{kind}: {done} combinations done of {GRID}")
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    calls, milliseconds = statements(server)
    cpu = sum(r["cpu"] for r in results)
    return GRID / seconds, calls / GRID, cpu * 1e6 / GRID, milliseconds * 1e3 / GRID


def spawn_checkout(checkout: str, script: str, *args: str) -> subprocess.Popen[str]:
    """A role of ``script`` run with the code of ``checkout`` (first on ``PYTHONPATH``)."""
    return subprocess.Popen(
        [sys.executable, script, "--role", *args],
        env={**os.environ, "PYTHONPATH": checkout},
        cwd=tempfile.gettempdir(),  # never a checkout: PYTHONPATH decides
        stdin=subprocess.PIPE,  # see wait_for_go
        stdout=subprocess.PIPE,
        text=True,
    )


def role_result(process: subprocess.Popen[str]) -> dict[str, Any]:
    result: dict[str, Any] = read_result(process)
    process.communicate()
    return result


def grid_times(checkout: str, location: str) -> dict[str, float]:
    """The 1M grid's figures with the code of ``checkout``, at ``location``."""
    result = role_result(spawn_checkout(checkout, SWEEPER, "grid-setup", location))
    result.update(role_result(spawn_checkout(checkout, SWEEPER, "grid-resume", location)))
    if not result["first_is_500000th"]:
        raise RuntimeError(f"{location}: the resume did not hand out combination #500,000")
    return {
        "create (sweep() + first open) s": result["sweep_time"] + result["open_time"],
        "done_batch of 500,000 s": result["done_batch_time"],
        "resume (open + first get_next) s": result["resume_time"],
        "resume peak RSS MiB": result["peak_rss_mib"],
    }


def wal_written(server: Server) -> dict[str, float]:
    """What the server wrote to its write-ahead log since ``pg_stat_wal`` was last reset."""
    records, images, size = server.execute(
        "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal"
    )[0]
    return {
        "WAL records (create, done_batch, resume), k": records / 1e3,
        "WAL full-page images": images,
        "WAL MiB": float(size) / 2**20,
    }


def grid_figures(server: Server, checkouts: list[str], runs: int) -> None:
    """The medians of ``runs`` runs of the grid on a directory and on this store, and of the
    creation of :data:`SMALL_SWEEPS` small sweeps, for each checkout (alternating)."""
    cells: dict[str, list[dict[str, float]]] = {checkout: [] for checkout in checkouts}
    for index in range(runs):
        for checkout in checkouts[index % len(checkouts) :] + checkouts[: index % len(checkouts)]:
            schema = f"bench{index}_{checkouts.index(checkout)}"
            server.execute(f"CREATE SCHEMA {schema}")
            options = f"-c%20search_path%3D{schema}"
            with tempfile.TemporaryDirectory() as workdir:
                directory = grid_times(checkout, os.path.join(workdir, "grid"))
            server.execute("SELECT pg_stat_reset_shared('wal')")
            database = grid_times(checkout, server.url("grid", options=options))
            database |= wal_written(server)
            small = spawn_checkout(checkout, HERE, "small", server.url("", options=options))
            cells[checkout].append(
                {f"directory {k}": v for k, v in directory.items()}
                | {f"postgresql {k}": v for k, v in database.items()}
                | {
                    "postgresql create / directory create": (
                        database["create (sweep() + first open) s"]
                        / directory["create (sweep() + first open) s"]
                    ),
                    f"postgresql {SMALL_SWEEPS} sweeps of 10, create s": role_result(small)[
                        "seconds"
                    ],
                }
            )
    print(f"\n1,000,000 combinations (medians of {runs} runs)")
    print(f"{'':<52}" + "".join(f"{os.path.basename(c):>16}" for c in checkouts))
    for key in cells[checkouts[0]][0]:
        medians = [statistics.median(run[key] for run in cells[c]) for c in checkouts]
        print(f"{key:<52}" + "".join(f"{m:>16.2f}" for m in medians))


def rates(server: Server, runs: int) -> None:
    """The table of claim+done rates (see the module docstring), medians of ``runs`` runs."""
    print(
        f"{GRID:,} trivial combinations, median of {runs} runs, synchronous commit; "
        f"per claim+done: statements, client CPU us, server us: planning + execution "
        f"(store / queue)\n"
        f"{'processes':<10}{'this store':>12}{'plain queue':>13}{'ratio':>7}"
        f"{'statements':>17}{'client CPU':>18}{'server':>14}"
    )
    for kind in ("store", "queue"):  # warm-up: the server's caches, files and plans
        run(server, kind, 1, f"{kind}_warm_up")
    for processes in PROCESSES:
        cells: dict[str, list[tuple[float, ...]]] = {"store": [], "queue": []}
        for index in range(runs):
            # interleaved, each kind first in turn: both see the same machine load
            for kind in sorted(cells, reverse=index % 2 == 1):
                cells[kind].append(run(server, kind, processes, f"{kind}_{processes}_{index}"))
        store, queue = (
            [statistics.median(column) for column in zip(*cells[kind], strict=True)]
            for kind in ("store", "queue")
        )
        pairs = "".join(
            f"{s:>10.{digits}f} / {q:<5.{digits}f}"
            for s, q, digits in zip(store[1:], queue[1:], (2, 0, 0), strict=True)
        )
        print(
            f"{processes:<10}{store[0]:>10,.0f}/s{queue[0]:>11,.0f}/s"
            f"{store[0] / queue[0]:>6.2f}x{pairs}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per cell (median shown)")
    parser.add_argument("--no-grid", action="store_true", help="skip the 1M-combination grid")
    parser.add_argument("--grid-only", action="store_true", help="skip the worker rates")
    parser.add_argument(
        "--baseline", action="append", default=[], help="another checkout (grid figures)"
    )
    parser.add_argument(
        "--setting", action="append", default=[], help="a server setting NAME=VALUE"
    )
    parser.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        if args.role[0] == "small":
            role_small_sweeps(args.role[1])
            return
        role, target, go_file = args.role
        (role_store if role == "store" else role_queue)(target, go_file)
        return
    server = Server(
        "shared_preload_libraries=pg_stat_statements",
        "pg_stat_statements.track_utility=on",
        "pg_stat_statements.track_planning=on",
        *args.setting,
    )
    if not server.available:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    server.start()
    try:
        server.execute("CREATE EXTENSION pg_stat_statements")
        if not args.grid_only:
            rates(server, args.runs)
        if not args.no_grid:
            checkouts = [
                os.path.dirname(os.path.dirname(HERE)),
                *map(os.path.abspath, args.baseline),
            ]
            grid_figures(server, checkouts, args.runs)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
