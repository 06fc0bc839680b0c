"""Hosts and containers simulated on one machine: workers in their own PID and UTS namespaces
share one directory. Their liveness comes from their heartbeats (leases), never from a pid that
means another process here."""

import signal
import socket
import time

import pytest
from namespaces import Worker, check_grid, wait_for, why_no_namespaces

from execo_engine.store.lease import MIN_LEASE
from execo_engine.sweep import ParamSweeper, sweep

pytestmark = pytest.mark.slow
LEASE = 2.0


@pytest.fixture(autouse=True)
def namespaces():
    reason = why_no_namespaces()
    if reason is not None:
        pytest.skip(reason)


def make_grid(tmp_path, n):
    directory = tmp_path / "sweep"
    ParamSweeper(directory, sweep({"i": range(n)}), save_sweeps=True)
    return directory


def test_killed_worker_claims_come_back_after_its_lease(tmp_path):
    """A worker SIGKILLed in its namespace: the others, in theirs, take its claim back once its
    heartbeat has stopped for the lease, and the grid completes, each combination done once."""
    n = 150
    directory = make_grid(tmp_path, n)
    victim = Worker(directory, tmp_path / "victim.txt", LEASE, "victim", work=3600)
    held = wait_for(victim.holding, what="the victim to hold an element")
    others = [
        Worker(directory, tmp_path / f"w{k}.txt", LEASE, f"host{k}", work=0.02) for k in range(2)
    ]
    for worker in others:  # both look at the directory (and the victim's heartbeat) by now
        wait_for(lambda w=worker: w.events("begin"), what="a worker to start")
    killed_at = victim.kill()
    assert [worker.wait() for worker in others] == [0, 0]

    check_grid(directory, [victim, *others], n, redone=held)
    [back_at] = [t for w in others for i, t in w.events("begin") if i in held]
    print(f"claim of the killed worker handed out again {back_at - killed_at:.2f} s after the kill")
    assert back_at - killed_at > 0
    assert "no heartbeat from host victim" in others[0].log() + others[1].log()
    assert list((directory / "owners").iterdir()) == []  # every heartbeat file cleaned up


def test_live_claims_are_never_taken_same_host_name_long_combination(tmp_path):
    """Workers in other PID namespaces with this machine's very host name (every one of them
    pid 1 in its namespace), one combination running three leases long: no claim taken."""
    n = 80
    directory = make_grid(tmp_path, n)
    host = socket.gethostname()
    long = [(0, 3 * LEASE)]
    workers = [Worker(directory, tmp_path / "root.txt", LEASE, None, 0.02, long)]
    workers += [
        Worker(directory, tmp_path / f"ns{k}.txt", LEASE, host, 0.02, long) for k in range(2)
    ]
    assert [worker.wait() for worker in workers] == [0, 0, 0]

    check_grid(directory, workers, n)
    [(_, began)] = [e for w in workers for e in w.events("begin") if e[0] == 0]
    [(_, ended)] = [e for w in workers for e in w.events("done") if e[0] == 0]
    assert ended - began >= 3 * LEASE  # it did run longer than the lease
    assert all("reclaimed" not in worker.log() for worker in workers)


def test_paused_worker_loses_its_claim_and_its_done_counts(tmp_path):
    """A worker SIGSTOPped past its lease: its claim goes to another worker; SIGCONTed, it logs
    that it lost it, its done() still counts, and the grid completes."""
    n = 60
    directory = make_grid(tmp_path, n)
    paused = Worker(directory, tmp_path / "paused.txt", LEASE, "paused", work=1.0)
    held = wait_for(paused.holding, what="the worker to hold an element")
    paused.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    others = [
        Worker(directory, tmp_path / f"w{k}.txt", LEASE, f"host{k}", work=0.02) for k in range(2)
    ]
    wait_for(
        lambda: [i for w in others for i, _ in w.events("begin") if i in held],
        what="the paused worker's claim to be handed out again",
    )
    assert time.monotonic() - stopped_at >= LEASE
    paused.signal(signal.SIGCONT)
    assert [worker.wait() for worker in [paused, *others]] == [0, 0, 0]

    acknowledged = check_grid(directory, [paused, *others], n, redone=held)
    assert all(acknowledged[i] >= 1 for i in held)
    assert [i for i, _ in paused.events("done")][:1] == held  # its done() returned
    log = paused.log()
    assert "did not heartbeat for" in log and "lost the claim on 1 combination(s)" in log


def test_shortest_lease_keeps_healthy_workers_claims(tmp_path):
    """With the shortest lease allowed, healthy workers in other namespaces, some running
    combinations longer than the lease, never lose a claim."""
    n = 60
    directory = make_grid(tmp_path, n)
    long = [(i, 2.5 * MIN_LEASE) for i in (0, 1, 2)]
    workers = [
        Worker(directory, tmp_path / f"ns{k}.txt", MIN_LEASE, f"h{k}", 0.05, long) for k in range(3)
    ]
    assert [worker.wait() for worker in workers] == [0, 0, 0]
    check_grid(directory, workers, n)
    assert all("reclaimed" not in worker.log() for worker in workers)
