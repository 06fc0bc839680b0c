"""What a record-log store writes and reads: the text records of a sweep, and their decoding.

A record-log store (a directory: :mod:`execo_engine.store.directory.store`, through
:mod:`execo_engine.store.log.replay`) keeps four streams of one-line JSON records (see
:mod:`execo_engine.codec`), appended only, read incrementally by every instance (the
PostgreSQL store keeps rows instead, and uses only the decoding of elements and results):

- *done*: ``[position,element]``, position being where the element stands in the writer's
  sweeps (a hint that spares readers an index of the grid); in format 3 also the failed
  attempts: ``["f",element,position,attempts,failed,time,error]`` each time one is counted
  (``attempts`` so far, this one included; ``failed``: ``true`` when the element is FAILED for
  good; the error text), and ``["r"]`` when the failures are reset (every failed attempt
  written before is forgotten). They share the done stream because they are as persistent as
  done (never compacted, flushed to disk) and so that an operation still reads two streams;
- *claims*: ``["+",[host,pid,start,pidns],element,position,time]`` when an element is taken
  (time: seconds since the epoch; format 1 owners: ``[host,pid,start]``),
  ``["s",[host,pid,start,pidns],element,position,time,number]`` when it is skipped (format 4:
  skipped for the ParamSweeper instance that the owner process created as its ``number``-th
  store object, and for the processes that instance was forked into, while the owner lives;
  todo for every other instance: see :class:`~execo_engine.store.owner.Instance`; formats 2
  and 3 wrote no number: a skip of the owner process, for every instance, while it lives),
  and ``["-",element]`` when it is given back (a done record ends a hold too: no release is
  written for a done element); a claim or a skip replaces the element's previous one.
  Compacted (replaced by the live claims and skips) when mostly made of finished ones;
- *sweeps* (when saved): the elements to iterate on, in order;
- *results* (when recorded): ``{"combination": element, "values": {...}, "outcome": ...,
  "duration": seconds, "host": ..., "time": ...}``.

:class:`RecordEncoder` holds what does not depend on the medium: encoding, decoding with clear
errors (a record that is not JSON, or not of its stream's shape, names where it is), and the
:class:`Changes` handed to the ParamSweeper state machine.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from execo_engine.codec import MAX_DEPTH, Codec, is_hashable
from execo_engine.elements import HashableDict, HashableList
from execo_engine.errors import CorruptRecordError, PickleNotAllowedError
from execo_engine.log import logger
from execo_engine.store.contract import Failure
from execo_engine.store.owner import Owner, decode_owner

CLAIM, RELEASE, SKIP = "+", "-", "s"
FAIL, RESET_FAILURES = "f", "r"  #: the records of failed attempts in the done stream
#: (CLAIM, SKIP or RELEASE, owner (not for releases), element, position in the holder's sweeps
#: or None, time of the claim or skip, or None, number of the skipping instance or None)
ClaimEvent = tuple[str, Owner | None, Any, int | None, float | None, int | None]
#: A live claim or skip as written: (element, owner, position hint, time of the claim, number
#: of the skipping instance (None: a claim, or a skip of format 2 or 3))
Claim = tuple[Any, Owner, int | None, float, int | None]
#: Describes where the i-th record of a piece stands ("byte offset 12", "row 3")
Locate = Callable[[int], str]

_json = json.JSONEncoder(separators=(",", ":")).encode


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


def _is_number(value: Any, low: float, high: float) -> bool:
    """An int or a float (not a bool) from ``low`` to below ``high`` (not NaN)."""
    return type(value) in (int, float) and low <= value < high


_SCALARS = frozenset({str, int, float, bool, type(None), bytes})


def _is_element(value: Any, plain: bool = False, depth: int = MAX_DEPTH) -> bool:
    """A sweep element: hashable once its lists are HashableLists (no plain dict inside: see
    :meth:`Codec.element`), nested at most ``MAX_DEPTH`` levels; with ``plain=True``
    (decoded so) a dict stands for a HashableDict."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if depth == 0:
        return False
    depth -= 1
    if kind is HashableDict or (plain and kind is dict):
        if _SCALARS.issuperset(map(type, value.values())) and _SCALARS.issuperset(map(type, value)):
            return True  # the common flat combination, checked in C
        return all(
            _is_element(key, plain, depth) and _is_element(item, plain, depth)
            for key, item in value.items()
        )
    if kind is tuple or kind is frozenset or kind is list or kind is HashableList:
        return all(_is_element(item, plain, depth) for item in value)
    if kind is dict:
        return False
    return is_hashable(value)  # an unpickled value (allow_pickle=True)


