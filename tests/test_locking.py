"""The directory lock stays one lock: whatever path reaches the directory, and whatever happens
to its ``lock`` file or to the directory while workers run."""

import gc
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections import Counter

import pytest
from namespaces import Worker, check_grid, wait_for

from execo_engine.errors import DirectoryVanishedError, NotARegularFileError
from execo_engine.store.directory import locking
from execo_engine.store.directory.locking import DirectoryLock
from execo_engine.sweep import ParamSweeper, sweep


def make_grid(directory, n):
    ParamSweeper(directory, sweep({"i": range(n)}), save_sweeps=True)
    return directory


class Disturber(threading.Thread):
    """Does ``action`` to the directory again and again until stopped; counts how often it
    found something to act on."""

    def __init__(self, action):
        super().__init__(daemon=True)
        self.action = action
        self.stopped = threading.Event()
        self.count = 0

    def run(self):
        while not self.stopped.is_set():
            try:
                self.action()
                self.count += 1
            except FileNotFoundError:
                pass
            self.stopped.wait(0.002)  # pace: leave the workers some CPU

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.join()


def replace(path):
    path.unlink()
    path.touch()


@pytest.mark.slow
@pytest.mark.parametrize("action", ["delete lock", "delete .lock", "replace lock"])
def test_lock_file_deleted_or_replaced_while_workers_run(tmp_path, action):
    directory = make_grid(tmp_path / "sweep", n := 1500)
    lock, twin = directory / "lock", directory / ".lock"
    actions = {
        "delete lock": lock.unlink,
        "delete .lock": twin.unlink,
        "replace lock": lambda: replace(lock),
    }
    workers = [Worker(directory, tmp_path / f"w{k}.txt", 60, work=0.001) for k in range(4)]
    wait_for(lambda: all(w.events("begin") for w in workers), what="every worker to start")
    with Disturber(actions[action]) as disturber:
        assert [w.wait() for w in workers] == [0] * 4, [w.log() for w in workers]
    assert disturber.count >= 20, f"only {disturber.count} disturbances: make the grid bigger"
    check_grid(directory, workers, n)
    assert os.path.samefile(lock, twin)  # the lock file and its twin agree again


@pytest.mark.slow
def test_lock_file_replaced_while_held_still_excludes(tmp_path):
    """``lock`` replaced by a new file while held: the next acquisition waits for the holder of
    the old file (still ``.lock``), then everyone agrees on one file again."""
    directory = make_grid(tmp_path / "sweep", 3)
    holder = DirectoryLock(str(directory))
    with holder:
        replace(directory / "lock")  # a new file under the holder's feet
        entered = threading.Event()

        def other():
            with DirectoryLock(str(directory)):
                entered.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.5)  # excluded, though ``lock`` is another file now
    thread.join(timeout=60)
    assert entered.is_set()
    assert os.path.samefile(directory / "lock", directory / ".lock")


@pytest.mark.slow
def test_directory_deleted_and_recreated_by_a_long_lived_process(tmp_path):
    """A notebook deletes its sweep directory and creates it again while a worker works there,
    and a new worker starts then: the first worker starts over in the new directory (or stops
    with a clear error), and no element is handed out twice in the new directory."""
    directory, n = tmp_path / "sweep", 2000
    make_grid(directory, n)
    notebook_report = tmp_path / "notebook.txt"
    notebook = textwrap.dedent(f"""
        import os, shutil, time
        from execo_engine.sweep import ParamSweeper, sweep
        directory, grid = {str(directory)!r}, sweep({{"i": range({n})}})
        report = os.open({str(notebook_report)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        def say(event, i, when=None):
            when = time.monotonic() if when is None else when
            os.write(report, f"{{event}} {{i}} {{when:.3f}}\\n".encode())
        sweeper = ParamSweeper(directory, grid)
        for _ in range(50):
            say("begin", sweeper.get_next()["i"])
        say("reset-start", -1)
        while os.path.exists(directory):
            shutil.rmtree(directory, ignore_errors=True)
        sweeper = ParamSweeper(directory, grid, save_sweeps=True)
        say("reset-end", -1)
        while True:
            asked = time.monotonic()
            element = sweeper.get_next()
            if element is None:
                if not sweeper.get_inprogress():
                    break
                time.sleep(0.05)
                continue
            say("begin", element["i"], asked)
            sweeper.done(element)
            say("done", element["i"])
    """)

    def events(kind):
        lines = notebook_report.read_text().splitlines() if notebook_report.exists() else []
        return [(int(i), float(t)) for e, i, t in map(str.split, lines) if e == kind]

    worker = Worker(directory, tmp_path / "worker.txt", 60)
    wait_for(lambda: worker.events("begin"), what="the worker to start")
    process = subprocess.Popen([sys.executable, "-c", notebook])
    [(_, reset_end)] = wait_for(lambda: events("reset-end"), what="the directory to be re-made")
    [(_, reset_start)] = events("reset-start")
    late = Worker(directory, tmp_path / "late.txt", 60)  # it only knows the new directory
    assert process.wait(timeout=600) == 0
    assert late.wait() == 0, late.log()
    status = worker.wait()
    assert status == 0 or "while in use" in worker.log(), worker.log()

    lines = (directory / "done").read_bytes().splitlines()
    assert len(lines) == len(set(lines)) == n
    after = Counter(i for i, t in events("begin") if t > reset_end)
    after.update(i for w in (worker, late) for i, t in w.events("begin") if t > reset_end)
    in_flight = {  # asked for by the first worker before the new directory existed
        i for i, t in worker.events("begin") if t <= reset_end
    } - {i for i, t in worker.events("done") if t < reset_start}
    twice = sorted(i for i, count in after.items() if count > 1 and i not in in_flight)
    assert twice == [], f"handed out twice in the new directory: {twice}"


