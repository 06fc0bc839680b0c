"""ParamSweeper behaviour: the seed's contract, order, persistence, errors and recovery."""

import os
import pickle
import subprocess
import sys
import textwrap
from fractions import Fraction

import pytest

from execo_engine.codec import Codec, PickleNotAllowedError, UnsupportedValueError
from execo_engine.records import CorruptRecordError
from execo_engine.sweep import HashableDict, ParamSweeper, sweep

GRID = {"a": [1, 2, 3], "b": ["x", "y"]}


@pytest.fixture
def sweeps():
    return sweep(GRID)


def test_get_next_follows_sweeps_order(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps)
    assert [sweeper.get_next() for _ in sweeps] == sweeps
    assert sweeper.get_next() is None
    reverse = ParamSweeper(location("reverse"), sweeps[::-1])
    assert list(reverse) == sweeps[::-1]


def test_states_and_str(location, sweeps):
    sweeper = ParamSweeper(location("grid"), sweeps)
    assert sweeper.name.endswith("grid")  # the directory's name, or the PostgreSQL sweep's
    assert (
        str(sweeper) == f"{sweeper.name} <6 total, 0 done, 0 skipped, 0 in progress, 6 remaining>"
    )
    first, second, third = sweeper.get_next_batch(3)
    sweeper.done(first)
    sweeper.skip(second)
    assert sweeper.stats() == (sweeps, sweeps[3:], [second], [third], [first])
    assert (
        str(sweeper) == f"{sweeper.name} <6 total, 1 done, 1 skipped, 1 in progress, 3 remaining>"
    )
    sweeper.cancel(third)
    assert sweeper.get_remaining() == [third, *sweeps[3:]]
    assert sweeper.get_next() == third  # a cancelled element comes back in sweeps order


def test_returned_collections_are_copies(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps)
    sweeper.get_sweeps().clear()
    sweeper.get_remaining().clear()
    assert sweeper.get_sweeps() == sweeps and sweeper.get_remaining() == sweeps


def test_done_inprogress_and_skipped_persist_while_their_owner_lives(location, sweeps):
    first = ParamSweeper(location(), sweeps)
    done, skipped, held = first.get_next_batch(3)
    first.done(done)
    first.skip(skipped)
    relaunch = ParamSweeper(location(), sweeps)
    assert relaunch.get_done() == [done]
    assert relaunch.get_inprogress() == [held]  # held by a live instance of this process
    assert relaunch.get_skipped() == [skipped]  # skipped by this process, still alive
    assert relaunch.get_next() == sweeps[3]


def test_done_outside_current_sweeps_kept_but_not_reported(location, sweeps):
    ParamSweeper(location(), sweeps).done_batch(sweeps[:2])
    smaller = ParamSweeper(location(), sweeps[1:])
    assert smaller.get_done() == [sweeps[1]]
    smaller.set_sweeps(sweeps)
    assert smaller.get_done() == sweeps[:2]


def test_removing_inprogress_file_resets_claims_while_running(tmp_path, sweeps):
    sweeper = ParamSweeper(tmp_path, sweeps)
    other = ParamSweeper(tmp_path, sweeps)
    held = sweeper.get_next_batch(2)
    assert other.get_inprogress() == held
    os.remove(tmp_path / "inprogress")
    assert other.get_inprogress() == [] and sweeper.get_inprogress() == []
    assert other.get_next() == held[0]


def test_saved_sweeps(location, sweeps):
    with pytest.raises(ValueError, match="no sweeps given and none saved in"):
        ParamSweeper(location())
    ParamSweeper(location(), sweeps, save_sweeps=True)
    assert ParamSweeper(location()).get_sweeps() == sweeps


def test_old_argument_order_is_deprecated(tmp_path, sweeps):
    with pytest.warns(DeprecationWarning, match="ParamSweeper\\(persistence_dir, sweeps\\)"):
        sweeper = ParamSweeper(sweeps, str(tmp_path))
    assert sweeper.get_sweeps() == sweeps
    assert os.path.isdir(tmp_path)


