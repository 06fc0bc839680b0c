"""Combinations of the script's own types, and combinations the script changes (issue 28):

- levels of hashable container types of the script's (``class hashablelist(list)``,
  ``class hashabledict(dict)`` with a ``__hash__``): the caller who gives the sweeps gets its
  own objects back everywhere; the files hold the canonical text of their value, never a
  pickle; a reader without those sweeps gets the plain equivalents, equal to them;
- a combination handed out and changed by the script before ``done(x)`` (a campaign runner
  adds ``x.update({"backup_dir": ...})``): ``done``, ``skip``, ``cancel``, ``fail`` of that very
  object act on the combination handed out, whatever happened in between.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from execo_engine.codec import Codec
from execo_engine.elements import HashableList
from execo_engine.errors import UnsupportedValueError
from execo_engine.sweep import HashableDict, ParamSweeper, sweep


class hashablelist(list):  # named as the scripts name it
    def __hash__(self):
        return hash(tuple(self))


class hashabledict(dict):
    def __hash__(self):
        return hash(tuple(sorted(self.items())))  # not HashableDict's hash: on purpose


def own_grid():
    return sweep(
        {
            "cores": [hashablelist([0, 1]), hashablelist([2, 3])],
            "env": [hashabledict(OMP="1"), hashabledict(OMP="4", MKL="2")],
        }
    )


def files_of(location):
    if "://" in location:
        return ""
    return "".join(p.read_text() for p in Path(location).iterdir() if p.is_file())


def test_own_types_are_handed_out_and_read_back_as_plain_equivalents(location):
    url, grid = location(), own_grid()
    sweeper = ParamSweeper(url, grid, save_sweeps=True)
    first = sweeper.get_next()
    assert first == grid[0]
    assert type(first["cores"]) is hashablelist and type(first["env"]) is hashabledict
    sweeper.done(first)
    skipped, held = sweeper.get_next_batch(2)
    sweeper.skip(skipped)
    sweeps, remaining, skips, inprogress, done = sweeper.stats()
    assert (sweeps, remaining, skips) == (grid, grid[3:], [grid[1]])
    assert (inprogress, done) == ([held], [grid[0]])
    for member in (*sweeps, *remaining, *skips, *inprogress, *done, *sweeper.get_done()):
        assert type(member["cores"]) is hashablelist and type(member["env"]) is hashabledict
    [(claimed, _, _, _)] = sweeper.get_claims()
    assert type(claimed["env"]) is hashabledict
    sweeper.record_result(first, {"time": 1.5})
    [result] = sweeper.get_results()
    assert type(result["combination"]["cores"]) is hashablelist  # the caller's, in its sweeps

    text = files_of(url)
    assert "__pickle__" not in text and "hashable" not in text
    assert Codec().encode(grid[0]) == '{"cores":[0,1],"env":{"OMP":"1"}}'  # values, as text

    for reader in (  # no sweeps of the script's: the plain equivalents, equal to its objects
        ParamSweeper(url, read_only=True),
        ParamSweeper(url),  # saved sweeps read back
    ):
        assert reader.get_sweeps() == grid
        [done] = reader.get_done()
        assert done == grid[0]
        assert type(done["cores"]) is HashableList and type(done["env"]) is HashableDict
        assert hash(done) == hash(HashableDict(cores=HashableList([0, 1]), env=done["env"]))
        assert reader.get_inprogress() == [held]
        [result] = reader.get_results()
        assert result["combination"] == grid[0]
        assert type(result["combination"]["cores"]) is HashableList


def test_instances_with_the_own_types_in_other_orders_share_states(location):
    url, grid = location(), own_grid()
    forward = ParamSweeper(url, grid)
    backward = ParamSweeper(url, grid[::-1])  # position hints of the records are wrong here
    forward.done_batch(grid[:2])
    held = forward.get_next()
    assert backward.get_done() == grid[1::-1]
    assert backward.get_inprogress() == [held]
    assert backward.take(grid[2]) == f"in progress (host {forward.get_claims()[0][1][0]}, pid " + (
        f"{forward.get_claims()[0][1][1]})"
    )
    assert backward.get_next() == grid[3]
    forward.cancel(held)
    assert backward.get_next() == held


_PROCESS = """
import sys
from execo_engine.sweep import ParamSweeper, sweep
class hashablelist(list):
    def __hash__(self):
        return hash(tuple(self))
class hashabledict(dict):
    def __hash__(self):
        return hash(tuple(sorted(self.items())))
grid = sweep({"cores": [hashablelist([0, 1]), hashablelist([2, 3])],
              "env": [hashabledict(OMP="1"), hashabledict(OMP="4", MKL="2")]})
