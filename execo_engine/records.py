"""What every store writes and reads: the text records of a sweep, and their decoding.

A store (a directory: :mod:`execo_engine.store.directory`; a PostgreSQL database:
:mod:`execo_engine.pgstore`) keeps four streams of one-line JSON records (see
:mod:`execo_engine.codec`), appended only, read incrementally by every instance:

- *done*: ``[position,element]``, position being where the element stands in the writer's
  sweeps (a hint that spares readers an index of the grid); in format 3 also the failed
  attempts: ``["f",element,position,attempts,failed,time,error]`` each time one is counted
  (``attempts`` so far, this one included; ``failed``: ``true`` when the element is FAILED for
  good; the error text), and ``["r"]`` when the failures are reset (every failed attempt
  written before is forgotten). They share the done stream because they are as persistent as
  done (never compacted, flushed to disk) and so that an operation still reads two streams;
- *claims*: ``["+",[host,pid,start],element,position,time]`` when an element is taken (time:
  seconds since the epoch), ``["s",[host,pid,start],element,position,time]`` when it is
  skipped (format 2: nobody takes it while that owner lives), and ``["-",element]`` when it is
  given back; a claim or a skip replaces the element's previous one. Compacted (replaced by the
  live claims and skips) when mostly made of finished ones;
- *sweeps* (when saved): the elements to iterate on, in order;
- *results* (when recorded): ``{"combination": element, "values": {...}, "outcome": ...,
  "duration": seconds, "host": ..., "time": ...}``.

:class:`RecordStore` holds what does not depend on the medium: encoding, decoding with clear
errors (a record that is not JSON, or not of its stream's shape, names where it is), and the
:class:`Changes` handed to the ParamSweeper state machine.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from execo_engine.codec import Codec, PickleNotAllowedError
from execo_engine.owner import Owner
from execo_engine.store.contract import Failure
from execo_engine.sweep import HashableDict

CLAIM, RELEASE, SKIP = "+", "-", "s"
FAIL, RESET_FAILURES = "f", "r"  #: the records of failed attempts in the done stream
#: (CLAIM, SKIP or RELEASE, owner (not for releases), element, position in the holder's sweeps
#: or None, time of the claim or skip, or None)
ClaimEvent = tuple[str, Owner | None, Any, int | None, float | None]
#: A live claim as written: (element, owner, position hint, time of the claim)
Claim = tuple[Any, Owner, int | None, float]
#: Describes where the i-th record of a piece stands ("byte offset 12", "row 3")
Locate = Callable[[int], str]

_json = json.JSONEncoder(separators=(",", ":")).encode


class CorruptRecordError(ValueError):
    """A complete record that cannot be decoded, or is not of the shape its stream holds."""


class Batch(Protocol):
    """What a medium read: complete records, and whether reading started over."""

    restarted: bool

    @property
    def empty(self) -> bool:
        """No record at all."""

    def chunks(self) -> Iterator[tuple[Locate, list[bytes]]]:
        """The records (without newlines), piece by piece, with where each one stands."""


def _position_text(position: int | None) -> str:
    return "null" if position is None else str(int(position))


@functools.lru_cache(maxsize=256)
def owner_text(owner: Owner) -> str:
    """The JSON text of an owner, as in claim records."""
    return _json(list(owner))


def _is_done_record(record: Any) -> bool:
    return type(record) is list and len(record) == 2


def _is_failure_record(record: Any) -> bool:
    return (
        type(record) is list
        and len(record) == 7
        and record[0] == FAIL
        and type(record[3]) is int
        and record[3] > 0
        and type(record[4]) is bool
        and isinstance(record[5], (int, float))
        and type(record[6]) is str
    )


def _is_done_stream_record(record: Any) -> bool:
    """A done record, a failure record or a reset of the failures."""
    return _is_done_record(record) or _is_failure_record(record) or record == [RESET_FAILURES]


def _all_pairs(records: list[Any]) -> bool:
    """Every record is a done record (checked in C: a resume reads millions)."""
    return set(map(type, records)) <= {list} and set(map(len, records)) <= {2}


def _is_claim_record(record: Any) -> bool:
    if type(record) is not list or not record:
        return False
    if record[0] == RELEASE:
        return len(record) == 2
    return (
        record[0] == CLAIM
        and len(record) == 5
        and type(record[1]) is list
        and len(record[1]) == 3
        and isinstance(record[4], (int, float))
    )


def _is_skip_record(record: Any) -> bool:
    if type(record) is not list or not record:
        return False
    if record[0] == RELEASE:
        return len(record) == 2
    return (
        record[0] == SKIP
        and len(record) == 5
        and type(record[1]) is list
        and len(record[1]) in (3, 4)
        and isinstance(record[4], (int, float))
    )


def _is_hold_record(record: Any) -> bool:
    """A record of the claims stream: a claim, a skip or a release."""
    return _is_claim_record(record) or _is_skip_record(record)


def _pickle_hint(record: bytes) -> str:
    return (
        " (this looks like a pickle file written by execo 2.x, which this version never "
        "unpickles: move the directory away, or start a new one)"
        if record.startswith(b"\x80")
        else ""
    )


@dataclass
class Changes:
    """What other writers (and crashed ones) did since the last :meth:`RecordStore.read`.

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


