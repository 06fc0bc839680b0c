"""Owner identity and directory leases: who is judged by pid, who by heartbeat, what a lease
may be, and the heartbeat files themselves."""

import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from namespaces import wait_for

from execo_engine.errors import CorruptRecordError, NotARegularFileError
from execo_engine.store.directory import liveness
from execo_engine.store.directory.liveness import heartbeats, token
from execo_engine.store.lease import MIN_LEASE
from execo_engine.store.owner import Owner, current_owner, decode_owner, judged_by_pid
from execo_engine.sweep import ParamSweeper, sweep

# -- lease values ---------------------------------------------------------------------------------

BAD_LEASES = [math.nan, math.inf, -math.inf, 0, -1, MIN_LEASE / 2, "soon", True]


@pytest.mark.parametrize("lease", BAD_LEASES, ids=repr)
def test_bad_lease_is_refused_naming_it(tmp_path, lease):
    with pytest.raises(ValueError, match="lease must be a finite number of seconds, at least"):
        ParamSweeper(tmp_path, [1, 2], lease=lease)
    assert not (tmp_path / "owners").exists()


@pytest.mark.parametrize("lease", ["nan", "inf", "0", "-1", "0.5", "soon", "1e400"])
def test_bad_lease_in_a_postgresql_url_is_refused_naming_it(lease):
    url = f"postgresql://user:secret@127.0.0.1:1/db?sweep=s&lease={lease}"
    with pytest.raises(ValueError, match="lease must be a finite number") as error:
        ParamSweeper(url, [1, 2])  # refused before connecting to anything
    assert "&lease=SECONDS" in str(error.value) and "secret" not in str(error.value)


def test_bad_lease_keyword_with_a_postgresql_url_is_refused_before_connecting():
    # port 1: nothing listens there, so reaching the connection would be another error
    with pytest.raises(ValueError, match="lease"):
        ParamSweeper("postgresql://user@127.0.0.1:1/db?sweep=s", [1], lease=0)


def test_shortest_lease_is_accepted(tmp_path):
    sweeper = ParamSweeper(tmp_path, [1, 2], lease=MIN_LEASE)
    assert sweeper.get_next() == 1


# -- owner identity -------------------------------------------------------------------------------


def test_owner_holds_the_pid_namespace():
    me = current_owner()
    assert (me.host, me.pid) == (socket.gethostname(), os.getpid())
    assert me.pidns == os.readlink("/proc/self/ns/pid")
    assert judged_by_pid(me)


def test_only_owners_of_this_host_and_namespace_are_judged_by_pid():
    me = current_owner()
    assert judged_by_pid(me._replace(pid=1))
    assert judged_by_pid(me._replace(pidns=""))  # format 1: as it was then
    assert not judged_by_pid(me._replace(pidns="pid:[1]"))  # a container with our host name
    assert not judged_by_pid(me._replace(host="elsewhere"))


@pytest.mark.parametrize(
    "value,expected",
    [
        (["h", 12, "boot:34"], Owner("h", 12, "boot:34", "")),
        (["h", 12, "boot:34", "pid:[5]"], Owner("h", 12, "boot:34", "pid:[5]")),
    ],
)
def test_owners_of_both_formats_decode(value, expected):
    assert decode_owner(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        ["h", "12", "s"],
        ["h", 10**30, "s"],
        ["h", 0, "s"],
        ["h", True, "s"],
        ["h", "/etc/passwd", "s"],
        ["h", 12, 34],
        [1, 12, "s"],
        ["h", 12],
        ["h", 12, "s", "ns", "x"],
        ["h", 12, "s", 5],
        {"host": "h"},
        "h",
    ],
    ids=repr,
)
def test_owner_of_the_wrong_shape_says_what_was_expected(value):
    with pytest.raises(ValueError, match=r"expected an owner \[host, pid, start, pid namespace\]"):
        decode_owner(value)


def test_claim_with_a_wrong_owner_is_a_corrupt_record_naming_file_and_offset(tmp_path):
    ParamSweeper(tmp_path, [1, 2])
    (tmp_path / "inprogress").write_text(
        '["+",["h",12,"s"],1,0,1.0]\n["+",["h",1e30,"s"],2,1,1.0]\n'
    )
    with pytest.raises(CorruptRecordError, match="inprogress: corrupt record at byte offset 27"):
        ParamSweeper(tmp_path, [1, 2])


