"""The bytes of a ParamSweeper persistence directory.

Files (all text, one JSON record a line, see :mod:`execo_engine.codec`):

- ``done``: one element a record, ``[position,element]`` (position: where it stands in the
  writer's sweeps, a hint that spares readers an index of the grid), appended and fsync'd,
  never rewritten;
- ``inprogress``: claim events, ``["+",[host,pid,start],element,position,time]`` when an
  element is taken (position: where it stands in the claimer's sweeps, a hint; time: when, in
  seconds since the epoch) and ``["-",element]`` when it is given back (done, skipped, cancelled, owner dead). It is
  compacted (rewritten with the live claims only, atomically) when mostly made of finished
  claims. Deleting it releases every claim;
- ``sweeps`` (when saved): the elements to iterate on, in order, written atomically;
- ``results`` (when recorded): one result a record, ``{"combination": element, "values":
  {...}, "outcome": ..., "duration": seconds, "host": ..., "time": ...}``, appended and fsync'd;
- ``lock``: the lock file (see :mod:`execo_engine.locking`).

Only these fixed names are ever opened, never through a symbolic link, and nothing read here is
executed or unpickled (unless the codec was told ``allow_pickle=True``).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from execo_engine.codec import Codec, PickleNotAllowedError
from execo_engine.journal import Batch, Journal, corrupt_record_error, replace_atomically
from execo_engine.locking import DirectoryLock
from execo_engine.owner import Owner
from execo_engine.sweep import HashableDict

CLAIM, RELEASE = "+", "-"
#: (CLAIM or RELEASE, owner (claims only), element, position in the claimer's sweeps or None,
#: time of the claim or None)
ClaimEvent = tuple[str, Owner | None, Any, int | None, float | None]
#: A live claim as written: (element, owner, position hint, time of the claim)
Claim = tuple[Any, Owner, int | None, float]


_json = json.JSONEncoder(separators=(",", ":")).encode


def _position_text(position: int | None) -> str:
    return "null" if position is None else str(int(position))


@functools.lru_cache(maxsize=256)
def _owner_text(owner: Owner) -> str:
    return _json(list(owner))


def _is_done_record(record: Any) -> bool:
    return type(record) is list and len(record) == 2


def _all_pairs(records: list[Any]) -> bool:
    """Every record is a done record (checked in C: a resume reads millions)."""
    return set(map(type, records)) <= {list} and set(map(len, records)) <= {2}


def _is_claim_record(record: Any) -> bool:
    if type(record) is not list or not record:
        return False
    if record[0] == RELEASE:
        return len(record) == 2
    return (record[0] == CLAIM and len(record) == 5 and type(record[1]) is list
            and len(record[1]) == 3 and isinstance(record[4], (int, float)))


@dataclass
class Changes:
    """What other writers (and crashed ones) did since the last :meth:`DirectoryStore.read`.

    ``done`` is decoded lazily, piece by piece (a resumed grid may hold millions of records):
    consume it before the lock is released.
    """

    #: lists of ``[position hint, element]`` records, piece by piece; an element may be a
    #: plain dict equal to it, see :meth:`Codec.from_plain`
    done: Iterator[list[list[Any]]]
    done_restarted: bool
    claims: list[ClaimEvent]
    claims_restarted: bool
    changed: bool  #: False when nothing at all happened


class DirectoryStore:
    """Reads and appends the records of one persistence directory.

    Every method but :meth:`load_sweeps` must be called inside ``with store.lock:``, and the
    appends after a :meth:`read` in the same locked section.

    ``read_only=True`` opens an existing directory without ever writing to it nor taking its
    lock (``lock`` does nothing): what it reads is a consistent prefix of each file, never
    repaired, and appending raises ``PermissionError``.
    """

    def __init__(self, path: str | os.PathLike[str], codec: Codec,
                 read_only: bool = False) -> None:
        self.path = os.fspath(path)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise NotADirectoryError(
                f"persistence directory {self.path!r} exists and is not a directory")
        if read_only and not os.path.isdir(self.path):
            raise FileNotFoundError(f"persistence directory {self.path!r} does not exist")
        if not read_only:
            os.makedirs(self.path, exist_ok=True)
        self.codec = codec
        self.read_only = read_only
        self.lock: DirectoryLock | contextlib.nullcontext[None] = \
            contextlib.nullcontext() if read_only else DirectoryLock(self.path)
        self._done = Journal(self.path, "done", read_only)
        self._claims = Journal(self.path, "inprogress", read_only)
        self._results = Journal(self.path, "results", read_only)
        self._sweeps_path = os.path.join(self.path, "sweeps")

    def check_writable(self) -> None:
        """``PermissionError`` if the directory was opened read-only."""
        if self.read_only:
            raise PermissionError(f"{self.path}: opened read-only")

    def _decode(self, path: str, batch: Batch, plain: bool = False,
                shape: Callable[[Any], bool] | None = None) -> Iterator[Any]:
        return itertools.chain.from_iterable(self._decode_chunks(path, batch, plain, shape))

    def _decode_chunks(self, path: str, batch: Batch, plain: bool = False,
                       shape: Callable[[Any], bool] | None = None) -> Iterator[list[Any]]:
        """Decoded records, piece by piece; a record that is not JSON, or not of the
        ``shape`` its file holds, is a :class:`CorruptRecordError` naming file and offset."""
        def decode(record: bytes) -> Any:
            value = self.codec.decode(record)
            if shape is not None and not shape(value):
                raise ValueError(f"not a record of {os.path.basename(path)}")
            return value

        for offset, records in batch.chunks():
            try:
                decoded = self.codec.decode_lines(records, plain)
                if shape is None or (_all_pairs(decoded) if shape is _is_done_record
                                     else all(map(shape, decoded))):
                    yield decoded
                    continue
            except PickleNotAllowedError as error:
                raise PickleNotAllowedError(f"{path}: {error}") from None
            except ValueError:
                pass
            raise corrupt_record_error(path, offset, records, decode)

    def read(self) -> Changes:
        """The records appended since the last read; torn last records are repaired."""
        done = self._done.read_new(repair=True)
        claims = self._claims.read_new(repair=True)
        events = [(CLAIM, tuple(record[1]), record[2], record[3], record[4])
                  if record[0] == CLAIM else (RELEASE, None, record[1], None, None)
                  for record in self._decode(self._claims.path, claims, shape=_is_claim_record)]
        changed = done.restarted or claims.restarted or done.end_offset > done.first_offset \
            or claims.end_offset > claims.first_offset
        return Changes(self._decode_chunks(self._done.path, done, plain=True,
                                           shape=_is_done_record), done.restarted,
                       events, claims.restarted, changed)  # type: ignore[arg-type]

    def restart(self) -> None:
        """Make the next :meth:`read` return everything (``restarted`` set on both)."""
        self._done.restart()
        self._claims.restart()

    def _lines(self, elements: Iterable[Any], prefix: str = "", suffix: str = "") -> bytes:
        encode = self.codec.encode
        return "".join(f"{prefix}{encode(element)}{suffix}\n" for element in elements).encode()

    def _claim_lines(self, claims: Iterable[Claim]) -> bytes:
        self.check_writable()
        encode = self.codec.encode
        return "".join(f'["{CLAIM}",{_owner_text(owner)},{encode(element)},'
                       f'{_position_text(position)},{since:.3f}]\n'
                       for element, owner, position, since in claims).encode()

    def append_done(self, done: Iterable[tuple[int | None, Any]]) -> int | None:
        """Append done records for ``(position, element)`` pairs; returns a descriptor to
        fsync (and close) after unlocking."""
        self.check_writable()
        encode = self.codec.encode
        data = "".join(f"[{_position_text(position)},{encode(element)}]\n"
                       for position, element in done).encode()
        if not data:
            return None
        self._done.append(data)
        return self._done.sync_handle()

    def append_claims(self, taken: Iterable[tuple[int | None, Any]], owner: Owner,
                      since: float) -> None:
        """Record that ``owner`` took the elements of ``(position, element)`` pairs at
        ``since``."""
        if data := self._claim_lines((element, owner, position, since)
                                     for position, element in taken):
            self._claims.append(data)

    def append_releases(self, elements: Iterable[Any]) -> None:
        """Record that ``elements`` are no longer in progress."""
        self.check_writable()
        if data := self._lines(elements, f'["{RELEASE}",', "]"):
            self._claims.append(data)

    @property
    def claim_records(self) -> int:
        """How many records the ``inprogress`` journal holds (to decide on compaction)."""
        return self._claims.records

    def rewrite_claims(self, claims: Iterable[Claim]) -> None:
        """Replace the ``inprogress`` journal by exactly these claims (compaction, reset)."""
        self._claims.rewrite(self._claim_lines(claims))

    def done_texts(self) -> list[str]:
        """The canonical text of every element of a complete done record."""
        journal = Journal(self.path, "done")
        try:
            records = self._decode(journal.path, journal.read_new(repair=False),
                                   shape=_is_done_record)
            return [self.codec.encode(element) for _, element in records]
        finally:
            journal.close()

    def append_result(self, record: HashableDict) -> int:
        """Append a result record; returns a descriptor to fsync (and close) after
        unlocking."""
        self.check_writable()
        self._results.read_new(repair=True)  # repair a torn tail before appending
        # only read back, never matched: keep the order of the factors and values
        self._results.append((self.codec.encode_in_order(record) + "\n").encode())
        return self._results.sync_handle()

    def read_results(self) -> list[Any]:
        """Every complete result record, in the order they were written."""
        journal = Journal(self.path, "results", read_only=True)
        try:
            return list(self._decode(journal.path, journal.read_new(repair=False)))
        finally:
            journal.close()

    def load_sweeps(self) -> list[Any] | None:
        """The saved elements, in order, or None when none were saved."""
        try:
            fd = os.open(self._sweeps_path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        try:
            batch = Batch(fd, 0, os.fstat(fd).st_size)
            return list(self._decode(self._sweeps_path, batch))
        finally:
            os.close(fd)

    def save_sweeps(self, elements: Iterable[Any]) -> None:
        """Write the elements to iterate on, atomically and durably."""
        self.check_writable()
        encode = self.codec.encode_in_order  # factors stay in the order of the sweep dict
        replace_atomically(self._sweeps_path,
                           "".join(f"{encode(element)}\n" for element in elements).encode())
