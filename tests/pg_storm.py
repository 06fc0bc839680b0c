"""A storm on a PostgreSQL sweep: worker processes do claim -> body -> done while a chaos
driver, at random instants, SIGKILLs workers (and starts new ones), pauses workers
(SIGSTOP, then SIGCONT seconds later), terminates their backends (``pg_terminate_backend``)
and restarts the server (``pg_ctl restart -m fast`` and ``-m immediate``, a crash).

Usage (PostgreSQL installed; as root, the server runs as ``postgres``)::

    python tests/pg_storm.py [--runs 10] [--busy 2] [--combinations 2000] [--seed S] [--keep DIR]

``--busy K`` runs K CPU-bound processes beside the storm (a loaded machine). Each run starts
a server of its own (``tests/pg.py``: ``fsync`` and ``synchronous_commit`` on) and prints one
line of JSON, then a table of every run.

One run: 6 workers (a killed one is replaced at once by a spare that already imported
everything) on a 2,000-combination grid with a 2 s lease, each body 2 to 20 ms; the chaos of
issue 26's storm (:data:`CHAOS`): 100 SIGKILLs, 7 pauses of 0.5 to 5 s (longer than the
lease), 17 ``pg_terminate_backend`` of every client backend, one ``pg_ctl restart -m fast``
and one ``-m immediate``, each at a random point of the grid's progress between 3% and 90%,
a random delay (up to 0.3 s) after it. On a busy 2-CPU machine a run takes one to two
minutes.

Every worker writes ``S <i> <time>`` to its own log before it starts the body of combination
``i`` and ``D <i> <time>`` once ``done()`` returned (acknowledged); times are
``time.monotonic()``, one clock for every process of the host. A run passes when:

- the grid completes (every worker ends, every combination is done in the database, none is
  in progress nor todo) before the deadline;
- no duplicate: no combination is started while a worker that started it before is still
  alive (a worker is alive until the driver sends it SIGKILL, paused or not);
- no acknowledged done lost: no combination is started after a worker acknowledged it done,
  none is acknowledged twice, and what was acknowledged before a restart is done after it;
- no worker fails (every exit is 0, or the driver's SIGKILL).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg import Server

#: Seconds of a worker's lease (short: a lease must never be what decides that a paused
#: worker, or one whose server was down for longer than that, is dead)
LEASE = 2.0
#: The chaos of one run (that of issue 26's storm), spread over the grid's progress
CHAOS = {"kill": 100, "stop": 7, "terminate": 17, "fast": 1, "immediate": 1}


@dataclasses.dataclass
class Worker:
    """One worker process of the storm."""

    number: int
    process: subprocess.Popen[bytes]
    log: Path
    started: bool = False  #: told to go (a spare waits, its imports done)
    finished: bool = False  #: its log read to its end after it ended
    killed_at: float | None = None  #: when the driver sent SIGKILL
    stopped_until: float | None = None  #: paused (SIGSTOP) until this time
    offset: int = 0  #: how far the driver read the log
    partial: bytes = b""

    def read(self) -> list[tuple[str, int, float]]:
        """The new complete lines of the log: (kind, combination, time)."""
        try:
            with open(self.log, "rb") as log:
                log.seek(self.offset)
                data = log.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data, self.partial = (self.partial + data).rpartition(b"\n")[::2]
        return [
            (kind, int(i), float(t))
            for kind, i, t in (line.split() for line in data.decode().splitlines())
        ]


# -- the worker ------------------------------------------------------------------------------


def _opened(url: str) -> Any:
    """The worker's sweeper. A worker started while the chaos driver restarts the server
    finds it refusing connections: a database never reached is a configuration error
    (``CannotConnectError``, at once), so the worker tries again for a while, as the wrapper
    of a job started by a scheduler would."""
    from execo_engine.errors import CannotConnectError
    from execo_engine.sweep import ParamSweeper

    deadline = time.monotonic() + 60
    while True:
        try:
            return ParamSweeper(url)
        except CannotConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # a retry policy: the server restarts within seconds


def work(url: str, log: str, seed: int) -> None:
    """Once told to go (a line on stdin: a spare waits with its imports done), claim, log
    ``S``, run the body (a few ms), done, log ``D``, until the grid is complete; when nothing
    is todo but something is held (by a paused worker, or a dead one not yet judged dead),
    look again."""

    if sys.stdin.readline() != "go\n":
        return
    rng = random.Random(seed)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sweeper = _opened(url)
    while True:
        combination = sweeper.get_next()
        if combination is None:
            if not sweeper.get_inprogress() and not sweeper.get_remaining():
                return
            time.sleep(0.05)  # others hold the rest: look again
            continue
        i = combination["i"]
        os.write(fd, f"S {i} {time.monotonic():.6f}\n".encode())
        time.sleep(rng.uniform(0.002, 0.02))  # the body
        sweeper.done(combination)
        os.write(fd, f"D {i} {time.monotonic():.6f}\n".encode())


# -- the chaos driver ------------------------------------------------------------------------

_SETUP = """
import sys
from execo_engine.sweep import ParamSweeper, sweep
ParamSweeper(sys.argv[1], sweep({"i": range(int(sys.argv[2]))}), save_sweeps=True)
"""


@dataclasses.dataclass
class Result:
    """What one run found."""

    seed: int
    combinations: int
    seconds: float = 0.0
    completed: bool = False
    duplicates: list[str] = dataclasses.field(default_factory=list)
    lost: list[str] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)
    stuck: list[str] = dataclasses.field(default_factory=list)
    chaos: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(CHAOS, 0))
    started: int = 0  #: bodies started (restarts of killed workers' combinations included)
    acknowledged: int = 0

    @property
    def passed(self) -> bool:
        return self.completed and not (self.duplicates or self.lost or self.failures)


class Storm:
    """One run: a server, a grid, ``workers`` worker processes kept running, a chaos plan
    spread over the grid's progress, ``busy`` CPU-bound processes beside it."""

    def __init__(
        self,
        directory: Path,
        combinations: int,
        workers: int,
        busy: int,
        seed: int,
        deadline: float,
    ) -> None:
        self.directory, self.n, self.count, self.busy = directory, combinations, workers, busy
        self.rng = random.Random(seed)
        self.result = Result(seed, combinations)
        self.deadline = deadline
        self.server = Server()
        self.workers: list[Worker] = []
        self.acked: dict[int, float] = {}
        self.starts: dict[int, list[tuple[float, int]]] = defaultdict(list)
        self.plan = sorted(
            (self.rng.uniform(0.03, 0.9), action)
            for action, times in CHAOS.items()
            for _ in range(times)
        )

    def spawn(self) -> None:
        """Start a spare worker (it waits to be told to go)."""
        number = len(self.workers)
        log = self.directory / f"worker-{number}.log"
        with open(self.directory / f"worker-{number}.out", "wb") as output:
            process = subprocess.Popen(
                [
                    *(sys.executable, os.path.abspath(__file__), "--worker", self.url),
                    *(str(log), str(self.rng.randrange(2**32))),
                ],
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.workers.append(Worker(number, process, log))

    def go(self) -> None:
        """Start a spare (and start another spare)."""
        spare = next(w for w in self.workers if not w.started)
        assert spare.process.stdin is not None
        spare.process.stdin.write(b"go\n")
        spare.process.stdin.close()
        spare.started = True
        self.spawn()

    def live(self) -> list[Worker]:
        return [
            w
            for w in self.workers
            if w.started and w.killed_at is None and w.process.poll() is None
        ]

    def collect(self) -> None:
        """Read the new log lines of the workers (those that ended: once more, to the end)."""
        for worker in self.workers:
            if worker.finished or not worker.started:
                continue
            worker.finished = worker.process.poll() is not None
            for kind, i, t in worker.read():
                if kind == "S":
                    self.starts[i].append((t, worker.number))
                elif i in self.acked:
                    self.result.lost.append(f"{i} acknowledged done twice")
                else:
                    self.acked[i] = t

    def act(self, action: str) -> None:
        """Carry out one fault (counted once it happened)."""
        candidates = [w for w in self.live() if w.stopped_until is None] or self.live()
        if action in ("kill", "stop") and not candidates:
            return
        self.result.chaos[action] += 1
        if action == "kill":
            victim = self.rng.choice(candidates)
            victim.killed_at = time.monotonic()
            victim.process.kill()
            victim.process.wait()
            victim.stopped_until = None
        elif action == "stop":
            victim = self.rng.choice(candidates)
            victim.process.send_signal(signal.SIGSTOP)
            victim.stopped_until = time.monotonic() + self.rng.uniform(0.5, 2.5 * LEASE)
        elif action == "terminate":
            self.server.terminate_backends()
        elif action in ("fast", "immediate"):
            self.collect()
            before = dict(self.acked)
            self.server.restart(action)
            done = {
                json.loads(text)["i"]
                for (text,) in self.server.execute(
                    "SELECT text FROM execo_elements WHERE state = 'done'"
                )
            }
            self.result.lost += [
                f"{i} acknowledged done before the {action} restart, not done after it"
                for i in sorted(set(before) - done)
            ]

    def run(self) -> Result:
        self.server.start()
        busy = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.busy)
        ]
        try:
            self.url = self.server.url("storm", lease=f"{LEASE:g}")
            subprocess.run(  # in a process of its own: the driver is no owner of the sweep
                [sys.executable, "-c", _SETUP, self.url, str(self.n)], check=True, timeout=300
            )
            start = time.monotonic()
            self.drive(start)
            self.result.seconds = time.monotonic() - start
            self.check()
        finally:
            for worker in self.workers:
                if worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait()
            for process in busy:
                process.kill()
                process.wait()
            if self.server.directory is not None:  # the server's log, beside the workers'
                server_log = Path(self.server.directory, "log")
                if server_log.exists():
                    (self.directory / "server.log").write_bytes(server_log.read_bytes())
            self.server.stop()
        return self.result

    def drive(self, start: float) -> None:
        """Keep ``count`` workers running and carry out the plan until every worker ended
        (or the deadline)."""
        for _ in range(self.count + 2):  # two spares
            self.spawn()
        for _ in range(self.count):
            self.go()
        due: list[tuple[float, str]] = []  # (when, action): progress point reached
        while True:
            now = time.monotonic()
            self.collect()
            for worker in self.workers:
                if worker.stopped_until is not None and now >= worker.stopped_until:
                    worker.process.send_signal(signal.SIGCONT)
                    worker.stopped_until = None
            while self.plan and len(self.acked) >= self.plan[0][0] * self.n:
                # each at a random instant shortly after its progress point
                due.append((now + self.rng.uniform(0, 0.3), self.plan.pop(0)[1]))
            due.sort()
            while due and due[0][0] <= time.monotonic():
                self.act(due.pop(0)[1])
            for worker in self.workers:
                code = worker.process.poll()
                if worker.started and worker.killed_at is None and code not in (None, 0):
                    error = (self.directory / f"worker-{worker.number}.out").read_text()
                    self.result.failures.append(
                        f"worker {worker.number} exited with {code}: {error.strip()[-2000:]}"
                    )
                    worker.killed_at = now  # counted; replaced below
            ended = [
                w
                for w in self.workers
                if w.started and w.killed_at is None and w.process.poll() == 0
            ]
            running = self.live()
            if not running and ended and not self.plan and not due:
                return
            if not ended:  # none saw the grid complete: keep the count running
                for _ in range(self.count - len(running)):
                    self.go()
            if now - start > self.deadline:
                self.result.stuck = self.holders()
                return
            time.sleep(0.01)  # the driver's tick: polls the workers, their logs, the plan

    def holders(self) -> list[str]:
        """The combinations not done, and who holds them (for a run that did not complete)."""
        rows = self.server.execute(
            "SELECT e.text, e.state, e.owner, e.ticket, o.owner, o.expires < now() "
            "FROM execo_elements e LEFT JOIN execo_owners o ON o.id = e.owner "
            "WHERE e.state <> 'done' ORDER BY e.position"
        )
        alive = {w.process.pid: w.number for w in self.live()}
        found = []
        for text, state, owner_id, ticket, owner, expired in rows:
            pid = json.loads(owner)[1] if owner else None
            worker = f"worker {alive[pid]} (alive)" if pid in alive else f"pid {pid}"
            found.append(
                f"{json.loads(text)['i']}: {state}, owner row {owner_id} "
                f"({'no row' if owner is None else worker}, expired {expired}), "
                f"ticket {ticket}"
            )
        return found

    def check(self) -> None:
        """The run's verdict: completion, duplicates, lost dones (see the module)."""
        self.collect()
        result = self.result
        ended = all(
            w.killed_at is not None or w.process.returncode == 0 for w in self.workers if w.started
        )
        rows = self.server.execute("SELECT state, count(*) FROM execo_elements GROUP BY state")
        states = dict(rows)
        result.completed = ended and not result.stuck and states == {"done": self.n}
        if not result.completed and not result.stuck:
            result.stuck = self.holders()
        killed = {w.number: w.killed_at for w in self.workers}
        for i, starts in sorted(self.starts.items()):
            starts.sort()
            for (t1, first), (t2, second) in itertools.pairwise(starts):
                death = killed[first]
                if death is None or t2 < death:
                    result.duplicates.append(
                        f"{i}: started by worker {first} at {t1:.3f} and by worker {second} at "
                        f"{t2:.3f} while the first was alive (killed at {death})"
                    )
            if i in self.acked and starts[-1][0] > self.acked[i]:
                result.lost.append(f"{i}: acknowledged done at {self.acked[i]:.3f}, started again")
        result.started = sum(len(s) for s in self.starts.values())
        result.acknowledged = len(self.acked)


