"""The PostgreSQL store on a real server that goes through what servers go through: many
workers at once, terminated backends, restarts (clean and crash), fork(), unusual URLs and
tables of other schema versions."""

from __future__ import annotations

import contextlib
import json
import logging
import operator
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import interrupted_worker
import pytest
from namespaces import UNSHARE, why_no_namespaces
from pg import Server

from execo_engine.errors import ConnectionLostError
from execo_engine.store.postgresql import connection
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


# A process that claims one combination when told to (a line on stdin), prints it, and holds
# it until killed.
_CLAIMER = """
import sys
from execo_engine.sweep import ParamSweeper
sweeper = ParamSweeper(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
sweeper.get_claims()  # a statement: the session applies a configuration reloaded since it began
print(sweeper.get_next()["i"], flush=True)
sys.stdin.read()
"""


def _claimer(url: str, *prefix: str) -> subprocess.Popen[bytes]:
    claimer = subprocess.Popen(
        [*prefix, sys.executable, "-c", _CLAIMER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert claimer.stdout is not None and claimer.stdout.readline() == b"ready\n"
    return claimer


def _claim(claimer: subprocess.Popen[bytes]) -> None:
    assert claimer.stdin is not None
    claimer.stdin.write(b"go\n")
    claimer.stdin.flush()


def _local(url: str) -> str:
    """``url`` for a session whose commits hold_commits() does not hold."""
    return url + "&options=-c%20synchronous_commit%3Dlocal"


def _backends(server: Server, condition: str) -> int:
    rows = server.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {condition}")
    return int(rows[0][0])


def test_a_claim_committed_after_its_killed_owner_was_found_dead_comes_back(own_server, poll):
    """A process is killed while its claim is in flight; another instance finds it dead and
    gives back what it held; then the claim commits (the server runs what the dead client
    sent). That claim must come back too, not stay held for ever by an owner nobody knows
    any more (the storm of issue 26: the grid never completed)."""
    url = own_server.url("in-flight")
    ParamSweeper(url, sweep({"i": range(3)}), save_sweeps=True)
    claimer = _claimer(url)
    other = ParamSweeper(_local(url))
    own_server.hold_commits()
    try:
        _claim(claimer)  # its commit is held: in the WAL, seen by nobody, its locks held
        poll(lambda: _backends(own_server, "wait_event = 'SyncRep'") == 1, "the claim's commit")
        claimer.kill()
        claimer.wait(timeout=60)
        looking = threading.Thread(target=other.reclaim)  # finds the claimer dead
        looking.start()
        poll(
            lambda: not looking.is_alive() or _backends(own_server, "wait_event_type = 'Lock'"),
            "the look for dead owners to end or to wait for the claim",
        )
    finally:
        own_server.release_commits()
    looking.join(timeout=120)
    poll(lambda: _backends(own_server, "wait_event = 'SyncRep'") == 0, "the claim to commit")
    other.reclaim()
    assert other.get_inprogress() == []
    assert other.get_next() == {"i": 0}  # what the killed process claimed is todo again


def test_a_claim_whose_answer_was_lost_for_good_is_given_back(own_server, monkeypatch, caplog):
    """The server crashes while a claim commits and stays down for longer than the store
    retries: get_next() fails, though the claim was committed. The instance's next operation
    finds that claim, which its caller never got, and gives it back: a live process never
    holds a claim it does not know about."""
    monkeypatch.setattr(connection, "RECONNECT_SECONDS", 1.0)
    url = own_server.url("lost-answer")
    sweeper = ParamSweeper(url, sweep({"i": range(3)}), save_sweeps=True)
    own_server.hold_commits()
    assert sweeper.get_claims() == []  # a statement: its session now holds its commits too
    failed: list[BaseException] = []

    def claim() -> None:
        try:
            failed.append(AssertionError(f"get_next() returned {sweeper.get_next()!r}"))
        except BaseException as error:  # ConnectionLostError expected: any other is shown
            failed.append(error)

    claiming = threading.Thread(target=claim)
    claiming.start()
    try:
        wait_until(lambda: _backends(own_server, "wait_event = 'SyncRep'") == 1, 120)
    finally:
        own_server.release_commits(reload=False)  # once the server starts again
    own_server.shut_down("immediate")  # the claim's commit record is in the WAL
    claiming.join(timeout=120)
    assert not claiming.is_alive(), "get_next() still running 120 s after the server stopped"
    [error] = failed
    assert isinstance(error, ConnectionLostError), repr(error)  # never reached it again in time
    own_server.start_again()
    view = ParamSweeper(_local(url), read_only=True)
    [(held, owner, _, _)] = view.get_claims()  # committed: recovered from the WAL
    assert (held, owner.pid) == ({"i": 0}, os.getpid())
    with caplog.at_level(logging.WARNING, logger="execo_engine"):
        assert sweeper.get_claims() == []  # the next operation gave it back
    assert "whose answer was lost" in caplog.text
    assert sweeper.get_next() == {"i": 0}
    assert [claim[0] for claim in view.get_claims()] == [{"i": 0}]


def _lease_of(server: Server, pid: int) -> tuple[float, float]:
    """(expiry, now) of the lease of the owner of ``pid``, as seconds by the database's clock."""
    [(expires, now)] = server.execute(
        "SELECT extract(epoch FROM expires)::float8, extract(epoch FROM now())::float8 "
        "FROM execo_owners WHERE (owner::jsonb ->> 1)::int = %s",
        pid,
    )
    return expires, now


def test_a_paused_process_of_this_host_keeps_its_claims_past_its_lease(own_server, poll):
    """A process of this host is judged by its pid: paused (SIGSTOP) for longer than its
    lease, it keeps its claim (issue 26: a combination was run twice at once)."""
    url = own_server.url("paused", lease="1")
    ParamSweeper(url, sweep({"i": range(3)}), save_sweeps=True)
    claimer = _claimer(url)
    try:
        _claim(claimer)
        assert claimer.stdout.readline() == b"0\n"
        claimer.send_signal(signal.SIGSTOP)
        poll(lambda: operator.lt(*_lease_of(own_server, claimer.pid)), "its lease to expire")
        other = ParamSweeper(url)
        assert other.reclaim() == []
        assert other.get_next() == {"i": 1}
        claims = {claim[0]["i"]: claim[1].pid for claim in other.get_claims()}
        assert claims == {0: claimer.pid, 1: os.getpid()}
        assert not any(claim[3] for claim in other.get_claims())  # nobody shown dead
    finally:
        claimer.send_signal(signal.SIGCONT)
        claimer.kill()
        claimer.wait(timeout=60)


def _child(process: subprocess.Popen[bytes]) -> int:
    """The pid of the one child of ``process`` (the command ``unshare --fork`` runs)."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    wait_until(lambda: bool(children.read_text().split()), 120)
    return int(children.read_text().split()[0])


def test_a_server_down_for_longer_than_a_lease_expires_no_lease(own_server, poll):
    """A process of another PID namespace (as another host: judged by its lease) cannot
    renew while the server is down. An instance that saw its heartbeat before does not count
    the time it could not see the server either: once the server is back, the process gets a
    whole lease to renew before its claims are taken for dead (issue 26: a combination was
    run twice at once). The process is paused until that instance looked (else it might
    renew first)."""
    reason = why_no_namespaces()
    if reason:
        pytest.skip(reason)
    url = own_server.url("restart-lease", lease="4")
    other = ParamSweeper(url, sweep({"i": range(3)}), save_sweeps=True)
    claimer = _claimer(url, *UNSHARE)
    paused = _child(claimer)
    try:
        _claim(claimer)
        assert claimer.stdout.readline() == b"0\n"
        assert other.reclaim() == []  # it sees the claimer's heartbeat
        expires, _ = _lease_of(own_server, 1)  # pid 1 in its namespace
        os.kill(paused, signal.SIGSTOP)
        own_server.shut_down("immediate")
        poll(lambda: time.time() > expires + 1, "its lease to run out while the server is down")
        own_server.start_again()
        assert other.get_next() == {"i": 1}  # and a look for dead owners: none
        assert other.reclaim() == []
        assert {claim[0]["i"] for claim in other.get_claims()} == {0, 1}
        os.kill(paused, signal.SIGCONT)
        poll(lambda: operator.gt(*_lease_of(own_server, 1)), "its renewal, the server back")
        assert other.reclaim() == []
        assert {claim[0]["i"] for claim in other.get_claims()} == {0, 1}
    finally:
        os.kill(paused, signal.SIGCONT)
        claimer.kill()
        claimer.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.kill(paused, signal.SIGKILL)


def test_an_exception_from_a_signal_handler_at_any_instant_leaves_no_claim_unknown(
    own_server,
):
    """Wherever the exception lands (waiting for a claim's answer, between the answer and
    what the instance records of it, in a reconnection), the instance never holds a claim it
    does not know about, hands out nothing twice and loses nothing acknowledged (see
    tests/interrupted_worker.py)."""
    interrupted_worker.check(own_server.url("interrupted"), 200, 600)


class _Interrupted(Exception):
    pass


def _raise_interrupted(signum, frame):
    raise _Interrupted()


def test_a_claim_interrupted_in_flight_never_commits_behind_the_instance_s_back(own_server, poll):
    """get_next() is interrupted (an exception from a signal handler) while its claim waits
    on a lock in the server: the connection is dropped, but the server session still runs
    the claim, and would commit it once the lock goes. The instance's next operation ends
    that session before it finds out what the claim did: the claim never commits behind its
    back."""
    url = own_server.url("in-flight-interrupted")
    sweeper = ParamSweeper(url, sweep({"i": range(3)}), save_sweeps=True)
    [(owner_id,)] = own_server.execute(
        "SELECT id FROM execo_owners WHERE (owner::jsonb ->> 1)::int = %s", os.getpid()
    )
    waiting = "wait_event_type = 'Lock' AND state = 'active'"
    main_thread = threading.get_ident()  # the test's: where Python runs signal handlers
    claimer_pid: list[int] = []

    def interrupt_once_blocked() -> None:
        wait_until(lambda: _backends(own_server, waiting) == 1, 120)
        [(pid,)] = own_server.execute(f"SELECT pid FROM pg_stat_activity WHERE {waiting}")
        claimer_pid.append(pid)
        signal.pthread_kill(main_thread, signal.SIGALRM)

    import psycopg

    with psycopg.connect(own_server.conninfo, options="-c synchronous_commit=local") as blocker:
        blocker.execute("SELECT FROM execo_owners WHERE id = %s FOR UPDATE", (owner_id,))
        previous = signal.signal(signal.SIGALRM, _raise_interrupted)
        watcher = threading.Thread(target=interrupt_once_blocked)
        try:
            watcher.start()
            with pytest.raises(_Interrupted):
                sweeper.get_next()  # its claim waits for the owner row's lock
        finally:
            signal.signal(signal.SIGALRM, previous)
            watcher.join(timeout=120)
        assert sweeper.get_claims() == []  # its next operation
        blocker.rollback()  # the lock goes: a claim still in flight would commit now
    poll(lambda: _backends(own_server, f"pid = {claimer_pid[0]}") == 0, "the session's end")
    assert ParamSweeper(url, read_only=True).get_claims() == []
    assert sweeper.get_next() == {"i": 0}
