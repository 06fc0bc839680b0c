"""The PostgreSQL store on a real server that goes through what servers go through: many
workers at once, terminated backends, restarts (clean and crash), fork(), unusual URLs and
tables of other schema versions."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from pg import Server

from execo_engine.sweep import ParamSweeper, sweep

pytestmark = pytest.mark.slow
WORKER = Path(__file__).with_name("sweeper_worker.py")


@pytest.fixture
def own_server():
    """A server of its own, that a test may restart."""
    server = Server()
    if not server.available:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server.start()
    yield server
    server.stop()


def start_workers(url: str, tmp_path: Path, processes: int, threads: int, seconds: float):
    reports = [tmp_path / f"worker-{k}.txt" for k in range(processes)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, str(report), "1", str(threads), str(seconds)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for report in reports
    ]
    return workers, reports


def acknowledged(reports: list[Path]) -> Counter[int]:
    """How many times each element was reported done (a worker reports only after done()
    returned)."""
    return Counter(
        int(x) for report in reports if report.exists() for x in report.read_text().split()
    )


def wait_until(condition: Callable[[], bool], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def finish(workers: list[subprocess.Popen[str]]) -> None:
    errors = [worker.communicate(timeout=900)[1] for worker in workers]
    assert [w.returncode for w in workers] == [0] * len(workers), errors


def check_every_element_done_once(url: str, n: int, reports: list[Path]) -> None:
    counts = acknowledged(reports)
    assert sorted(counts) == list(range(n))  # none lost
    assert set(counts.values()) == {1}  # none handed out twice
    fresh = ParamSweeper(url)
    assert [e["i"] for e in fresh.get_done()] == list(range(n))
    assert not fresh.get_inprogress() and not fresh.get_remaining()


def test_eight_processes_two_threads_each(postgresql, tmp_path):
    url, n = postgresql.url("eight-by-two"), 20_000
    ParamSweeper(url, sweep({"i": range(n)}), save_sweeps=True)
    workers, reports = start_workers(url, tmp_path, processes=8, threads=2, seconds=0)
    finish(workers)
    check_every_element_done_once(url, n, reports)


def test_kill_storm_terminate_and_restarts(own_server, tmp_path):
    """Backends terminated, a clean restart and a crash of the server while 4 processes x 2
    threads work: no worker dies, each combination is done once, no acknowledged done is
    lost (the crash recovers every committed claim and done)."""
    url, n = own_server.url("storm"), 2_000
    ParamSweeper(url, sweep({"i": range(n)}), save_sweeps=True)
    workers, reports = start_workers(url, tmp_path, processes=4, threads=2, seconds=0.002)
    progress = 0
    for fault in (
        own_server.terminate_backends,
        lambda: own_server.restart("fast"),
        own_server.terminate_backends,
        lambda: own_server.restart("immediate"),
        lambda: own_server.restart("immediate"),
    ):
        progress += n // 8
        wait_until(lambda p=progress: sum(acknowledged(reports).values()) >= p)
        before = acknowledged(reports)
        fault()
        done = {e["i"] for e in ParamSweeper(url, read_only=True).get_done()}
        assert set(before) <= done  # what was acknowledged before the fault survived it
    finish(workers)
    check_every_element_done_once(url, n, reports)


def test_fork_after_creating_an_instance(postgresql):
    """A child after fork() opens its own connection: parent and child work at the same time
    on one instance object, each sees its own answers, and the parent's connection survives
    the child's exit."""
    url, n = postgresql.url("fork"), 400
    sweeper = ParamSweeper(url, sweep({"i": range(n)}))
    first = sweeper.get_next()  # the parent's connection is open and in use
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: claims and finishes what it can, like the parent
        code = 1
        try:
            os.close(reading)
            mine = []
            while (element := sweeper.get_next()) is not None:
                sweeper.done(element)
                mine.append(element["i"])
            os.write(writing, json.dumps(mine).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writing)
    parent = []
    while (element := sweeper.get_next()) is not None:
        sweeper.done(element)
        parent.append(element["i"])
    with os.fdopen(reading) as pipe:
        child = json.loads(pipe.read() or "null")
    assert os.waitpid(pid, 0)[1] == 0 and child is not None
    sweeper.done(first)
    assert sorted([first["i"], *parent, *child]) == list(range(n))  # no element twice
    assert len(sweeper.get_done()) == n  # the parent's connection still works


def test_url_parameters_reach_the_driver_unchanged(postgresql):
    postgresql.execute("CREATE SCHEMA IF NOT EXISTS elsewhere")
    url = postgresql.url(
        "urls", options="-c%20search_path%3Delsewhere", application_name="my%20sweep"
    )
    sweeper = ParamSweeper(url, sweep({"i": range(3)}))
    sweeper.done(sweeper.get_next())
    assert postgresql.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'my sweep'"
    ) != [(0,)]
    assert postgresql.execute("SELECT count(*) FROM elsewhere.execo_elements") == [(3,)]
    literal = postgresql.url("urls", options="-c search_path=elsewhere")  # not encoded
    assert len(ParamSweeper(literal, sweep({"i": range(3)})).get_done()) == 1


@pytest.mark.parametrize(
    ("version", "message"),
    [(3, r"schema version 3, written by an older.*search_path"), (5, r"newer.*Upgrade")],
)
def test_other_schema_versions_are_refused(postgresql, version, message):
    schema = f"version{version}"
    postgresql.execute(f"CREATE SCHEMA {schema}")
    postgresql.execute(f"CREATE TABLE {schema}.execo_schema (version integer)")
    postgresql.execute(f"INSERT INTO {schema}.execo_schema VALUES ({version})")
    url = postgresql.url("old", options=f"-c%20search_path%3D{schema}")
    with pytest.raises(RuntimeError, match=message):
        ParamSweeper(url, [1, 2])


def test_lost_connection_is_reopened_with_a_log_line(postgresql, caplog):
    url = postgresql.url("reconnect")
    sweeper = ParamSweeper(url, sweep({"i": range(10)}))
    held = sweeper.get_next()
    postgresql.terminate_backends()
    with caplog.at_level(logging.WARNING, logger="execo_engine"):
        sweeper.done(held)  # the first call after the loss reconnects
        following = sweeper.get_next()
    assert "lost the connection to the database" in caplog.text
    assert "reconnected to the database" in caplog.text
    assert held in sweeper.get_done() and following in sweeper.get_inprogress()
