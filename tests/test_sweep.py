"""sweep(), HashableDict, geom, igeom, sweep_stats: the pure combinatorics."""

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execo_engine.elements import SCALARS
from execo_engine.sweep import (
    HashableDict,
    ParamSweeper,
    SweepList,
    geom,
    igeom,
    sweep,
    sweep_stats,
)


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


@given(
    st.floats(1e-6, 1e6) | st.integers(1, 10**20),
    st.floats(1e-6, 1e6) | st.integers(1, 10**20),
    st.integers(0, 40),
)
def test_geom_reads_strings_as_argparse_gives_them(low, high, steps):
    """A script passing its options' strings gets what the numbers give."""
    texts = (str(low), str(high), str(steps))
    assert geom(*texts) == geom(low, high, steps)
    assert igeom(*texts) == igeom(low, high, steps)


@given(
    st.floats(allow_subnormal=True) | st.integers(),
    st.floats(allow_subnormal=True) | st.integers(),
    st.integers(0, 30),
)
def test_geom_gives_finite_values_or_a_value_error_naming_itself(low, high, steps):
    for function in (geom, igeom):
        try:
            values = function(low, high, steps)
        except ValueError as error:
            assert str(error).startswith(f"{function.__name__}: ")
        else:
            assert len(values) <= steps + 2 and all(math.isfinite(v) for v in values)


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


class Level(list):  # a script's own level type (hashable list)
    def __hash__(self):
        return hash(tuple(self))


_SCALAR_LEVELS = st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.none())
_LEVELS = st.one_of(
    _SCALAR_LEVELS,
    st.tuples(st.integers()),  # a tuple level: no scalar
    st.builds(Level, st.lists(st.integers(), max_size=2)),
    st.floats(allow_nan=False),
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.one_of(st.text(min_size=1, max_size=3), st.integers(0, 3)),
        st.lists(_LEVELS, max_size=3),
        max_size=3,
    ),
    st.lists(_SCALAR_LEVELS, max_size=2),
)
def test_sweep_knows_when_every_name_and_value_is_a_scalar(parameters, sub_levels):
    """``plain`` is true only when every name and value of every combination is one of
    SCALARS (sub-sweeps and paired factors included), and true whenever every name and level
    given is; any change of the list forgets it. (A factor whose name a later one reuses may
    leave it false for values no combination keeps: the sweeper then checks them itself.)"""
    levels = [level for factor_levels in parameters.values() for level in factor_levels]
    given_plain = all(type(v) in SCALARS for v in [*parameters, *levels, *sub_levels])
    # the pair's names are longer than any generated name: sharing one would be a ValueError
    pair = ("pair", "with")
    parameters = {**parameters, pair: [(1, "x")], "s": {"on": {"t": sub_levels}, "off": {}}}
    grid = sweep(parameters)
    every = all(type(k) in SCALARS and type(v) in SCALARS for c in grid for k, v in c.items())
    assert every or not grid.plain
    assert grid.plain or not given_plain
    grid.append(HashableDict(a=1))
    assert not grid.plain


def test_a_plain_grid_and_the_same_list_give_one_sweeper_state(tmp_path):
    """The sweeper skips its per-combination check for a grid ``sweep()`` knows is plain:
    what it stores and hands out is what the check would have given."""
    grid = sweep({"a": [1, 2.5, None], "b": ["x", True]})
    assert grid.plain
    known = ParamSweeper(tmp_path / "known", grid)
    checked = ParamSweeper(tmp_path / "checked", list(grid))
    assert known.get_next_batch(6) == checked.get_next_batch(6) == list(grid)
    levels = sweep({"a": [Level([1]), Level([2])]})
    assert not levels.plain
    own = ParamSweeper(tmp_path / "own", levels)
    assert [type(c["a"]) for c in own.get_next_batch(2)] == [Level, Level]  # the script's own


TRAINING = {("model", "batch"): [("small", 256), ("large", 32)], "lr": [0.1, 0.01]}


