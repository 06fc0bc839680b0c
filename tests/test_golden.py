"""Golden directories: every released on-disk format must stay readable, with exact states.

``tests/golden/format1/`` was written by the code of commit 194cb38 (format 1: no ``format``
file) by running this module as a script: ``python tests/test_golden.py OUTPUT_DIR`` (see
:func:`write_format1`). Never regenerate them with newer code: add a ``format<N>`` directory
instead.

- ``mixed``: saved sweeps holding every type the text format carries; done records with right
  position hints, one written by an instance whose sweeps were in another order (wrong hint)
  and one of an element that is not in the sweeps; claims of a process that has exited, of
  another host, and a claim given back; results whose values hold lists, dicts and tuples.
- ``unsaved``: a ``sweep()`` grid never saved (``save_sweeps=False``, the execo default), some
  done, a claim of another host, and a torn last done record (a crash mid-append).

``tests/golden/format3/skips`` was written by the code of commit cc7ae49 (format 3: skip
records of five fields, failure records) with ``python tests/test_golden.py format3
OUTPUT_DIR`` (see :func:`write_format3`): saved sweeps, two done, one failed for good, one
with a failed attempt, a claim and a skip of a process that has exited, a claim and a skip of
another host, a result.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from execo_engine.codec import Codec
from execo_engine.errors import NewerFormatError
from execo_engine.store.directory.version import FORMAT
from execo_engine.sweep import HashableDict, ParamSweeper, sweep

GOLDEN = Path(__file__).parent / "golden"
MIXED = [
    (1, "a", (2.5, None)),
    42,
    -(2**70),
    1.5,
    'text é\n"quoted"',
    True,
    None,
    frozenset({1, "b"}),
    b"\x00\xff",
    HashableDict(a=1, b="x"),
    HashableDict({1: "int key", (2, 3): "tuple key"}),
    HashableDict(nested=HashableDict(k=(1, 2)), f=frozenset({2.5})),
]
UNSAVED = {"size": [10, 20, 30], "algo": ["quick", "merge"]}
# Format 1 owners have no PID namespace: they are read back with an empty one.
FAR_HOST = ("far-host", 7, "boot:123", "")
EXITED = ("vm", 11512, "ea9b47d8-22f0-4163-a1c2-93222e50a1b0:56069", "")


def _texts(elements):
    """Canonical texts: equal only when the types are exactly the same too."""
    return [Codec().encode(element) for element in elements]


def _files(directory):
    return {path.name: path.read_bytes() for path in Path(directory).iterdir()}


def _copy(tmp_path, name):
    return shutil.copytree(GOLDEN / "format1" / name, tmp_path / name)


def test_format1_mixed_read_only_view_sees_exact_states():
    directory = GOLDEN / "format1" / "mixed"
    before = _files(directory)
    view = ParamSweeper(directory, read_only=True)
    sweeps, remaining, skipped, inprogress, done = view.stats()
    assert _texts(sweeps) == _texts(MIXED)
    assert _texts(done) == _texts([MIXED[0], MIXED[1], MIXED[2], MIXED[9]])
    assert _texts(inprogress) == _texts(MIXED[3:6])
    assert _texts(remaining) == _texts([MIXED[6], MIXED[7], MIXED[8], MIXED[10], MIXED[11]])
    assert list(skipped) == []
    claims = [(element, owner) for element, owner, _, _ in view.get_claims()]
    assert claims == [(MIXED[5], FAR_HOST), (MIXED[3], EXITED), (MIXED[4], EXITED)]
    results = view.get_results()
    assert [(r["combination"], r["values"], r["outcome"], r["duration"]) for r in results] == [
        (MIXED[0], {"list": [1, [2, 3]], "dict": {"k": (1,)}, "none": None}, "passed", 0.5),
        (MIXED[9], {"latency": 1e-3}, "failed", None),
    ]
    assert type(results[0]["values"]["dict"]["k"]) is tuple
    assert _files(directory) == before  # a read-only view never writes


def test_format1_mixed_writer_resumes(tmp_path):
    directory = _copy(tmp_path, "mixed")
    sweeper = ParamSweeper(directory)
    sweeper.reclaim(older_than=0)  # the exited process's claims and the other host's
    assert sweeper.get_inprogress() == []
    todo = [MIXED[i] for i in (3, 4, 5, 6, 7, 8, 10, 11)]
    assert _texts(sweeper.get_remaining()) == _texts(todo)
    assert _texts(sweeper.get_next_batch(8)) == _texts(todo)
    sweeper.done_batch(todo)
    again = ParamSweeper(directory, read_only=True)
    assert _texts(again.get_done()) == _texts(MIXED)
    assert len(ParamSweeper(directory, ["not in the sweeps"]).get_done()) == 1


def test_format1_unsaved_read_only_and_writer(tmp_path):
    grid = sweep(UNSAVED)
    pristine = GOLDEN / "format1" / "unsaved"
    before = _files(pristine)
    view = ParamSweeper(pristine, grid, read_only=True)
    assert view.stats() == (grid, [grid[2], *grid[4:]], [], [grid[3]], grid[:2])
    assert [(e, owner) for e, owner, _, _ in view.get_claims()] == [(grid[3], FAR_HOST)]
    assert _files(pristine) == before  # the torn record is ignored, not repaired
    with pytest.raises(ValueError, match="no sweeps given and none saved"):
        ParamSweeper(pristine, read_only=True)
    directory = _copy(tmp_path, "unsaved")
    sweeper = ParamSweeper(directory, grid)
    assert sweeper.get_done() == grid[:2]
    assert (directory / "done").read_bytes().endswith(b'"size":10}]\n')  # torn tail cut off
    assert sweeper.get_next() == grid[2]


def test_format3_read_only_view_sees_exact_states():
    directory, grid = GOLDEN / "format3" / "skips", sweep(SKIPS)
    before = _files(directory)
    view = ParamSweeper(directory, read_only=True)
    assert view.stats() == (grid, [grid[3]], grid[6:], grid[4:6], grid[:2])
    # format 3 skips name no instance: the owner process's, for every instance, while it lives
    assert [(c, owner[0]) for c, owner, _, _ in view.get_skips()] == [
        (grid[7], "far-host"),
        (grid[6], "vm"),
    ]
    assert list(view.get_failed()) == [grid[2]]
    assert view.get_failures()[grid[3]].attempts == 1
    assert [r["combination"] for r in view.get_results()] == [grid[0]]
    assert _files(directory) == before  # a read-only view never writes


@pytest.mark.slow  # real processes: 1 s
def test_format3_writer_gives_back_what_the_gone_held_and_writes_format4(tmp_path, poll):
    directory, grid = (
        shutil.copytree(GOLDEN / "format3" / "skips", tmp_path / "skips"),
        sweep(SKIPS),
    )
    writer = ParamSweeper(directory, lease=1)  # an exited process, another host: both gone
    assert (directory / "format").read_text() == "4\n"
    poll(lambda: writer.get_skips() == [] == writer.get_claims(), "the gone owners' holds")
    assert writer.stats() == (grid, grid[3:], [], [], grid[:2])
    assert writer.get_next() == grid[3]
    writer.skip(grid[3])
    last = (directory / "inprogress").read_text().splitlines()[-1]
    assert last.startswith('["s",') and len(json.loads(last)) == 6  # the instance's number
    assert ParamSweeper(directory, lease=1).get_remaining() == grid[3:]  # another instance


# -- how the format 1 directories were written (with the code of commit 194cb38) -------------


def _far_claim(directory, element, position):
    from execo_engine.dirstore import DirectoryStore  # type: ignore[import-not-found]

    store = DirectoryStore(directory, Codec())
    with store.lock:
        store.read()
        store.append_claims([(position, element)], FAR_HOST[:3], 1700000000.0)


def _claims_of_an_exited_process(directory, count):
    script = textwrap.dedent(f"""
        import os
        from execo_engine.sweep import ParamSweeper
        ParamSweeper({str(directory)!r}).get_next_batch({count})
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], check=True)


