"""The ``fast`` extra: with orjson installed, the done records a resume reads (records without
any tag, ``Codec.decode_lines(..., plain=True)``) are parsed by orjson, and every value, type
and error is the one :mod:`json` gives. Hypothesis writes JSON texts and near-JSON texts
(numbers at the edges of 64 bits and of floats, ``-0``, ``NaN``, escaped lone surrogates, raw
surrogates, control characters, duplicate keys, odd whitespace, deep nesting) and compares
both parsers; a resume reads and refuses done records alike with either.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from execo_engine import codec
from execo_engine.codec import Codec
from execo_engine.errors import CorruptRecordError
from execo_engine.sweep import HashableDict, ParamSweeper, sweep

#: Like tests/test_writer_reader.py's profiles, without touching the global ones: in CI
#: (``HYPOTHESIS_PROFILE=ci``, or ``CI`` set) the same examples on every run, no database
_CI = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev") == "ci"
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=_CI,
    print_blob=_CI,
    suppress_health_check=[HealthCheck.too_slow],
)
if _CI:
    PROPERTY = settings(PROPERTY, database=None)


@pytest.fixture(params=["orjson", "json"])
def parser(request, monkeypatch):
    """Run the test with each parser of plain records: orjson (skipped when it is not
    installed), its calls recorded in the list returned; then :mod:`json` alone (None)."""
    if request.param == "json":
        monkeypatch.setattr(codec, "_fast_loads", None)
        return None
    orjson = pytest.importorskip("orjson")
    calls: list[bytes] = []

    def loads(data: bytes) -> Any:
        calls.append(data)
        return orjson.loads(data)

    monkeypatch.setattr(codec, "_fast_loads", loads)
    return calls


@contextlib.contextmanager
def parsing_with(loads: Any) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codec, "_fast_loads", loads)
        yield


def outcome(lines: list[bytes]) -> tuple[str, Any]:
    """``decode_lines(lines, plain=True)``: ("value", its value) or ("error", type, message)."""
    try:
        return ("value", Codec().decode_lines(lines, plain=True))
    except Exception as error:
        return ("error", (type(error), str(error)))


def assert_same(fast: Any, slow: Any, where: str = "") -> None:
    """``fast`` is ``slow``'s exact value: same types at every level (1 is not 1.0 nor True),
    same float signs (-0.0), NaN where NaN, dict keys in the same order."""
    assert type(fast) is type(slow), f"{where}: {fast!r} vs {slow!r}"
    if type(slow) is float:
        if math.isnan(slow):
            assert math.isnan(fast), f"{where}: {fast!r} vs nan"
        else:
            assert fast == slow and math.copysign(1, fast) == math.copysign(1, slow), where
    elif type(slow) is list:
        assert len(fast) == len(slow), where
        for index, (a, b) in enumerate(zip(fast, slow, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    elif type(slow) is dict:
        assert list(fast) == list(slow), where
        for key in slow:
            assert_same(fast[key], slow[key], f"{where}[{key!r}]")
    else:
        assert fast == slow, f"{where}: {fast!r} vs {slow!r}"


def assert_parsers_agree(lines: list[bytes]) -> None:
    orjson = pytest.importorskip("orjson")
    with parsing_with(orjson.loads):
        fast = outcome(lines)
    with parsing_with(None):
        slow = outcome(lines)
    assert fast[0] == slow[0], (lines, fast, slow)
    if slow[0] == "error":
        assert fast[1] == slow[1]
    else:
        assert_same(fast[1], slow[1])


# -- what Hypothesis writes ------------------------------------------------------------------

#: Numbers at the edges: of 64-bit integers, of floats, zeros with signs, what json alone reads
EDGE_NUMBERS = [
    "0", "-0", "-0.0", "0.0", "-0e0", "0E-0", "1E400", "-1e400", "1e-400", "1e99999999999",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "18446744073709551615", "18446744073709551616",
    "999999999999999999", "-999999999999999999", "1" + "0" * 30, "1" + "0" * 4400,
    "1.7976931348623157e308", "1.7976931348623159e308", "2.2250738585072011e-308",
    "4.9e-324", "2.5e-324", "2.4e-324", "9007199254740993", "9007199254740993.0", "0.1",
    "123456789012345678.5", "0.00012345678901234567", "NaN", "Infinity", "-Infinity",
]  # fmt: skip
#: Numbers JSON does not allow, nearly numbers
BAD_NUMBERS = ["01", "+1", ".5", "1.", "1.e5", "1e", "1e+", "-", "--1", "0x10", "1_000", "nan"]
NUMBERS = st.one_of(
    st.sampled_from(EDGE_NUMBERS + BAD_NUMBERS),
    st.from_regex(r"-?(0|[1-9][0-9]{0,21})(\.[0-9]{1,21})?([eE][-+]?[0-9]{1,4})?", fullmatch=True),
    st.integers().map(str),
    st.floats().map(repr),
)
#: Escapes in strings: every kind, surrogates alone, in pairs and reversed, invalid ones
ESCAPES = [
    '\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0000", "\\u001f", "\\u00e9",
    "\\u00E9", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\uDBFF\\uDFFF", "\\udc00\\ud800",
    "\\ud800x", "\\x", "\\u12", "\\U0041", "\\'",
]  # fmt: skip
STRINGS = st.lists(
    st.one_of(
        st.sampled_from(ESCAPES),
        st.characters(codec=None, exclude_characters='"\\'),  # raw: surrogates, controls too
        st.sampled_from(["a", "é", "\u2028", "\x7f", "__"]),
    ),
    max_size=6,
).map(lambda pieces: '"' + "".join(pieces) + '"')
SCALARS = st.one_of(NUMBERS, STRINGS, st.sampled_from(["true", "false", "null", "True", "nul"]))
#: Separators and blanks, those JSON allows and others
SPACES = st.sampled_from(["", "", " ", "\t", "\r\n", "\n", "\x0c", "\xa0", "\ufeff"])


def _array(items: list[str], space: str, separator: str) -> str:
    return "[" + space + separator.join(items) + "]"


def _object(pairs: list[tuple[str, str]], space: str, separator: str) -> str:
    return "{" + separator.join(f"{key}{space}:{value}" for key, value in pairs) + "}"


SEPARATORS = st.sampled_from([",", ",", ", ", " ,\n", ",,", ""])
KEYS = st.one_of(STRINGS, st.sampled_from(['"a"', '"b"', '""', "1", "a"]))
TEXTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.builds(_array, st.lists(inner, max_size=4), SPACES, SEPARATORS),
        st.builds(_object, st.lists(st.tuples(KEYS, inner), max_size=4), SPACES, SEPARATORS),
    ),
    max_leaves=12,
)
#: Values json writes: every integer, float (NaN, infinities, -0.0) and character
VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**65), max_value=2**65),
        st.floats(),
        st.text(st.characters(codec=None)),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)
WRITTEN = st.builds(
    lambda value, ascii: json.dumps(value, ensure_ascii=ascii), VALUES, st.booleans()
)


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a raw surrogate is 3 bytes, as json reads


LINES = st.lists(
    st.builds(
        lambda before, text, after: _encoded(before + text + after),
        SPACES,
        st.one_of(TEXTS, WRITTEN),
        SPACES,
    ),
    min_size=1,
    max_size=5,
)


@PROPERTY
@given(LINES)
@example([b"-0", b"-0.0", b"0e0", b"-0e-0"])
@example([b"18446744073709551616", b"-9223372036854775809", b"9223372036854775808"])
@example([b'{"a":1,"b":0,"a":2}'])
@example([b'"\\ud800"', b'"\\ud83d\\ude00"', b'"\xed\xa0\x80"', b'"\\u0000"'])
@example([b"1e400", b"NaN", b"-Infinity"])
@example([b"\xef\xbb\xbf1"])
@example([b"1" + b"0" * 4400])
@example([b"[" * 150 + b"]" * 150, b'[1,"' + b"[" * 500 + b'"]'])
def test_orjson_gives_the_values_and_errors_json_gives(lines):
    assert_parsers_agree(lines)


@pytest.mark.parametrize("depth", [199, 200, 500, 990, 1000, 1010, 1024, 1025, 1100])
@pytest.mark.parametrize("kind", [(b"[", b"]"), (b'{"a":', b"}")])
def test_deep_nesting_is_read_or_refused_alike(depth, kind):
    """orjson reads 1024 levels, json as many as the recursion limit lets it (about 1000
    levels here; Hypothesis raises the limit while it runs a test, hence no example there)."""
    opening, closing = kind
    text = opening * depth + b"1" + closing * depth
    assert_parsers_agree([text])
    assert_parsers_agree([b"[0,1]", text, b'"x"'])


@PROPERTY
@given(st.lists(VALUES, min_size=1, max_size=30))
def test_records_json_writes_are_parsed_alike(values):
    """Whole records, many per piece as a resume reads them."""
    assert_parsers_agree(
        [_encoded(json.dumps([index, value])) for index, value in enumerate(values)]
    )


def test_orjson_parses_plain_records_and_json_the_others(parser):
    """Which parser reads what: orjson the plain records when installed; json what holds a tag
    (elements with tuples...), what decode_lines reads without ``plain``, a run of 19 digits
    (an integer orjson would make a float), a huge record and what orjson refuses (NaN)."""
    lines = [b'[0,{"a":1,"b":"x","c":0.5}]', b'[1,{"a":2,"b":"y","c":-0.0}]']
    expected = [[0, {"a": 1, "b": "x", "c": 0.5}], [1, {"a": 2, "b": "y", "c": -0.0}]]
    assert_same(Codec().decode_lines(lines, plain=True), expected)  # -0.0 included
    assert Codec().decode_lines(lines) == expected
    assert type(Codec().decode_lines(lines)[0][1]) is HashableDict
    assert Codec().decode_lines([b'[0,{"a":{"__tuple__":[1]}}]'], plain=True) == [
        [0, HashableDict(a=(1,))]
    ]
    big = 2**64
    assert Codec().decode_lines([f"[0,{big}]".encode()], plain=True) == [[0, big]]
    [[position, nan]] = Codec().decode_lines([b"[0,NaN]"], plain=True)
    assert position == 0 and math.isnan(nan)
    huge = b'[0,{"a":"' + b"x" * codec._FAST_MAX_BYTES + b'"}]'
    assert Codec().decode_lines([huge], plain=True) == [[0, {"a": "x" * codec._FAST_MAX_BYTES}]]
    if parser is not None:
        # The plain records, and the NaN (refused, then read by json); not those holding a
        # tag, read without plain, holding 19 digits, or longer than _FAST_MAX_BYTES (one
        # huge record: json alone, without the copy the digit search makes).
        assert parser == [b"[" + b",".join(lines) + b"]", b"[0,NaN]"]


# -- a resume, with either parser ------------------------------------------------------------

GRID = sweep({"a": list(range(30)), "b": ["x", "y"], "c": [0.5, -0.0]})  # no tag in its records


def _done_records(start: int, stop: int) -> bytes:
    encode = Codec().encode
    return b"".join(f"[{index},{encode(GRID[index])}]\n".encode() for index in range(start, stop))


def test_a_resume_reads_the_done_records(tmp_path, parser):
    path = tmp_path / "sweep"
    ParamSweeper(path, GRID).done_batch(GRID[:100])
    if parser is not None:
        parser.clear()
    resumed = ParamSweeper(path, GRID)
    assert resumed.get_next() == GRID[100]
    assert list(resumed.get_done()) == GRID[:100]
    if parser is not None:  # the done records were read by orjson, each once
        assert b"".join(parser).count(b'"a":') == 100


#: Corrupt records (``%d``: the position where they stand)
CORRUPT = {
    "not JSON": b'[%d,{"a":1,"b":"x",]',
    "a field more": b'[%d,{"a":1,"b":"x","c":0.5},1]',
    "a float position": b'[%d.0,{"a":1,"b":"x","c":0.5}]',
    "deeper than json reads": b"[%d," + b"[" * 1010 + b"]" * 1010 + b"]",
}
#: Done records of elements not at their position, of values no writer of this grid writes
#: (elements nonetheless, marked done as they are)
ODD = {
    "another element": b'[%d,{"a":1,"b":"x","c":0.5}]',
    "NaN": b'[%d,{"a":NaN,"b":"x","c":0.5}]',
    "an integer beyond 64 bits": b'[%d,{"a":18446744073709551616,"b":"x","c":0.5}]',
    "a list": b'[%d,{"a":1,"b":"x","c":[0.5,-0.0]}]',
    "true for 1": b'[%d,{"a":true,"b":"x","c":0.5}]',
}


def _written(path: Any, before: int, record: bytes) -> tuple[Any, int]:
    """A sweep of GRID whose done file holds ``before`` done records, ``record`` (at the
    position ``before``) and 39 done records after it: the file and the record's offset."""
    ParamSweeper(path, GRID).done_batch(GRID[:before])
    done = path / "done"
    offset = done.stat().st_size
    with done.open("ab") as f:
        f.write(record % before + b"\n" + _done_records(before + 1, before + 40))
    return done, offset