def _is_nested_within(value: Any, depth: int = MAX_DEPTH) -> bool:
    """Any decoded value, nested at most ``depth`` levels."""
    if isinstance(value, dict):
        items: Iterable[Any] = itertools.chain(value.keys(), value.values())
    elif type(value) in (list, tuple, frozenset):
        items = value
    else:
        return True
    return depth > 0 and all(_is_nested_within(item, depth - 1) for item in items)


def _is_position(value: Any) -> bool:
    return value is None or type(value) is int


_FEW = 16  #: pieces of at most this many records are checked record by record
_MAX_HELD_TEXTS = 65536  #: texts of this object's claims kept at most (see RecordEncoder)


def _all_done(decoded: list[Any], records: list[bytes]) -> bool:
    """Every record is a done record (checked in C when no element holds a ``[`` nor too
    many ``{``: a resume reads millions)."""
    if not (set(map(type, decoded)) <= {list} and set(map(len, decoded)) <= {2}):
        return False
    if not set(map(type, map(operator.itemgetter(0), decoded))) <= {int, type(None)}:
        return False
    repeat = itertools.repeat
    if max(map(bytes.count, records, repeat(b"{")), default=0) <= MAX_DEPTH:
        # Every hashable container has a "{": elements nest at most MAX_DEPTH levels.
        if sum(map(bytes.count, records, repeat(b"["))) == len(records):
            return True  # no list, no tag: each element is a (plain) HashableDict or a scalar
        elements: Iterable[Any] = list(map(operator.itemgetter(1), decoded))
        if set(map(type, elements)) <= {HashableDict}:  # hashable if its values are
            elements = map(tuple, map(dict.values, elements))
        try:
            collections.deque(map(hash, elements), maxlen=0)
            return True
        except TypeError:  # a list or a dict somewhere, or a plain dict standing for a
            pass  # HashableDict: look closer
    plain = not any(map(bytes.__contains__, records, repeat(b'"__')))  # see decode_lines
    return all(_is_element(record[1], plain) for record in decoded)


def _is_done_stream_record(record: Any, plain: bool = False) -> bool:
    """A record of the done stream: a done record, a failure record or a reset of the
    failures (``plain``: see :func:`_is_element`)."""
    if type(record) is not list:
        return False
    if len(record) == 2:
        return _is_position(record[0]) and _is_element(record[1], plain)
    return record == [RESET_FAILURES] or (
        len(record) == 7
        and record[0] == FAIL
        and _is_element(record[1], plain)
        and _is_position(record[2])
        and type(record[3]) is int
        and record[3] > 0
        and type(record[4]) is bool
        and _is_number(record[5], -1e15, 1e15)
        and type(record[6]) is str
    )


def _all_done_stream(decoded: list[Any], records: list[bytes]) -> bool:
    """Every record is a record of the done stream (see :func:`_all_done` for done records
    alone, the common case of big pieces; a few records are checked one by one)."""
    if len(records) > _FEW and _all_done(decoded, records):
        return True
    plain = not any(map(bytes.__contains__, records, itertools.repeat(b'"__')))
    return all(_is_done_stream_record(record, plain) for record in decoded)


_owners: dict[tuple[Any, ...], Owner] = {}  # decoded owners by their fields: few, seen often
_MAX_OWNERS = 4096


def _owner(value: Any) -> Owner | None:
    """The owner ``value`` holds (see :func:`execo_engine.store.owner.decode_owner`), None if it is
    not one; decoded once per distinct owner."""
    if type(value) is not list:
        return None
    try:
        owner = _owners.get(tuple(value))
    except TypeError:  # a list or a dict inside: not an owner
        return None
    if owner is not None and type(value[1]) is int:  # a bool or float pid would compare equal
        return owner
    try:
        owner = decode_owner(value)
    except ValueError:
        return None
    if len(_owners) >= _MAX_OWNERS:
        _owners.clear()
    _owners[tuple(value)] = owner
    return owner


def _is_hold_record(record: Any) -> bool:
    """A record of the claims stream: a claim, a skip (format 2) or a release."""
    if type(record) is not list or not record:
        return False
    if record[0] == RELEASE:
        return len(record) == 2 and _is_element(record[1])
    return (
        (
            (record[0] in (CLAIM, SKIP) and len(record) == 5)
            or (
                record[0] == SKIP
                and len(record) == 6
                and type(record[5]) is int
                and 0 < record[5] < 2**63
            )
        )
        and _owner(record[1]) is not None
        and _is_element(record[2])
        and _is_position(record[3])
        and _is_number(record[4], -1e15, 1e15)
    )


