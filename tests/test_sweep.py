"""sweep(), HashableDict, geom, igeom, sweep_stats: the pure combinatorics."""

import pickle

import pytest

from execo_engine.sweep import HashableDict, SweepList, geom, igeom, sweep, sweep_stats


def test_seed_first_example_first_factor_slowest():
    result = sweep({"param 1": ["a", "b"], "param 2": [1, 2]})
    assert result == [
        {"param 1": "a", "param 2": 1},
        {"param 1": "a", "param 2": 2},
        {"param 1": "b", "param 2": 1},
        {"param 1": "b", "param 2": 2},
    ]
    assert all(type(c) is HashableDict for c in result)


SEED_SECOND = {
    "param 1": ["a", "b"],
    "param 2": {1: {"param 1 1": ["x", "y"], "param 1 2": [0.0, 1.0]}, 2: {"param 2 1": [-10, 10]}},
}
SEED_SECOND_RESULT = [
    {"param 1 2": 0.0, "param 1 1": "x", "param 1": "a", "param 2": 1},
    {"param 1 2": 0.0, "param 1 1": "y", "param 1": "a", "param 2": 1},
    {"param 1 2": 1.0, "param 1 1": "x", "param 1": "a", "param 2": 1},
    {"param 1 2": 1.0, "param 1 1": "y", "param 1": "a", "param 2": 1},
    {"param 2 1": -10, "param 1": "a", "param 2": 2},
    {"param 2 1": 10, "param 1": "a", "param 2": 2},
    {"param 1 2": 0.0, "param 1 1": "x", "param 1": "b", "param 2": 1},
    {"param 1 2": 0.0, "param 1 1": "y", "param 1": "b", "param 2": 1},
    {"param 1 2": 1.0, "param 1 1": "x", "param 1": "b", "param 2": 1},
    {"param 1 2": 1.0, "param 1 1": "y", "param 1": "b", "param 2": 1},
    {"param 2 1": -10, "param 1": "b", "param 2": 2},
    {"param 2 1": 10, "param 1": "b", "param 2": 2},
]


def test_seed_second_example_sub_sweeps():
    result = sweep(SEED_SECOND)
    assert len(result) == len(SEED_SECOND_RESULT) == 12
    assert all(c in result for c in SEED_SECOND_RESULT)
    assert len(set(result)) == 12
    # the outer factor still varies slowest
    assert [c["param 1"] for c in result] == ["a"] * 6 + ["b"] * 6


def test_order_is_deterministic_and_levels_any_iterable():
    result = sweep({"a": range(2), "b": (x for x in "xy"), "c": ("p",)})
    assert result == [
        {"a": 0, "b": "x", "c": "p"},
        {"a": 0, "b": "y", "c": "p"},
        {"a": 1, "b": "x", "c": "p"},
        {"a": 1, "b": "y", "c": "p"},
    ]
    assert sweep({"s": {"b", "a", "c"}}) == [{"s": "a"}, {"s": "b"}, {"s": "c"}]


def test_empty_levels_contribute_nothing():
    assert sweep({"a": [1, 2], "b": []}) == [{"a": 1}, {"a": 2}]
    assert sweep({"a": []}) == [{}]
    assert sweep({}) == [{}]
    assert sweep({"a": {1: {}, 2: {"b": [5]}}}) == [{"a": 1}, {"a": 2, "b": 5}]


@pytest.mark.parametrize("levels", ["abc", b"abc", 3, 2.5, None])
def test_bad_level_list_names_factor(levels):
    with pytest.raises(TypeError, match=r"factor 'speed'.*non-string iterable"):
        sweep({"ok": [1], "speed": levels})


def test_bad_sub_sweep_names_factor_and_level():
    with pytest.raises(TypeError, match="factor 'mode' at level 'fast' must be a dict"):
        sweep({"mode": {"fast": [1, 2]}})
    with pytest.raises(TypeError, match="parameters must be a dict"):
        sweep([("a", [1])])


