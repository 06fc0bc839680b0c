"""ParamSweeper behaviour: the seed's contract, order, persistence, errors and recovery."""

import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from execo_engine.codec import Codec
from execo_engine.errors import CorruptRecordError, Execo2DirectoryError, UnsupportedValueError
from execo_engine.log import DETAIL
from execo_engine.sweep import HashableDict, ParamSweeper, sweep
from execo_engine.sweeper import check_elements


def test_removing_inprogress_file_resets_claims_while_running(tmp_path, sweeps):
    sweeper = ParamSweeper(tmp_path, sweeps)
    other = ParamSweeper(tmp_path, sweeps)
    held = sweeper.get_next_batch(2)
    assert other.get_inprogress() == held
    os.remove(tmp_path / "inprogress")
    assert other.get_inprogress() == [] and sweeper.get_inprogress() == []
    assert other.get_next() == held[0]


def test_done_writes_no_release_and_ends_the_claim_for_every_reader(tmp_path, sweeps):
    sweeper, other = ParamSweeper(tmp_path, sweeps), ParamSweeper(tmp_path, sweeps)
    first, second = sweeper.get_next(), sweeper.get_next()
    assert other.get_inprogress() == [first, second]  # seen claimed before the done
    sweeper.done(first)
    sweeper.cancel(second)
    tags = [line[:4] for line in (tmp_path / "inprogress").read_text().splitlines()]
    assert tags == ['["+"', '["+"', '["-"']  # the cancel is a release; the done is not
    assert other.get_inprogress() == [] and other.get_done() == [first]
    fresh = ParamSweeper(tmp_path, sweeps)  # reads the claim of a done element, ignores it
    assert fresh.get_inprogress() == [] and fresh.get_done() == [first]
    assert fresh.get_next() == second


def test_old_argument_order_is_deprecated(tmp_path, sweeps):
    with pytest.warns(DeprecationWarning, match="ParamSweeper\\(persistence_dir, sweeps\\)"):
        sweeper = ParamSweeper(sweeps, str(tmp_path))
    assert sweeper.get_sweeps() == sweeps
    assert os.path.isdir(tmp_path)


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


def value_id(value):
    """The repr of a value, with a set's members sorted: the same id in every process, whatever
    its hash seed (xdist workers must collect the same ids)."""
    if isinstance(value, frozenset):
        return f"frozenset({sorted(value, key=repr)!r})"
    return repr(value)


@pytest.mark.parametrize("value", VALUES, ids=value_id)
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


def test_a_pickled_record_among_records_is_refused_not_unpickled(tmp_path, sweeps):
    (tmp_path / "format").write_text("4\n")
    (tmp_path / "done").write_bytes(pickle.dumps(set(sweeps[:2])) + b"\n")
    with pytest.raises(CorruptRecordError, match=r"pickle file written by execo 2\.x"):
        ParamSweeper(tmp_path, sweeps)


@pytest.mark.parametrize("name", ["done", "inprogress", "sweeps"])
@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("read_only", [False, True])
def test_execo_2_pickle_directory_is_refused_and_left_as_it_is(
    tmp_path, sweeps, name, protocol, read_only
):
    """execo 2.x pickles whole files, mostly without a newline: taken for a torn record, a
    writer would cut it off (the done combinations lost for execo too)."""
    pickled = pickle.dumps(set(sweeps[:2]), protocol=protocol)
    (tmp_path / name).write_bytes(pickled)
    with pytest.raises(Execo2DirectoryError) as raised:
        ParamSweeper(tmp_path, None if read_only else sweeps, read_only=read_only)
    assert str(raised.value) == (
        f"persistence directory {str(tmp_path)!r} was written by execo 2.x: {tmp_path / name} "
        f"is a pickle file, which this version never unpickles (nor changes): finish that "
        f"sweep with execo 2.x, or give this version a new directory"
    )
    assert sorted(os.listdir(tmp_path)) == [name]
    assert (tmp_path / name).read_bytes() == pickled


