"""OrderedSet, what the ParamSweeper getters return: a set as in execo, in a known order."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execo_engine.ordered_set import OrderedSet
from execo_engine.sweep import HashableDict


def test_a_set_that_keeps_its_order():
    items = OrderedSet([3, 1, 2, 1])
    assert list(items) == [3, 1, 2] and len(items) == 3 and 2 in items and 5 not in items
    assert items == {1, 2, 3} == items and frozenset({1, 2, 3}) == items
    assert items == [3, 1, 2] and items == (3, 1, 2) and items != [1, 2, 3]
    assert items != {1, 2} and items != "312"
    assert {"a": 1} in OrderedSet([HashableDict(a=1)]) and [1] not in items  # unhashable
    assert list(items | {9}) == [3, 1, 2, 9] and list(items - {1}) == [3, 2]
    assert items & {2, 3} == {2, 3} and items ^ {3, 4} == {1, 2, 4}
    assert OrderedSet([1]) <= items < {1, 2, 3, 4}
    assert items[0] == 3 and items[-1] == 2 and items[1:] == [1, 2]
    with pytest.raises(IndexError):
        items[3]
    assert repr(items) == str(items) == "{3, 1, 2}" == f"{items}"  # as a set prints
    assert repr(OrderedSet()) == "set()" == repr(set())
    assert repr(OrderedSet([HashableDict(a=1)])) == "{{'a': 1}}"


def test_a_mutable_copy():
    items = OrderedSet("abc")
    copy = items.copy()
    copy.add("z")
    copy.discard("a")
    copy.remove("b")
    items |= {"d"}
    assert list(copy) == ["c", "z"] and list(items) == ["a", "b", "c", "d"]
    with pytest.raises(KeyError):
        copy.remove("a")
    with pytest.raises(TypeError):
        hash(items)


_MEMBERS = st.lists(st.integers(0, 12), max_size=10)
_RESULTS = ("union", "intersection", "difference", "symmetric_difference")
_TESTS = ("issubset", "issuperset", "isdisjoint")
_UPDATES = ("update", "intersection_update", "difference_update", "symmetric_difference_update")


@given(_MEMBERS, st.lists(_MEMBERS, min_size=1, max_size=3), st.sampled_from([list, set, iter]))
def test_named_methods_of_set_give_what_set_gives(members, others, kind):
    """execo's getters returned sets: scripts call set's named methods, with any iterables."""
    for name in _RESULTS + _TESTS + _UPDATES:
        arguments = others[:1] if name.startswith(("symmetric", "is")) else others
        mine, theirs = OrderedSet(members), set(members)
        answer = getattr(mine, name)(*map(kind, arguments))
        expected = getattr(theirs, name)(*map(kind, arguments))
        if name in _UPDATES:
            assert answer is None and mine == theirs, name
        elif name in _TESTS:
            assert answer == expected, name
        else:
            assert isinstance(answer, OrderedSet) and answer == expected, name
            assert list(mine) == list(dict.fromkeys(members)), name  # left as it was
        if name in ("union", "update"):  # in order: its own elements, then the new ones
            order = dict.fromkeys(members)
            for other in arguments:
                order.update(dict.fromkeys(kind(other)))  # in the order it iterates
            assert list(answer if name == "union" else mine) == list(order)