def test_hashable_dict():
    mixed = HashableDict({1: "a", "x": 2})
    assert hash(mixed) == hash(HashableDict({"x": 2, 1: "a"}))
    assert mixed == {1: "a", "x": 2} and mixed == {1: "a", "x": 2}
    assert repr(mixed) == "{1: 'a', 'x': 2}"
    clone = pickle.loads(pickle.dumps(mixed))
    assert type(clone) is HashableDict and clone == mixed and hash(clone) == hash(mixed)
    assert len({mixed, HashableDict({"x": 2, 1: "a"})}) == 1
    before = hash(mixed)
    mixed["y"] = 3  # mutation drops the cached hash
    assert hash(mixed) == hash(HashableDict({1: "a", "x": 2, "y": 3})) != before
    mixed.update(y=4)
    assert hash(mixed) == hash(HashableDict({1: "a", "x": 2, "y": 4}))
    with pytest.raises(TypeError):
        hash(HashableDict(a=[1]))


def test_geom_and_igeom():
    assert geom(1, 100, 3) == [1.0, 10.0, 100.0]
    assert geom(1, 100, 1) == [1.0]
    assert geom(1, 100, 0) == []
    assert geom(-1, -100, 3) == [-1.0, -10.0, -100.0]
    assert igeom(1, 100, 5) == [1, 3, 10, 32, 100]
    assert igeom(1, 10, 20) == list(range(1, 11))
    for bad in [(0, 10), (-1, 10), (10, 0)]:
        with pytest.raises(ValueError, match="geometric progression"):
            geom(*bad, 3)
    with pytest.raises(ValueError, match="num_steps"):
        geom(1, 10, -1)


def test_sweep_stats():
    sweeps = sweep({"a": [1, 2], "b": ["x", "y"]})
    remaining = [sweeps[3]]
    skipped = [sweeps[0]]
    inprogress = [sweeps[1]]
    done = [sweeps[2]]
    stats = sweep_stats((sweeps, remaining, skipped, inprogress, done))
    assert stats["total"] == {"a": {1: 2, 2: 2}, "b": {"x": 2, "y": 2}}
    assert stats["done"] == {"a": {2: 1}, "b": {"x": 1}}
    assert stats["done_ratio"] == {"a": {1: 0.0, 2: 0.5}, "b": {"x": 0.5, "y": 0.0}}
    assert stats["remaining"] == {"a": {2: 1}, "b": {"y": 1}}
    assert stats["inprogress_ratio"] == {"a": {1: 0.5, 2: 0.0}, "b": {"x": 0.0, "y": 0.5}}
    assert stats["skipped"] == {"a": {1: 1}, "b": {"x": 1}}
    assert set(stats) == {
        "total",
        "remaining",
        "remaining_ratio",
        "skipped",
        "skipped_ratio",
        "inprogress",
        "inprogress_ratio",
        "done",
        "done_ratio",
    }


def test_sweep_knows_when_its_combinations_are_distinct():
    assert sweep({"a": [1, 2], "b": {"x": {"c": [1]}, "y": {}}}).distinct
    assert not sweep({"a": [1, 1.0]}).distinct  # equal levels
    assert not sweep({"a": [1], "b": {"x": {"a": [2]}}}).distinct  # a sub-factor named a
    assert not sweep({"a": [[1], [1]]}).distinct  # unhashable levels: not known
    # two equal sub-combinations whose keys come in different orders, one level down
    inner = {"f": {1: {"x": [0], "y": [0], "f": [9]}, 2: {"y": [0], "x": [0], "f": [9]}}}
    nested = sweep({"a": {1: inner}})
    assert len(nested) == 2 and len(set(nested)) == 1 and not nested.distinct
    grid = sweep({"a": [1, 2]})
    grid.append(grid[0])
    assert not grid.distinct and grid == [{"a": 1}, {"a": 2}, {"a": 1}]
    assert type(grid) is SweepList and isinstance(grid, list)
