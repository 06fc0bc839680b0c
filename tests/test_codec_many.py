"""Codec.encode_many: the texts of many elements at once, exactly those of Codec.encode (or
encode_in_order), whether they take the grid fast path or not."""

import enum
import math

import pytest

from execo_engine.codec import Codec
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
}


@pytest.mark.parametrize("elements", CASES.values(), ids=CASES.keys())
def test_encode_many_gives_the_texts_of_encode(elements):
    codec = Codec()
    assert codec.encode_many(elements) == [codec.encode(element) for element in elements]
    in_order = codec.encode_many(elements, in_order=True)
    assert in_order == [codec.encode_in_order(element) for element in elements]


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