_RESULT_FIELDS = frozenset({"combination", "values", "outcome", "duration", "host", "time"})


def _is_result_record(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and record.keys() >= _RESULT_FIELDS
        and _is_element(record["combination"])
        and isinstance(record["values"], dict)
        and _is_nested_within(record["values"])
        and (record["outcome"] is None or type(record["outcome"]) is str)
        and (record["duration"] is None or _is_number(record["duration"], -1e15, 1e15))
        and type(record["host"]) is str
        and _is_number(record["time"], 0, 1e11)  # a date Python can show
    )


_ELEMENT = (
    f"an element is hashable (no plain dict inside, only tagged forms) and nests at most "
    f"{MAX_DEPTH} levels"
)
#: What each shape of record is, for errors
_EXPECTED: dict[Callable[[Any], bool], str] = {
    _is_done_stream_record: f"[position or null, element], or a failure record "
    f'["f", element, position or null, attempts, failed, time, error] or ["r"]; {_ELEMENT}',
    _is_hold_record: '["+" or "s", [host, pid, start marker, pid namespace], element, '
    'position or null, time], ["s", owner, element, position or null, time, instance number] '
    f'or ["-", element]; {_ELEMENT}',
    _is_element: f"an element; {_ELEMENT}",
    _is_result_record: '{"combination": element, "values": {...}, "outcome": text or null, '
    f'"duration": seconds or null, "host": text, "time": seconds since 1970}}; {_ELEMENT}',
}


def read_result(codec: Codec, text: str | bytes) -> Any:
    """The result record whose text is ``text``; ``ValueError`` saying why it is not one
    (:class:`PickleNotAllowedError` for a pickled value the codec may not unpickle)."""
    try:
        value = codec.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply (the depth Python can handle)") from None
    if not _is_result_record(value):
        raise ValueError(f"not a result record: expected {_EXPECTED[_is_result_record]}")
    return value


def result_text(codec: Codec, record: HashableDict) -> str:
    """The text of a result record, checked to read back as one (what a writer accepts, every
    reader reads): ``UnsupportedValueError`` naming a value the codec cannot carry,
    ``ValueError`` if the record would not read back."""
    # Only read back: the order of names kept. The record is one level more: its combination
    # nests as deep as an element may (and its values as deep, counting their dict).
    text = codec.encode_in_order(record, MAX_DEPTH + 1)
    try:
        read_result(codec, text)
    except ValueError as error:
        raise ValueError(
            f"refusing to write a result record no reader could read back ({error}): {text[:120]}"
        ) from None
    return text


def _pickle_hint(record: bytes) -> str:
    return (
        " (this looks like a pickle file written by execo 2.x, which this version never "
        "unpickles: move the directory away, or start a new one)"
        if record.startswith(b"\x80")
        else ""
    )


@dataclass
class DonePiece:
    """A piece of the done stream, decoded (valid JSON) but not yet checked to hold records of
    the done stream: a reader that recognizes every record as it is (each one
    ``[position, element]`` with the reader's own element at that position, as in a resume)
    needs no other check; any other reader takes :meth:`checked`."""

    #: the decoded records: any JSON values until checked (elements decoded ``plain``)
    records: list[Any]
    #: raises :class:`CorruptRecordError`, naming where, unless every record is one of the
    #: done stream (``[position hint, element]``, a failure record or a reset of the failures)
    check: Callable[[], None]

    def checked(self) -> list[list[Any]]:
        """The records, checked (see :attr:`check`)."""
        self.check()
        return self.records


@dataclass
class Changes:
    """What other writers (and crashed ones) did since the last :meth:`RecordEncoder.read`.

    ``done`` is decoded lazily, piece by piece (a resumed grid may hold millions of records):
    consume it before the lock is released.
    """

    #: the done stream's new records, piece by piece (see :class:`DonePiece`); an element may
    #: be a plain dict equal to it, see :meth:`Codec.from_plain`
    done: Iterator[DonePiece]
    done_restarted: bool
    claims: list[ClaimEvent]
    claims_restarted: bool
    changed: bool  #: False when nothing at all happened


#: Nothing happened (shared: a reader applies nothing of it, see ``changed``).
NO_CHANGES = Changes(iter(()), False, [], False, False)


