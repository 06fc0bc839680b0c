"""Group commit: the processes of one host that finish at the same moment share one flush.

``done()`` returns only once its record is on disk. Each process appends its records under
the directory lock and flushes (``fsync``) after releasing it; without coordination, every
process pays its own flush and they queue behind each other's. Here a process flushes a
journal holding the host's *flush lock* (an open file description lock on
``flushed.<boot id>`` in the directory, plus a lock per process): before flushing it reads what the
last completed flush covered, the journal's inode and size when that flush began, and returns at
once if its own records end within it; otherwise it notes the size, flushes, and records it. While
one process flushes, the others append and wait; the next one's flush then covers all of them.

Only flushes of this host count: a flush on another host (NFS) does not write this host's
pages, hence one file per kernel (its boot id). The file is a hint about durability, never
data: a missing, foreign or malformed one only costs a flush. A journal cut shorter (a torn
record repaired, a failed append undone) forgets what its flushes covered (:meth:`forget`),
so that records appended again at the same offsets are flushed.

The flush lock is an open file description lock (``F_OFD_SETLKW``), not a ``lockf`` one: the
kernel judges ``lockf`` deadlocks by process, and a process whose one thread flushes while
another waits for the directory lock held by a process waiting to flush would get a false
``EDEADLK``. Where the kernel has no such locks, every process flushes on its own.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import threading
from collections.abc import Callable

from execo_engine.store.directory.files import open_regular

_SLOT_SIZE = 42  # one text line a journal: its inode and its size when the flush began
_DIGITS = re.compile(rb"[0-9]{20} [0-9]{20}\n")  # the text of a slot
_SLOTS = {"done": 0, "results": 1}  # the journals whose records are flushed
_OFD_SETLKW: int | None = getattr(fcntl, "F_OFD_SETLKW", None)
_FLOCK = "hhqqi4x"  # struct flock: type, whence, start, length (0: to the end), pid (0 for OFD)
_WRITE_LOCK = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
_UNLOCK = struct.pack(_FLOCK, fcntl.F_UNLCK, os.SEEK_SET, 0, 0, 0)


def _slot(inode: int, covered: int) -> bytes:
    """The text of a journal's line in the flush file."""
    return f"{inode:020d} {covered:020d}\n".encode()


def _parse(data: bytes) -> tuple[int, int]:
    """``(inode, covered)`` of a line of the flush file; ``(0, 0)`` (nothing covered) for
    anything else: a missing, short or foreign line only costs a flush."""
    if len(data) != _SLOT_SIZE or not _DIGITS.fullmatch(data):
        return 0, 0
    return int(data[:20]), int(data[21:41])


def _boot_id() -> str:
    """The identity of this kernel (its page cache): the same for all its processes and
    containers, another one after a reboot."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            return file.read().strip()
    except OSError:
        return "host-" + os.uname().nodename


_BOOT_ID = _boot_id()
_process_locks: dict[tuple[int, int], threading.Lock] = {}  # by the flush file's identity
_process_locks_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _process_locks, _process_locks_lock
    _process_locks, _process_locks_lock = {}, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class GroupFlush:
    """The flushes of the journals of ``directory`` by the processes of this host."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, f"flushed.{_BOOT_ID}")
        self._fd: int | None = None
        self._process_lock = threading.Lock()

    def _open(self) -> int:
        if self._fd is None:
            fd, status = open_regular(self.path, os.O_RDWR | os.O_CREAT)
            with _process_locks_lock:
                lock = _process_locks.setdefault((status.st_dev, status.st_ino), threading.Lock())
            self._fd, self._process_lock = fd, lock
        return self._fd

    def _locked(self, action: Callable[[int], None]) -> None:
        """Call ``action`` with the flush file's descriptor, holding the flush lock (of this
        process's threads, then of the host's processes). The thread lock is a ``with`` of its
        own, so that an exception raised anywhere (a signal handler's) never leaves it held.
        (A function called under the lock rather than a generator context manager: every
        ``done()`` takes it, and a generator's set-up costs about a microsecond more.)"""
        fd = self._open()
        with self._process_lock:  # for the threads of a process sharing the flush file
            assert _OFD_SETLKW is not None
            fcntl.fcntl(fd, _OFD_SETLKW, _WRITE_LOCK)
            try:
                action(fd)
            finally:
                fcntl.fcntl(fd, _OFD_SETLKW, _UNLOCK)

    def flush(self, name: str, fd: int, end: int) -> None:
        """Make journal ``name`` (open as ``fd``) durable up to byte ``end`` (its records'
        end), by this call's ``fsync`` or by one that began after they were written."""
        if _OFD_SETLKW is None:
            os.fsync(fd)
            return
        slot = _SLOTS[name] * _SLOT_SIZE

        def flush_unless_covered(marks: int) -> None:
            inode, covered = _parse(os.pread(marks, _SLOT_SIZE, slot))
            status = os.fstat(fd)
            if inode == status.st_ino and covered >= end:
                return
            os.fsync(fd)  # covers every byte written before it began: status.st_size
            os.pwrite(marks, _slot(status.st_ino, status.st_size), slot)

        self._locked(flush_unless_covered)

    def forget(self, name: str) -> None:
        """Journal ``name`` was cut shorter: what earlier flushes covered no longer tells."""
        if _OFD_SETLKW is None:
            return
        slot = _SLOTS[name] * _SLOT_SIZE

        def cover_nothing(marks: int) -> None:
            os.pwrite(marks, _slot(0, 0), slot)

        self._locked(cover_nothing)

    def close(self) -> None:
        """Close the flush file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