def test_filter_receives_remaining_in_order(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps)
    sweeper.done(sweeps[0])
    seen = []

    def last_with_y(remaining):
        seen.append(list(remaining))
        return [c for c in reversed(remaining) if c["b"] == "y"]

    assert sweeper.get_next(last_with_y) == sweeps[5]
    assert seen == [sweeps[1:]]
    assert sweeper.get_next_batch(5, last_with_y) == [sweeps[3], sweeps[1]]


def test_iteration_and_claim_context_manager(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps)
    with sweeper.claim() as combination:
        assert combination == sweeps[0]
    with pytest.raises(RuntimeError):
        with sweeper.claim() as combination:
            raise RuntimeError("experiment failed")
    assert sweeper.get_done() == [sweeps[0]]
    assert sweeper.get_remaining() == sweeps[1:]
    assert list(sweeper) == sweeps[1:]
    assert sweeper.get_inprogress() == sweeps[1:]
    with sweeper.claim() as nothing:
        assert nothing is None


def test_reset(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps)
    other = ParamSweeper(location(), sweeps)
    done, skipped, held = sweeper.get_next_batch(3)
    sweeper.done(done)
    sweeper.skip(skipped)
    sweeper.reset()
    assert sweeper.get_skipped() == [] and sweeper.get_done() == [done]
    assert sweeper.get_inprogress() == [held]
    sweeper.reset(reset_inprogress=True)
    assert sweeper.get_inprogress() == [] and other.get_inprogress() == []
    assert sweeper.get_remaining() == sweeps[1:]


def test_release_claims_gives_back_only_own_unfinished(location, sweeps):
    mine, theirs = ParamSweeper(location(), sweeps), ParamSweeper(location(), sweeps)
    finished, unfinished = mine.get_next_batch(2)
    kept = theirs.get_next()
    mine.done(finished)
    assert mine.release_claims() == [unfinished]
    assert theirs.get_inprogress() == [kept]
    assert theirs.get_remaining() == [unfinished, *sweeps[3:]]


def test_update_sees_other_instances(tmp_path, sweeps):
    one, two = ParamSweeper(tmp_path, sweeps), ParamSweeper(tmp_path, sweeps)
    one.done_batch(sweeps[:2])
    two.update()
    assert two.get_done() == sweeps[:2]
    os.remove(tmp_path / "done")
    two.full_update()
    assert two.get_done() == []


VALUES = [
    1,
    -(2**70),
    1.5,
    float("inf"),
    True,
    None,
    'é\n"',
    (1, (2, "x")),
    [1, [2]],
    {"k": (1,)},
    {1: "int key", (2, 3): "tuple key"},
    frozenset({3, "a"}),
    b"\x00\xff",
    HashableDict({1: 2}),
    HashableDict({"__tuple__": 1}),
    HashableDict(),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_codec_round_trips_types_exactly(value):
    codec = Codec()
    text = codec.encode(value)
    decoded = codec.decode(text)
    assert decoded == value and type(decoded) is type(value)
    assert codec.encode(decoded) == text  # nested types are tagged: they round-trip too
    assert "\n" not in text


def test_codec_is_canonical_across_processes():
    value = HashableDict({"z": frozenset({"b", "a", "c"}), "a": {3: 1, 1: 2}, 5: "mixed"})
    script = textwrap.dedent(f"""
        from execo_engine.codec import Codec
        from execo_engine.sweep import HashableDict
        print(Codec().encode({value!r} if False else HashableDict({dict(value)!r})))
    """)
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout
        for seed in (1, 2, 3)
    }
    assert outputs == {Codec().encode(value) + "\n"}