def _write_mixed(directory):
    sweeper = ParamSweeper(directory, MIXED, save_sweeps=True)
    sweeper.done_batch(MIXED[:3])  # hints 0, 1, 2
    ParamSweeper(directory, MIXED[::-1]).done(MIXED[9])  # hint 2: another order
    ParamSweeper(directory, ["not in the sweeps"]).done("not in the sweeps")
    _claims_of_an_exited_process(directory, 2)  # MIXED[3], MIXED[4]
    _far_claim(directory, MIXED[5], 5)
    assert sweeper.take(MIXED[6]) is None
    sweeper.cancel(MIXED[6])
    sweeper.record_result(
        MIXED[0], {"list": [1, [2, 3]], "dict": {"k": (1,)}, "none": None}, "passed", 0.5
    )
    sweeper.record_result(MIXED[9], {"latency": 1e-3}, "failed")


def _write_unsaved(directory):
    grid = sweep(UNSAVED)
    ParamSweeper(directory, grid).done_batch(grid[:2])
    _far_claim(directory, grid[3], 3)
    with open(os.path.join(directory, "done"), "ab") as done:
        done.write(b'[2,{"algo":"quick","si')  # a crash mid-append


def write_format1(root):
    """Write the format 1 golden directories below ``root``."""
    for name, write in (("mixed", _write_mixed), ("unsaved", _write_unsaved)):
        directory = os.path.join(root, name)
        os.makedirs(directory)
        write(directory)
        os.remove(os.path.join(directory, "lock"))  # created empty by every writer