def test_paired_factors_vary_together():
    result = sweep(TRAINING)
    assert result == [
        {"model": "small", "batch": 256, "lr": 0.1},
        {"model": "small", "batch": 256, "lr": 0.01},
        {"model": "large", "batch": 32, "lr": 0.1},
        {"model": "large", "batch": 32, "lr": 0.01},
    ]
    # keys in factor order, a pair's names in tuple order; the pair is one factor for the order
    assert [list(c) for c in result] == [["model", "batch", "lr"]] * 4
    assert result.distinct and all(type(c) is HashableDict for c in result)
    flipped = sweep({"lr": [0.1, 0.01], ("model", "batch"): [("small", 256), ("large", 32)]})
    assert [(c["lr"], c["model"]) for c in flipped] == [
        (0.1, "small"),
        (0.1, "large"),
        (0.01, "small"),
        (0.01, "large"),
    ]
    assert [list(c) for c in flipped] == [["lr", "model", "batch"]] * 4
    # any iterable of tuples (or lists) of levels, three names, a set of tuples sorted
    assert sweep({("a", "b", "c"): iter([[1, 2, 3], (4, 5, 6)])}) == [
        {"a": 1, "b": 2, "c": 3},
        {"a": 4, "b": 5, "c": 6},
    ]
    assert sweep({("a", "b"): {(2, "y"), (1, "x")}}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def test_paired_factors_in_and_over_sub_sweeps():
    data = {
        "dataset": {
            "cifar": {("model", "batch"): [("resnet", 128), ("vit", 64)], "epochs": [10]},
            "mnist": {"model": ["mlp"]},
        },
        "seed": [1, 2],
    }
    result = sweep(data)
    assert result == [
        {"dataset": "cifar", "model": "resnet", "batch": 128, "epochs": 10, "seed": 1},
        {"dataset": "cifar", "model": "resnet", "batch": 128, "epochs": 10, "seed": 2},
        {"dataset": "cifar", "model": "vit", "batch": 64, "epochs": 10, "seed": 1},
        {"dataset": "cifar", "model": "vit", "batch": 64, "epochs": 10, "seed": 2},
        {"dataset": "mnist", "model": "mlp", "seed": 1},
        {"dataset": "mnist", "model": "mlp", "seed": 2},
    ]
    assert [list(c) for c in result][::4] == [
        ["dataset", "model", "batch", "epochs", "seed"],
        ["dataset", "model", "seed"],
    ]
    assert result.distinct
    # a pair whose levels are a dict: tuples as keys, each with its own sub-sweep
    keyed = sweep({("model", "batch"): {("small", 256): {"lr": [0.1, 0.2]}, ("large", 32): {}}})
    assert keyed == [
        {"model": "small", "batch": 256, "lr": 0.1},
        {"model": "small", "batch": 256, "lr": 0.2},
        {"model": "large", "batch": 32},
    ]
    assert keyed.distinct


def test_paired_factors_distinct_only_when_truly_distinct():
    assert not sweep({("a", "b"): [(1, 2), (1, 2)]}).distinct  # the same pair twice
    assert not sweep({("a", "b"): [(1, 2), (1, 3)], "c": {4: {"b": [5]}}}).distinct
    assert not sweep({("a", "b"): [(1, [2]), (1, [2])]}).distinct  # unhashable: not known
    assert sweep({("a", "b"): [(1, 2), (1, 3)], "c": [1, 1.5]}).distinct


LEAVE_OUT_LARGE_LR = [{"model": "large", "lr": 0.1}]


def test_exclude_by_partial_dicts_keeps_the_order_of_the_rest():
    full = sweep(TRAINING)
    result = sweep(TRAINING, exclude=LEAVE_OUT_LARGE_LR)
    assert result == [c for c in full if not (c["model"] == "large" and c["lr"] == 0.1)]
    assert len(result) == 3 and result.distinct and type(result) is SweepList
    # any of several partial dicts; a one-key partial dict leaves out all its combinations
    assert sweep(TRAINING, exclude=[{"lr": 0.01}, {"batch": 32, "lr": 0.1}]) == [
        {"model": "small", "batch": 256, "lr": 0.1}
    ]
    # equal levels match (1 == 1.0 == True), as dict lookups do
    assert sweep({"x": [0, 1, 2]}, exclude=[{"x": 1.0}]) == [{"x": 0}, {"x": 2}]
    # a combination without a key of the partial dict (sub-sweeps) does not match it
    nested = {"opt": {"sgd": {"momentum": [0.0, 0.9]}, "adam": {}}}
    assert sweep(nested, exclude=[{"momentum": 0.9}]) == [
        {"opt": "sgd", "momentum": 0.0},
        {"opt": "adam"},
    ]
    assert sweep(TRAINING, exclude=[]) == full
    # a sweep that was not distinct stays "not known distinct" after exclusion
    assert not sweep({"a": [1, 1, 2]}, exclude=[{"a": 2}]).distinct


def test_exclude_by_predicate():
    seen = []

    def too_big(combination):
        seen.append(combination)
        return combination["batch"] * combination["lr"] > 10

    result = sweep(TRAINING, exclude=too_big)
    assert result == [c for c in sweep(TRAINING) if c["batch"] * c["lr"] <= 10]
    assert len(result) == 3 and result.distinct
    assert seen == sweep(TRAINING) and all(type(c) is HashableDict for c in seen)
    assert sweep({"a": range(4)}, exclude=lambda c: c["a"] % 2) == [{"a": 0}, {"a": 2}]


def test_paired_factor_errors_name_the_culprit():
    with pytest.raises(
        ValueError, match=r"level \('large',\) of paired factor \('model', 'batch'\)"
    ):
        sweep({("model", "batch"): [("small", 256), ("large",)]})
    with pytest.raises(ValueError, match=r"has 3 value\(s\), needs 2"):
        sweep({"x": {1: {("model", "batch"): [("small", 256, 0.1)]}}})
    with pytest.raises(
        TypeError,
        match=r"level of paired factor \('model', 'batch'\) must be a tuple of 2 values"
        r".*got str 'ab'",
    ):
        sweep({("model", "batch"): ["ab"]})
    with pytest.raises(TypeError, match=r"paired factor \('m', 'b'\) must be a tuple.*got int 3"):
        sweep({("m", "b"): {3: {}}})
    with pytest.raises(TypeError, match=r"factor \('m', 'b'\).*non-string iterable"):
        sweep({("m", "b"): "ab"})
    with pytest.raises(ValueError, match=r"paired factor \('m', 'b', 'm'\) names 'm' twice"):
        sweep({("m", "b", "m"): [(1, 2, 3)]})
    with pytest.raises(ValueError, match=r"paired factor \(\) names no factor"):
        sweep({(): [()]})


def test_exclude_by_a_paired_factor_with_a_tuple_of_levels():
    """It was refused as naming "no factor of the sweep" while listing its names as factors."""
    by_pair = sweep(TRAINING, exclude=[{("model", "batch"): ("large", 32), "lr": 0.1}])
    assert by_pair == sweep(TRAINING, exclude=[{"model": "large", "batch": 32, "lr": 0.1}])
    assert len(by_pair) == len(sweep(TRAINING)) - 1


def test_a_paired_name_given_by_another_factor_too_is_refused():
    """The other factor's level silently replaced the pair's in every combination."""
    for parameters in (
        {("a", "b"): [(1, 2)], "a": [5]},
        {"a": [5], ("a", "b"): [(1, 2)]},
        {("a", "b"): [(1, 2)], ("b", "c"): [(3, 4)]},
        {"x": {1: {("a", "b"): [(1, 2)], "b": [3]}}},
    ):
        with pytest.raises(ValueError, match=r"sweep: '[ab]' is a name of both .* and "):
            sweep(parameters)
    # a sub-sweep's factor named as one of its parent's keeps execo's meaning: it wins
    assert sweep({"c": [2], "a": {1: {"c": [1]}, 2: {}}}) == [{"c": 1, "a": 1}, {"c": 2, "a": 2}]


def test_exclude_errors_name_the_culprit():
    with pytest.raises(
        ValueError,
        match=r"exclude\[1\] names 'modle', which is no factor of the sweep "
        r"\(factors: 'model', 'batch', 'lr'\)",
    ):
        sweep(TRAINING, exclude=[{"lr": 0.1}, {"modle": "large"}])
    with pytest.raises(ValueError, match=r"exclude\[0\] names 'modle', which is no factor"):
        sweep(TRAINING, exclude=[{("modle", "batch"): ("large", 32)}])
    with pytest.raises(ValueError, match=r"level \('large',\) of paired factor"):
        sweep(TRAINING, exclude=[{("model", "batch"): ("large",)}])
    # factors of sub-sweeps are factors too; a sweep without factors has none
    assert sweep({"o": {"sgd": {"m": [1, 2]}}}, exclude=[{"m": 2}]) == [{"o": "sgd", "m": 1}]
    with pytest.raises(ValueError, match=r"names 'm', which is no factor.*\(factors: none\)"):
        sweep({}, exclude=[{"m": 2}])
    with pytest.raises(TypeError, match=r"got dict: wrap it in a list, exclude=\[\{'lr': 0.1\}\]"):
        sweep(TRAINING, exclude={"lr": 0.1})
    for bad in ("lr", 3):
        with pytest.raises(
            TypeError, match=r"exclude must be a callable .* or a list of partial dicts, got "
        ):
            sweep(TRAINING, exclude=bad)
    with pytest.raises(TypeError, match=r"exclude\[0\] must be a partial dict .*got str 'lr'"):
        sweep(TRAINING, exclude=["lr"])
    with pytest.raises(ValueError, match=r"exclude\[0\] is empty: it would leave out every"):
        sweep(TRAINING, exclude=[{}])


def test_sweep_stats_counts_each_paired_name_as_a_factor():
    sweeps = sweep(TRAINING, exclude=LEAVE_OUT_LARGE_LR)
    stats = sweep_stats((sweeps, sweeps[1:], [], [], sweeps[:1]))
    assert stats["total"] == {
        "model": {"small": 2, "large": 1},
        "batch": {256: 2, 32: 1},
        "lr": {0.1: 1, 0.01: 2},
    }
    assert stats["done"] == {"model": {"small": 1}, "batch": {256: 1}, "lr": {0.1: 1}}
    assert stats["done_ratio"]["batch"] == {256: 0.5, 32: 0.0}
