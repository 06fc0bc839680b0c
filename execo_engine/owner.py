"""Who holds a claim: ``(host, pid, start)``, and whether that process still exists.

``start`` tells a process apart from a later one that reuses its pid: on Linux the boot id and
the process start time from ``/proc``; elsewhere empty (then only the pid is checked).
"""

from __future__ import annotations

import os
import socket

Owner = tuple[str, int, str]

_HOST = socket.gethostname()


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


_BOOT_ID = _boot_id()


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


_current: tuple[int, Owner] | None = None


def current_owner() -> Owner:
    """The owner identity of the calling process (recomputed after a fork)."""
    global _current
    pid = os.getpid()
    if _current is None or _current[0] != pid:
        _current = (pid, (_HOST, pid, _start_marker(pid) or ""))
    return _current[1]


def is_dead(owner: Owner) -> bool:
    """True only when ``owner`` was a process of this host that no longer runs.

    Owners of other hosts cannot be checked from here: they are never reported dead.
    """
    host, pid, start = owner
    if host != _HOST:
        return False
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
