"""What a session killed outright keeps (issue 26): a combination's done record is written
(in the kernel) before its last report is logged and before the next test starts, and fsync'd
in the background within pytest_execo.flusher.SYNC_INTERVAL; the session waits for the fsyncs
at its end."""

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from plugin_helpers import open_descriptors

from execo_engine.sweep import HashableDict, ParamSweeper
from pytest_execo import flusher as flusher_module
from pytest_execo.alarm import ConditionAlarm, TimerfdAlarm
from pytest_execo.flusher import BackgroundFlusher

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


def test_done_without_waiting_is_visible_at_once_and_flush_closes_everything(tmp_path):
    elements = [HashableDict(x=x) for x in range(50)]
    writer = ParamSweeper(tmp_path / "sweep", elements)
    writer.take(elements[0], position=0)
    writer.done(elements[0])  # the journals are open from now on
    reader = ParamSweeper(tmp_path / "sweep", elements)
    before = open_descriptors()
    for element in elements[1:40]:
        assert writer.take(element, position=element["x"]) is None
        writer.done(element, wait=False)
    assert reader.get_done() == elements[:40]  # written: another instance sees them
    assert open_descriptors() - before  # descriptors wait for their fsync
    writer.flush()
    assert not open_descriptors() - before
    writer.flush()  # nothing left: a no-op


def written_without_waiting(sweeper, elements):
    for element in elements:
        assert sweeper.take(element, position=element["x"]) is None
        sweeper.record_result(element, {"square": element["x"] ** 2}, "passed", wait=False)
        sweeper.done(element, wait=False)


def test_flusher_close_puts_everything_on_disk(tmp_path):
    elements = [HashableDict(x=x) for x in range(100)]
    first = ParamSweeper(tmp_path / "first", elements, save_sweeps=True)
    second = ParamSweeper(tmp_path / "second", elements, save_sweeps=True)
    for sweeper in (first, second):  # the journals are open from now on
        written_without_waiting(sweeper, elements[:1])
        sweeper.flush()
    flusher = BackgroundFlusher()  # its alarm may be a descriptor
    before = open_descriptors()
    for sweeper in (first, second):
        written_without_waiting(sweeper, elements[1:])
        flusher.written(sweeper)
        flusher.written(sweeper)  # told twice: fsync'd once
    assert open_descriptors() - before  # descriptors wait for their fsync
    flusher.close()
    assert not open_descriptors() - before, "close() returned before every fsync"
    for name in ("first", "second"):
        reader = ParamSweeper(tmp_path / name, read_only=True)
        assert reader.get_done() == elements
        assert [r["values"]["square"] for r in reader.get_results()] == [x**2 for x in range(100)]
    flusher.close()  # nothing left: a no-op


@pytest.mark.parametrize("kind", ALARMS)
def test_flusher_fsyncs_in_the_background_while_the_session_waits(tmp_path, monkeypatch, kind):
    """The session's thread writes a done record, then runs a long test (it waits): the
    flusher's thread fsyncs it (the descriptor kept for the fsync is closed) without close(),
    whichever alarm it sleeps on."""
    monkeypatch.setattr(flusher_module, "alarm", kind)
    elements = [HashableDict(x=x) for x in range(3)]
    sweeper = ParamSweeper(tmp_path / "sweep", elements, save_sweeps=True)
    written_without_waiting(sweeper, elements[:1])
    sweeper.flush()  # the journals are open from now on
    flusher = BackgroundFlusher()
    before = open_descriptors()
    written_without_waiting(sweeper, elements[1:2])
    flusher.written(sweeper)
    assert open_descriptors() > before
    deadline = time.monotonic() + 60
    while open_descriptors() > before and time.monotonic() < deadline:
        time.sleep(0.005)  # polls the outcome: how soon it comes is not what is tested
    assert open_descriptors() == before, "the done record is written but not fsync'd"
    flusher.close()


def test_flusher_raises_what_a_flush_raised(tmp_path):
    closed = open(tmp_path / "file", "w")  # noqa: SIM115 (closed on purpose)
    closed.close()
    flusher = BackgroundFlusher()
    flusher.written(closed)  # its flush() raises ValueError
    with pytest.raises(ValueError, match="closed file"):
        flusher.close()


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


EXIT_AFTER_PASS = """
import os, pytest

@pytest.mark.execo_sweep({{"x": [0, 1, 2]}})
def test_exit(x):
    with open({runs!r}, "a") as f:
        f.write(f"{{x}}\\n")
    if x == 1 and os.path.exists("exit"):
        os._exit(1)  # a segfault in native code, the OOM killer: no teardown, no session end
"""
RECORDED_HOOK = """
def pytest_execo_recorded(item, combination, outcome, state):
    with open({recorded!r}, "a") as f:
        f.write(f"{{combination['x']}} {{state}}\\n")
"""


@pytest.mark.slow  # pytest sessions in subprocesses
@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="serial"),
        # loadfile: the worker that runs x=0 runs x=1 next
        pytest.param(["-n", "2", "--dist", "loadfile"], id="xdist", marks=pytest.mark.slow),
    ],
)
def test_the_test_after_a_passing_one_exits_the_process(pytester, args):
    runs, recorded = pytester.path / "runs.txt", pytester.path / "recorded.txt"
    pytester.makepyfile(test_exit=EXIT_AFTER_PASS.format(runs=str(runs)))
    pytester.makeconftest(RECORDED_HOOK.format(recorded=str(recorded)))
    (pytester.path / "exit").write_text("")
    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "--execo-sweep-dir=results"]
    crashed = subprocess.run([*command, *args], cwd=pytester.path, capture_output=True, timeout=300)
    assert crashed.returncode != 0
    assert "0 done" in recorded.read_text().splitlines()  # pytest_execo_recorded fired
    [directory] = (pytester.path / "results").iterdir()
    assert ParamSweeper(directory, read_only=True).get_done()[:1] == [HashableDict(x=0)]
    (pytester.path / "exit").unlink()
    resumed = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout
    assert Counter(runs.read_text().split())["0"] == 1  # the passing one never ran again
    assert [c["x"] for c in ParamSweeper(directory).get_done()] == [0, 1, 2]