def test_format_1_claim_of_a_dead_process_of_this_host_comes_back_at_once(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    pid = int(finished.stdout)
    ParamSweeper(tmp_path, [1, 2])
    record = ["+", [socket.gethostname(), pid, ""], 1, 0, 1.0]
    (tmp_path / "inprogress").write_text(json.dumps(record) + "\n")
    assert ParamSweeper(tmp_path, [1, 2]).get_next() == 1


# -- heartbeats -----------------------------------------------------------------------------------


def write_heartbeat(directory, owner, beat, mtime, lease=MIN_LEASE):
    path = directory / "owners" / token(owner)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"owner": list(owner), "lease": lease, "beat": beat}) + "\n")
    os.utime(path, (mtime, mtime))
    return path


def claim_by(directory, owner, element):
    with (directory / "inprogress").open("a") as f:
        f.write(json.dumps(["+", list(owner), element, None, time.time()]) + "\n")


@pytest.mark.slow
def test_foreign_owner_is_judged_by_its_heartbeat_not_by_any_clock(tmp_path):
    """An owner on another host keeps its claim while its heartbeat file changes, whatever its
    clock says (file times a million seconds off), and loses it once the file has not changed
    for its lease as this reader saw it; its heartbeat file is removed then."""
    sweeper = ParamSweeper(tmp_path, [1, 2, 3], lease=MIN_LEASE)
    far = Owner("far-host", 4242, "boot:1", "pid:[4026531836]")
    beat = 0
    path = write_heartbeat(tmp_path, far, beat, time.time() - 1e6)  # its clock: far behind
    claim_by(tmp_path, far, 2)
    until = time.monotonic() + 3 * MIN_LEASE
    while time.monotonic() < until:  # it beats every lease/10: its claim stays
        beat += 1
        write_heartbeat(tmp_path, far, beat, time.time() - 1e6)
        assert sweeper.get_inprogress() == [2]
        time.sleep(MIN_LEASE / 10)  # the pace of its heartbeats
    write_heartbeat(tmp_path, far, beat + 1, time.time() + 1e6)  # its last, clock far ahead
    silent_at = time.monotonic()
    wait_for(lambda: sweeper.get_inprogress() == [], what="the silent owner's claim to come back")
    assert time.monotonic() - silent_at >= MIN_LEASE  # not before its lease
    assert not path.exists()
    assert sweeper.get_next() == 1 and sweeper.get_next() == 2


@pytest.mark.slow
def test_foreign_owner_without_heartbeat_file_loses_its_claim_after_the_lease(tmp_path):
    """A container with this host's name but another PID namespace, whose pid 1 is alive here
    too: judged by lease, not by pid (no heartbeat file: dead a lease after the first look)."""
    sweeper = ParamSweeper(tmp_path, [1, 2], lease=MIN_LEASE)
    container = current_owner()._replace(pid=1, start="x", pidns="pid:[1]")
    claim_by(tmp_path, container, 1)
    assert sweeper.get_inprogress() == [1]  # the pid 1 of this namespace says nothing about it
    first_look = time.monotonic()
    wait_for(lambda: sweeper.get_inprogress() == [], what="the claim to come back")
    assert time.monotonic() - first_look >= MIN_LEASE * 0.9  # (first look: inside the call)


HOLDER = textwrap.dedent("""
    import sys
    from execo_engine.sweep import ParamSweeper
    sweeper = ParamSweeper(sys.argv[1], lease=float(sys.argv[2]))
    print(sweeper.get_next(), flush=True)
    sys.stdin.read()  # hold the claim until told
""")


def start_holder(directory, lease=MIN_LEASE):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), str(lease)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() != "None"
    return holder


@pytest.mark.slow
def test_holder_heartbeats_and_removes_its_file_at_exit(tmp_path):
    ParamSweeper(tmp_path, [1, 2], save_sweeps=True)
    holder = start_holder(tmp_path)
    [path] = (tmp_path / "owners").iterdir()  # written before its claim
    first = path.read_bytes()
    wait_for(lambda: path.read_bytes() != first, what="a heartbeat")
    [beat] = heartbeats(str(tmp_path)).values()
    assert (beat.owner.host, beat.owner.pid, beat.lease) == (socket.gethostname(), holder.pid, 1)
    holder.stdin.close()
    assert holder.wait(timeout=60) == 0
    assert list((tmp_path / "owners").iterdir()) == []