sweeper = ParamSweeper(sys.argv[1], grid[::-1])
print(len(sweeper.get_done()), type(next(iter(sweeper.get_done()))["env"]).__name__)
sweeper.done(sweeper.get_next())
"""


@pytest.mark.slow
def test_another_process_with_the_same_own_sweeps_sees_its_objects(location):
    url, grid = location(), own_grid()
    ParamSweeper(url, grid).done(grid[0])
    script = [sys.executable, "-c", textwrap.dedent(_PROCESS), url]
    result = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1 hashabledict\n"
    assert ParamSweeper(url, grid).get_done() == [grid[0], grid[3]]


def test_the_same_value_in_two_types_is_one_combination(location):
    sweeper = ParamSweeper(location(), [hashabledict(a=1), HashableDict(a=1), hashablelist([1])])
    assert sweeper.get_sweeps() == [{"a": 1}, [1]]
    assert type(next(iter(sweeper.get_sweeps()))) is hashabledict  # the first one given
    sweeper.done(HashableDict(a=1))  # an equal value of another type: the same combination
    assert sweeper.get_remaining() == [[1]]


class Opaque:  # hashable, but no container: its value is not text
    pass


class Level(int):  # a scalar type of the script's (an enum's name is more than its value)
    pass


def test_what_the_text_cannot_carry_is_still_refused_or_pickled_on_request(location):
    for level in (Opaque(), Level(3)):
        with pytest.raises(UnsupportedValueError, match="allow_pickle=True"):
            ParamSweeper(location(), sweep({"x": [level]})).get_next()
    pickled = ParamSweeper(location("pickled"), sweep({"x": [Level(3)]}), allow_pickle=True)
    assert type(pickled.get_next()["x"]) is Level
    with pytest.raises(TypeError, match=r"unhashable.*HashableDict or frozenset, not dict"):
        ParamSweeper(location(), [hashablelist([{"a": 1}])])  # a plain dict inside


# -- a combination the script changes between get_next() and done() -----------------------


def _mutated(sweeper, between):
    """The campaign runner: claim, do ``between``, change the combination, give it back."""
    x = sweeper.get_next()
    between(sweeper)
    x.update({"backup_dir": "/tmp/backup"})
    x["attempt"] = 2
    return x


def _nothing(sweeper):
    """Nothing happens between get_next() and the change."""


BETWEEN = {
    "nothing": _nothing,
    "another claim": lambda s: s.get_next(),
    "another done": lambda s: s.done(s.get_next()),
    "a getter": lambda s: s.get_inprogress(),
}


@pytest.mark.parametrize("between", BETWEEN.values(), ids=BETWEEN.keys())
def test_done_of_a_changed_combination_marks_the_one_handed_out(location, sweeps, between):
    sweeper = ParamSweeper(location(), sweeps)
    x = _mutated(sweeper, between)
    sweeper.done(x)
    assert sweeps[0] in sweeper.get_done()
    assert sweeps[0] not in sweeper.get_inprogress()
    assert all("backup_dir" not in c for c in sweeper.get_done() | sweeper.get_inprogress())
    assert "backup_dir" not in files_of(location())  # the changed dict was never recorded
    assert sweeper.get_sweeps() == sweeps  # the sweeps did not change with the copy
    assert ParamSweeper(location(), sweeps).get_done() & {sweeps[0]} == {sweeps[0]}
    assert x["backup_dir"] == "/tmp/backup"  # the script's copy is the script's


@pytest.mark.parametrize("between", BETWEEN.values(), ids=BETWEEN.keys())
def test_skip_cancel_and_fail_of_a_changed_combination_act_on_the_one_handed_out(
    location, sweeps, between
):
    sweeper = ParamSweeper(location(), sweeps, max_attempts=1)
    x = _mutated(sweeper, between)
    sweeper.skip(x)
    assert sweeps[0] in sweeper.get_skipped() and sweeps[0] not in sweeper.get_inprogress()
    assert sweeper.take(sweeps[0]) is None  # taken back by this instance
    sweeper.cancel(sweeps[0])
    y = _mutated(sweeper, _nothing)
    assert y == {**sweeps[0], "backup_dir": "/tmp/backup", "attempt": 2}
    sweeper.cancel(y)
    assert sweeps[0] in sweeper.get_remaining()
    z = _mutated(sweeper, _nothing)
    assert sweeper.fail(z, "RuntimeError: boom") is True
    assert list(sweeper.get_failed()) == [sweeps[0]]
    w = sweeper.get_next()
    handed = HashableDict(w)
    between(sweeper)
    w["backup_dir"] = [1, 2]  # unhashable now: still the combination handed out
    sweeper.record_result(w, {"size": 1})  # before done(w), as scripts do
    sweeper.done(w)
    assert [r["combination"] for r in sweeper.get_results()] == [handed]
    assert handed in sweeper.get_done() and handed in sweeps
    assert "backup_dir" not in files_of(location())
