"""The PostgreSQL store on a real server: processes, threads, a killed worker, pytest -n 2.

The ParamSweeper behaviour tests of test_sweeper.py also run on it (the ``location`` fixture).
"""

import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from pg import Server

from execo_engine.store import lease
from execo_engine.store.locations import child_locations, shown
from execo_engine.store.postgresql import store as pgstore
from execo_engine.sweep import HashableDict, ParamSweeper, sweep

pytestmark = pytest.mark.slow
pytest_plugins = ["pytester"]
WORKER = Path(__file__).with_name("sweeper_worker.py")


def start_worker(url, report, seconds=0.0, host=None):
    """A worker process; with ``host``, in a UTS namespace of its own with that host name
    (another host, as far as owners go)."""
    command = [sys.executable, str(WORKER), url, str(report), "1", "1", str(seconds)]
    if host is not None:
        command = ["unshare", "--uts", "--fork", "sh", "-c", f'hostname {host} && exec "$@"', "-"]
        command += [sys.executable, str(WORKER), url, str(report), "1", "1", str(seconds)]
    return subprocess.Popen(command, start_new_session=True)  # a group: unshare and its child


def reported(reports):
    return [int(x) for report in reports if report.exists() for x in report.read_text().split()]


def kill_while_holding(url, report, host=None):
    """Start a worker with long combinations, SIGKILL it while it holds one; returns what
    is in progress then (as a read-only view sees it)."""
    victim = start_worker(url, report, seconds=0.5, host=host)
    view = ParamSweeper(url, read_only=True)
    deadline = time.monotonic() + 120
    while not (reported([report]) and view.get_inprogress()):
        assert victim.poll() is None, "the worker ended early"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(victim.pid, signal.SIGKILL)  # in the middle of a combination it holds
    victim.wait()
    return view.get_inprogress()


def finish_with_survivor(url, n, tmp_path):
    survivor = start_worker(url, tmp_path / "survivor.txt", seconds=0.001)
    assert survivor.wait(timeout=300) == 0
    fresh = ParamSweeper(url)
    assert [e["i"] for e in fresh.get_done()] == list(range(n))
    assert fresh.get_inprogress() == []
    counts = Counter(reported([tmp_path / "victim.txt", tmp_path / "survivor.txt"]))
    assert set(counts.values()) == {1} and len(counts) == n


def test_claims_of_a_killed_worker_of_another_host_come_back_after_the_lease(postgresql, tmp_path):
    if os.geteuid() != 0 or subprocess.run(["unshare", "--uts", "true"]).returncode:
        pytest.skip("needs unshare --uts (root) to run a worker under another host name")
    url, n = postgresql.url("killed-elsewhere", lease="6"), 60
    ParamSweeper(url, sweep({"i": range(n)}), save_sweeps=True)
    held = kill_while_holding(url, tmp_path / "victim.txt", host="elsewhere")
    killed_at = time.monotonic()
    assert len(held) == 1  # its lease runs: the claim stays
    assert ParamSweeper(url).get_claims()[0][1][0] == "elsewhere"
    finish_with_survivor(url, n, tmp_path)
    # it waited for the lease: renewed at most lease/3 (+ the keeper's half second) before
    # the kill, it expired at least lease - lease/3 - 0.5 = 3.5 s after it
    assert time.monotonic() - killed_at >= 3.0
    assert next(iter(held)) in ParamSweeper(url).get_done()


def test_claims_of_a_killed_worker_of_this_host_come_back_at_once(postgresql, tmp_path):
    url, n = postgresql.url("killed-here", lease="3600"), 60  # the lease would never do it
    ParamSweeper(url, sweep({"i": range(n)}), save_sweeps=True)
    held = kill_while_holding(url, tmp_path / "victim.txt")
    assert len(held) == 1
    finish_with_survivor(url, n, tmp_path)
    assert next(iter(held)) in ParamSweeper(url).get_done()


AWKWARD_TEXT = ["a\\b", "\\", 'q"\\"', "t\tn\nr\r", "é\u2028", "\\N", ""]


@pytest.mark.parametrize("encoding", ["UTF8", "LATIN1"])
def test_awkward_texts_go_through_copy_and_claims(postgresql, encoding):
    """A grid whose texts hold what COPY escapes (backslashes, \\N) and JSON escapes: loaded
    as a new sweep, reloaded changed (the temporary table), claimed and done, whatever the
    client encoding."""
    url = postgresql.url(f"awkward-{encoding}", client_encoding=encoding)
    grid = sweep({"s": AWKWARD_TEXT, "i": [1, 2]})
    first = ParamSweeper(url, grid, save_sweeps=True)
    assert first.get_next_batch(3) == grid[:3]
    first.done_batch(grid[:2])
    changed = [HashableDict(s=s, i=3) for s in AWKWARD_TEXT] + grid[::-1]
    second = ParamSweeper(url, changed)
    assert ParamSweeper(url).get_sweeps() == grid  # saved, in order
    claimed = second.get_next_batch(len(changed))
    assert claimed == [e for e in changed if e not in grid[:3]]
    second.done_batch(claimed)
    first.done_batch([grid[2]])
    assert ParamSweeper(url, changed).get_done() == changed