class RecordEncoder:
    """Encoding and decoding of the records, for a medium named ``path``."""

    def __init__(self, path: str, codec: Codec, read_only: bool) -> None:
        self.path, self.codec, self.read_only = path, codec, read_only
        self.name = path  #: a short name for logs (subclasses refine it)
        self._skipped: set[tuple[str, str]] = set()  #: unreadable results warned about
        #: id -> (element, text) of what this object claimed and holds: its next record (done,
        #: skip, release, failure) reuses the text. The elements of a store are never handed
        #: to the script (it gets copies: see :mod:`execo_engine.handed`), so they do not change
        #: between the claim and the record that ends it.
        self._held_texts: dict[int, tuple[Any, str]] = {}

    def _text(self, element: Any) -> str:
        """The canonical text of ``element``: the one its claim by this object wrote (then
        forgotten), else encoded now."""
        held = self._held_texts.pop(id(element), None)
        if held is not None and held[0] is element:
            return held[1]
        return self.codec.encode(element)

    def _texts(self, elements: list[Any]) -> list[str]:
        """:meth:`_text` of each of ``elements``; several that this object holds no text of
        are encoded at once (a grid's: a factor at a time, see :meth:`Codec.encode_many`)."""
        if len(elements) == 1 or any(id(element) in self._held_texts for element in elements):
            return list(map(self._text, elements))
        return self.codec.encode_many(elements)

    def check_writable(self) -> None:
        """``PermissionError`` if the store was opened read-only."""
        if self.read_only:
            raise PermissionError(f"{self.path}: opened read-only")

    # -- decoding ------------------------------------------------------------------------------

    def _decode(
        self, where: str, batch: Batch, shape: Callable[[Any], bool] | None = None
    ) -> list[Any]:
        """The decoded records; a record that is not JSON, or not of the ``shape`` its stream
        holds, is a :class:`CorruptRecordError` naming where it is."""
        decoded_all: list[Any] = []
        for locate, records in batch.chunks():
            try:
                decoded = self.codec.decode_lines(records)
                if shape is None or (
                    _all_done_stream(decoded, records)
                    if shape is _is_done_stream_record
                    else all(map(shape, decoded))
                ):
                    decoded_all.extend(decoded)
                    continue
            except PickleNotAllowedError as error:
                raise PickleNotAllowedError(f"{where}: {error}") from None
            except (ValueError, RecursionError):
                pass
            raise self._corrupt(where, locate, records, shape)
        return decoded_all

    def _corrupt(
        self, where: str, locate: Locate, records: list[bytes], shape: Callable[[Any], bool] | None
    ) -> CorruptRecordError:
        for index, record in enumerate(records):
            try:
                value = self.codec.decode(record)
                if shape is None or shape(value):
                    continue
                name = where.rsplit("/", 1)[-1]
                reason = f"not a record of {name}: expected {_EXPECTED[shape]}"
            except ValueError as error:
                reason = str(error)
            except RecursionError:
                reason = "nested too deeply (the depth Python can handle)"
            return CorruptRecordError(
                f"{where}: corrupt record at {locate(index)}: "
                f"{record[:80]!r} ({reason}){_pickle_hint(record)}"
            )
        return CorruptRecordError(f"{where}: corrupt records at {locate(0)}")

    def _decode_done(self, where: str, batch: Batch) -> Iterator[DonePiece]:
        """The pieces of the done stream ``batch``, decoded, their shape unchecked (see
        :class:`DonePiece`); a record that is not JSON is a :class:`CorruptRecordError`."""
        for locate, records in batch.chunks():
            try:
                decoded = self.codec.decode_lines(records, plain=True)
            except PickleNotAllowedError as error:
                raise PickleNotAllowedError(f"{where}: {error}") from None
            except (ValueError, RecursionError):
                raise self._corrupt(where, locate, records, _is_done_stream_record) from None
            yield DonePiece(
                decoded, functools.partial(self._check_done, where, locate, records, decoded)
            )

    def _check_done(
        self, where: str, locate: Locate, records: list[bytes], decoded: list[Any]
    ) -> None:
        if not _all_done_stream(decoded, records):
            raise self._corrupt(where, locate, records, _is_done_stream_record)

    def _changes(self, done: Batch, claims: Batch, done_where: str, claims_where: str) -> Changes:
        events: list[ClaimEvent] = []
        if not claims.empty:
            element = self.codec.element
            events = [
                (RELEASE, None, element(record[1]), None, None, None)
                if record[0] == RELEASE
                else (
                    record[0],
                    _owner(record[1]),
                    element(record[2]),
                    record[3],
                    record[4],
                    record[5] if len(record) == 6 else None,
                )
                for record in self._decode(claims_where, claims, _is_hold_record)
            ]
        changed = done.restarted or claims.restarted or not done.empty or not claims.empty
        return Changes(
            iter(()) if done.empty else self._decode_done(done_where, done),
            done.restarted,
            events,
            claims.restarted,
            changed,
        )

    def _decode_sweeps(self, where: str, batch: Batch) -> list[Any]:
        """The saved elements of ``batch``, in order."""
        return list(map(self.codec.element, self._decode(where, batch, _is_element)))

    def _decode_results(self, where: str, batch: Batch) -> list[Any]:
        """The readable result records of ``batch``, in order. One that is not (written by hand,
        or by an older version) is skipped with a warning naming where it stands (once per
        record and object): results are not state, the others stay readable."""
        results: list[Any] = []
        for locate, records in batch.chunks():
            try:
                decoded = self.codec.decode_lines(records)
                if all(map(_is_result_record, decoded)):
                    results.extend(decoded)
                    continue
            except PickleNotAllowedError as error:
                raise PickleNotAllowedError(f"{where}: {error}") from None
            except (ValueError, RecursionError):
                pass
            for index, record in enumerate(records):
                try:
                    results.append(read_result(self.codec, record))
                except PickleNotAllowedError as error:
                    raise PickleNotAllowedError(f"{where}: {error}") from None
                except ValueError as error:
                    self.skip_unreadable(where, locate(index), record, str(error))
        for result in results:
            result["combination"] = self.codec.element(result["combination"])
        return results

    def skip_unreadable(self, where: str, place: str, record: bytes | str, reason: str) -> None:
        """Warn (once per object) that the result record at ``place`` of ``where`` is skipped."""
        if (where, place) in self._skipped:
            return
        self._skipped.add((where, place))
        logger.warning(
            "%s: unreadable result record at %s skipped: %r (%s); the other results are read",
            where,
            place,
            record[:80],
            reason,
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
        pairs = list(done)
        if len(pairs) == 1:  # the common done(): the text its claim wrote, when it holds it
            ((position, element),) = pairs
            return [f"[{_position_text(position)},{self._text(element)}]"]
        for _, element in pairs:  # a batch is encoded anew: what was held is forgotten
            self._held_texts.pop(id(element), None)
        texts = self.codec.encode_many([element for _, element in pairs])  # a grid: by factor
        positions = list(map(operator.itemgetter(0), pairs))
        position_texts = map(str if None not in positions else _position_text, positions)
        return list(map("[{},{}]".format, position_texts, texts))

    def _failure_lines(self, failures: Iterable[tuple[int | None, Failure]]) -> list[str]:
        self.check_writable()
        text = self._text
        return [
            f'["{FAIL}",{text(f.element)},{_position_text(position)},{int(f.attempts)},'
            f"{_json(bool(f.failed))},{f.since:.3f},{_json(f.error)}]"
            for position, f in failures
        ]

    def _reset_failures_line(self) -> str:
        self.check_writable()
        return f'["{RESET_FAILURES}"]'

    def _claim_lines(
        self, claims: Iterable[Claim], kind: str = CLAIM, mine: bool = False
    ) -> list[str]:
        """The records of claims (``kind`` CLAIM) or skips (SKIP: with the number of the
        skipping instance, when it has one); ``mine``: claims this object takes now (their
        texts are kept for the records that will end them)."""
        self.check_writable()
        claims = list(claims)
        lines = []
        for (element, owner, position, since, number), text in zip(
            claims, self._texts([claim[0] for claim in claims]), strict=True
        ):
            if mine:
                if len(self._held_texts) >= _MAX_HELD_TEXTS:  # claims lost to others, mostly
                    self._held_texts.clear()
                self._held_texts[id(element)] = (element, text)
            lines.append(
                f'["{kind}",{owner_text(owner)},{text},{_position_text(position)},{since:.3f}'
                f"{'' if number is None or kind != SKIP else f',{int(number)}'}]"
            )
        return lines

    def _release_lines(self, elements: Iterable[Any]) -> list[str]:
        self.check_writable()
        text = self._text
        return [f'["{RELEASE}",{text(element)}]' for element in elements]

    def _sweeps_lines(self, elements: Iterable[Any]) -> list[str]:
        self.check_writable()
        # factors stay in the order of the sweep dict; a grid's are encoded a factor at a time
        return self.codec.encode_many(list(elements), in_order=True)

    def _result_line(self, record: HashableDict) -> str:
        self.check_writable()
        return result_text(self.codec, record)