class RecordStore:
    """Encoding and decoding of the records, for a medium named ``path``."""

    def __init__(self, path: str, codec: Codec, read_only: bool) -> None:
        self.path, self.codec, self.read_only = path, codec, read_only
        self.name = path  #: a short name for logs (subclasses refine it)

    def check_writable(self) -> None:
        """``PermissionError`` if the store was opened read-only."""
        if self.read_only:
            raise PermissionError(f"{self.path}: opened read-only")

    # -- decoding ------------------------------------------------------------------------------

    def _decode_chunks(
        self,
        where: str,
        batch: Batch,
        plain: bool = False,
        shape: Callable[[Any], bool] | None = None,
    ) -> Iterator[list[Any]]:
        """Decoded records, piece by piece; a record that is not JSON, or not of the
        ``shape`` its stream holds, is a :class:`CorruptRecordError` naming where it is."""
        for locate, records in batch.chunks():
            try:
                decoded = self.codec.decode_lines(records, plain)
                fast = shape is _is_done_stream_record and _all_pairs(decoded)
                if shape is None or fast or all(map(shape, decoded)):
                    yield decoded
                    continue
            except PickleNotAllowedError as error:
                raise PickleNotAllowedError(f"{where}: {error}") from None
            except ValueError:
                pass
            raise self._corrupt(where, locate, records, shape)

    def _corrupt(
        self, where: str, locate: Locate, records: list[bytes], shape: Callable[[Any], bool] | None
    ) -> CorruptRecordError:
        for index, record in enumerate(records):
            try:
                value = self.codec.decode(record)
                if shape is None or shape(value):
                    continue
                reason = f"not a record of {where.rsplit('/', 1)[-1]}"
            except ValueError as error:
                reason = str(error)
            return CorruptRecordError(
                f"{where}: corrupt record at {locate(index)}: "
                f"{record[:80]!r} ({reason}){_pickle_hint(record)}"
            )
        return CorruptRecordError(f"{where}: corrupt records at {locate(0)}")

    def _decode(
        self, where: str, batch: Batch, shape: Callable[[Any], bool] | None = None
    ) -> list[Any]:
        return list(itertools.chain.from_iterable(self._decode_chunks(where, batch, shape=shape)))

    def _changes(self, done: Batch, claims: Batch, done_where: str, claims_where: str) -> Changes:
        events = [
            (RELEASE, None, record[1], None, None)
            if record[0] == RELEASE
            else (record[0], tuple(record[1]), record[2], record[3], record[4])
            for record in self._decode(claims_where, claims, _is_hold_record)
        ]
        changed = done.restarted or claims.restarted or not done.empty or not claims.empty
        return Changes(
            self._decode_chunks(done_where, done, plain=True, shape=_is_done_stream_record),
            done.restarted,
            events,  # type: ignore[arg-type]
            claims.restarted,
            changed,
        )

    def _done_texts(self, where: str, batch: Batch) -> list[str]:
        """The canonical text of the element of each done record of ``batch``."""
        return [
            self.codec.encode(record[1])
            for record in self._decode(where, batch, _is_done_stream_record)
            if len(record) == 2
        ]

    # -- encoding ------------------------------------------------------------------------------

    def _done_lines(self, done: Iterable[tuple[int | None, Any]]) -> list[str]:
        self.check_writable()
        encode = self.codec.encode
        return [f"[{_position_text(position)},{encode(element)}]" for position, element in done]

    def _failure_lines(self, failures: Iterable[tuple[int | None, Failure]]) -> list[str]:
        self.check_writable()
        encode = self.codec.encode
        return [
            f'["{FAIL}",{encode(f.element)},{_position_text(position)},{int(f.attempts)},'
            f"{_json(bool(f.failed))},{f.since:.3f},{_json(f.error)}]"
            for position, f in failures
        ]

    def _reset_failures_line(self) -> str:
        self.check_writable()
        return f'["{RESET_FAILURES}"]'

    def _claim_lines(self, claims: Iterable[Claim], kind: str = CLAIM) -> list[str]:
        self.check_writable()
        encode = self.codec.encode
        return [
            f'["{kind}",{owner_text(owner)},{encode(element)},'
            f"{_position_text(position)},{since:.3f}]"
            for element, owner, position, since in claims
        ]

    def _release_lines(self, elements: Iterable[Any]) -> list[str]:
        self.check_writable()
        encode = self.codec.encode
        return [f'["{RELEASE}",{encode(element)}]' for element in elements]

    def _sweeps_lines(self, elements: Iterable[Any]) -> list[str]:
        self.check_writable()
        encode = self.codec.encode_in_order  # factors stay in the order of the sweep dict
        return [encode(element) for element in elements]

    def _result_line(self, record: HashableDict) -> str:
        self.check_writable()
        return self.codec.encode_in_order(record)  # only read back: keep the order of names
