"""Directory leases and lock identity: what they cost, and how soon a dead host's claims return.

Usage (as root for the dead-host part, which needs ``unshare``)::

    python benchmarks/bench_liveness.py                 # this tree against `git archive main`
    python benchmarks/bench_liveness.py --before TREE   # against another source tree

- claim+done rate: 1 and 4 processes loop ``get_next()`` + ``done()`` for ``--seconds`` on a
  shared directory, with this tree's code and with the other tree's (``PYTHONPATH``), runs
  interleaved in one go; reported as the median of ``--rounds`` runs each, and their ratio;
- dead host: a worker in its own PID and UTS namespace (another host, as far as this process
  can tell) holds a claim; this process watches the directory; the worker is SIGKILLed; the
  time until its claim is back to todo here, ``--kills`` times, for each ``--lease``.

Timings depend on the machine and its load: compare the ratios of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_sweeper import wait_for_go

ROOT = Path(__file__).resolve().parent.parent
GRID = 200_000


def emit(**result: object) -> None:
    print(json.dumps(result), flush=True)


# -- roles (run in child processes) -------------------------------------------------------------


def role_rate(directory: str, seconds: str, go_file: str) -> None:
    from execo_engine.sweep import ParamSweeper, sweep

    sweeper = ParamSweeper(directory, sweep({"i": range(GRID)}))
    emit(ready=True)
    wait_for_go(go_file)
    count, end = 0, time.monotonic() + float(seconds)
    while time.monotonic() < end:
        sweeper.done(sweeper.get_next())
        count += 1
    emit(count=count)


def role_holder(directory: str, lease: str) -> None:
    from execo_engine.sweep import ParamSweeper

    sweeper = ParamSweeper(directory, lease=float(lease))
    emit(held=sweeper.get_next())
    sys.stdin.read()


# -- orchestration ------------------------------------------------------------------------------


def spawn(tree: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen(
        [*prefix, sys.executable, __file__, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def read(process: subprocess.Popen[str]) -> dict[str, object]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"worker exited with {process.wait()}")
    return json.loads(line)  # type: ignore[no-any-return]


def rate(tree: Path, processes: int, seconds: float, where: str | None) -> float:
    """claim+done per second of ``processes`` workers running ``tree``'s code, in a
    temporary directory in ``where``."""
    with tempfile.TemporaryDirectory(dir=where) as workdir:
        directory, go = os.path.join(workdir, "sweep"), os.path.join(workdir, "go")
        workers = [spawn(tree, "rate", directory, str(seconds), go) for _ in range(processes)]
        for worker in workers:
            read(worker)
        Path(go).touch()
        counts = [int(read(worker)["count"]) for worker in workers]  # type: ignore[call-overload]
        for worker in workers:
            worker.wait()
    return sum(counts) / seconds


def dead_host_delay(lease: float) -> float:
    """Seconds from SIGKILL of a worker in another namespace to its claim being todo here."""
    from execo_engine.sweep import ParamSweeper, sweep

    with tempfile.TemporaryDirectory() as workdir:
        directory = os.path.join(workdir, "sweep")
        watcher = ParamSweeper(directory, sweep({"i": range(10)}), save_sweeps=True, lease=lease)
        unshare = ("unshare", "--pid", "--uts", "--fork", "--mount-proc")
        holder = spawn(ROOT, "holder", directory, str(lease), prefix=unshare)
        read(holder)
        children = Path(f"/proc/{holder.pid}/task/{holder.pid}/children").read_text().split()
        watch_until = time.monotonic() + lease  # watch it alive for a while first
        while time.monotonic() < watch_until:
            assert watcher.get_inprogress(), "a live worker's claim was taken"
            time.sleep(0.01)
        os.kill(int(children[0]), signal.SIGKILL)
        killed_at = time.monotonic()
        while watcher.get_inprogress():
            time.sleep(0.01)
        delay = time.monotonic() - killed_at
        holder.wait()
    return delay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="source tree to compare with")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease", type=float, action="append")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--where", help="where to make the rate directories (a tmpfs: no disk)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as exported:
        before = args.before
        if before is None:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", "main", "execo_engine"],
                capture_output=True,
                check=True,
            )
            subprocess.run(["tar", "-x", "-C", exported], input=archive.stdout, check=True)
            before = Path(exported)
        for processes in (1, 4):
            runs: dict[str, list[float]] = {"before": [], "after": []}
            for _ in range(args.rounds):
                runs["before"].append(rate(before, processes, args.seconds, args.where))
                runs["after"].append(rate(ROOT, processes, args.seconds, args.where))
            medians = {name: statistics.median(values) for name, values in runs.items()}
            print(
                f"claim+done/s, {processes} process(es): before {medians['before']:.0f}, "
                f"after {medians['after']:.0f}, ratio {medians['after'] / medians['before']:.3f}"
                f"  (runs: before {[round(v) for v in runs['before']]}, "
                f"after {[round(v) for v in runs['after']]})"
            )

    for lease in args.lease or [2.0, 6.0]:
        delays = [dead_host_delay(lease) for _ in range(args.kills)]
        print(
            f"dead host's claim back to todo, lease {lease:g} s: min {min(delays):.2f} s, "
            f"median {statistics.median(delays):.2f} s, max {max(delays):.2f} s "
            f"(max = {max(delays) / lease:.2f} x lease; bound lease + lease/3 = "
            f"{lease * 4 / 3:.2f} s)"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("rate", "holder"):
        role = role_rate if sys.argv[1] == "rate" else role_holder
        role(*sys.argv[2:])
    else:
        main()
