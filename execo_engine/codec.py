"""Canonical text encoding of sweep elements: one compact JSON document per element.

The same element always encodes to the same text, in every process (no ``hash()``, sorted
keys), and decodes to an equal value of the same types:

- ``str``, ``int``, ``float``, ``bool``, ``None`` and ``list`` are plain JSON; a list inside an
  element (a list level) decodes to a :class:`HashableList`;
- a :class:`HashableDict` whose keys are all strings is a plain JSON object (the common case,
  readable in the files); every JSON object decodes to a ``HashableDict``;
- other types are a one-key object whose key is a tag: ``{"__tuple__": [...]}``,
  ``{"__dict__": [[k, v], ...]}`` (a plain dict), ``{"__hdict__": [[k, v], ...]}`` (a
  HashableDict with non-string keys), ``{"__frozenset__": [...]}``, ``{"__bytes__": "base64"}``
  and, only when the user opted in, ``{"__pickle__": "base64"}``. A HashableDict whose only key
  is a tag name is written in the ``__hdict__`` form, so a tag is never ambiguous.

A script's own container types (``class hashabledict(dict)`` or ``class hashablelist(list)``
with a ``__hash__``, a named tuple, a ``frozenset`` subclass) are written by the value of
their base type, never pickled: an element is written as its :func:`plain_equivalent`
(a dict subclass as a HashableDict, a list as a HashableList, a tuple as a tuple, a set as a
frozenset), and a reader gets those plain equivalents back. Anything else (a ``set``, an
``IntEnum`` or another subclass of a scalar type, a custom class) is an
:class:`UnsupportedValueError` naming the value, unless ``allow_pickle=True``. So is what a
reader could not get back: an integer of more than :data:`INT_DIGITS` digits (Python reads such
a number only after ``sys.set_int_max_str_digits()``, whatever the writer's own setting), and,
in an element (never in :meth:`Codec.encode_in_order`, which results use), a NaN: never equal
to itself, a reader could never find such an element again. Decoding never unpickles unless
``allow_pickle=True`` either: a pickled value in a file is a :class:`PickleNotAllowedError`.

When `orjson <https://github.com/ijl/orjson>`_ is installed (the ``fast`` extra), records
without any tag read with ``decode_lines(..., plain=True)`` (the done records a resume reads)
are parsed by it; whatever it refuses is parsed by :mod:`json` as without it, and what it would
read otherwise (an integer beyond 64 bits, which it makes a float; nesting deeper than json
reads) never reaches it: the values, and the errors, are exactly those :mod:`json` gives. A
text longer than 8 MiB (one huge record) is parsed by :mod:`json` alone.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import operator
import pickle
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from operator import itemgetter
from typing import Any

from execo_engine.elements import SCALARS, HashableDict, HashableList
from execo_engine.errors import PickleNotAllowedError, UnsupportedValueError

#: orjson's ``loads`` when it is installed (the ``fast`` extra), else None: the plain records of
#: :meth:`Codec.decode_lines` are parsed by it (see :func:`_loads_plain`); None parses them with
#: :mod:`json` alone (the tests set it so, to run both ways)
_fast_loads: Callable[[bytes], Any] | None
try:
    import orjson

    _fast_loads = orjson.loads
except ImportError:
    _fast_loads = None

_PLAIN = SCALARS
_TAGS = frozenset(
    {"__tuple__", "__dict__", "__hdict__", "__frozenset__", "__bytes__", "__pickle__"}
)
#: How deep values may nest (a tuple in a dict: 2): deeper records are refused when written,
#: and corrupt when read (Python's recursion limit is far above)
MAX_DEPTH = 100
#: The most digits an integer may have: the digits every Python reads by default
INT_DIGITS = sys.int_info.default_max_str_digits
_INT_BOUND = 10**INT_DIGITS
_encode_string = json.encoder.encode_basestring_ascii  #: how _dumps writes a string


def _one_line_json(sort_keys: bool) -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=sort_keys, separators=(",", ":"))``, with json's C
    encoder made once rather than at each call (2 of the 3 microseconds of encoding a small
    combination). Without the check for circular references, which no value encoded here
    can have: they are plain values, or what :meth:`Codec._to_json` built, which would have
    recursed without end before."""
    encoder = json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without json's C accelerator
        return encoder.encode
    chunks = make(None, encoder.default, _encode_string, None, ":", ",", sort_keys, False, True)
    return lambda value: _encode_string(value) if type(value) is str else "".join(chunks(value, 0))