def test_types_survive_the_directory(location):
    hashable = [v for v in VALUES if v is not True]  # True == 1: the same element in a set
    elements = [
        HashableDict(v=v)
        for v in hashable
        if not isinstance(v, (list, dict)) or isinstance(v, HashableDict)
    ]
    first = ParamSweeper(location(), elements, save_sweeps=True)
    first.done_batch(elements[::2])
    again = ParamSweeper(location())
    for loaded, original in zip(again.get_sweeps(), elements, strict=False):
        assert type(loaded["v"]) is type(original["v"])
        assert Codec().encode(loaded) == Codec().encode(original)
    assert again.get_done() == elements[::2]


def test_unhashable_element_is_named(location):
    with pytest.raises(TypeError, match=r"element \{'a': \[1, 2\]\} is unhashable"):
        ParamSweeper(location(), [HashableDict(a=(1,)), HashableDict(a=[1, 2])])
    sweeper = ParamSweeper(location(), [HashableDict(a=1)])
    with pytest.raises(TypeError, match="unhashable"):
        sweeper.done([1])


def test_unsupported_value_names_it_and_pickle_opt_in(location):
    elements = [HashableDict(ratio=Fraction(1, 3))]
    with pytest.raises(UnsupportedValueError, match=r"Fraction\(1, 3\).*allow_pickle=True"):
        ParamSweeper(location(), elements, save_sweeps=True)
    sweeper = ParamSweeper(location(), elements, save_sweeps=True, allow_pickle=True)
    sweeper.done(sweeper.get_next())
    assert ParamSweeper(location(), allow_pickle=True).get_done() == elements
    with pytest.raises(PickleNotAllowedError, match="refusing to unpickle"):
        ParamSweeper(location(), elements)


def test_persistence_path_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(NotADirectoryError, match="exists and is not a directory"):
        ParamSweeper(path, [HashableDict(a=1)])


def test_torn_last_record_at_every_offset(tmp_path, sweeps):
    ParamSweeper(tmp_path, sweeps).done_batch(sweeps[:3])
    done_file = tmp_path / "done"
    content = done_file.read_bytes()
    last_start = content.rstrip(b"\n").rfind(b"\n") + 1
    for cut in range(last_start, len(content) + 1):
        done_file.write_bytes(content[:cut])
        loaded = ParamSweeper(tmp_path, sweeps)
        expected = sweeps[:3] if cut == len(content) else sweeps[:2]
        assert loaded.get_done() == expected, cut
        # repaired under the lock: the torn bytes are gone and appends stay readable
        assert done_file.read_bytes() == content[: last_start if cut < len(content) else cut]
        loaded.done(sweeps[2])
        assert ParamSweeper(tmp_path, sweeps).get_done() == sweeps[:3]


def test_garbage_in_the_middle_names_file_and_offset(tmp_path, sweeps):
    ParamSweeper(tmp_path, sweeps).done_batch(sweeps[:3])
    done_file = tmp_path / "done"
    lines = done_file.read_bytes().splitlines(keepends=True)
    done_file.write_bytes(lines[0] + b"{garbage\n" + lines[2])
    with pytest.raises(
        CorruptRecordError,
        match=rf"{done_file}: corrupt record at byte offset "
        rf"{len(lines[0])}: b'{{garbage'",
    ):
        ParamSweeper(tmp_path, sweeps)


def test_execo_2_pickle_directory_is_refused_not_unpickled(tmp_path, sweeps):
    (tmp_path / "done").write_bytes(pickle.dumps(set(sweeps[:2])) + b"\n")
    with pytest.raises(CorruptRecordError, match="pickle file written by execo 2.x"):
        ParamSweeper(tmp_path, sweeps)


