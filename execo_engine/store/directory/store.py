"""A sweep in a directory: the records of :mod:`execo_engine.store.log.records` in files,
replayed by a :class:`~execo_engine.store.log.replay.ReplayStore`.

- ``done``: appended and fsync'd, never rewritten (format 3: the failed attempts too);
- ``inprogress``: the claims stream (claims and skips), compacted atomically (temporary file +
  rename); deleting it releases every claim and skip record (a process still remembers what
  it skipped itself, as execo did);
- ``sweeps`` (when saved), written atomically; ``results`` (when recorded), appended, fsync'd;
- ``runs`` (when a run wrote here): run records (see :mod:`execo_engine.store.runs`),
  appended and fsync'd;
- ``grid``: ``{"combinations": N}``, the size of the last writer's sweeps, written atomically;
- ``format``: the format version (see :mod:`execo_engine.store.directory.version`);
- ``lock``: the lock file (see :mod:`execo_engine.store.directory.locking`).

Only these fixed names are ever opened, never through a symbolic link, and nothing read here is
executed or unpickled (unless the codec was told ``allow_pickle=True``). Claims of a process of
this host and PID namespace that no longer runs are dead at once (see
:mod:`execo_engine.store.owner`); those of any other owner when its heartbeat in ``owners/`` stops
for a lease (see :mod:`execo_engine.store.directory.liveness`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from execo_engine.codec import Codec
from execo_engine.elements import HashableDict
from execo_engine.store.contract import Failure
from execo_engine.store.directory.files import (
    check_directory_path,
    open_regular,
    remove_stale_temporaries,
    replace_atomically,
)
from execo_engine.store.directory.flush import GroupFlush
from execo_engine.store.directory.journal import NOTHING_NEW, FileBatch, Journal
from execo_engine.store.directory.liveness import Liveness, heartbeats
from execo_engine.store.directory.locking import DirectoryLock
from execo_engine.store.directory.version import FORMAT_FILE, check_format, mark_format
from execo_engine.store.lease import DEFAULT_LEASE
from execo_engine.store.log.records import CLAIM, NO_CHANGES, SKIP, Changes, Claim, RecordEncoder
from execo_engine.store.log.replay import ReplayStore
from execo_engine.store.owner import Owner
from execo_engine.store.runs import RUNS_FILE, decode_runs, encode_run

GRID_FILE = "grid"


def check_subdirectory(path: str) -> None:
    """Refuse ``path``, below a directory the caller was given (a shared sweep directory), if
    it is a symbolic link or not a directory: following it could make writes land outside.
    A missing ``path`` is fine (a store creates it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        kind = "a symbolic link" if os.path.islink(path) else "not a directory"
        raise NotADirectoryError(
            f"{path}: is {kind}, refused as a sweep subdirectory (never followed out of the "
            f"sweep directory): remove it and run again"
        ) from None
    os.close(fd)


def _data(lines: list[str]) -> bytes:
    """The bytes of ``lines``, each ended by a newline."""
    return ("\n".join(lines) + "\n").encode() if lines else b""


#: What to flush: (journal name, inode) -> (a descriptor of it, the end of its records)
_Unsynced = dict[tuple[str, int], tuple[int, int]]


def _close_files(journals: list[Journal], flush: GroupFlush, unsynced: _Unsynced) -> None:
    """Close the descriptors a store keeps: its journals', its flush file's and, when it is
    garbage collected (it can no longer flush them), those of its records not flushed. A
    store used after its close() (the run's end record, a preempted worker's last give-back)
    reads its journals again from the start, as after a failed operation."""
    for journal in journals:
        journal.restart()
    flush.close()
    for fd, _ in unsynced.values():
        os.close(fd)
    unsynced.clear()


class DirectoryLog(RecordEncoder):
    """Reads and appends the records of one persistence directory (a
    :class:`~execo_engine.store.log.replay.RecordLog`).

    ``read_only=True`` opens an existing directory without ever writing to it nor taking its
    lock (``lock`` does nothing): what it reads is a consistent prefix of each file, never
    repaired, and appending raises ``PermissionError``.

    ``lease``: see :mod:`execo_engine.store.directory.liveness` (``ValueError`` naming it when
    invalid).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        codec: Codec,
        read_only: bool = False,
        lease: float | None = None,
    ) -> None:
        super().__init__(os.fspath(path), codec, read_only)
        self.name = os.path.basename(os.path.normpath(self.path))
        check_directory_path(self.path)
        if read_only and not os.path.isdir(self.path):
            raise FileNotFoundError(f"persistence directory {self.path!r} does not exist")
        if not read_only:
            os.makedirs(self.path, exist_ok=True)
        check_format(self.path)
        self.lock: DirectoryLock | contextlib.nullcontext[None] = (
            contextlib.nullcontext() if read_only else DirectoryLock(self.path)
        )
        self._flush = GroupFlush(self.path)
        self._done = Journal(self.path, "done", read_only, self._flush.forget)
        self._claims = Journal(self.path, "inprogress", read_only)
        self._results = Journal(self.path, "results", read_only, self._flush.forget)
        self._runs = Journal(self.path, RUNS_FILE, read_only)
        self._sweeps_path = os.path.join(self.path, "sweeps")
        self._grid_path = os.path.join(self.path, GRID_FILE)
        self._grid_size: int | None = None
        self._first_read_done = read_only  # a writer's first read cleans up and marks the format
        self.liveness = Liveness(self.path, DEFAULT_LEASE if lease is None else lease, read_only)
        if not read_only:
            # From its creation: the skips of this store object, which the processes it is
            # forked into may write, last while this process lives, as its heartbeat shows.
            self.liveness.beat()
        self._sync_lock = threading.Lock()  # held by a sync() until its flushes are done
        self._unsynced_lock = threading.Lock()  # only around changes of _unsynced
        self._unsynced: _Unsynced = {}  # the same dict for the life of the store
        # A store dropped without close() (execo 2.x had none: its scripts never call it)
        # leaves no descriptor open once garbage collected; the lock file has its own. Not at
        # exit, when handlers may still use the store (the process's end closes them all).
        journals = [self._done, self._claims, self._results, self._runs]
        weakref.finalize(self, _close_files, journals, self._flush, self._unsynced).atexit = False

    def read(self, claims: bool = True) -> Changes:
        """The records appended since the last read (of the done stream alone unless
        ``claims``: the claims stream is then read next time); torn last records are repaired
        (and, on a writer's first read, temporary files of rewrites killed midway removed, and
        the directory marked with this format version)."""
        repair = not self.read_only
        if not self._first_read_done:
            remove_stale_temporaries(self.path, ("inprogress", "sweeps", GRID_FILE, FORMAT_FILE))
            mark_format(self.path)
            self._first_read_done = True
        done = self._done.read_new(repair)
        new_claims = self._claims.read_new(repair) if claims else NOTHING_NEW
        if done is NOTHING_NEW and new_claims is NOTHING_NEW:  # the common case, made cheap
            return NO_CHANGES
        return self._changes(done, new_claims, self._done.path, self._claims.path)

    def restart(self) -> None:
        """Make the next :meth:`read` return everything (``restarted`` set on both)."""
        self._done.restart()
        self._claims.restart()

    def rest(self) -> None:
        """Between two reads of a reader: close the journals' descriptors, remembering what
        was read (views of many sweeps, open at once, then hold none)."""
        self._done.release()
        self._claims.release()

    def close(self) -> None:
        """Close every file this store keeps open (journals, flush file, lock file)."""
        _close_files([self._done, self._claims, self._results, self._runs], self._flush, {})
        if isinstance(self.lock, DirectoryLock):
            self.lock.release()

    def append_done(self, done: Iterable[tuple[int | None, Any]]) -> None:
        """Append done records for ``(position, element)`` pairs (flushed by :meth:`sync`)."""
        if lines := self._done_lines(done):
            self._done.append(_data(lines))
            self._keep_for_sync(self._done)

    def append_failures(
        self, failures: Iterable[tuple[int | None, Failure]], reset: bool = False
    ) -> None:
        """Append failure records for ``(position, failure)`` pairs to the done stream (with
        ``reset``, after a record forgetting every earlier one), flushed by :meth:`sync`."""
        lines = [self._reset_failures_line()] if reset else []
        if lines := lines + self._failure_lines(failures):
            self._done.append(_data(lines))
            self._keep_for_sync(self._done)

    def append_holds(
        self,
        kind: str,
        taken: Iterable[tuple[int | None, Any]],
        owner: Owner,
        since: float,
        number: int | None = None,
    ) -> None:
        """Record that ``owner`` took (``kind`` CLAIM) the elements of ``(position, element)``
        pairs at ``since``, or that its instance ``number`` skipped them (SKIP)."""
        if lines := self._claim_lines(
            ((element, owner, position, since, number) for position, element in taken),
            kind,
            mine=kind == CLAIM,
        ):
            self.liveness.beat()  # before others can see the claims
            self._claims.append(_data(lines))

    def append_releases(self, elements: Iterable[Any]) -> None:
        """Record that ``elements`` are no longer held (claimed nor skipped)."""
        if lines := self._release_lines(elements):
            self._claims.append(_data(lines))

    @property
    def claim_records(self) -> int:
        """How many records the claims stream holds (to decide on compaction)."""
        return self._claims.records

    def rewrite_claims(self, claims: Iterable[Claim], skips: Iterable[Claim] = ()) -> None:
        """Replace the claims stream by exactly these claims and skips (compaction, reset)."""
        self._claims.rewrite(_data(self._claim_lines(claims) + self._claim_lines(skips, SKIP)))

    def grid_size(self) -> int | None:
        """The number of combinations of the last writer's sweeps (None: never written)."""
        try:
            fd, _ = open_regular(self._grid_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            text = os.read(fd, 4096)
        finally:
            os.close(fd)
        try:
            size = json.loads(text)["combinations"]
            if type(size) is not int or size < 0:
                raise ValueError(size)
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"{self._grid_path}: not a grid record: {text[:80]!r} (expected "
                f'{{"combinations": N}}; delete the file, the next writer writes it again)'
            ) from None
        self._grid_size = size
        return size

    def set_grid_size(self, size: int) -> None:
        """Record that the sweeps have ``size`` combinations (written only when it changed)."""
        self.check_writable()
        if size != self._grid_size and size != self.grid_size():
            replace_atomically(self._grid_path, json.dumps({"combinations": size}).encode())
            self._grid_size = size

    dead_owner = "dead process"  #: how logs call an owner reported by dead_owners

    def dead_owners(self, owners: Iterable[Owner], reading: bool = False) -> list[Owner]:
        """The owners that are processes of this host and PID namespace that no longer run,
        or whose heartbeat stopped for their lease (the one place where the directory judges
        owners; ``reading``: for an operation that only reads, see
        :mod:`execo_engine.store.messages`)."""
        return self.liveness.dead_owners(owners, reading=reading)

    @contextlib.contextmanager
    def _whole(self, name: str) -> Iterator[tuple[str, FileBatch]]:
        """The path and every complete record of journal ``name``, read without the lock."""
        journal = Journal(self.path, name, read_only=True)
        try:
            yield journal.path, journal.read_new(repair=False)
        finally:
            journal.close()

    def done_texts(self) -> list[str]:
        """The canonical text of every element of a complete done record."""
        with self._whole("done") as (where, batch):
            return self._done_texts(where, batch)

    def append_result(self, record: HashableDict) -> None:
        """Append a result record (flushed by :meth:`sync`)."""
        line = self._result_line(record)
        self._results.read_new(repair=True)  # repair a torn tail before appending
        self._results.append(_data([line]))
        self._keep_for_sync(self._results)

    def _keep_for_sync(self, journal: Journal) -> None:
        """Remember ``journal``'s records for the next :meth:`sync` (one descriptor per
        file, flushed up to the end of the last records appended)."""
        inode, end = journal.written()
        with self._unsynced_lock:
            kept = self._unsynced.get((journal.name, inode))
            fd = kept[0] if kept is not None else journal.sync_handle()
            self._unsynced[journal.name, inode] = (fd, end)

    def sync(self) -> None:
        """Flush what was appended since the last sync, sharing the flush with the other
        processes of this host (:class:`~execo_engine.store.directory.flush.GroupFlush`); a
        sync that returns has also waited for the flushes under way in this process."""
        with self._sync_lock:
            with self._unsynced_lock:
                unsynced = dict(self._unsynced)
                self._unsynced.clear()
            try:
                for (name, _), (fd, end) in unsynced.items():
                    self._flush.flush(name, fd, end)
            finally:
                for fd, _ in unsynced.values():
                    os.close(fd)

    def heartbeat_ages(self) -> dict[Owner, float]:
        """Seconds since each owner's heartbeat file was last written (its mtime)."""
        return {owner: beat.age for owner, beat in heartbeats(self.path).items()}

    def read_results(self) -> list[Any]:
        """Every complete result record, in the order they were written."""
        with self._whole("results") as (where, batch):
            return self._decode_results(where, batch)

    def add_run(self, record: dict[str, Any]) -> None:
        """Append a run record, durably (fsync'd before it returns)."""
        self.check_writable()
        line = encode_run(record)
        self._runs.read_new(repair=True)  # repair a torn tail before appending
        self._runs.append(_data([line]))
        fd = self._runs.sync_handle()
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_runs(self) -> list[dict[str, Any]]:
        """Every complete run record, in the order they were written (see
        :func:`~execo_engine.store.runs.decode_runs`)."""
        with self._whole(RUNS_FILE) as (where, batch):
            lines = (
                (locate(index), record)
                for locate, records in batch.chunks()
                for index, record in enumerate(records)
            )
            return decode_runs(lines, where)

    def load_sweeps(self) -> list[Any] | None:
        """The saved elements, in order, or None when none were saved."""
        try:
            fd, status = open_regular(self._sweeps_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            return self._decode_sweeps(
                self._sweeps_path, FileBatch(fd, 0, status.st_size, path=self._sweeps_path)
            )
        finally:
            os.close(fd)

    def save_sweeps(self, elements: Iterable[Any]) -> None:
        """Write the elements to iterate on, atomically and durably."""
        replace_atomically(self._sweeps_path, _data(self._sweeps_lines(elements)))


class DirectoryStore(ReplayStore):
    """The :class:`~execo_engine.store.contract.Store` of a persistence directory, created if
    needed (``NotADirectoryError`` if it is a file; ``FileNotFoundError`` if it does not exist
    and ``read_only``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        codec: Codec,
        read_only: bool = False,
        lease: float | None = None,
    ) -> None:
        super().__init__(DirectoryLog(path, codec, read_only, lease), os.fspath(path))
