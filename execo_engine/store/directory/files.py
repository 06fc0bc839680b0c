"""The files of a sweep directory, opened and replaced safely: only regular files are opened
(never through a symbolic link, never blocking on a FIFO), replacements are atomic and durable
(temporary file, fsync, rename, fsync of the directory), and a failed write names its file."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import uuid

from execo_engine.errors import NotARegularFileError
from execo_engine.log import logger
from execo_engine.paths import not_a_directory

_TEMPORARY = re.compile(r"\.[0-9a-f]{32}\.tmp")  # what follows the name in a temporary's


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def refused(path: str, mode: int) -> NotARegularFileError:
    """The error for ``path``, of ``mode``, found where a regular file must be."""
    return NotARegularFileError(
        errno.EINVAL,
        f"is {_kind(mode)}, not a regular file (never followed nor read: remove it, or move "
        f"it away, and run again)",
        path,
    )


def open_regular(
    path: str, flags: int, mode: int = 0o644, dir_fd: int | None = None, shown: str | None = None
) -> tuple[int, os.stat_result]:
    """Open ``path`` (``os.open`` ``flags``, relative to ``dir_fd`` if given) only if it is a
    regular file: never through a symbolic link, and without blocking on a FIFO; returns the
    descriptor and its status.

    Anything else is a :class:`NotARegularFileError` naming it (as ``shown``, default
    ``path``). The one way this store opens a file it did not just create.
    """
    try:
        fd = os.open(
            path, flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd
        )
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EWOULDBLOCK):
            raise
        status = os.lstat(path, dir_fd=dir_fd)
        raise refused(shown or path, status.st_mode) from None
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise refused(shown or path, status.st_mode)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return fd, status


def named(error: OSError, path: str) -> OSError:
    """``error`` (of a write, say ENOSPC) naming ``path``, with what to do."""
    hint = " (free some space, then run again)" if error.errno == errno.ENOSPC else ""
    return type(error)(error.errno, f"{error.strerror}{hint}", path)


def fsync_directory(directory: str) -> None:
    """Make the creation or renaming of entries in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def replace_atomically(path: str, data: bytes) -> None:
    """Make ``path`` hold ``data``, durably, so that readers see the old or the new content."""
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise named(error, temporary) from None
        raise
    fsync_directory(os.path.dirname(path) or ".")


def remove_stale_temporaries(directory: str, names: tuple[str, ...]) -> None:
    """Remove the temporaries of :func:`replace_atomically` for files ``names`` of
    ``directory``, left by a writer killed midway. Only with the directory lock held, where
    every replacement of these files is made: no such temporary then belongs to a live
    writer."""
    for entry in os.scandir(directory):
        name = entry.name.split(".", 1)[0]
        if name in names and _TEMPORARY.fullmatch(entry.name, len(name)):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            logger.warning("%s: removed a temporary file left by a failed rewrite", entry.path)


def check_directory_path(path: str) -> None:
    """``NotADirectoryError`` naming the component of ``path`` that is in the way of a
    persistence directory there (a file: the path itself, or one above it)."""
    problem = not_a_directory(path)
    if problem is not None:
        joined = " " if problem.startswith("exists") else ": "
        raise NotADirectoryError(f"persistence directory {path!r}{joined}{problem}")