def test_dead_owner_claims_are_reclaimed(tmp_path, sweeps, caplog):
    ParamSweeper(tmp_path, sweeps, save_sweeps=True)
    script = textwrap.dedent(f"""
        import os
        from execo_engine.sweep import ParamSweeper
        print(ParamSweeper({str(tmp_path)!r}).get_next_batch(2))
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    sweeper = ParamSweeper(tmp_path)
    assert sweeper.get_inprogress() == []
    assert sweeper.get_next_batch(6) == sweeps
    assert "reclaimed 2 combination(s) held by dead process" in caplog.text


def test_claims_of_other_hosts_are_kept(tmp_path, sweeps):
    ParamSweeper(tmp_path, sweeps)
    record = '["+",["other-host",1,"x"],{"a":1,"b":"x"},0,1700000000.0]\n'
    (tmp_path / "inprogress").write_text(record)
    assert ParamSweeper(tmp_path, sweeps).get_inprogress() == [sweeps[0]]


def test_compaction_keeps_live_claims(location, sweeps, tmp_path):
    grid = sweep({"i": range(3000)})
    sweeper, other = ParamSweeper(location(), grid), ParamSweeper(location(), grid)
    held = sweeper.get_next_batch(5)
    for _ in range(2000):
        sweeper.done(sweeper.get_next())
    if "://" not in location():  # a directory: the inprogress file was compacted
        assert len((tmp_path / "sweep" / "inprogress").read_text().splitlines()) < 2000
    assert other.get_inprogress() == held
    assert len(other.get_done()) == 2000
    assert sweeper.release_claims() == held


def test_take_claims_one_given_element(location, sweeps):
    sweeper, other = ParamSweeper(location(), sweeps), ParamSweeper(location(), sweeps)
    assert sweeper.take(sweeps[3]) is None
    assert other.take(sweeps[3]) == f"in progress (host {os.uname().nodename}, pid {os.getpid()})"
    sweeper.done(sweeps[3])
    assert other.take(sweeps[3]) == "done"
    assert other.take(HashableDict(a=9)) == "not in the sweeps"
    assert other.get_next_batch(9) == sweeps[:3] + sweeps[4:]
    other.cancel(sweeps[1])
    assert sweeper.get_next() == sweeps[1]  # a cancelled element comes back in its place


def test_public_names_resolve_where_documented():
    import execo_engine
    import execo_engine.engine
    import execo_engine.utils

    assert execo_engine.utils.ParamSweeper is ParamSweeper is execo_engine.ParamSweeper
    assert execo_engine.Engine is execo_engine.engine.Engine
    for name in [
        "sweep",
        "HashableDict",
        "sweep_stats",
        "geom",
        "igeom",
        "slugify",
        "redirect_outputs",
        "copy_outputs",
        "logger",
    ]:
        assert getattr(execo_engine, name) is not None


def test_duplicates_are_handed_out_once(location):
    a, b = HashableDict(x=1, y=2), HashableDict(y=2, x=1)  # equal, keys in another order
    sweeper = ParamSweeper(location(), [a, HashableDict(x=2), b, HashableDict(x=1.0, y=2)])
    assert sweeper.get_sweeps() == [a, HashableDict(x=2)]
    assert list(sweeper) == [a, HashableDict(x=2)]
    assert ParamSweeper(location("ints"), [1, 2, 1.0, True]).get_sweeps() == [1, 2]


def test_instances_with_sweeps_in_other_orders_share_states(location, sweeps):
    forward = ParamSweeper(location(), sweeps)
    backward = ParamSweeper(location(), [*sweeps[::-1], HashableDict(a=9, b="z")])
    forward.done_batch(sweeps[:2])
    held = forward.get_next()
    assert backward.get_done() == sweeps[1::-1]
    assert backward.get_inprogress() == [held]
    extra = backward.get_next_batch(5)
    assert extra == [*sweeps[:2:-1], HashableDict(a=9, b="z")]
    backward.done_batch(extra)
    forward.done(held)
    assert forward.get_done() == sweeps
    assert backward.get_remaining() == [] and forward.get_remaining() == []
    assert len(ParamSweeper(location(), sweeps[:1]).get_done()) == 1  # extra kept, not reported


def test_read_only_never_writes(tmp_path, sweeps):
    writer = ParamSweeper(tmp_path, sweeps, save_sweeps=True)
    writer.done(writer.get_next())
    with (tmp_path / "done").open("ab") as f:
        f.write(b'[1,{"a":1')  # a torn record: a read-only view ignores it, does not repair it
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    view = ParamSweeper(tmp_path, read_only=True)
    assert view.get_done() == sweeps[:1] and len(view.get_remaining()) == 5
    for mutate in (
        view.get_next,
        lambda: view.done(sweeps[1]),
        lambda: view.take(sweeps[1]),
        lambda: view.record_result(sweeps[1], {"x": 1}),
    ):
        with pytest.raises(PermissionError, match="read-only"):
            mutate()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ParamSweeper(tmp_path / "missing", read_only=True)


def test_claims_and_reclaim_older_than(tmp_path, sweeps):
    sweeper = ParamSweeper(tmp_path, sweeps)
    (tmp_path / "inprogress").write_text(
        '["+",["far-host",7,"x"],{"a":1,"b":"x"},0,1000.0]\n'
        '["+",["far-host",7,"x"],{"a":1,"b":"y"},1,4000000000.0]\n'
    )
    claims = sweeper.get_claims()
    assert [(c, owner, dead) for c, owner, _, dead in claims] == [
        (sweeps[0], ("far-host", 7, "x"), False),
        (sweeps[1], ("far-host", 7, "x"), False),
    ]
    assert sweeper.reclaim() == []  # another host: cannot tell it is dead
    assert sweeper.reclaim(older_than=3600) == [sweeps[0]]
    assert sweeper.get_inprogress() == [sweeps[1]]
    assert ParamSweeper(tmp_path, sweeps).get_next() == sweeps[0]


def test_results_are_recorded_durably_and_read_back(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps)
    sweeper.record_result(sweeps[0], {"latency": 1.5, "size": 3, "label": "é"}, "passed", 0.25)
    sweeper.record_result(sweeps[1], {"latency": (1, 2)}, "failed")
    with pytest.raises(UnsupportedValueError, match="Fraction"):
        sweeper.record_result(sweeps[2], {"ratio": Fraction(1, 2)})
    results = ParamSweeper(location(), sweeps, read_only=True).get_results()
    assert [(r["combination"], r["values"], r["outcome"], r["duration"]) for r in results] == [
        (sweeps[0], {"latency": 1.5, "size": 3, "label": "é"}, "passed", 0.25),
        (sweeps[1], {"latency": (1, 2)}, "failed", None),
    ]
    assert all(r["host"] == os.uname().nodename and r["time"] > 0 for r in results)


@pytest.mark.parametrize(
    "name,record",
    [
        ("done", b'{"a":1,"b":"x"}'),
        ("inprogress", b'["+",["h",1,"s"],{"a":1,"b":"x"}]'),
        ("inprogress", b'["?",{"a":1,"b":"x"}]'),
    ],
)
def test_valid_json_of_the_wrong_shape_is_a_corrupt_record(tmp_path, sweeps, name, record):
    ParamSweeper(tmp_path, sweeps).done(sweeps[0])
    path = tmp_path / name
    size = path.stat().st_size if path.exists() else 0
    with path.open("ab") as f:
        f.write(record + b"\n")
    with pytest.raises(
        CorruptRecordError,
        match=rf"corrupt record at byte offset {size}: .*"
        rf"not a record of {name}",
    ):
        ParamSweeper(tmp_path, sweeps)


def test_saved_sweeps_keep_the_order_of_factors(location):
    grid = sweep({"size": [2, 1], "algo": ["z", "a"], "mode": {"m": {"depth": [1]}}})
    ParamSweeper(location(), grid, save_sweeps=True)
    loaded = ParamSweeper(location()).get_sweeps()
    assert loaded == grid
    assert [list(c) for c in loaded] == [list(c) for c in grid] != [sorted(c) for c in grid]


def test_a_changed_sweep_list_is_checked_again(location):
    grid = sweep({"a": [1, 2]})
    grid.append(HashableDict(a=1))
    assert ParamSweeper(location(), grid).get_sweeps() == [{"a": 1}, {"a": 2}]