_dumps = _one_line_json(sort_keys=True)
_dumps_in_order = _one_line_json(sort_keys=False)


def is_hashable(value: Any) -> bool:
    """Whether ``hash(value)`` works."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _are_pairs(payload: Any) -> bool:
    return type(payload) is list and all(
        type(pair) is list and len(pair) == 2 and is_hashable(pair[0]) for pair in payload
    )


#: What each tag must hold (checked before building the value), and how errors say it
_PAYLOADS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "__tuple__": (lambda payload: type(payload) is list, "a list"),
    "__dict__": (_are_pairs, "a list of [key, value] pairs, keys hashable"),
    "__hdict__": (_are_pairs, "a list of [key, value] pairs, keys hashable"),
    "__frozenset__": (
        lambda payload: type(payload) is list and all(map(is_hashable, payload)),
        "a list of hashable values",
    ),
    "__bytes__": (lambda payload: type(payload) is str, "a base64 string"),
    "__pickle__": (lambda payload: type(payload) is str, "a base64 string"),
}


_PLAIN_JSON = json.JSONDecoder()  # objects stay dicts
_UNTAGGED_JSON = json.JSONDecoder(object_pairs_hook=HashableDict)  # for text without any tag


def _loads(text: str | bytes, decoder: json.JSONDecoder) -> Any:
    """``json.loads`` of UTF-8 ``text`` with ``decoder`` (made once: ``json.loads`` with a hook
    builds a decoder on every call); every failure (deep nesting, bad UTF-8 included) is a
    ``ValueError``."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogatepass")
        return decoder.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply (the depth Python can decode)") from None


#: Digits 1-9 made 0s, so that one search finds a run of 19 digits
_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
#: orjson reads an integer beyond 64 bits (19 digits can be, 18 never are) as a float, without
#: an error: text with such a run of digits anywhere is parsed by json
_LONG_DIGITS = b"0" * 19
#: orjson reads up to 1024 levels of nesting, json as deep as the recursion limit lets it
#: (about 1000 levels): only records surely nested less than this (shorter than twice as many
#: bytes, or with fewer brackets) are parsed by orjson; elements nest at most MAX_DEPTH levels
_FAST_DEPTH = 2 * MAX_DEPTH
#: Longer text (one huge record: the pieces a resume reads are about 1 MiB) is parsed by json
#: alone: the search for long digit runs copies the text, which would double its memory
_FAST_MAX_BYTES = 1 << 23


def _shallow(lines: list[bytes]) -> bool:
    """Whether no record of ``lines`` nests :data:`_FAST_DEPTH` levels or more (a record
    nested ``n`` levels has ``n`` opening brackets, and at least ``2 * n`` bytes)."""
    if max(map(len, lines)) < 2 * _FAST_DEPTH:
        return True
    return all(
        line.count(b"[") + line.count(b"{") < _FAST_DEPTH
        for line in lines
        if len(line) >= 2 * _FAST_DEPTH
    )


def _loads_plain(lines: list[bytes], data: bytes) -> Any:
    """``_loads(data, _PLAIN_JSON)`` (``data``: the text of ``lines``), by :data:`_fast_loads`
    when it is set and gives the same value. Text it reads otherwise (a run of 19 digits,
    nesting json may refuse), text it refuses (NaN, infinities, 1e400, lone surrogates,
    invalid JSON) and text longer than :data:`_FAST_MAX_BYTES` are parsed by :mod:`json`,
    whose value or error is the answer."""
    fast = _fast_loads
    if (
        fast is not None
        and len(data) <= _FAST_MAX_BYTES
        and _shallow(lines)
        and _LONG_DIGITS not in data.translate(_DIGITS_AS_ZEROS)
    ):
        try:
            return fast(data)
        except Exception:  # json decides: its value, or its error
            pass
    return _loads(data, _PLAIN_JSON)