@pytest.mark.parametrize("record", CORRUPT.values(), ids=CORRUPT.keys())
@pytest.mark.parametrize("before", [3, 40])  # a piece checked record by record, and a big one
def test_a_corrupt_done_record_is_reported_where_it_stands(tmp_path, parser, record, before):
    """Between valid records of one piece, under either parser: a CorruptRecordError naming
    the file and the record's offset."""
    done, offset = _written(tmp_path / "sweep", before, record)
    if parser is not None:
        parser.clear()
    with pytest.raises(CorruptRecordError) as error:
        ParamSweeper(tmp_path / "sweep", GRID).get_next()
    assert re.search(rf"{done}: corrupt record at byte offset {offset}\b", str(error.value))
    if parser is not None:  # orjson had the piece, but for nesting json may refuse
        assert bool(parser) is (b"[" * 1010 not in record)


@pytest.mark.parametrize("record", ODD.values(), ids=ODD.keys())
@pytest.mark.parametrize("before", [3, 40])
def test_odd_done_records_are_read_alike(tmp_path, parser, record, before):
    """What the element of a done record is, whichever parser read it (in a piece checked
    record by record, and in a big one)."""
    _written(tmp_path / "sweep", before, record)
    element = Codec().decode_element(record.split(b",", 1)[1][:-1])
    # Swept too, it is done (a NaN is never found again; true is 1, of GRID already).
    extra = [] if "nan" in repr(element) or element in GRID else [element]
    if parser is not None:
        parser.clear()
    resumed = ParamSweeper(tmp_path / "sweep", GRID + extra)
    assert list(resumed.get_done()) == [*GRID[:before], *GRID[before + 1 : before + 40], *extra]
    assert resumed.get_next() == GRID[before]
    if parser is not None:  # orjson had the piece, but for the 19 digits
        assert bool(parser) is (b"18446744073709551616" not in record)