def table(results: list[Result]) -> str:
    """The runs as a Markdown table."""
    lines = [
        "| run | seconds | completed | duplicates | acknowledged done lost | worker failures "
        "| SIGKILL | SIGSTOP | terminate | restart fast | restart immediate | bodies started |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for number, r in enumerate(results, 1):
        c = r.chaos
        lines.append(
            f"| {number} | {r.seconds:.0f} | {'yes' if r.completed else 'NO'} "
            f"| {len(r.duplicates)} | {len(r.lost)} | {len(r.failures)} | {c['kill']} "
            f"| {c['stop']} | {c['terminate']} | {c['fast']} | {c['immediate']} "
            f"| {r.started} |"
        )
    return "\n".join(lines)


def storm(
    combinations: int = 2000,
    workers: int = 6,
    busy: int = 0,
    seed: int | None = None,
    deadline: float = 300.0,
    keep: Path | None = None,
) -> Result:
    """One run (see the module); its :class:`Result`. With ``keep``, the logs of the workers
    and of the server are kept in that (new) directory."""
    seed = random.randrange(2**32) if seed is None else seed
    if keep is not None:
        keep.mkdir(parents=True)
        return Storm(keep, combinations, workers, busy, seed, deadline).run()
    with tempfile.TemporaryDirectory(prefix="execo-storm-") as directory:
        return Storm(Path(directory), combinations, workers, busy, seed, deadline).run()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1, help="runs in a row")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes beside it")
    parser.add_argument("--combinations", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--seed", type=int, help="of the first run (then seed+1, ...)")
    parser.add_argument("--keep", type=Path, help="keep each run's logs in KEEP/run-N")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        url, log, seed = args.worker
        work(url, log, int(seed))
        return
    if not Server().available:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    first = random.randrange(2**32) if args.seed is None else args.seed
    results = []
    for run in range(args.runs):
        keep = None if args.keep is None else args.keep / f"run-{run + 1}"
        result = storm(args.combinations, args.workers, args.busy, first + run, keep=keep)
        results.append(result)
        shown: dict[str, Any] = dataclasses.asdict(result)
        shown["passed"] = result.passed
        print(json.dumps(shown), flush=True)
    print(table(results))
    sys.exit(0 if all(r.passed for r in results) else 1)


if __name__ == "__main__":
    main()
