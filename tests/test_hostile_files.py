"""Files a broken or hostile writer leaves in a sweep directory: every reader, writer and
``execo-sweep`` command ends, with the complete records or one clear error naming the file.

Each test runs under a deadline (``SIGALRM``): a hang fails the test instead of blocking it.
"""

import contextlib
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

import interrupted_worker
import pytest

from execo_engine.cli.__main__ import main
from execo_engine.codec import Codec
from execo_engine.errors import CorruptRecordError, NotARegularFileError
from execo_engine.store.directory.journal import Journal
from execo_engine.store.directory.store import DirectoryLog
from execo_engine.store.log.records import owner_text
from execo_engine.store.owner import current_owner
from execo_engine.sweep import HashableDict, ParamSweeper, sweep
from pytest_execo.naming import sweep_subdir_name

GRID = sweep({"i": [0, 1, 2], "t": [(1, "a"), (2, "b")]})
DEADLINE = 120  # seconds a test may take on a loaded machine before it counts as hung


@pytest.fixture(autouse=True)
def deadline():
    """Turn a hang (a blocking open, a loop that never ends) into a failure."""

    def hung(signum, frame):
        raise TimeoutError(f"still running after {DEADLINE} s: hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(DEADLINE)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def directory(tmp_path):
    """A sweep with saved sweeps, one done element, one live claim and one result."""
    path = tmp_path / "sweep"
    sweeper = ParamSweeper(path, GRID, save_sweeps=True)
    sweeper.done(sweeper.get_next())
    sweeper.get_next()
    sweeper.record_result(GRID[0], {"seconds": 1.5}, "passed", 1.5)
    return path


def cli_error(capsys, *args):
    """Run ``execo-sweep ARGS`` in this process; its exit status and stderr (one error)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(arg) for arg in args])
    err = capsys.readouterr().err
    assert exit_info.value.code not in (0, None)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


# -- 3. truncation and non-regular files ---------------------------------------------------


@pytest.mark.parametrize("kind", ["link out", "link to lock", "directory", "fifo"])
@pytest.mark.parametrize("lock_there", [True, False])
def test_a_twin_lock_that_is_no_regular_file_is_refused_before_the_lock_is_touched(
    directory, tmp_path, capsys, kind, lock_there
):
    """``.lock`` restores ``lock`` (or replaces it): one that is a symbolic link or not a
    regular file made a writer unlink the real lock file and link the symbolic link in its
    place, then blame ``lock``, again at every run."""
    lock, twin = directory / "lock", directory / ".lock"
    outside = tmp_path / "outside"
    outside.write_bytes(b"")
    twin.unlink()
    if kind == "link out":
        twin.symlink_to(outside)
    elif kind == "link to lock":
        twin.symlink_to("lock")
    elif kind == "directory":
        twin.mkdir()
    else:
        os.mkfifo(twin)
    if not lock_there:
        lock.unlink()
    before = lock.stat() if lock_there else None
    message = re.escape(str(twin)) + ": is a"
    for attempt in range(2):  # and again: nothing changed in between
        with pytest.raises(NotARegularFileError, match=message):
            ParamSweeper(directory, GRID).get_next()
        assert re.search(message, cli_error(capsys, "reclaim", directory)), attempt
    if lock_there:
        assert not lock.is_symlink() and lock.stat().st_ino == before.st_ino
    else:
        assert not lock.exists() and not lock.is_symlink()
    assert outside.read_bytes() == b"" and outside.stat().st_nlink == 1
    twin.rmdir() if kind == "directory" else twin.unlink()
    writer = ParamSweeper(directory, GRID)  # once it is gone, ``.lock`` is made again
    writer.get_next()
    assert twin.stat().st_ino == lock.stat().st_ino and not twin.is_symlink()


@pytest.mark.slow
def test_sweeps_truncated_at_every_byte_loads_complete_records_or_fails_clearly(tmp_path, capsys):
    full = tmp_path / "full"
    ParamSweeper(full, GRID, save_sweeps=True)
    data = (full / "sweeps").read_bytes()
    lines = data.splitlines(keepends=True)
    directory = tmp_path / "cut"
    directory.mkdir()
    sweeps_file = directory / "sweeps"
    for size in range(len(data) + 1):
        sweeps_file.write_bytes(data[:size])
        complete = sum(1 for end in range(len(lines)) if len(b"".join(lines[: end + 1])) <= size)
        if data[:size].endswith(b"\n") or size == 0:
            if complete:
                assert ParamSweeper(directory).get_sweeps() == GRID[:complete]
                assert ParamSweeper(directory, read_only=True).get_sweeps() == GRID[:complete]
            continue
        offset = len(b"".join(lines[:complete]))
        message = rf"{sweeps_file}: .*byte offset {offset}"
        with pytest.raises(CorruptRecordError, match=message):
            ParamSweeper(directory)
        with pytest.raises(CorruptRecordError, match=message):
            ParamSweeper(directory, read_only=True)
        assert re.search(message, cli_error(capsys, "status", directory))


@pytest.mark.parametrize("name", ["done", "inprogress", "sweeps", "results"])
def test_a_fifo_in_place_of_a_file_is_refused_by_name_and_never_written(directory, capsys, name):
    fifo = directory / name
    fifo.unlink()
    os.mkfifo(fifo)
    message = rf"{fifo}.*is a FIFO, not a regular file"
    with pytest.raises(NotARegularFileError, match=message):  # a reader
        view = ParamSweeper(directory, read_only=True)
        view.get_done()
        view.get_results()
    with pytest.raises(NotARegularFileError, match=message):  # a writer
        writer = ParamSweeper(directory, None if name == "sweeps" else GRID)
        writer.get_next()
        writer.done(GRID[-1])
        writer.record_result(GRID[-1], {"seconds": 2})
        writer.get_results()
    command = "results" if name == "results" else "status"
    assert re.search(message, cli_error(capsys, command, directory))
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert os.read(reader, 1 << 16) == b"", "something was written into the FIFO"
    finally:
        os.close(reader)
    assert fifo.is_fifo()


@pytest.mark.parametrize("name", ["done", "inprogress", "results"])
def test_a_directory_or_a_link_in_place_of_a_journal_is_refused(directory, tmp_path, name):
    target = directory / name
    target.rename(tmp_path / "elsewhere")
    before = (tmp_path / "elsewhere").read_bytes()
    target.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(NotARegularFileError, match=rf"{target}: is a symbolic link"):
        writer = ParamSweeper(directory, GRID)
        writer.get_next()
        writer.get_results()
    assert (tmp_path / "elsewhere").read_bytes() == before, "written through the link"
    target.unlink()
    target.mkdir()
    with pytest.raises(NotARegularFileError, match=rf"{target}: is a directory"):
        view = ParamSweeper(directory, read_only=True)
        view.get_done()
        view.get_results()


# -- 4. well-formed records of the wrong shape ---------------------------------------------

#: JSON texts of bad elements: a tag holding what it cannot, a plain dict inside, deep nesting
#: (a list inside an element is a list level: see tests/test_own_types.py)
BAD_ELEMENTS = {
    "tuple holding an int": '{"__tuple__":5}',
    "dict holding an int": '{"__dict__":7}',
    "bytes holding an int": '{"__bytes__":3}',
    "bytes not base64": '{"__bytes__":"@@@"}',
    "dict inside a dict": '{"d":{"__dict__":[[1,2]]}}',
    "dict inside a frozenset": '{"__frozenset__":[{"__dict__":[[1,2]]}]}',
    "1000 nested lists": "[" * 1000 + "]" * 1000,
    "1000 nested dicts": '{"a":' * 1000 + "1" + "}" * 1000,
    "1000 nested tuples": '{"__tuple__":[' * 1000 + "]}" * 1000,
}
HOST = socket.gethostname()
#: Claim records whose owner or fields are of the wrong type
BAD_CLAIMS = {
    "pid a string": f'["+",["{HOST}","123","s"],{{"i":0}},0,1.0]',
    "pid 10**30": f'["+",["{HOST}",{10**30},"s"],{{"i":0}},0,1.0]',
    "pid a path": f'["+",["{HOST}","1/stat","s"],{{"i":0}},0,1.0]',
    "pid a boolean": f'["+",["{HOST}",true,"s"],{{"i":0}},0,1.0]',
    "start marker an int": f'["+",["{HOST}",{os.getpid()},5],{{"i":0}},0,1.0]',
    "owner a string": '["+","someone",{"i":0},0,1.0]',
    "time a string": f'["+",["{HOST}",1,"s"],{{"i":0}},0,"now"]',
    "time infinite": f'["+",["{HOST}",1,"s"],{{"i":0}},0,Infinity]',
    "position a string": f'["+",["{HOST}",1,"s"],{{"i":0}},"0",1.0]',
    "instance of a claim": f'["+",["{HOST}",1,"s"],{{"i":0}},0,1.0,1]',
    "instance a string": f'["s",["{HOST}",1,"s"],{{"i":0}},0,1.0,"1"]',
    "instance zero": f'["s",["{HOST}",1,"s"],{{"i":0}},0,1.0,0]',
    "instance a float": f'["s",["{HOST}",1,"s"],{{"i":0}},0,1.0,1.5]',
}


def _record(name, element):
    """A record of stream ``name`` holding ``element`` (JSON text)."""
    return {
        "done": f"[0,{element}]",
        "inprogress": f'["-",{element}]',
        "sweeps": element,
        "results": f'{{"combination":{element},"values":{{}},"outcome":null,'
        f'"duration":null,"host":"h","time":1.0}}',
    }[name]


CASES = [
    pytest.param(name, _record(name, element), id=f"{name}-{label}")
    for name in ("done", "inprogress", "sweeps")
    for label, element in BAD_ELEMENTS.items()
] + [
    pytest.param("inprogress", record, id=f"inprogress-{label}")
    for label, record in BAD_CLAIMS.items()
]
_RESULT = '"combination":{"i":0},"values":{},"outcome":null,"duration":null,"host":"h"'
#: Result records with a field missing or of the wrong type
BAD_RESULTS = {
    "a list": "[1,2]",
    "no time": f"{{{_RESULT}}}",
    "time 10**30": f'{{{_RESULT},"time":{10**30}}}',
    "time a string": f'{{{_RESULT},"time":"now"}}',
    "values a list": "{" + _RESULT.replace('"values":{}', '"values":[]') + ',"time":1}',
}
#: Result records nobody can read: a bad combination, a field missing or of the wrong type
BAD_RESULT_CASES = [
    pytest.param(_record("results", element), id=f"combination-{label}")
    for label, element in BAD_ELEMENTS.items()
] + [pytest.param(record, id=label) for label, record in BAD_RESULTS.items()]


@pytest.mark.parametrize(("name", "record"), CASES)
def test_a_record_of_the_wrong_shape_is_a_corrupt_record_naming_file_and_offset(
    directory, capsys, name, record
):
    path = directory / name
    offset = path.stat().st_size
    with path.open("ab") as f:
        f.write(record.encode() + b"\n")
    message = rf"{path}: corrupt record at byte offset {offset}: .*(expected|nested|must hold)"
    writer_sweeps = None if name == "sweeps" else GRID
    with pytest.raises(CorruptRecordError, match=message):  # a writer
        writer = ParamSweeper(directory, writer_sweeps)
        writer.get_next()
        writer.get_results()
    with pytest.raises(CorruptRecordError, match=message):  # a reader
        view = ParamSweeper(directory, read_only=True)
        view.get_remaining()
        view.get_results()
    assert re.search(message, cli_error(capsys, "status", directory))


#: JSON records of the done stream's shape nearly, each after valid done records of every
#: element: a resume recognizes valid records by their element at their position, these not
NEAR_DONE = {
    "a dict": '{"i":0}',
    "a string": '"done"',
    "position only": "[0]",
    "one field more": '[0,{"i":0,"t":{"__tuple__":[1,"a"]}},1]',
    "position true": '[true,{"i":0,"t":{"__tuple__":[1,"a"]}}]',
    "position a float": '[0.0,{"i":0,"t":{"__tuple__":[1,"a"]}}]',
}


@pytest.mark.parametrize("record", NEAR_DONE.values(), ids=NEAR_DONE.keys())
@pytest.mark.parametrize("valid", [1, 40])  # one piece checked record by record, and a big one
def test_a_resume_refuses_a_near_done_record_after_valid_ones(tmp_path, record, valid):
    path = tmp_path / "sweep"
    grid = sweep({"i": list(range(valid)), "t": [(1, "a")]})
    ParamSweeper(path, grid).done_batch(grid)
    done = path / "done"
    offset = done.stat().st_size
    with done.open("ab") as f:
        f.write(record.encode() + b"\n")
    with pytest.raises(
        CorruptRecordError, match=rf"{done}: corrupt record at byte offset {offset}"
    ):
        ParamSweeper(path, grid).get_next()


def test_a_journal_that_shrank_after_its_size_was_read_does_not_hang_a_reader(tmp_path):
    """A reader without the lock (a status) reads a journal's size, then its bytes; a writer
    may cut a torn tail off in between. The scan stops where the file ends instead of asking
    for the missing bytes for ever."""
    (tmp_path / "done").write_bytes(b'[0,{"i":0}]\n[1,{"i":1}]\n')
    journal = Journal(str(tmp_path), "done", read_only=True)
    journal._open(create=False)
    scanned: list[tuple[int, int, bytes]] = []
    scanning = threading.Thread(target=lambda: scanned.append(journal._scan(100)), daemon=True)
    scanning.start()  # 100: the size read before a cut, 76 bytes longer than the file now
    scanning.join(timeout=60)
    assert not scanning.is_alive(), "the scan of a shrunk journal is still running"
    assert scanned == [(24, 2, b'[0,{"i":0}]\n[1,{"i":1}]\n')]
    journal.close()


@pytest.mark.parametrize("record", BAD_RESULT_CASES)
def test_an_unreadable_result_is_skipped_with_one_warning_naming_file_and_offset(
    directory, capsys, caplog, record
):
    """Results are not state: one unreadable record (written by hand, or by an older version)
    costs that record only, with one warning naming where it is; state records stay strict."""
    path = directory / "results"
    offset = path.stat().st_size
    with path.open("ab") as f:
        f.write(record.encode() + b"\n")
    ParamSweeper(directory, GRID).record_result(GRID[1], {"seconds": 2.5}, "failed", 2.5)
    expected = [(GRID[0], 1.5, "passed"), (GRID[1], 2.5, "failed")]
    warning = f"{path}: unreadable result record at byte offset {offset} skipped"
    for reader in (ParamSweeper(directory, GRID), ParamSweeper(directory, read_only=True)):
        caplog.clear()
        for _ in range(2):  # read twice, warned once
            results = reader.get_results()
            assert [(r["combination"], r["values"]["seconds"], r["outcome"]) for r in results] == (
                expected
            )
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and warnings[0].startswith(warning), warnings
    caplog.clear()
    main(["results", str(directory), "--format", "jsonl"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(row["i"], row["seconds"], row["outcome"]) for row in rows] == [
        (0, 1.5, "passed"),
        (0, 2.5, "failed"),
    ]
    assert [r.getMessage()[: len(warning)] for r in caplog.records] == [warning]


def test_the_command_prints_one_line_for_a_deeply_nested_record(directory):
    with (directory / "done").open("ab") as f:
        f.write(b"[0," + b"[" * 5000 + b"]" * 5000 + b"]\n")
    result = subprocess.run(
        [sys.executable, "-m", "execo_engine", "status", str(directory)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert f"{directory / 'done'}: corrupt record at byte offset" in result.stderr


@pytest.mark.parametrize("kind", ["dicts", "tuples"])
def test_elements_nested_at_any_depth_load_or_are_corrupt_records(tmp_path, kind):
    for depth in (50, 100, 200, 300, 400, 500, 700, 900, 990, 2000):
        directory = tmp_path / f"{kind}{depth}"
        ParamSweeper(directory, GRID)
        if kind == "dicts":
            element = '{"a":' * depth + "1" + "}" * depth
        else:
            element = '{"__tuple__":[' * depth + "]}" * depth
        (directory / "done").write_text(f"[null,{element}]\n")
        try:
            ParamSweeper(directory, GRID).get_done()
            ParamSweeper(directory, GRID, read_only=True).get_done()
        except CorruptRecordError as error:
            assert re.search("nested too deeply|nests at most 100 levels", str(error)), error


def test_owners_with_a_fourth_field_are_valid_claims(directory):
    """A newer writer's owner carries a PID-namespace id: its claims are valid records."""
    element = '{"i":2,"t":{"__tuple__":[1,"a"]}}'
    with (directory / "inprogress").open("ab") as f:
        f.write(f'["+",["elsewhere",7,"s","pid:[4026531836]"],{element},null,1.0]\n'.encode())
    store = DirectoryLog(directory, Codec())
    with store.lock:
        claims = store.read().claims
    owner = ("elsewhere", 7, "s", "pid:[4026531836]")
    assert claims[-1] == ("+", owner, GRID[-2], None, 1.0, None)


# -- 5. disk full ------------------------------------------------------------------------


def _stale_temporaries(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_the_next_writer_removes_temporaries_of_killed_rewrites_only(directory):
    left = ["inprogress.0123456789abcdef0123456789abcdef.tmp", "sweeps." + "f" * 32 + ".tmp"]
    kept = ["inprogress.mine.tmp", "results." + "a" * 32 + ".tmp", "notes.tmp"]
    for name in left + kept:
        (directory / name).write_text("partial")
    ParamSweeper(directory, GRID, read_only=True).get_remaining()
    assert _stale_temporaries(directory) == sorted(left + kept), "a reader removed files"
    ParamSweeper(directory, GRID).get_remaining()
    assert _stale_temporaries(directory) == sorted(kept)


def _claims_to_compact(directory, live):
    """An ``inprogress`` file of ``live`` big claims held by this (live) process, plus 4 times
    as many tiny releases: the next writer compacts it into a temporary of about its size."""
    codec, me = Codec(), owner_text(current_owner())
    with (directory / "inprogress").open("w") as f:
        for k in range(live):
            element = codec.encode(HashableDict(k=k, pad="x" * 1000))
            f.write(f'["+",{me},{element},null,1.0]\n')
        f.write('["-",0]\n' * (4 * live + 1))


@pytest.mark.slow
def test_a_compaction_killed_midway_leaves_a_temporary_the_next_writer_removes(tmp_path):
    live = 20000  # a 20 MB temporary: written and fsync'd slowly enough to be caught
    for attempt in range(10):
        directory = tmp_path / f"attempt{attempt}"
        ParamSweeper(directory, GRID, save_sweeps=True)
        _claims_to_compact(directory, live)
        compacting = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from execo_engine.sweep import ParamSweeper; import sys; "
                "ParamSweeper(sys.argv[1]).get_next()",
                str(directory),
            ]
        )
        while compacting.poll() is None and not _stale_temporaries(directory):
            pass  # poll as fast as possible: the window is the temporary's write and fsync
        compacting.kill()
        compacting.wait(timeout=DEADLINE)
        if compacting.returncode == -signal.SIGKILL and _stale_temporaries(directory):
            break
    else:
        pytest.skip("the compaction never got killed midway in 10 attempts (too fast here)")
    ParamSweeper(directory, read_only=True).get_remaining()
    assert _stale_temporaries(directory), "a read-only view removed a temporary"
    writer = ParamSweeper(directory)
    assert len(writer.get_claims()) == live, "claims lost"
    assert _stale_temporaries(directory) == []


