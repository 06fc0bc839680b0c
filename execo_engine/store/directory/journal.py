"""An append-only file of newline-terminated records, read incrementally.

A record is complete only with its final newline. A torn last record (a writer crashed in the
middle of its append) is ignored on read, and cut off when the reader holds the directory lock
(``repair=True``): no live writer can then be in the middle of an append. The file may be
replaced atomically (compaction: temporary file + rename) or deleted by a user; a reader notices
(another inode, a shorter file, no file) and starts over from the beginning of what is there.

Only regular files are opened (:func:`~execo_engine.store.directory.files.open_regular`): a FIFO, a
device or a symbolic link in place of a journal is an error naming it, never a blocked reader. A
file cut short in the middle of a record where a complete one was expected is a
:class:`CorruptRecordError`; a failed write names the file.

Every method except :meth:`Journal.read_new` with ``repair=False`` must be called with the
directory lock held, and :meth:`Journal.append` right after :meth:`Journal.read_new` in the same
locked section (the journal must be read to its end before anything is appended).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from execo_engine.errors import CorruptRecordError
from execo_engine.log import logger
from execo_engine.store.directory.files import (
    fsync_directory,
    named,
    open_regular,
    replace_atomically,
    write_all,
)
from execo_engine.store.log.records import Locate

_NEWLINE = b"\n"
CHUNK = 1 << 20


@dataclass
class FileBatch:
    """What :meth:`Journal.read_new` found (a :class:`records.Batch`): complete records, and
    whether reading started over.

    The records (each ending with a newline) lie in ``fd`` from byte ``first_offset`` to
    ``end_offset``; :meth:`chunks` reads them piece by piece, so that a journal of millions of
    records is never held in memory at once. Read them before the lock is released.
    """

    fd: int = -1
    first_offset: int = 0
    end_offset: int = 0
    restarted: bool = False
    path: str = ""  #: the file, for errors
    head: bytes = b""  #: bytes of the file from ``first_offset`` on, read already (or none)

    @property
    def empty(self) -> bool:
        """No record at all."""
        return self.end_offset <= self.first_offset

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[Locate, list[bytes]]]:
        """Pieces of about ``size`` bytes: records without newlines, and where each stands.

        A record longer than ``size`` is read in linear time, in one piece of its own. A
        :class:`CorruptRecordError` says where if the bytes up to ``end_offset`` do not end
        with a newline (the file was cut short by hand, or shrank while being read).
        """
        start = self.first_offset
        while start < self.end_offset:
            data = self._read(start, min(size, self.end_offset - start), start)
            end = data.rfind(_NEWLINE) + 1
            if end:
                records = data[: end - 1].split(_NEWLINE)
            else:  # one record longer than size
                record, end = self._long_record(start, data, size)
                records = [record]
            del data
            yield functools.partial(_byte_offset, start, records), records
            start += end

    def _read(self, start: int, length: int, record: int) -> bytes:
        """``length`` bytes at ``start``, part of the record that begins at ``record``."""
        if start == self.first_offset and 0 < length <= len(self.head):
            return self.head[:length]  # read by Journal.read_new already
        data = os.pread(self.fd, length, start) if length > 0 else b""
        if not data:
            raise CorruptRecordError(
                f"{self.path}: corrupt record at byte offset {record}: it has no final "
                f"newline (the file was cut short, or shrank while being read): a complete "
                f"record ends with a newline"
            )
        return data

    def _long_record(self, start: int, first: bytes, size: int) -> tuple[bytes, int]:
        """The record (without its newline) starting at ``start`` whose first bytes are
        ``first``, and its length with the newline; each byte is read and searched once."""
        pieces, read = [first], start + len(first)
        while True:  # reads of growing size: few system calls for a huge record
            piece = self._read(read, min(max(size, read - start), self.end_offset - read), start)
            newline = piece.find(_NEWLINE)
            if newline >= 0:
                pieces.append(piece[:newline])
                return b"".join(pieces), read - start + newline + 1
            pieces.append(piece)
            read += len(piece)


NOTHING_NEW = FileBatch()  #: what :meth:`Journal.read_new` returns when nothing changed


def _byte_offset(start: int, records: list[bytes], index: int) -> str:
    return f"byte offset {start + sum(len(record) + 1 for record in records[:index])}"


class Journal:
    """One journal file ``name`` in ``directory``."""

    def __init__(
        self,
        directory: str,
        name: str,
        read_only: bool = False,
        on_cut: Callable[[str], None] | None = None,
    ) -> None:
        """``on_cut(name)`` is called (under the lock) after the file was cut shorter: a torn
        record repaired, a failed append undone."""
        self.directory, self.name = directory, name
        self.read_only = read_only
        self.path = os.path.join(directory, name)
        self._on_cut = on_cut
        self.records = 0  #: complete records in the file, as far as this reader knows
        self._fd: int | None = None
        self._inode: int | None = None
        self._offset = 0
        self._restart_pending = False

    def restart(self) -> None:
        """Forget what was read: the next :meth:`read_new` reads the whole file again and
        says it ``restarted``."""
        self.close()
        self._restart_pending = True

    def close(self) -> None:
        """Close the journal's descriptor and forget what was read (a later read opens it
        again)."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._inode = None
        self._offset = self.records = 0

    def release(self) -> None:
        """Close the journal's descriptor but remember what was read: the next
        :meth:`read_new` opens the file again (if it grew) and reads on from there."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self, create: bool) -> os.stat_result:
        """Open the file as it is now (a regular file only, see
        :func:`~execo_engine.store.directory.files.open_regular`);
        returns its status."""
        if self.read_only:
            flags = os.O_RDONLY
        else:
            flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        self._fd, status = open_regular(self.path, flags)
        self._inode = status.st_ino
        return status

    def read_new(self, repair: bool) -> FileBatch:
        """The complete records appended since the last call (or the whole file, restarted)."""
        try:
            status = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:  # deleted (or never written)
            status = None
        if (  # the same file, of the same size: nothing new (the common case, made cheap)
            status is not None
            and status.st_ino == self._inode
            and status.st_size == self._offset
            and not self._restart_pending
        ):
            return NOTHING_NEW
        batch = FileBatch(restarted=self._restart_pending, path=self.path)
        self._restart_pending = False
        if status is None:
            batch.restarted |= self._inode is not None
            self.close()
            return batch
        if status.st_ino != self._inode:  # replaced (or first read)
            batch.restarted |= self._inode is not None
            self.close()
            status = self._open(create=False)
        elif self._fd is None:  # released after the last read (see release)
            inode = self._inode
            try:
                status = self._open(create=False)
            except FileNotFoundError:  # deleted since the stat above
                batch.restarted = True
                self.close()
                return batch
            if status.st_ino != inode:  # replaced since the stat above: read it all
                batch.restarted = True
                self._offset = self.records = 0
        assert self._fd is not None
        size = status.st_size
        if size < self._offset:  # truncated by hand: read it all again
            batch.restarted = True
            self._offset = self.records = 0
        end, records, head = self._scan(size)
        if end < size and repair and not self.read_only:
            logger.warning(
                "%s: cut off a torn last record at byte offset %d (%d bytes, written "
                "by a process that crashed mid-append)",
                self.path,
                end,
                size - end,
            )
            os.ftruncate(self._fd, end)
            self._cut()
        batch.fd, batch.first_offset, batch.end_offset = self._fd, self._offset, end
        batch.head = head
        self._offset = end
        self.records += records
        return batch

    def _scan(self, size: int) -> tuple[int, int, bytes]:
        """The end of the last complete record before ``size``, how many records end between
        the read offset and there, and the bytes from the read offset on when one read got
        them all (else none: a batch of new records reads them again, piece by piece)."""
        end, records, start = self._offset, 0, self._offset
        head = b""
        while start < size:
            data = os.pread(self._fd, min(CHUNK, size - start), start)  # type: ignore[arg-type]
            if not data:  # shrank meanwhile (a reader without the lock)
                break
            head = data if start == self._offset else b""
            records += data.count(_NEWLINE)
            last = data.rfind(_NEWLINE)
            if last >= 0:
                end = start + last + 1
            start += len(data)
        return end, records, head

    def append(self, data: bytes) -> None:
        """Append complete records (``data`` ends with a newline), under the lock.

        When it raises, the file holds none of ``data`` (the creation of a new file is made
        durable before anything is written to it, and what a write that fails midway wrote
        is cut off again), unless cutting it off failed too (an I/O error): then complete
        records of ``data`` may be in the file, and the next :meth:`read_new` reads them
        (the caller reads the journal again; see
        :func:`~execo_engine.store.log.replay._operation`).
        """
        if self._fd is None:
            self._open(create=True)
            fsync_directory(self.directory)  # before any record: a failure here writes none
        assert self._fd is not None
        try:
            write_all(self._fd, data)
        except BaseException as error:
            os.ftruncate(self._fd, self._offset)
            self._cut()
            if isinstance(error, OSError):
                raise named(error, self.path) from None
            raise
        self._offset += len(data)
        self.records += data.count(_NEWLINE)

    def _cut(self) -> None:
        if self._on_cut is not None:
            self._on_cut(self.name)

    def written(self) -> tuple[int, int]:
        """The inode of the file and the end of the records appended last (after an
        :meth:`append`)."""
        assert self._inode is not None
        return self._inode, self._offset

    def sync_handle(self) -> int:
        """A new descriptor of the journal, to ``os.fsync`` (then close) outside the lock."""
        assert self._fd is not None
        return os.dup(self._fd)

    def rewrite(self, data: bytes) -> None:
        """Replace the whole journal atomically by ``data`` (temporary file + rename)."""
        replace_atomically(self.path, data)
        self.close()
        self._open(create=False)
        self._offset = len(data)
        self.records = data.count(_NEWLINE)