_PLAIN_TYPES = frozenset(_PLAIN)
_STR_TYPE = frozenset({str})


def _is_object(keys: Collection[Any]) -> bool:
    """Whether a HashableDict with these keys is written as a plain JSON object: string keys,
    and not one tag name alone (else in the ``__hdict__`` form)."""
    return _STR_TYPE.issuperset(map(type, keys)) and not (
        len(keys) == 1 and next(iter(keys)) in _TAGS
    )


def _is_flat(element: Any) -> bool:
    """A HashableDict of plain values written as a plain object: its JSON text is its own
    (the common combination of a sweep, encoded without building a copy)."""
    return (
        type(element) is HashableDict
        and _PLAIN_TYPES.issuperset(map(type, element.values()))
        and _is_object(element)
    )


def _huge_integer(value: int) -> UnsupportedValueError:
    return UnsupportedValueError(
        f"cannot store the integer {hex(value)[:20]}... ({value.bit_length()} bits): it has "
        f"more than {INT_DIGITS} digits, which Python reads back only after "
        f"sys.set_int_max_str_digits(); store hex(n) (a string) or n.to_bytes(...) instead"
    )


def _check_readable(value: Any, in_element: bool, element: Any = None) -> None:
    """Raise :class:`UnsupportedValueError` naming the first part of ``value`` that a reader
    could not get back: an integer of more than :data:`INT_DIGITS` digits, or, ``in_element``,
    a NaN (``element``: the whole element, for the message). Called on what was already
    encoded (or failed to be, for an integer): it nests at most :data:`MAX_DEPTH` levels."""
    whole = value if element is None else element
    kind = type(value)
    if kind is int and not -_INT_BOUND < value < _INT_BOUND:
        raise _huge_integer(value)
    if kind is float and in_element and math.isnan(value):
        raise UnsupportedValueError(
            f"cannot store {whole!r:.80} as an element: NaN is never equal to itself (no "
            f"reader could find the element again); use None or the string 'nan'"
        )
    if kind is dict or kind is HashableDict:
        for key, item in value.items():
            _check_readable(key, in_element, whole)
            _check_readable(item, in_element, whole)
    elif kind is list or kind is HashableList or kind is tuple or kind is frozenset:
        for item in value:
            _check_readable(item, in_element, whole)


def is_flat_plain(value: Any) -> bool:
    """Whether ``value`` is a HashableDict whose names and values are all plain scalars (the
    common combination of a sweep): its own :func:`plain_equivalent`, and hashable; checked
    in C."""
    return (
        type(value) is HashableDict
        and _PLAIN_TYPES.issuperset(map(type, value.values()))
        and _PLAIN_TYPES.issuperset(map(type, value))
    )


def plain_equivalent(value: Any, dicts: bool = False, depth: int = MAX_DEPTH) -> Any:
    """``value`` with each container of a type of the script's own (a subclass of ``dict``,
    ``list``, ``tuple`` or ``frozenset``), and each list, replaced by its plain equivalent: a
    :class:`HashableDict`, a :class:`HashableList`, a ``tuple``, a ``frozenset``; ``value``
    itself when there is nothing to replace (no copy: the common case). Plain dicts (a
    ``{"__dict__": ...}`` value, not hashable) and sets are kept, unless ``dicts`` (values
    decoded with every object a plain dict) makes dicts HashableDicts; scalars and other types
    are kept as they are too (the codec refuses them, or pickles them).

    This is what an element is stored as, and what a reader without the script's sweeps gets
    back: equal to the script's value, of types every reader has, hashed alike in every
    process.
    """
    kind = type(value)
    if kind in _PLAIN_TYPES or depth == 0:
        return value
    depth -= 1
    if kind is HashableDict or isinstance(value, dict):
        if is_flat_plain(value):
            return value  # the common flat combination, checked in C
        if kind is dict and not dicts:
            return value
        pairs = [
            (plain_equivalent(key, dicts, depth), plain_equivalent(item, dicts, depth))
            for key, item in value.items()
        ]
        if kind is HashableDict and all(
            new[0] is old[0] and new[1] is old[1]
            for new, old in zip(pairs, value.items(), strict=True)
        ):
            return value
        return HashableDict(pairs)
    if isinstance(value, (list, tuple, set, frozenset)) and kind is not set:
        items = [plain_equivalent(item, dicts, depth) for item in value]
        base: type[Any] = (
            HashableList
            if isinstance(value, list)
            else tuple
            if isinstance(value, tuple)
            else frozenset
        )
        if kind is base and all(map(operator.is_, items, value)):
            return value
        return base(items)
    return value


