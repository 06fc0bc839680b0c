"""What a session killed outright keeps (issue 15, point 7): done records are written and fsync'd
in the background within milliseconds, while the next test runs; the session waits for them at
its end."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from execo_engine.sweep import HashableDict, ParamSweeper
from pytest_execo import writer as writer_module
from pytest_execo.alarm import ConditionAlarm, TimerfdAlarm
from pytest_execo.writer import BackgroundWriter, Result

pytest_plugins = ["pytester"]

KILLED_GRID = """
import os, signal, time, pytest
from execo_engine.sweep import ParamSweeper

def done_count():
    [sweep] = os.listdir("results")
    return len(ParamSweeper(os.path.join("results", sweep), read_only=True).get_done())

@pytest.mark.execo_sweep({{"x": list(range(30))}})
def test_kill(x):
    with open({runs!r}, "a") as f:
        f.write(f"{{x}}\\n")
    if x == 17 and os.path.exists("kill"):
        deadline = time.monotonic() + 120
        while done_count() < 17 and time.monotonic() < deadline:  # written while x=17 runs
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
"""


ALARMS = [ConditionAlarm, TimerfdAlarm] if sys.platform == "linux" else [ConditionAlarm]


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_done_without_waiting_is_visible_at_once_and_flush_closes_everything(tmp_path):
    elements = [HashableDict(x=x) for x in range(50)]
    writer = ParamSweeper(tmp_path / "sweep", elements)
    writer.take(elements[0], position=0)
    writer.done(elements[0])  # the journals are open from now on
    reader = ParamSweeper(tmp_path / "sweep", elements)
    before = open_fds()
    for element in elements[1:40]:
        assert writer.take(element, position=element["x"]) is None
        writer.done(element, wait=False)
    assert reader.get_done() == elements[:40]  # written: another instance sees them
    assert open_fds() > before  # descriptors wait for their fsync
    writer.flush()
    assert open_fds() == before
    writer.flush()  # nothing left: a no-op


def test_background_writer_puts_everything_on_disk_by_close(tmp_path):
    elements = [HashableDict(x=x) for x in range(200)]
    writer_sweeper = ParamSweeper(tmp_path / "sweep", elements, save_sweeps=True)
    writer = BackgroundWriter()
    for element in elements:
        assert writer_sweeper.take(element, position=element["x"]) is None
        result = Result({"square": element["x"] ** 2}, "passed", 0.5) if element["x"] % 3 else None
        writer.add(writer_sweeper, element, result, done=element["x"] < 150)
    writer.close()
    reader = ParamSweeper(tmp_path / "sweep", read_only=True)
    assert reader.get_done() == elements[:150]
    # handed over but not done (a rerun of a done combination): claimed until given back
    assert [claim[0] for claim in reader.get_claims()] == elements[150:]
    assert [(r["combination"], r["values"]["square"]) for r in reader.get_results()] == [
        (e, e["x"] ** 2) for e in elements if e["x"] % 3
    ]
    writer.close()  # nothing left: a no-op


@pytest.mark.parametrize("kind", ALARMS)
def test_background_writer_writes_and_fsyncs_while_the_session_waits(tmp_path, monkeypatch, kind):
    """The session's thread hands over one combination, then runs a long test (it waits): the
    background thread writes its done record and fsyncs it (the descriptor kept for the fsync
    is closed) without close(), whichever alarm it sleeps on."""
    monkeypatch.setattr(writer_module, "alarm", kind)
    elements = [HashableDict(x=x) for x in range(3)]
    sweeper = ParamSweeper(tmp_path / "sweep", elements, save_sweeps=True)
    sweeper.take(elements[0], position=0)
    sweeper.done(elements[0])  # the journals are open from now on
    reader = ParamSweeper(tmp_path / "sweep", read_only=True)
    writer = BackgroundWriter()
    before = open_fds()
    assert sweeper.take(elements[1], position=1) is None
    writer.add(sweeper, elements[1], None, done=True)
    deadline = time.monotonic() + 60
    while (reader.get_done() != elements[:2] or open_fds() > before) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.005)  # polls the outcome: how soon it comes is not what is tested
    assert reader.get_done() == elements[:2]
    assert open_fds() == before, "the done record is written but not fsync'd"
    writer.close()


def test_background_writer_raises_what_a_write_raised(tmp_path):
    elements = [HashableDict(x=x) for x in range(3)]
    ParamSweeper(tmp_path / "sweep", elements, save_sweeps=True)
    read_only = ParamSweeper(tmp_path / "sweep", read_only=True)
    writer = BackgroundWriter()
    writer.add(read_only, elements[0], None, done=True)
    with pytest.raises(PermissionError):
        writer.close()


@pytest.mark.slow
def test_sigkill_loses_no_finished_combination(pytester):
    runs = pytester.path / "runs.txt"
    pytester.makepyfile(test_kill=KILLED_GRID.format(runs=str(runs)))
    (pytester.path / "kill").write_text("")
    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "--execo-sweep-dir=results"]
    killed = subprocess.run(command, cwd=pytester.path, capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    [directory] = (pytester.path / "results").iterdir()
    sweeper = ParamSweeper(directory, read_only=True)
    # every combination finished before the kill is written (while the next one ran), none
    # after it; the one that was running, and those claimed ahead with it, are held by a
    # dead process (the next session reclaims them)
    assert [c["x"] for c in sweeper.get_done()] == list(range(17))
    claims = [(claim[0]["x"], claim[3]) for claim in sweeper.get_claims()]
    assert claims == [(x, True) for x in range(17, 17 + len(claims))] and claims
    (pytester.path / "kill").unlink()
    resumed = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout
    assert "execo: 17/30 combinations done" in resumed.stdout
    assert Counter(runs.read_text().split()) == Counter(
        {str(x): 2 if x == 17 else 1 for x in range(30)}
    )
    assert [c["x"] for c in ParamSweeper(directory).get_done()] == list(range(30))