def test_dead_owner_claims_are_reclaimed(tmp_path, sweeps, caplog):
    ParamSweeper(tmp_path, sweeps, save_sweeps=True)
    script = textwrap.dedent(f"""
        import os
        from execo_engine.sweep import ParamSweeper
        print(ParamSweeper({str(tmp_path)!r}).get_next_batch(2))
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    with caplog.at_level(DETAIL, logger="execo_engine"):
        sweeper = ParamSweeper(tmp_path)  # given back while reading: a DETAIL line
    assert sweeper.get_inprogress() == []
    assert sweeper.get_next_batch(6) == sweeps
    [line] = [r for r in caplog.records if "reclaimed" in r.getMessage()]
    assert "reclaimed 2 combination(s) held by dead process" in line.getMessage()
    assert line.levelname == "DETAIL"


def test_claims_of_other_hosts_are_kept(tmp_path, sweeps):
    ParamSweeper(tmp_path, sweeps)
    record = '["+",["other-host",1,"x"],{"a":1,"b":"x"},0,1700000000.0]\n'
    (tmp_path / "inprogress").write_text(record)
    assert ParamSweeper(tmp_path, sweeps).get_inprogress() == [sweeps[0]]


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


def test_read_only_never_writes(tmp_path, sweeps):
    writer = ParamSweeper(tmp_path, sweeps, save_sweeps=True)
    writer.done(writer.get_next())
    with (tmp_path / "done").open("ab") as f:
        f.write(b'[1,{"a":1')  # a torn record: a read-only view ignores it, does not repair it

    def files():
        return {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}

    before = files()
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
    assert files() == before
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
        (sweeps[0], ("far-host", 7, "x", ""), False),  # a format-1 owner: no namespace
        (sweeps[1], ("far-host", 7, "x", ""), False),
    ]
    assert sweeper.reclaim() == []  # another host: cannot tell it is dead
    assert sweeper.reclaim(older_than=3600) == [sweeps[0]]
    assert sweeper.get_inprogress() == [sweeps[1]]
    assert ParamSweeper(tmp_path, sweeps).get_next() == sweeps[0]


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


def test_error_classes_are_one_module_and_importable_from_the_package(tmp_path, sweeps):
    import execo_engine
    import execo_engine.errors

    names = [n for n in vars(execo_engine.errors) if n.endswith("Error")]
    assert len(names) == 9
    for name in names:
        assert getattr(execo_engine, name) is getattr(execo_engine.errors, name)
        assert name not in execo_engine.__all__  # execo 2.x's names only
    (tmp_path / "done").write_text("not json\n{}\n")
    expected = "done: corrupt record at byte offset 0"
    with pytest.raises(execo_engine.CorruptRecordError, match=expected):
        ParamSweeper(tmp_path, sweeps)


def test_combinations_changed_in_place_after_sweep_are_checked_as_any_list(tmp_path):
    """sweep()'s list vouched for its combinations being distinct and plain even after they
    were changed: two made equal were both handed out (the second after the first was done),
    and a list put in one failed at the first get_next() instead of the constructor."""
    grid = sweep({"x": [1, 2, 3]})
    for combination in grid:
        combination["x"] = min(combination["x"], 2)  # {'x': 1}, {'x': 2}, {'x': 2}
    sweeper = ParamSweeper(tmp_path / "equal", grid)
    assert sweeper.get_sweeps() == [{"x": 1}, {"x": 2}]
    while (combination := sweeper.get_next()) is not None:
        sweeper.done(combination)
    assert len(sweeper.get_done()) == 2
    assert (tmp_path / "equal" / "done").read_text().count("\n") == 2
    grid = sweep({"x": [1, 2]})
    grid[1]["hosts"] = ["a", "b"]
    with pytest.raises(TypeError, match=r"element \{'x': 2, 'hosts': \['a', 'b'\]\} is unhashable"):
        ParamSweeper(tmp_path / "listed", grid)
    assert not (tmp_path / "listed" / "sweeps").exists()


def test_a_pickled_grid_vouches_for_what_it_vouched_for_when_pickled():
    grid = sweep({"x": [1, 2]})
    assert pickle.loads(pickle.dumps(grid)).distinct
    grid[0]["x"] = 2
    copy = pickle.loads(pickle.dumps(grid))
    assert copy == grid and not copy.distinct and not copy.plain


@pytest.mark.parametrize("level", [float("nan"), 10**5000], ids=["nan", "huge int"])
def test_check_elements_finds_what_a_plain_grid_cannot_store(level):
    """sweep()'s plain grids are checked for the only scalars the text refuses, not encoded."""
    grid = sweep({"x": [1, level, 2]})
    assert grid.plain
    with pytest.raises(UnsupportedValueError, match="cannot store"):
        check_elements(grid)
    check_elements(sweep({"x": [1.5, 10**4000]}))  # stored as they are