TWO_PATHS = """
import json, sys, threading
from collections import Counter
from execo_engine.sweep import ParamSweeper, sweep
first, second, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ParamSweeper(first, sweep({"i": range(n)}), save_sweeps=True)
sweepers = [ParamSweeper(first), ParamSweeper(second)]
handed = Counter()
lock = threading.Lock()
def work(sweeper):
    while (element := sweeper.get_next()) is not None:
        sweeper.done(element)
        with lock:
            handed[element["i"]] += 1
threads = [threading.Thread(target=work, args=(s,)) for s in sweepers for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(handed))
"""


def check_two_paths(output, n):
    handed = {int(i): count for i, count in json.loads(output).items()}
    assert sorted(handed) == list(range(n))
    assert [i for i, count in handed.items() if count > 1] == []


@pytest.mark.slow
def test_one_process_two_paths_symlink(tmp_path):
    real, link, n = tmp_path / "real", tmp_path / "link", 3000
    real.mkdir()
    link.symlink_to(real)
    result = subprocess.run(
        [sys.executable, "-c", TWO_PATHS, str(real), str(link), str(n)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    check_two_paths(result.stdout, n)


@pytest.mark.slow
def test_one_process_two_paths_bind_mount(tmp_path):
    real, mount, n = tmp_path / "real", tmp_path / "mount", 3000
    real.mkdir()
    mount.mkdir()
    script = f"mount --bind {real} {mount} && exec {sys.executable} -c '{TWO_PATHS}' \"$@\""
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    result = subprocess.run(
        [*command, str(real), str(mount), str(n)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0 and "mount" in result.stderr and "json" not in result.stderr:
        pytest.skip(f"no private bind mount here (needs root): {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    check_two_paths(result.stdout, n)


@pytest.mark.slow
def test_two_instances_on_two_paths_exclude_each_other(tmp_path):
    real, link = tmp_path / "real", tmp_path / "link"
    real.mkdir()
    link.symlink_to(real)
    first, second = DirectoryLock(str(real)), DirectoryLock(str(link))
    with first:
        entered = threading.Event()

        def other():
            with second:
                entered.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.5)
    thread.join(timeout=60)
    assert entered.is_set()


def _descriptors_of(path):
    """This process's descriptors of the file ``path``."""
    wanted = os.stat(path)
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            status = os.stat(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the descriptor of the listing itself
            continue
        found += (status.st_dev, status.st_ino) == (wanted.st_dev, wanted.st_ino)
    return found


def test_lock_is_reentrant_and_keeps_one_descriptor_while_it_lives(tmp_path):
    def descriptors():
        return _descriptors_of(tmp_path / "lock")

    lock, other = DirectoryLock(str(tmp_path)), DirectoryLock(str(tmp_path))
    with lock, lock, other:
        assert descriptors() == 1
    assert descriptors() == 1  # kept for the next acquisition
    del lock, other
    gc.collect()
    assert descriptors() == 0


def test_vanished_directory_is_a_clear_error(tmp_path):
    directory = tmp_path / "sweep"
    sweeper = ParamSweeper(directory, [1, 2, 3])
    shutil.rmtree(directory)
    with pytest.raises(DirectoryVanishedError, match="no longer exists"):
        sweeper.get_next()
    directory.touch()  # a file in its place
    with pytest.raises(DirectoryVanishedError, match="no longer exists"):
        sweeper.get_next()


def test_file_error_under_the_lock_of_a_deleted_directory_says_so(tmp_path):
    directory = tmp_path / "sweep"
    directory.mkdir()
    lock = DirectoryLock(str(directory))
    with pytest.raises(DirectoryVanishedError, match="was deleted or replaced while in use"):
        with lock:
            shutil.rmtree(directory)
            (directory / "inprogress").open("a")
    with pytest.raises(FileNotFoundError, match="inprogress") as error:  # not replaced: as is
        with DirectoryLock(str(tmp_path)):
            (directory / "inprogress").open("a")
    assert type(error.value) is FileNotFoundError


def test_lock_file_that_is_a_symlink_is_refused(tmp_path):
    directory = tmp_path / "sweep"
    ParamSweeper(directory, [1, 2, 3])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.touch()
    for name in ("lock", ".lock"):
        (directory / name).unlink()
        (directory / name).symlink_to(elsewhere)
    with pytest.raises(NotARegularFileError, match=r"lock.*is a symbolic link, not a regular file"):
        ParamSweeper(directory, [1, 2, 3])
    assert elsewhere.read_bytes() == b""


def test_a_lock_collected_inside_a_locked_section_never_waits_and_closes_later(tmp_path):
    """The garbage collector may finalize a DirectoryLock while this very thread holds the
    registry lock (seen in CI: a 120 s hang); its descriptor is closed at the next operation."""

    def descriptors():
        return _descriptors_of(tmp_path / "lock")

    def collect_inside_the_registry_lock():
        lock = DirectoryLock(str(tmp_path))
        with lock:
            pass
        with locking._registry_lock:
            del lock  # its finalizer runs here, in the thread holding the registry lock

    worker = threading.Thread(target=collect_inside_the_registry_lock, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the finalizer waited for a lock its own thread holds"
    assert descriptors() == 1  # not closed yet: the registry lock was taken
    with DirectoryLock(str(tmp_path)):  # the next operation forgets the collected one
        assert descriptors() == 1
    gc.collect()
    assert descriptors() == 0
