"""Who holds a claim: ``(host, pid, start, pidns)``, and whether that process still exists.

- ``host``: the host name (private to a UTS namespace: containers may share one);
- ``pid``: the process id, meaningful only inside its PID namespace;
- ``start``: tells a process apart from a later one that reuses its pid: on Linux the boot id and
  the process start time from ``/proc``; elsewhere empty (then only the pid is checked);
- ``pidns``: the PID namespace (``pid:[inode]`` on Linux, ``""`` where unknown).

Only an owner of this very host and PID namespace can be judged by its pid, at once
(:func:`is_dead`); any other one (another host, another container, even with the same host name)
is judged by its lease (:mod:`execo_engine.store.lease`). Records written before the namespace
was recorded (format 1) hold 3-field owners: :func:`decode_owner` reads them with ``pidns=""``, and
an owner of this host with an unknown namespace is judged by pid, as it was then.

A skip is held by an :class:`Instance` (one ParamSweeper, one store object): the process that
created it, and its number among the store objects that process created. The processes it is
forked into share it (a copy of the object); it lasts while the process that created it lives.
"""

from __future__ import annotations

import itertools
import os
import socket
from typing import Any, NamedTuple

#: The largest pid accepted in a record (pids are C ints everywhere).
MAX_PID = 2**31 - 1


class Owner(NamedTuple):
    """The identity of a process that holds claims (a tuple: it is hashable and compares as
    one, and is written as the JSON list of its fields)."""

    host: str
    pid: int
    start: str
    pidns: str = ""


_HOST = socket.gethostname()


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


_BOOT_ID = _read("/proc/sys/kernel/random/boot_id")


def _proc_is_ours() -> bool:
    """Whether ``/proc`` shows the processes of our PID namespace (not so after ``unshare
    --pid`` without ``--mount-proc``: pids read there would be other processes')."""
    try:
        return os.readlink("/proc/self") == str(os.getpid())
    except OSError:
        return False


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 and on of ``/proc/PID/stat`` (the command name may hold spaces), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):  # gone, maybe between open and read
        return None
    return text[text.rfind(")") + 2 :].split()


def _start_marker(pid: int) -> str | None:
    """The start marker of ``pid``, "" where /proc is missing, None if no such process."""
    if not _BOOT_ID:
        return ""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):  # gone, or a zombie waiting to be reaped
        return None
    return f"{_BOOT_ID}:{fields[19]}"


_current: tuple[Owner, bool] | None = None


def _forget_identity() -> None:
    """After a fork, in the child: its identity is computed again at its first use."""
    global _current
    _current = None


# A process's pid, start and PID namespace change only when it is forked (a process that
# enters a new PID namespace keeps its own; its children get pids there): reading the pid at
# every call would cost a system call per claim.
os.register_at_fork(after_in_child=_forget_identity)


def _identity() -> tuple[Owner, bool]:
    """This process's owner, and whether its ``/proc`` can judge same-namespace pids (both
    computed at the first call, and again after a fork)."""
    global _current
    if _current is None:
        pid = os.getpid()
        proc_ok = _proc_is_ours()
        start = (_start_marker(pid) or "") if proc_ok else ""
        _current = (Owner(_HOST, pid, start, _pid_namespace()), proc_ok)
    return _current


def current_owner() -> Owner:
    """The owner identity of the calling process (recomputed after a fork)."""
    return _identity()[0]


def decode_owner(value: Any) -> Owner:
    """The owner a record holds: ``[host, pid, start, pidns]``, or ``[host, pid, start]``
    (format 1, ``pidns=""``).

    ``ValueError`` saying what was expected when ``value`` is of another shape or type (the
    caller adds where the record stands).
    """
    if type(value) is list and len(value) in (3, 4):
        host, pid, start, *namespace = value
        if (
            type(host) is str
            and type(pid) is int
            and 0 < pid <= MAX_PID
            and type(start) is str
            and all(type(field) is str for field in namespace)
        ):
            return Owner(host, pid, start, *namespace)
    raise ValueError(
        f"expected an owner [host, pid, start, pid namespace] (or [host, pid, start]): "
        f"host, start and namespace strings, pid an integer from 1 to {MAX_PID}; got "
        f"{_short(value)}"
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def judged_by_pid(owner: Owner) -> bool:
    """Whether ``owner`` is a process this process can see by pid: same host, same PID
    namespace (or one not recorded: format 1), with a ``/proc`` of this namespace."""
    me, proc_ok = _identity()
    return owner.host == me.host and owner.pidns in (me.pidns, "") and (proc_ok or not _BOOT_ID)


def is_dead(owner: Owner) -> bool:
    """True only when ``owner`` was a process of this host and PID namespace that no longer
    runs (see :func:`judged_by_pid`); never for any other owner."""
    if not judged_by_pid(owner):
        return False
    _, pid, start, _ = owner
    if start and _BOOT_ID and not start.startswith(_BOOT_ID + ":"):
        return True  # this host rebooted since
    if start:
        return _start_marker(pid) != start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


class Instance(NamedTuple):
    """A store object, as a skip names its holder: ``owner`` created it (what dies with it),
    ``number`` tells it apart from the other store objects that process created. A forked
    child's copy of the object is the same instance; a new object (another ParamSweeper, a
    relaunch, another host) is another one."""

    owner: Owner
    number: int


_numbers = itertools.count(1)  # a forked child goes on from its parent's count: its owner differs


def new_instance() -> Instance:
    """A new instance, created by the calling process."""
    return Instance(current_owner(), next(_numbers))