def plain_equivalents(elements: Sequence[Any]) -> list[Any] | None:
    """The :func:`plain_equivalent` of each of ``elements``, or None when each is its own (no
    copy: a grid of ``sweep()`` whose levels are plain values is checked a factor at a time,
    in C)."""
    kinds = set(map(type, elements))
    if kinds <= _PLAIN_TYPES:
        return None
    if kinds == {HashableDict}:
        values = itertools.chain.from_iterable(map(dict.values, elements))
        keys = itertools.chain.from_iterable(elements)
        if _PLAIN_TYPES.issuperset(map(type, values)) and _PLAIN_TYPES.issuperset(map(type, keys)):
            return None
    converted = list(map(plain_equivalent, elements))
    return None if all(map(operator.is_, converted, elements)) else converted


class Codec:
    """Encodes elements to canonical JSON text and back.

    ``allow_pickle=True`` lets values the text form cannot carry be pickled (and such records be
    unpickled when read): only for directories written by people you trust.
    """

    def __init__(self, allow_pickle: bool = False) -> None:
        self.allow_pickle = allow_pickle
        self._tagged_json = json.JSONDecoder(object_pairs_hook=self._from_object)

    def encode(self, element: Any) -> str:
        """The canonical one-line JSON text of ``element``: that of its
        :func:`plain_equivalent`, computed from its value at each call (nothing is cached by
        object: an element changed in place encodes as it is now)."""
        flat = _is_flat(element)
        plain = element if flat else plain_equivalent(element)
        try:
            text = _dumps(plain if flat else self._to_json(plain))
        except ValueError:  # an integer beyond this process's limit of digits
            _check_readable(plain, in_element=True)
            raise
        if len(text) > INT_DIGITS or "NaN" in text:  # else it holds neither
            _check_readable(plain, in_element=True)
        return text

    def encode_many(self, elements: Sequence[Any], in_order: bool = False) -> list[str]:
        """The canonical texts of ``elements``, as :meth:`encode` gives each (with
        ``in_order``: as :meth:`encode_in_order`).

        A grid (every element a plain value, or every element a HashableDict with the same
        string keys, in the same order, and plain values: str, int, float, bool, None) is
        encoded a factor at a time, each distinct value object once, with no Python code run
        per element; other elements one by one.
        """
        texts = _grid_texts(elements, in_order)
        if texts is not None:
            return texts
        encode = self.encode_in_order if in_order else self.encode
        return [encode(element) for element in elements]

    def encode_in_order(self, element: Any, levels: int = MAX_DEPTH) -> str:
        """The one-line JSON text of ``element`` keeping the order of its dicts' keys (decoding
        gives them back in that order): not canonical, for what is only read back. NaN
        and infinities are kept (as ``NaN``, ``Infinity``, which every reader of this package
        reads back). ``levels``: how deep it may nest (a record holding elements: one more
        than :data:`MAX_DEPTH`)."""
        try:
            text = _dumps_in_order(self._to_json(element, levels))
        except ValueError:  # an integer beyond this process's limit of digits
            _check_readable(element, in_element=False)
            raise
        if len(text) > INT_DIGITS:
            _check_readable(element, in_element=False)
        return text

    def decode(self, text: str | bytes) -> Any:
        """The element whose text is ``text``; ``ValueError`` if it is not valid (not JSON,
        a tag holding what it cannot, nested too deeply)."""
        return _loads(text, self._tagged_json)

    def decode_lines(self, lines: list[bytes], plain: bool = False) -> list[Any]:
        """Decode many records at once (one JSON parse); ``ValueError`` if one is invalid
        (see :meth:`decode`).

        With ``plain=True``, records without any tag may come back with plain ``dict`` objects
        where elements have HashableDicts (equal to them, and faster to build);
        :meth:`from_plain` turns such a value into the element. Those records are parsed by
        orjson when it is installed (the same values and errors: see the module's docstring).
        """
        if not lines:
            return []
        # One huge record is parsed alone: no copy of it in a list's text.
        data = lines[0] if len(lines) == 1 else b"[" + b",".join(lines) + b"]"
        decoded: list[Any]
        if b'"__' in data:
            decoded = _loads(data, self._tagged_json)
        elif plain:
            decoded = _loads_plain(lines, data)
        else:  # without any tag in the text, every object is a HashableDict
            decoded = _loads(data, _UNTAGGED_JSON)
        return [decoded] if len(lines) == 1 else decoded

    @staticmethod
    def from_plain(value: Any) -> Any:
        """The element of a value decoded with ``plain=True``: dicts become HashableDicts and
        lists HashableLists (see :func:`plain_equivalent`)."""
        return plain_equivalent(value, dicts=True)

    @staticmethod
    def element(value: Any) -> Any:
        """The element of a decoded value: its lists become HashableLists (a plain dict,
        which no element holds, stays one for the caller's check to refuse)."""
        return plain_equivalent(value)

    def decode_element(self, text: str | bytes) -> Any:
        """The element whose canonical text is ``text`` (see :meth:`decode` and
        :meth:`element`)."""
        return self.element(self.decode(text))

    def _to_json(self, value: Any, depth: int = MAX_DEPTH) -> Any:
        kind = type(value)
        if kind in _PLAIN:
            return value
        if depth == 0:
            raise UnsupportedValueError(
                f"cannot store {value!r:.60}: values nest at most {MAX_DEPTH} levels"
            )
        depth -= 1
        if kind is HashableDict:
            if _is_object(value):
                return {key: self._to_json(item, depth) for key, item in value.items()}
            return {"__hdict__": self._pairs(value, depth)}
        if kind is list or kind is HashableList:
            return [self._to_json(item, depth) for item in value]
        if kind is tuple:
            return {"__tuple__": [self._to_json(item, depth) for item in value]}
        if kind is dict:
            return {"__dict__": self._pairs(value, depth)}
        if kind is frozenset:
            return {"__frozenset__": self._sorted(self._to_json(item, depth) for item in value)}
        if kind is bytes:
            return {"__bytes__": base64.b64encode(value).decode("ascii")}
        if isinstance(value, (dict, list, tuple, set, frozenset)) and kind is not set:
            # a container type of the script's own: written as its plain equivalent
            return self._to_json(plain_equivalent(value, depth=depth + 1), depth + 1)
        if self.allow_pickle:
            return {"__pickle__": base64.b64encode(pickle.dumps(value, protocol=4)).decode()}
        raise UnsupportedValueError(
            f"cannot store {value!r} (type {kind.__module__}.{kind.__qualname__}) as text: "
            f"use str, int, float, bool, None, tuple, list, dict, frozenset or bytes values "
            f"(or subclasses of those containers), or pass allow_pickle=True to ParamSweeper "
            f"if every reader trusts this directory"
        )

    def _pairs(self, mapping: dict[Any, Any], depth: int) -> list[list[Any]]:
        return self._sorted(
            [self._to_json(key, depth), self._to_json(item, depth)] for key, item in mapping.items()
        )

    @staticmethod
    def _sorted(items: Iterable[Any]) -> list[Any]:
        return sorted(items, key=_dumps)

    def _from_object(self, pairs: list[tuple[str, Any]]) -> Any:
        if len(pairs) != 1 or pairs[0][0] not in _TAGS:
            return HashableDict(pairs)
        tag, payload = pairs[0]
        if tag == "__frozenset__" and type(payload) is list:  # lists inside: list levels
            payload = [self.element(item) for item in payload]
        elif tag in ("__dict__", "__hdict__") and type(payload) is list:
            payload = [
                [self.element(pair[0]), pair[1]] if type(pair) is list and len(pair) == 2 else pair
                for pair in payload
            ]
        expected = _PAYLOADS[tag]
        if not expected[0](payload):
            raise ValueError(f"{tag} must hold {expected[1]}, not {_dumps(payload)[:40]}")
        if tag == "__tuple__":
            return tuple(payload)
        if tag == "__dict__":
            return dict(payload)
        if tag == "__hdict__":
            return HashableDict((key, item) for key, item in payload)
        if tag == "__frozenset__":
            return frozenset(payload)
        if tag == "__bytes__":
            try:
                return base64.b64decode(payload, validate=True)
            except binascii.Error:
                raise ValueError(
                    f"__bytes__ must hold {expected[1]}, not {payload[:40]!r}"
                ) from None
        if not self.allow_pickle:
            raise PickleNotAllowedError(
                "record holds a pickled value: refusing to unpickle it (it could run code); "
                "pass allow_pickle=True only if you trust whoever writes this directory"
            )
        return pickle.loads(base64.b64decode(payload))


