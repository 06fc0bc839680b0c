"""Helpers of the execo-sweep submit tests (local, SLURM, OAR): the sweep, the worker
commands (``cluster_worker.py``, an Engine script, a pytest grid) and the readers of the
JSON-lines report they append to."""

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from execo_engine import ParamSweeper, sweep

HERE = Path(__file__).parent
WORKER = [sys.executable, str(HERE / "cluster_worker.py")]
DEADLINE = 300.0  # a loaded 2-core machine runs these slowly: generous, never a pass condition


def saved_sweep(location, n=40):
    ParamSweeper(location, sweep({"i": list(range(n))}), save_sweeps=True)


def events(report, event=None):
    if not os.path.exists(report):
        return []
    with open(report) as lines:
        found = [json.loads(line) for line in lines if line.strip()]
    return [e for e in found if event is None or e["event"] == event]


def wait_for(what, condition, deadline=DEADLINE, interval=0.05):
    """Poll ``condition`` every ``interval`` seconds until it returns something true; fail
    naming ``what`` (a text, or a function that returns it)."""
    end = time.monotonic() + deadline
    while not (value := condition()):
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(interval)
    return value


def cli(*args, env=None, cwd=None, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "execo_engine.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        **kwargs,
    )


def dry_run_script(location, command, scheduler="local", *args):
    """The worker script ``execo-sweep submit --dry-run`` writes, and its output."""
    done = cli(
        "submit",
        location,
        "--scheduler",
        scheduler,
        *args,
        "--dry-run",
        "--",
        *command,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    return re.search(r"# worker script (\S+):", done.stdout)[1], done.stdout


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def assert_each_done_once(location, report, n=40):
    done = [e["i"] for e in events(report, "done")]
    assert sorted(done) == list(range(n)), f"done twice or never: {sorted(done)}"
    view = ParamSweeper(location, read_only=True)
    assert len(view.get_done()) == n and not view.get_remaining() and not view.get_inprogress()


ENGINE = """
    import json, os, sys, time
    from execo_engine import Engine, sweep

    class Grid(Engine):
        def run(self):
            sweeper = self.sweeper(sweep({"i": list(range(__N__))}))
            while True:
                combination = sweeper.get_next()
                if combination is None:
                    if not sweeper.get_inprogress():
                        return
                    time.sleep(0.05)
                    continue
                with open(__REPORT__, "a") as report:
                    report.write(json.dumps({"event": "claimed", "i": combination["i"],
                                             "pid": os.getpid()}) + "\\n")
                while __HOLD__:
                    time.sleep(0.05)
                time.sleep(0.02)
                sweeper.done(combination)
                with open(__REPORT__, "a") as report:
                    report.write(json.dumps({"event": "done", "i": combination["i"],
                        "worker": os.environ.get("EXECO_WORKER_INDEX")}) + "\\n")

    Grid().start()
"""


def write_from(template, path, report, n, hold):
    """``template`` filled in (__N__ combinations, __REPORT__, __HOLD__), written to ``path``."""
    filled = {"__N__": str(n), "__REPORT__": repr(str(report)), "__HOLD__": repr(hold)}
    text = textwrap.dedent(template)
    for name, value in filled.items():
        text = text.replace(name, value)
    path.write_text(text)
    return str(path)


def engine_script(path, report, n, hold=False):
    return write_from(ENGINE, path, report, n, hold)


PYTEST_GRID = """
    import json, os, time
    import pytest

    @pytest.mark.execo_sweep({"i": list(range(__N__))})
    def test_grid(i):
        with open(__REPORT__, "a") as report:
            report.write(json.dumps({"event": "claimed", "i": i, "pid": os.getpid()}) + "\\n")
        while i == __HOLD__:
            time.sleep(0.05)
        time.sleep(0.02)
        with open(__REPORT__, "a") as report:
            report.write(json.dumps({"event": "done", "i": i,
                "worker": os.environ.get("EXECO_WORKER_INDEX")}) + "\\n")
"""


def pytest_grid(path, report, n, hold=-1):
    return write_from(PYTEST_GRID, path, report, n, hold)