@pytest.fixture
def small_disk(tmpfs):
    """A 256 KiB tmpfs, unmounted afterwards."""
    return tmpfs("small", "size=256k")


def _fill(path):
    """Fill the file system of ``path`` (a new file) until it is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"x" * 4096)
    finally:
        os.close(fd)


@pytest.mark.slow
def test_a_full_disk_names_the_file_loses_nothing_acknowledged_and_leaves_no_temporary(
    small_disk,
):
    grid = sweep({"i": range(1500), "pad": ["p" * 40]})
    directory = small_disk / "sweep"
    sweeper = ParamSweeper(directory, grid, save_sweeps=True)
    acknowledged, errors = [], []
    filler = small_disk / "filler"
    _fill(filler)
    filler.write_bytes(filler.read_bytes()[: -8 * 4096])  # a little room: some work succeeds
    while len(errors) < 20:
        try:
            element = sweeper.get_next()
            if element is None:
                break
            sweeper.done(element)
            acknowledged.append(element)
        except OSError as error:
            errors.append(error)
    assert errors, "the disk never filled up"
    for found in errors:
        assert found.errno == errno.ENOSPC, found
        assert str(directory) in str(found) and "free some space" in str(found), found
    assert _stale_temporaries(directory) == []
    filler.unlink()
    fresh = ParamSweeper(directory, grid)
    done = fresh.get_done()
    assert set(acknowledged) <= set(done)
    assert fresh.get_next() is not None, "the sweep cannot go on once space is back"


@pytest.mark.slow
def test_a_compaction_on_a_full_disk_fails_by_name_and_removes_its_temporary(small_disk):
    grid = sweep({"i": range(1500)})
    directory = small_disk / "sweep"
    sweeper = ParamSweeper(directory, grid, save_sweeps=True)
    taken = sweeper.get_next_batch(1100)
    filler = small_disk / "filler"
    _fill(filler)
    # Room for the ~830 small release records before a compaction, not for its ~25 KB.
    filler.write_bytes(filler.read_bytes()[: -5 * 4096])
    cancelled = []
    with pytest.raises(
        OSError, match=rf"No space left on device.*{directory}/inprogress\."
    ) as info:
        for element in taken:  # releases: the claims stream grows until it is compacted
            sweeper.cancel(element)
            cancelled.append(element)
    assert info.value.errno == errno.ENOSPC
    assert "free some space" in str(info.value)
    assert _stale_temporaries(directory) == []
    filler.unlink()
    fresh = ParamSweeper(directory, grid)
    assert set(fresh.get_inprogress()) == set(taken) - set(cancelled)
    assert _stale_temporaries(directory) == []


def _claims_by(directory, pid):
    """The elements the files of ``directory`` show claimed by the process ``pid``."""
    view = ParamSweeper(directory, read_only=True)
    return [element for element, owner, _, _ in view.get_claims() if owner.pid == pid]


@pytest.mark.slow
def test_a_full_disk_in_the_middle_of_a_record_writes_none_of_it_and_the_instance_goes_on(
    small_disk,
):
    """Each claim and done record here is longer than a page: on a full tmpfs a write gets
    the room left in the file's last page, then ENOSPC, in the middle of the record. Nothing
    of the record stays, the instance that got the error knows what it holds (what the files
    say this process holds, no more), and it goes on once space is back."""
    grid = sweep({"i": range(12), "pad": ["p" * 6000]})
    directory = small_disk / "sweep"
    sweeper = ParamSweeper(directory, grid, save_sweeps=True)
    first, second = sweeper.get_next(), sweeper.get_next()
    sweeper.done(second)
    _fill(small_disk / "filler")
    files = {name: (directory / name).read_bytes() for name in ("inprogress", "done")}
    assert all(len(data) % 4096 for data in files.values()), "no room left: not midway"
    with pytest.raises(OSError, match="No space left on device") as claiming:
        sweeper.get_next()
    with pytest.raises(OSError, match="No space left on device") as finishing:
        sweeper.done(first)
    assert str(directory / "inprogress") in str(claiming.value)
    assert str(directory / "done") in str(finishing.value)
    for name, data in files.items():  # no torn record
        assert (directory / name).read_bytes() == data, name
    assert _claims_by(directory, os.getpid()) == [first] == sweeper.get_inprogress()
    (small_disk / "filler").unlink()
    sweeper.done(first)
    handed = [first, second, *sweeper]  # the same instance, to the end
    for element in handed[2:]:
        sweeper.done(element)
    assert handed == grid  # each once, in order
    assert (directory / "done").read_bytes().count(b"\n") == len(grid)
    assert _claims_by(directory, os.getpid()) == []


# -- 6. a signal handler raising in the middle of an operation ----------------------------


@pytest.mark.slow
def test_an_exception_from_a_signal_handler_at_any_instant_leaves_no_claim_unknown(tmp_path):
    """Wherever the exception lands (in the middle of a claim's append, between an append and
    the state that records it, in the middle of a replay), the instance never holds a claim
    it does not know about, hands out nothing twice and loses nothing acknowledged (see
    tests/interrupted_worker.py)."""
    interrupted_worker.check(str(tmp_path / "sweep"), 300, DEADLINE * 2)


# -- 7. a symbolic link planted in a shared sweep directory ---------------------------------


def test_the_plugin_refuses_a_symlinked_test_subdirectory(pytester):
    pytester.makepyfile(
        test_grid="""
        import pytest

        @pytest.mark.execo_sweep({"size": [1, 2]})
        def test_grid(combination, size):
            pass
        """
    )
    shared = pytester.path / "shared"
    outside = pytester.path / "outside"
    shared.mkdir()
    outside.mkdir()
    planted = shared / sweep_subdir_name("test_grid.py::test_grid")
    planted.symlink_to(outside, target_is_directory=True)
    result = pytester.runpytest(f"--execo-sweep-dir={shared}")
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        [f"ERROR: execo: {planted}: is a symbolic link, refused as a sweep subdirectory*"]
    )
    assert list(outside.iterdir()) == [], "the session wrote outside the sweep directory"
    assert planted.is_symlink()