def test_a_process_ending_after_a_pause_longer_than_its_lease_says_so(tmp_path, caplog):
    """A process resumed after a pause, and ending before its heart beat again, still logs
    that other instances may have taken its claims back (a flaky namespace test showed it)."""
    beating = liveness._Beating(str(tmp_path), current_owner())  # no heart: no thread beats
    beating.leases.append(MIN_LEASE)
    beating.beat()
    time.sleep(MIN_LEASE * 1.2)  # the pause under test, not a synchronization
    beating.stop()
    assert "this process did not heartbeat for" in caplog.text
    assert list((tmp_path / "owners").iterdir()) == []


def test_a_process_ending_within_its_lease_says_nothing_of_a_pause(tmp_path, caplog):
    beating = liveness._Beating(str(tmp_path), current_owner())
    beating.leases.append(MIN_LEASE)
    beating.beat()
    beating.stop()
    assert "did not heartbeat" not in caplog.text


def test_killed_holder_file_is_removed_with_its_claims(tmp_path):
    ParamSweeper(tmp_path, [1, 2], save_sweeps=True)
    holder = start_holder(tmp_path)
    holder.kill()
    holder.wait(timeout=60)
    assert len(list((tmp_path / "owners").iterdir())) == 1
    assert ParamSweeper(tmp_path).get_inprogress() == []  # reclaimed at once: same namespace
    assert list((tmp_path / "owners").iterdir()) == []


@pytest.mark.slow
def test_status_shows_each_owner_heartbeat_age(tmp_path):
    ParamSweeper(tmp_path, sweep({"i": [1, 2]}), save_sweeps=True)
    holder = start_holder(tmp_path)
    try:
        command = [sys.executable, "-m", "execo_engine", "status", str(tmp_path)]
        report = json.loads(subprocess.check_output([*command, "--json"], timeout=120))
        [claim] = report["sweeps"][0]["claims"]
        assert claim["pid"] == holder.pid and 0 <= claim["heartbeat_age"] < 60
        text = subprocess.check_output(command, text=True, timeout=120)
        assert f"pid {holder.pid}, for " in text and "s ago" in text and "heartbeat" in text
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_heartbeat_file_that_is_not_regular_is_refused(tmp_path):
    (tmp_path / "owners").mkdir()
    os.mkfifo(tmp_path / "owners" / token(current_owner()))
    # a writer heartbeats from its creation (the skips of its instance last while it lives)
    with pytest.raises(NotARegularFileError, match=r"owners/.*is a FIFO, not a regular file"):
        ParamSweeper(tmp_path, [1, 2])
    assert ParamSweeper(tmp_path, [1, 2], read_only=True).get_inprogress() == []


def test_owners_directory_that_is_a_symlink_is_refused(tmp_path):
    directory, elsewhere = tmp_path / "sweep", tmp_path / "elsewhere"
    elsewhere.mkdir()
    directory.mkdir()
    (directory / "owners").symlink_to(elsewhere)
    with pytest.raises(OSError, match="owners is not a directory"):
        ParamSweeper(directory, [1, 2])
    assert list(elsewhere.iterdir()) == []


def test_a_sweeper_dropped_while_its_thread_holds_the_heartbeat_lock_does_not_hang(tmp_path):
    """A garbage collection may run a Liveness finalizer in a thread that is changing the
    heartbeats (in _start_beating, or the heart's thread in a beat): the finalizer must not
    wait for the lock its own thread holds; its heartbeat file goes as that thread leaves."""
    held = [ParamSweeper(tmp_path / "dropped", [1, 2])]
    owners = tmp_path / "dropped" / "owners"
    assert len(list(owners.iterdir())) == 1

    def drop_inside_a_section():
        with liveness._beatings_lock:
            held.clear()  # its finalizer runs here, inside the section
            assert len(list(owners.iterdir())) == 1  # its stop waits for the section's end

    thread = threading.Thread(target=drop_inside_a_section, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "a finalizer waited for the lock of its own thread"
    assert list(owners.iterdir()) == []