def test_a_load_that_is_much_of_the_table_analyzes_it_at_once(postgresql):
    """Statistics taken before a sweep was loaded say it has no rows, and plans made from them
    scan all of it: a load of more than a tenth of the table analyzes it right away, a small
    load into a large table leaves that to the autovacuum daemon."""
    postgresql.execute("CREATE SCHEMA analyzed")
    url = postgresql.url("big", options="-c%20search_path%3Danalyzed")

    def analyses() -> int:
        rows = postgresql.execute(
            "SELECT analyze_count FROM pg_stat_user_tables "
            "WHERE schemaname = 'analyzed' AND relname = 'execo_elements'"
        )
        return int(rows[0][0])

    ParamSweeper(url, sweep({"i": range(20_000)}))
    assert analyses() == 1
    small = ParamSweeper(url.replace("sweep=big", "sweep=small"), sweep({"i": range(100)}))
    assert analyses() == 1
    ParamSweeper(url.replace("sweep=big", "sweep=more"), sweep({"i": range(5_000)}))
    assert analyses() == 2
    assert small.get_next() == {"i": 0}  # the small sweep is claimed all the same


def test_the_libpq_codes_of_the_hot_path_are_libpq_s():
    """The claim and done statements run on libpq directly, told apart by libpq's codes."""
    from psycopg import pq

    from execo_engine.store.postgresql import connection

    assert connection._SUCCESS == (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
    assert connection._CONNECTION_BAD == pq.ConnStatus.BAD


GRID_TEST = """
import os, pytest

@pytest.mark.execo_sweep({{"size": [1, 2, 3, 4], "algo": ["a", "b"]}})
def test_grid(size, algo, execo_record):
    with open({runs!r}, "a") as f:
        f.write(f"{{size}}-{{algo}}\\n")
    execo_record(latency=size / 10)
    assert not (algo == "b" and os.path.exists({fail!r}))
"""


def test_pytest_xdist_twice_on_postgresql(pytester, postgresql):
    runs, fail = pytester.path / "runs.txt", pytester.path / "fail"
    pytester.makepyfile(test_pg=GRID_TEST.format(runs=str(runs), fail=str(fail)))
    url = postgresql.url("pytest-runs")
    fail.write_text("")
    first = pytester.runpytest_subprocess(f"--execo-sweep-dir={url}", "-n", "2")
    first.assert_outcomes(passed=4, failed=4)
    assert "postgres@127.0.0.1" in first.stdout.str()
    fail.unlink()
    second = pytester.runpytest_subprocess(f"--execo-sweep-dir={url}", "-n", "2")
    second.assert_outcomes(passed=4)
    third = pytester.runpytest_subprocess(f"--execo-sweep-dir={url}", "-n", "2")
    assert third.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # the grid is complete
    counts = Counter(runs.read_text().split())
    assert counts == Counter(
        {f"{s}-a": 1 for s in range(1, 5)} | {f"{s}-b": 2 for s in range(1, 5)}
    )
    [location] = child_locations(url).values()
    swept = ParamSweeper(location)
    assert len(swept.get_done()) == 8 and swept.get_inprogress() == []
    assert len(swept.get_results()) == 12


def test_bad_urls_are_clear_errors(postgresql):
    with pytest.raises(ValueError, match=r"needs \?sweep=NAME"):
        ParamSweeper(postgresql.url("x").replace("sweep=x", ""), [1])
    with pytest.raises(ValueError, match="lease must be") as error:
        ParamSweeper(postgresql.url("x", lease="soon").replace("postgres@", "postgres:pw@"), [1])
    assert ":pw@" not in str(error.value)
    assert ":secret@" not in shown(postgresql.url("x").replace("postgres@", "postgres:secret@"))


def test_missing_driver_says_how_to_install_it(tmp_path):
    (tmp_path / "psycopg.py").write_text("raise ImportError('not installed here')\n")
    script = (
        "from execo_engine.sweep import ParamSweeper\n"
        "ParamSweeper('postgresql://u@127.0.0.1:1/db?sweep=s', [1])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode != 0
    assert (
        "a postgresql:// sweep needs psycopg 3: pip install 'execo_engine[postgresql]'"
        in result.stderr
    )


def test_status_and_results_of_a_postgresql_sweep(postgresql):
    url = postgresql.url("cli/grid")
    sweeper = ParamSweeper(url, sweep({"size": [1, 2]}), save_sweeps=True)
    sweeper.record_result(sweeper.get_next(), {"latency": 0.5}, "passed", 0.1)
    sweeper.done(HashableDict(size=1))
    for location in (url, postgresql.url("cli")):
        result = subprocess.run(
            [sys.executable, "-m", "execo_engine", "status", location],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "cli/grid" in result.stdout and "2 total, 1 done" in result.stdout
    exported = subprocess.run(
        [sys.executable, "-m", "execo_engine", "results", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    header = "size,latency,outcome,attempts,duration,host,time,sweep,run,commit,dirty"
    assert exported.splitlines()[0] == header
    assert exported.splitlines()[1].startswith("1,0.5,passed,0,0.1,")


def test_a_claim_and_a_done_are_one_statement_each(monkeypatch):
    """The hot path costs what a plain queue costs: one statement to claim, one to finish
    (counted by the server; looks for dead owners, periodic by default, are off here).
    Resolving the outcome of lost operations costs nothing while none is lost."""
    server = Server("shared_preload_libraries=pg_stat_statements")
    if not server.available:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    for module in (lease, pgstore):
        monkeypatch.setattr(module, "DEAD_OWNER_CHECK_INTERVAL", math.inf)
    server.start()
    try:
        server.execute("CREATE EXTENSION pg_stat_statements")
        sweeper = ParamSweeper(server.url("statements"), sweep({"i": range(120)}))
        sweeper.done(sweeper.get_next())  # statements prepared, lease renewed
        server.execute("SELECT pg_stat_statements_reset()")
        for _ in range(100):
            sweeper.done(sweeper.get_next())
        [(calls,)] = server.execute(
            "SELECT sum(calls) FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_stat%'"
        )
        assert calls == 200
    finally:
        server.stop()
