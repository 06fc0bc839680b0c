"""Exclusive lock on a persistence directory, across threads, instances and processes.

``fcntl.lockf`` locks work across processes and hosts (NFS included) but belong to a process,
not to an open file: a second lock in the same process succeeds at once, and closing *any*
descriptor of the file drops them. So each process keeps one registry entry per directory: a
re-entrant thread lock, and one lock-file descriptor that is never closed. Every
:class:`DirectoryLock` on the same directory in a process shares that entry.
"""

from __future__ import annotations

import fcntl
import os
import threading
from types import TracebackType
from typing import Self

LOCK_FILE = "lock"


class _Entry:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.thread_lock = threading.RLock()
        self.depth = 0


_registry: dict[str, _Entry] = {}
_registry_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # Another thread may have held a lock at fork time; file locks are not inherited anyway.
    global _registry_lock
    _registry_lock = threading.Lock()
    for entry in _registry.values():
        entry.thread_lock = threading.RLock()
        entry.depth = 0


os.register_at_fork(after_in_child=_after_fork_in_child)


class DirectoryLock:
    """Context manager holding the exclusive lock of ``directory`` (re-entrant per thread)."""

    def __init__(self, directory: str) -> None:
        key = os.path.realpath(directory)
        with _registry_lock:
            entry = _registry.get(key)
            if entry is None:
                fd = os.open(
                    os.path.join(key, LOCK_FILE),
                    os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o644,
                )
                entry = _registry[key] = _Entry(fd)
        self._entry = entry

    def __enter__(self) -> Self:
        entry = self._entry
        entry.thread_lock.acquire()
        if entry.depth == 0:
            try:
                fcntl.lockf(entry.fd, fcntl.LOCK_EX)
            except BaseException:
                entry.thread_lock.release()
                raise
        entry.depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        entry = self._entry
        entry.depth -= 1
        if entry.depth == 0:
            fcntl.lockf(entry.fd, fcntl.LOCK_UN)
        entry.thread_lock.release()