def _plain_texts(
    values: list[Any], canonical: bool, before: str = "", after: str = ""
) -> list[str] | None:
    """``before + text + after`` for the JSON text of each of ``values``, or None unless they
    are all plain values (exact types: an ``IntEnum`` is not an ``int``). Each distinct value
    is encoded once: all strings or all ints are told apart by value, others by identity
    (``1``, ``1.0`` and ``True`` are equal, so are ``0.0`` and ``-0.0``). A huge integer is
    refused and, ``canonical`` (as :meth:`Codec.encode`), a NaN (see :func:`_check_readable`)."""
    kinds = set(map(type, values))
    if not kinds <= _PLAIN_TYPES:
        return None
    keys = values if kinds in ({str}, {int}) else list(map(id, values))
    distinct = dict(zip(keys, values, strict=True))
    if kinds == {int} and min(distinct) > -_INT_BOUND and max(distinct) < _INT_BOUND:
        texts: Iterable[str] = map(int.__repr__, distinct)  # what json writes, in C
    elif kinds == {str}:
        texts = map(_encode_string, distinct)  # what json writes (ensure_ascii), in C
    else:
        if kinds & {int, float}:
            for value in distinct.values():
                _check_readable(value, in_element=canonical)
        texts = map(_dumps, distinct.values())
    text_of = {key: f"{before}{text}{after}" for key, text in zip(distinct, texts, strict=True)}
    return list(map(text_of.__getitem__, keys))


def _grid_texts(elements: Sequence[Any], in_order: bool) -> list[str] | None:
    """The texts of ``elements`` if they are a grid (see :meth:`Codec.encode_many`), else
    None."""
    values = list(elements)
    if not values or type(values[0]) is not HashableDict:
        return _plain_texts(values, not in_order)
    if set(map(type, values)) != {HashableDict}:
        return None
    shapes = set(map(tuple, values))
    if len(shapes) != 1:
        return None
    shape = shapes.pop()
    if not _is_object(shape):
        return None  # written in the __hdict__ form
    keys = list(shape) if in_order else sorted(shape)
    if not keys:
        return ["{}"] * len(values)
    columns = []
    for index, key in enumerate(keys):
        before = ("{" if index == 0 else ",") + _dumps(key) + ":"
        after = "}" if index == len(keys) - 1 else ""
        column = _plain_texts(list(map(itemgetter(key), values)), not in_order, before, after)
        if column is None:
            return None
        columns.append(column)
    return list(map("".join, zip(*columns, strict=True)))