# -- how the format 3 directory was written (with the code of commit cc7ae49) ----------------

SKIPS = {"size": [1, 2, 3, 4], "algo": ["quick", "merge"]}
FAR_OWNER = ("far-host", 7, "boot:123", "pid:[4026531836]")


def _far_holds(directory, held):
    """Claims (``"+"``) and skips (``"s"``) of ``FAR_OWNER``: ``[(kind, position, element)]``."""
    from execo_engine.store.directory.store import DirectoryLog  # type: ignore[attr-defined]

    log = DirectoryLog(directory, Codec())
    with log.lock:
        log.read()
        for kind, position, element in held:
            log.append_holds(kind, [(position, element)], FAR_OWNER, 1700000000.0)
    log.close()


def _write_skips(directory):
    grid = sweep(SKIPS)
    sweeper = ParamSweeper(directory, grid, save_sweeps=True, max_attempts=1)
    sweeper.done_batch(grid[:2])
    sweeper.record_result(grid[0], {"seconds": 0.5}, "passed", 0.5)
    assert sweeper.take(grid[2]) is None
    sweeper.fail(grid[2], "RuntimeError: boom")  # failed for good (max_attempts=1)
    other = ParamSweeper(directory, grid)  # no limit: one attempt, todo again
    assert other.take(grid[3]) is None
    other.fail(grid[3], "OSError: once")
    script = textwrap.dedent(f"""
        import os
        from execo_engine.sweep import ParamSweeper, sweep
        grid = sweep({SKIPS!r})
        sweeper = ParamSweeper({str(directory)!r}, grid)
        assert sweeper.take_batch([grid[4], grid[6]]) == [None, None]
        sweeper.skip(grid[6])
        os._exit(0)  # an exited process: its claim and its skip stay in the file
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    _far_holds(directory, [("+", 5, grid[5]), ("s", 7, grid[7])])


def write_format3(root):
    """Write the format 3 golden directory below ``root``."""
    directory = os.path.join(root, "skips")
    os.makedirs(directory)
    _write_skips(directory)
    for name in ("lock", ".lock"):  # created empty by every writer
        os.remove(os.path.join(directory, name))
    shutil.rmtree(os.path.join(directory, "owners"), ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1] == "format3":
        write_format3(sys.argv[2])
    else:
        write_format1(sys.argv[1])


def test_a_writer_marks_the_current_format_and_a_newer_format_is_refused(tmp_path):
    directory = _copy(tmp_path, "mixed")
    ParamSweeper(directory, read_only=True)
    assert not (directory / "format").exists()  # no format file: format 1, never rewritten
    ParamSweeper(directory)
    assert (directory / "format").read_text() == f"{FORMAT}\n" == "4\n"
    (directory / "format").write_text(f"{FORMAT + 1}\n")
    for read_only in (True, False):
        with pytest.raises(
            NewerFormatError,
            match=rf"directory '{directory}' is in format version {FORMAT + 1}, .* reads "
            rf"versions 1 to {FORMAT}",
        ):
            ParamSweeper(directory, read_only=read_only)
    (directory / "format").write_text("two\n")
    with pytest.raises(ValueError, match=r"format: not a format version number: b'two\\n'"):
        ParamSweeper(directory)
