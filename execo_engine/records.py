"""What every store writes and reads: the text records of a sweep, and their decoding.

A store (a directory: :mod:`execo_engine.dirstore`; a PostgreSQL database:
:mod:`execo_engine.pgstore`) keeps four streams of one-line JSON records (see
:mod:`execo_engine.codec`), appended only, read incrementally by every instance:

- *done*: ``[position,element]``, position being where the element stands in the writer's
  sweeps (a hint that spares readers an index of the grid);
- *claims*: ``["+",[host,pid,start],element,position,time]`` when an element is taken (time:
  seconds since the epoch) and ``["-",element]`` when it is given back; compacted (replaced by
  the live claims) when mostly made of finished ones;
- *skips* (format 2): ``["s",[host,pid,start],element,position,time]`` when an owner skips an
  element (nobody takes it while that owner lives) and ``["-",element]`` when it no longer
  does; compacted like the claims;
- *failures* (format 3): ``["f",element,position,attempts,failed,time,error]`` each time a
  failed attempt is counted: ``attempts`` counted so far (this one included), ``failed``
  (``true``: the element is FAILED), the error text; emptied (rewritten) when the failures are
  reset: a reader then starts them over;
- *sweeps* (when saved): the elements to iterate on, in order;
- *results* (when recorded): ``{"combination": element, "values": {...}, "outcome": ...,
  "duration": seconds, "host": ..., "time": ...}``.

:class:`RecordStore` holds what does not depend on the medium: encoding, decoding with clear
errors (a record that is not JSON, or not of its stream's shape, names where it is), and the
:class:`Changes` handed to the ParamSweeper state machine.
"""

from __future__ import annotations

import dataclasses
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

CLAIM, RELEASE, SKIP, FAIL = "+", "-", "s", "f"
#: (CLAIM or RELEASE, owner (claims only), element, position in the claimer's sweeps or None,
#: time of the claim or None)
ClaimEvent = tuple[str, Owner | None, Any, int | None, float | None]
#: A failure as written: (element, position hint, attempts, failed, time, error)
FailureEvent = tuple[Any, int | None, int, bool, float, str]
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
    #: the skips stream, as ``claims`` (SKIP instead of CLAIM)
    skips: list[ClaimEvent] = dataclasses.field(default_factory=list)
    skips_restarted: bool = False
    #: the failures stream (format 3), in the order written
    failures: list[FailureEvent] = dataclasses.field(default_factory=list)
    failures_restarted: bool = False


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
                if shape is None or (
                    _all_pairs(decoded) if shape is _is_done_record else all(map(shape, decoded))
                ):
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

    def _events(self, where: str, batch: Batch, shape: Callable[[Any], bool]) -> list[ClaimEvent]:
        return [
            (RELEASE, None, record[1], None, None)
            if record[0] == RELEASE
            else (record[0], tuple(record[1]), record[2], record[3], record[4])
            for record in self._decode(where, batch, shape)
        ]

    def _changes(
        self,
        done: Batch,
        claims: Batch,
        done_where: str,
        claims_where: str,
        skips: Batch | None = None,
        skips_where: str = "",
        failures: Batch | None = None,
        failures_where: str = "",
    ) -> Changes:
        changed = done.restarted or claims.restarted or not done.empty or not claims.empty
        for batch in (skips, failures):
            if batch is not None:
                changed = changed or batch.restarted or not batch.empty
        return Changes(
            self._decode_chunks(done_where, done, plain=True, shape=_is_done_record),
            done.restarted,
            self._events(claims_where, claims, _is_claim_record),
            claims.restarted,
            changed,
            [] if skips is None else self._events(skips_where, skips, _is_skip_record),
            skips is not None and skips.restarted,
            []
            if failures is None
            else [
                (record[1], record[2], record[3], record[4], record[5], record[6])
                for record in self._decode(failures_where, failures, _is_failure_record)
            ],
            failures is not None and failures.restarted,
        )

    def _done_texts(self, where: str, batch: Batch) -> list[str]:
        """The canonical text of the element of each done record of ``batch``."""
        return [
            self.codec.encode(element) for _, element in self._decode(where, batch, _is_done_record)
        ]

    # -- encoding ------------------------------------------------------------------------------

    def _done_lines(self, done: Iterable[tuple[int | None, Any]]) -> list[str]:
        self.check_writable()
        encode = self.codec.encode
        return [f"[{_position_text(position)},{encode(element)}]" for position, element in done]

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

    def _failure_lines(self, failures: Iterable[tuple[int | None, Failure]]) -> list[str]:
        self.check_writable()
        encode = self.codec.encode
        return [
            f'["{FAIL}",{encode(f.element)},{_position_text(position)},{int(f.attempts)},'
            f"{_json(bool(f.failed))},{f.since:.3f},{_json(f.error)}]"
            for position, f in failures
        ]

    def _sweeps_lines(self, elements: Iterable[Any]) -> list[str]:
        self.check_writable()
        encode = self.codec.encode_in_order  # factors stay in the order of the sweep dict
        return [encode(element) for element in elements]

    def _result_line(self, record: HashableDict) -> str:
        self.check_writable()
        return self.codec.encode_in_order(record)  # only read back: keep the order of names
