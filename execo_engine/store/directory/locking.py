"""Exclusive lock on a persistence directory, across threads, instances, processes and hosts.

The lock is ``fcntl.lockf`` on the directory's ``lock`` file (it works over NFS). Such locks
belong to a process, not to an open file: a second lock in the same process succeeds at once,
and closing *any* descriptor of the file drops them. So each process keeps one registry entry per
lock file *identity* (device, inode), whatever path reached it (a symlinked path, a bind mount):
a re-entrant thread lock, and the one descriptor through which the process locks that file. The
descriptor lives only while some thread of the process holds or waits for the lock, and no other
descriptor of the file is ever closed meanwhile.

The lock file must stay the same file for the lock to mean anything, so:

- every acquisition opens ``lock`` again by its path (never through a symbolic link) and, once
  the file is locked, checks that ``lock`` still names the locked file, else starts over;
- the same file has a second name, ``.lock``: when someone deletes ``lock`` (an empty file looks
  stale), it is linked back from ``.lock``, so the lock stays the one every process holds; when
  ``lock`` was replaced by another file, ``.lock`` wins and ``lock`` is linked back to it;
- a directory that no longer exists is a :class:`DirectoryVanishedError`, never a lock on a file
  that nobody else can find. A directory replaced by a new one simply has a new lock: the journals
  notice their files changed and start over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
import weakref
from collections.abc import Iterator
from types import TracebackType
from typing import Self

from execo_engine.errors import DirectoryVanishedError
from execo_engine.store.directory.files import open_regular, refused

LOCK_FILE = "lock"
TWIN_FILE = ".lock"  #: a second name of the lock file, to restore ``lock`` from

_Key = tuple[int, int]  # (st_dev, st_ino) of a lock file


class _Entry:
    """The lock of one lock file in this process."""

    def __init__(self, key: _Key, fd: int) -> None:
        self.key = key
        self.fd = fd
        self.extra_fds: list[int] = []  # other descriptors of the file, closed with ``fd``
        self.thread_lock = threading.RLock()
        self.depth = 0  # nested holds by the thread holding ``thread_lock``
        self.users = 0  # threads holding or waiting for it
        self.refs = 0  # DirectoryLock instances that remember it
        self.closed = False

    def unref(self, users: int = 0, refs: int = 0) -> None:
        """Count ``users`` and ``refs`` fewer (under the registry lock); the entry closes its
        descriptors once no thread uses it and no instance remembers it (closing one while a
        thread of the process holds the lock would drop the lock)."""
        self.users -= users
        self.refs -= refs
        if self.users == 0 and self.refs == 0 and not self.closed:
            self.closed = True
            if _registry.get(self.key) is self:
                del _registry[self.key]
            for fd in [self.fd, *self.extra_fds]:
                os.close(fd)


_registry: dict[_Key, _Entry] = {}
_registry_lock = threading.Lock()
#: What collected DirectoryLocks remembered, to forget under the registry lock: their finalizer
#: only queues it, as the garbage collector may run it inside a locked section of the very
#: thread that holds the (non-reentrant) registry lock, where waiting for it would never end.
_collected: list[_Memory] = []


def _forget_collected() -> None:
    """Forget what collected DirectoryLocks remembered (under the registry lock)."""
    while _collected:
        _collected.pop().forget_locked()


def _collect(memory: _Memory) -> None:
    """The finalizer of a DirectoryLock: forget what it remembered now if the registry lock is
    free, else queue it for the next holder of the lock (never wait: see :data:`_collected`)."""
    _collected.append(memory)
    if _registry_lock.acquire(blocking=False):
        try:
            _forget_collected()
        finally:
            _registry_lock.release()


def _after_fork_in_child() -> None:
    # File locks are not inherited, and another thread may have held a lock at fork time.
    global _registry_lock
    _registry_lock = threading.Lock()
    _collected.clear()
    for entry in _registry.values():
        entry.closed = True
        for fd in [entry.fd, *entry.extra_fds]:
            with contextlib.suppress(OSError):
                os.close(fd)
    _registry.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _key(status: os.stat_result) -> _Key:
    return status.st_dev, status.st_ino


def _lstat(path: str) -> os.stat_result | None:
    """The status of ``path`` itself, None when it (or its directory) is gone."""
    try:
        return os.stat(path, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _lstat_key(path: str) -> _Key | None:
    status = _lstat(path)
    return None if status is None else _key(status)


class _Memory:
    """The entry a DirectoryLock remembers (apart, for its finalizer)."""

    entry: _Entry | None = None

    def forget(self, stale: _Entry) -> None:
        """No longer remember the ``stale`` entry."""
        with _registry_lock:
            _forget_collected()
            self.forget_locked(stale)

    def forget_locked(self, stale: _Entry | None = None) -> None:
        """Remember nothing (the lock is garbage), or no longer the ``stale`` entry; under the
        registry lock."""
        entry = self.entry
        if entry is None or (stale is not None and entry is not stale):
            return
        self.entry = None
        if not entry.closed:
            entry.unref(refs=1)


class DirectoryLock:
    """Context manager holding the exclusive lock of ``directory`` (re-entrant per thread).

    ``DirectoryVanishedError`` when the directory no longer exists; ``OSError`` naming the file
    when ``lock`` or ``.lock`` is a symbolic link or not a regular file. The instance keeps the
    lock file open while it lives (and the file stays the directory's lock): each acquisition
    then costs ``lockf`` and one ``lstat``.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._lock_path = os.path.join(directory, LOCK_FILE)
        self._twin_path = os.path.join(directory, TWIN_FILE)
        self._held = threading.local()  # .entry held by this thread through self, .count times
        self._memory = _Memory()  # the entry of the last acquisition
        weakref.finalize(self, _collect, self._memory)

    def __enter__(self) -> Self:
        if getattr(self._held, "count", 0):  # this thread holds it through self already
            self._held.count += 1
            return self
        while True:
            entry = self._entry()
            entry.thread_lock.acquire()
            locked = False
            try:
                if entry.depth == 0:
                    fcntl.lockf(entry.fd, fcntl.LOCK_EX)
                    locked = True
                    if not self._is_current(entry):
                        fcntl.lockf(entry.fd, fcntl.LOCK_UN)
                        self._leave(entry)
                        self._memory.forget(entry)
                        continue
            except BaseException:
                if locked:
                    fcntl.lockf(entry.fd, fcntl.LOCK_UN)
                self._leave(entry)
                raise
            entry.depth += 1
            self._held.entry, self._held.count = entry, 1
            return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Release the lock; a file error raised under it because the directory was deleted
        or replaced meanwhile (its ``lock`` is another file now) becomes a
        :class:`DirectoryVanishedError` saying so."""
        self._held.count -= 1
        if self._held.count:
            return
        entry: _Entry = self._held.entry
        self._held.entry = None
        entry.depth -= 1
        replaced = (
            isinstance(exc, OSError)
            and not isinstance(exc, DirectoryVanishedError)
            and _lstat_key(self._lock_path) != entry.key
        )
        try:
            if entry.depth == 0:
                fcntl.lockf(entry.fd, fcntl.LOCK_UN)
        finally:
            self._leave(entry)
        if replaced:
            raise DirectoryVanishedError(
                f"persistence directory {self.directory!r} was deleted or replaced while in use "
                f"({exc}): the operation did not complete; the next one starts over with the "
                f"directory as it is then"
            ) from exc

    def release(self) -> None:
        """Close the lock file's descriptor, unless a thread of this process holds or waits for
        the lock, or another instance uses the same file (it is closed when the last of them
        is done); the next acquisition opens it again."""
        with _registry_lock:
            _forget_collected()
            self._memory.forget_locked()

    # -- the entry of the lock file --------------------------------------------------------

    def _entry(self) -> _Entry:
        """The entry this instance remembers, else the one of the file ``lock`` names now
        (opened, or restored, if need be); counted as used by this thread."""
        with _registry_lock:
            _forget_collected()
            entry = self._memory.entry
            if entry is None or entry.closed:
                key = _lstat_key(self._lock_path)
                entry = _registry.get(key) if key is not None else None
                if entry is None:
                    fd = self._open()
                    key = _key(os.fstat(fd))
                    entry = _registry.get(key)
                    if entry is None:
                        entry = _registry[key] = _Entry(key, fd)
                    else:  # closing it now could drop a lock another thread holds
                        entry.extra_fds.append(fd)
                entry.refs += 1
                self._memory.entry = entry
            entry.users += 1
            return entry

    def _leave(self, entry: _Entry) -> None:
        """This thread no longer holds nor waits for ``entry``."""
        entry.thread_lock.release()
        with _registry_lock:
            entry.unref(users=1)

    def _open(self) -> int:
        """A descriptor of the lock file, restoring ``lock`` from ``.lock`` (or creating both)
        when it is missing."""
        while True:
            with self._errors_named():
                try:
                    return open_regular(self._lock_path, os.O_RDWR)[0]
                except FileNotFoundError:
                    pass
            with self._errors_named():
                try:
                    self._twin_status()  # never link a symbolic link (or worse) as ``lock``
                    os.link(self._twin_path, self._lock_path, follow_symlinks=False)
                    continue
                except FileExistsError:  # restored or created meanwhile
                    continue
                except FileNotFoundError:
                    pass
                try:
                    fd = open_regular(self._twin_path, os.O_RDWR | os.O_CREAT | os.O_EXCL)[0]
                except FileExistsError:
                    continue
                except FileNotFoundError:
                    if os.path.isdir(self.directory):  # created again meanwhile
                        continue
                    raise
            # made meanwhile, or the directory vanished again: checked once locked
            with contextlib.suppress(FileExistsError, FileNotFoundError):
                os.link(self._twin_path, self._lock_path, follow_symlinks=False)
            return fd

    def _is_current(self, entry: _Entry) -> bool:
        """Whether ``lock`` (and ``.lock``) still name the file locked through ``entry``;
        repairs ``.lock`` when it is missing, and ``lock`` when ``.lock`` names another file."""
        status = _lstat(self._lock_path)
        if status is None or _key(status) != entry.key:
            return False
        if status.st_nlink == 2:  # ``lock`` and ``.lock``, the only names ever made
            return True
        twin_status = self._twin_status()
        twin = None if twin_status is None else _key(twin_status)
        if twin == entry.key:
            return True
        with self._errors_named():
            if twin is None:
                with contextlib.suppress(FileExistsError, FileNotFoundError):
                    os.link(self._lock_path, self._twin_path, follow_symlinks=False)
            else:  # ``lock`` was replaced: whoever holds the file of ``.lock`` still works
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._lock_path)
        return _lstat_key(self._lock_path) == _lstat_key(self._twin_path) == entry.key

    def _twin_status(self) -> os.stat_result | None:
        """The status of ``.lock`` (None: there is none); a :class:`NotARegularFileError`
        naming it when it is a symbolic link or not a regular file, before anything is
        changed: restoring ``lock`` from it, or unlinking ``lock`` in its favour, would put a
        file that is no lock file (or that leads elsewhere) in its place."""
        status = _lstat(self._twin_path)
        if status is not None and not stat.S_ISREG(status.st_mode):
            raise refused(self._twin_path, status.st_mode)
        return status

    @contextlib.contextmanager
    def _errors_named(self) -> Iterator[None]:
        """Turn the errors of a vanished directory into a message that says what happened and
        what to do (anything but a regular file in place of a lock file is refused by
        :func:`~execo_engine.store.directory.files.open_regular`, naming it)."""
        try:
            yield
        except (FileNotFoundError, NotADirectoryError):
            raise DirectoryVanishedError(
                f"persistence directory {self.directory!r} no longer exists (deleted or moved "
                f"while in use): create it again, or open a new ParamSweeper, to start over"
            ) from None
