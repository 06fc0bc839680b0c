"""Hosts simulated on one machine: liveness_worker.py processes, each in its own PID and UTS
namespace (``unshare --pid --uts --fork --mount-proc``, as root), or a plain subprocess."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

WORKER = Path(__file__).with_name("liveness_worker.py")
UNSHARE = ["unshare", "--pid", "--uts", "--fork", "--mount-proc"]


@functools.cache
def why_no_namespaces() -> str | None:
    """None when PID and UTS namespaces can be made here, else why not."""
    try:
        result = subprocess.run(
            [*UNSHARE, "hostname", "probe"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unshare is not available: {error}"
    if result.returncode != 0:
        return f"unshare --pid --uts is refused here (needs root): {result.stderr.strip()}"
    return None


def wait_for(condition, timeout=120.0, what="the condition"):
    """Poll ``condition`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
    return value


class Worker:
    """A liveness_worker.py process on ``directory``, reporting to ``report``; in its own PID
    and UTS namespace named ``hostname`` unless ``hostname`` is None."""

    def __init__(self, directory, report, lease, hostname=None, work=0.0, long=()):
        self.report = Path(report)
        self.output = self.report.with_suffix(".out")
        command = [sys.executable, str(WORKER), str(directory), str(report), "--lease", str(lease)]
        command += ["--work", str(work)] + [f"--long={i}:{s}" for i, s in long]
        if hostname is not None:
            command = [*UNSHARE, *command, "--hostname", hostname]
        self.in_namespace = hostname is not None
        with open(self.output, "wb") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)

    @functools.cached_property
    def pid(self):
        """The worker's pid as seen from here (the child of unshare, pid 1 of its namespace)."""
        if not self.in_namespace:
            return self.process.pid
        children = f"/proc/{self.process.pid}/task/{self.process.pid}/children"

        def child():
            try:
                return Path(children).read_text().split()
            except FileNotFoundError:
                return None

        [pid] = wait_for(child, what="the worker process in its namespace")
        return int(pid)

    def signal(self, signum):
        os.kill(self.pid, signum)

    def kill(self):
        """SIGKILL the worker; the monotonic time it was killed at."""
        self.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        self.process.wait(timeout=60)
        return killed_at

    def wait(self, timeout=300):
        return self.process.wait(timeout=timeout)

    def events(self, kind):
        """``[(element, monotonic time)]`` of the ``kind`` events reported so far."""
        if not self.report.exists():
            return []
        return [
            (int(i), float(t))
            for event, i, t in (line.split() for line in self.report.read_text().splitlines())
            if event == kind
        ]

    def holding(self):
        """The elements begun and not done yet."""
        done = {i for i, _ in self.events("done")}
        return [i for i, _ in self.events("begin") if i not in done]

    def log(self):
        return self.output.read_text(errors="replace")


def check_grid(directory, workers, n, redone=()):
    """Every element done exactly once on disk, acknowledged by one worker at most, and handed
    out once, except those in ``redone`` (held by a worker that was killed or paused)."""
    from execo_engine.sweep import ParamSweeper

    lines = (Path(directory) / "done").read_bytes().splitlines()
    assert len(lines) == len(set(lines)) == n, "done records missing or written twice"
    fresh = ParamSweeper(directory)
    assert [e["i"] for e in fresh.get_done()] == list(range(n))
    assert fresh.get_inprogress() == [] and fresh.get_remaining() == []
    begun = Counter(i for w in workers for i, _ in w.events("begin"))
    twice = sorted(i for i, count in begun.items() if count > 1 and i not in redone)
    assert twice == [], f"handed out twice: {twice}"
    assert set(begun) == set(range(n))
    acknowledged = Counter(i for w in workers for i, _ in w.events("done"))
    assert max(acknowledged.values()) == 1 or set(redone) >= {
        i for i, c in acknowledged.items() if c > 1
    }
    return acknowledged
