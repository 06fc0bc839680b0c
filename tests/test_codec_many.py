"""Codec.encode_many: the texts of many elements at once, exactly those of Codec.encode (or
encode_in_order), whether they take the grid fast path or not."""

import enum
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execo_engine.codec import INT_DIGITS, Codec
from execo_engine.errors import UnsupportedValueError
from execo_engine.sweep import HashableDict, sweep

# Equal values of distinct types and forms (1, 1.0, True; 0.0 and -0.0), text needing escapes
AWKWARD = [1, 1.0, True, 0.0, -0.0, math.inf, None, "a\\b", 'q"', "t\tn\n", "é\u2028", ""]


class Level(enum.IntEnum):
    LOW = 1


CASES = {
    "grid": sweep({"b": [1, 2.5, "x"], "a": AWKWARD, "c": [None, False]}),
    "plain values": AWKWARD,
    "one factor": [HashableDict(k=value) for value in AWKWARD],
    "empty dicts": [HashableDict(), HashableDict()],
    "keys in other orders": [HashableDict(a=1, b=2), HashableDict(b=2, a=1)],
    "other key sets": [HashableDict(a=1), HashableDict(b=1)],
    "nested values": [HashableDict(a=(1, 2)), HashableDict(a=[3])],
    "a tag as only key": [HashableDict(__tuple__=1), HashableDict(__tuple__=2)],
    "keys not strings": [HashableDict({1: "a"}), HashableDict({1: "b"})],
    "mixed elements": [HashableDict(a=1), 1, (1, 2), frozenset({2})],
    "tuples": [(1, "a"), (2, "b")],
    "nothing": [],
    # a column of ints only, or of strings only: written by int.__repr__ and json's C encoder
    "int levels": [HashableDict(i=v) for v in (0, -5, 10**30, 7, 7, -(10**40))],
    "string levels": [HashableDict(s=v) for v in ("a\\b", 'q"', "é\u2028", "", "a\\b", "\x00")],
    "plain ints": [3, -1, 2**70, 3],
    "plain strings": ["x", "é", "", "\ud800"],
}


@pytest.mark.parametrize("elements", CASES.values(), ids=CASES.keys())
def test_encode_many_gives_the_texts_of_encode(elements):
    codec = Codec()
    assert codec.encode_many(elements) == [codec.encode(element) for element in elements]
    in_order = codec.encode_many(elements, in_order=True)
    assert in_order == [codec.encode_in_order(element) for element in elements]


@given(
    st.one_of(
        st.lists(st.integers(min_value=-(10**INT_DIGITS) - 5, max_value=10**INT_DIGITS + 5)),
        st.lists(st.sampled_from([10**INT_DIGITS, -(10**INT_DIGITS), 10**INT_DIGITS - 1, 0])),
        st.lists(st.text()),
    ),
    st.booleans(),
)
def test_a_column_of_ints_or_strings_is_encoded_as_encode_does(levels, in_dicts):
    """An int beyond the digits a reader can read back is refused in a batch as alone."""
    codec = Codec()
    elements = [HashableDict(v=level) for level in levels] if in_dicts else levels
    try:
        expected = [codec.encode(element) for element in elements]
    except UnsupportedValueError:
        with pytest.raises(UnsupportedValueError, match="digits"):
            codec.encode_many(elements)
        return
    assert codec.encode_many(elements) == expected
    assert codec.encode_many(elements, in_order=True) == expected  # one key: the same order


def test_encode_many_refuses_what_encode_refuses():
    for elements in ([Level.LOW, 2], [HashableDict(a=Level.LOW), HashableDict(a=2)]):
        with pytest.raises(UnsupportedValueError, match=r"Level\.LOW"):
            Codec().encode_many(elements)
    [pickled] = Codec(allow_pickle=True).encode_many([HashableDict(a=Level.LOW)])
    assert pickled.startswith('{"a":{"__pickle__":')


@pytest.mark.parametrize(
    "elements", [[1.0, math.nan], [HashableDict(a=1.0), HashableDict(a=math.nan)]]
)
def test_nan_is_refused_in_elements_and_kept_in_order(elements):
    """An element holding NaN is refused (never equal to itself: no reader could find it
    again), by encode_many as by encode; the in-order texts (saved sweeps, results) keep it."""
    codec = Codec()
    for encode in (codec.encode_many, lambda e: [codec.encode(x) for x in e]):
        with pytest.raises(UnsupportedValueError, match=r"nan}? as an element: NaN is never equal"):
            encode(elements)
    in_order = codec.encode_many(elements, in_order=True)
    assert in_order == [codec.encode_in_order(element) for element in elements]
    assert "NaN" in in_order[1]
