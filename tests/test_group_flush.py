"""Group commit (execo_engine/store/directory/flush.py): processes that finish together share a
flush, and nothing is ever taken for flushed that was not."""

import os
import re
import shutil
import subprocess
import sys

import pytest
from namespaces import wait_for

from execo_engine.store.directory.flush import _SLOT_SIZE, GroupFlush, _parse
from execo_engine.sweep import ParamSweeper, sweep


def marks(directory):
    """{slot: (inode, covered)} of the flush file of ``directory``."""
    [path] = [p for p in directory.iterdir() if p.name.startswith("flushed.")]
    data = path.read_bytes()
    assert data.decode("ascii")  # a text file, as every file of a sweep directory
    return {
        i: _parse(data[i * _SLOT_SIZE : (i + 1) * _SLOT_SIZE])
        for i in range(len(data) // _SLOT_SIZE)
    }


def test_a_flush_records_what_it_covered_and_a_cut_forgets_it(tmp_path):
    journal = tmp_path / "done"
    journal.write_bytes(b"a\n" * 10)
    fd = os.open(journal, os.O_RDWR | os.O_APPEND)
    flush = GroupFlush(str(tmp_path))
    try:
        flush.flush("done", fd, 20)
        assert marks(tmp_path)[0] == (os.fstat(fd).st_ino, 20)
        os.write(fd, b"b\n")  # a later record is not covered: the next flush writes it
        flush.flush("done", fd, 22)
        assert marks(tmp_path)[0][1] == 22
        flush.forget("done")
        assert marks(tmp_path)[0] == (0, 0)
    finally:
        flush.close()
        os.close(fd)


def test_a_repaired_torn_record_makes_the_next_done_flush_again(tmp_path):
    sweeper = ParamSweeper(tmp_path, sweep({"i": range(3)}))
    sweeper.done(sweeper.get_next())
    inode, covered = marks(tmp_path)[0]
    assert covered == (tmp_path / "done").stat().st_size
    with open(tmp_path / "done", "ab") as done:
        done.write(b'{"torn')  # a writer killed mid-append, after the last flush
    second = ParamSweeper(tmp_path, sweep({"i": range(3)}))
    second.update()  # repairs the torn tail: what was covered no longer tells
    assert marks(tmp_path)[0] == (0, 0)
    second.done(second.get_next())
    assert marks(tmp_path)[0] == (inode, (tmp_path / "done").stat().st_size)


_WORKER = """
import sys
from execo_engine.sweep import ParamSweeper, sweep
sweeper = ParamSweeper(sys.argv[1], sweep({"i": range(4000)}))
print("ready", flush=True)
sys.stdin.readline()  # all start together, once all are ready
for _ in range(int(sys.argv[2])):
    sweeper.done(sweeper.get_next())
"""


@pytest.mark.slow
def test_processes_finishing_together_lose_nothing(tmp_path):
    """4 processes doing 150 claim+done each at the same time: every acknowledged done is
    there, once (that they share flushes is shown deterministically below)."""
    workers, each = 4, 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(tmp_path / "sweep"), str(each)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for k in range(workers)
    ]
    # A barrier: each worker has imported and opened the sweep before any starts its loop,
    # so that their loops overlap.
    assert [proc.stdout.readline() for proc in procs] == [b"ready\n"] * workers
    for proc in procs:
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    assert [proc.wait(timeout=300) for proc in procs] == [0] * workers
    for proc in procs:
        proc.stdout.close()
    view = ParamSweeper(tmp_path / "sweep", sweep({"i": range(4000)}), read_only=True)
    assert len(view.get_done()) == workers * each


_STRACE_FSYNCS = ["strace", "-f", "-qq", "-y", "-e", "trace=fsync", "-o"]
_ONE_DONE = """
import sys
from execo_engine.sweep import ParamSweeper, sweep
sweeper = ParamSweeper(sys.argv[1], sweep({"i": range(4000)}))
combination = sweeper.get_next()
print("ready", flush=True)
sys.stdin.readline()
sweeper.done(combination)
"""
_ONE_DONE_COMMAND = [sys.executable, "-c", _ONE_DONE]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to count the fsyncs")
def test_processes_waiting_for_a_flush_share_the_next_one(tmp_path):
    """Deterministic: while a flush is in progress (the test holds the flush lock), 4 processes
    append their done records and wait; the one flush that follows covers them all."""
    workers = 4
    ParamSweeper(tmp_path, sweep({"i": range(4000)}))  # created here: the workers only open it
    journal = tmp_path / "done"  # created by the first done()
    assert not journal.exists()
    procs = [
        subprocess.Popen(
            [*_STRACE_FSYNCS, str(tmp_path / f"trace{k}"), *_ONE_DONE_COMMAND, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for k in range(workers)
    ]
    try:
        assert [proc.stdout.readline() for proc in procs] == [b"ready\n"] * workers

        def go_and_wait_for_the_records(_marks):  # a flush in progress, as the workers see it
            for proc in procs:
                proc.stdin.write(b"go\n")
                proc.stdin.close()
            wait_for(
                lambda: journal.exists() and journal.read_bytes().count(b"\n") == workers,
                what="every worker's done record appended, each then waiting for the flush",
            )

        flushing = GroupFlush(str(tmp_path))
        flushing._locked(go_and_wait_for_the_records)
        flushing.close()
        assert [proc.wait(timeout=120) for proc in procs] == [0] * workers
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
            proc.stdout.close()
    traces = "".join((tmp_path / f"trace{k}").read_text() for k in range(workers))
    assert len(re.findall(r"fsync\(\d+</[^>]*/done>", traces)) == 1, traces
    view = ParamSweeper(tmp_path, sweep({"i": range(4000)}), read_only=True)
    assert len(view.get_done()) == workers
