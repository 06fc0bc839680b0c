"""The store contract, run on every store (a directory, and PostgreSQL on a real server):
what ParamSweeper promises whatever the location, through the Store protocol of
:mod:`execo_engine.store.contract`. A new store passes this file."""

import os
import subprocess
import sys
from fractions import Fraction

import pytest

from execo_engine import provenance
from execo_engine.errors import PickleNotAllowedError, UnsupportedValueError
from execo_engine.sweep import HashableDict, ParamSweeper, sweep, sweep_stats


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


def test_done_and_inprogress_persist_a_skip_is_its_instances(location, sweeps):
    first = ParamSweeper(location(), sweeps)
    done, skipped, held = first.get_next_batch(3)
    first.done(done)
    first.skip(skipped)
    relaunch = ParamSweeper(location(), sweeps)  # another instance, in the same process
    assert relaunch.get_done() == [done]
    assert relaunch.get_inprogress() == [held]  # held by a live instance of this process
    assert relaunch.get_skipped() == []  # execo: "the skipped state is not written to disk"
    assert relaunch.get_remaining() == [skipped, *sweeps[3:]]
    assert first.get_skipped() == [skipped] and first.get_remaining() == sweeps[3:]
    assert relaunch.get_next() == skipped
    assert first.get_skipped() == [] and first.get_inprogress() == [skipped, held]
    relaunch.cancel(skipped)
    assert first.get_skipped() == [skipped]  # still skipped for the instance that skipped it
    assert first.get_next() == sweeps[3]


def test_done_outside_current_sweeps_kept_but_not_reported(location, sweeps):
    ParamSweeper(location(), sweeps).done_batch(sweeps[:2])
    smaller = ParamSweeper(location(), sweeps[1:])
    assert smaller.get_done() == [sweeps[1]]
    smaller.set_sweeps(sweeps)
    assert smaller.get_done() == sweeps[:2]


def test_saved_sweeps(location, sweeps):
    with pytest.raises(ValueError, match=r"none saved in .*with save_sweeps=True to save them"):
        ParamSweeper(location())
    ParamSweeper(location(), sweeps)  # not saved
    with pytest.raises(ValueError, match=r"or have the writer save them with save_sweeps=True"):
        ParamSweeper(location(), read_only=True)  # a view cannot save them
    ParamSweeper(location(), sweeps, save_sweeps=True)
    assert ParamSweeper(location()).get_sweeps() == sweeps


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


def test_release_claims_leaves_done_what_another_instance_finished(location, sweeps):
    mine, other = ParamSweeper(location(), sweeps), ParamSweeper(location(), sweeps)
    finished_elsewhere, unfinished = mine.get_next_batch(2)
    other.done(finished_elsewhere)  # done() on another instance's claim counts
    assert mine.release_claims() == [unfinished]
    assert mine.get_done() == [finished_elsewhere]
    assert [mine.get_next() for _ in sweeps[1:]] == sweeps[1:]  # never handed out again


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


def test_compaction_keeps_live_claims(location, sweeps, tmp_path):
    grid = sweep({"i": range(3000)})
    sweeper, other = ParamSweeper(location(), grid), ParamSweeper(location(), grid)
    held = sweeper.get_next_batch(5)
    for _ in range(40):  # 2000 claim records, in 40 operations (and fsyncs)
        sweeper.done_batch(sweeper.get_next_batch(50))
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


def test_take_batch_is_take_of_each_at_once(location, sweeps):
    sweeper, other = ParamSweeper(location(), sweeps), ParamSweeper(location(), sweeps)
    held, finished = other.get_next(), other.get_next()  # sweeps[0] and sweeps[1]
    other.done(finished)
    me = f"in progress (host {os.uname().nodename}, pid {os.getpid()})"
    wanted = [sweeps[4], held, finished, sweeps[4], HashableDict(a=9), sweeps[2]]
    positions = [4, 0, 1, 4, None, 5]  # the last hint is wrong: only slower
    reasons = sweeper.take_batch(wanted, positions)
    assert reasons == [None, me, "done", me, "not in the sweeps", None]
    assert other.get_inprogress() == [held, sweeps[2], sweeps[4]]
    assert sweeper.take_batch([sweeps[3], sweeps[5]]) == [None, None]
    assert sweeper.get_remaining() == [] and sweeper.take_batch([]) == []
    with pytest.raises(ValueError):  # one position per element
        sweeper.take_batch([sweeps[3]], [3, 4])


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


# -- execo semantics (issue 10): getters are sets, cancel of done, shared skips -------------


def test_getters_are_sets_in_sweeps_order(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps)
    sweeper.done_batch([sweeps[4], sweeps[1]])
    remaining, done = sweeper.get_remaining(), sweeper.get_done()
    assert list(done) == [sweeps[1], sweeps[4]]  # sweeps order, not the order of done()
    assert done == {sweeps[4], sweeps[1]} and {sweeps[1], sweeps[4]} == done
    assert done == [sweeps[1], sweeps[4]] and done != [sweeps[4], sweeps[1]]
    assert remaining | done == set(sweeps) == sweeper.get_sweeps()
    assert list(remaining | done) == [*remaining, *done]
    assert sweeper.get_sweeps() - done == remaining
    assert not remaining & done and remaining ^ done == set(sweeps)
    assert done <= sweeper.get_sweeps() and sweeps[4] in done and sweeps[0] not in done
    assert done[0] == sweeps[1] and done[-1] == sweeps[4] and done[:1] == [sweeps[1]]
    stats = sweeper.stats()
    assert sweep_stats(stats)["done"] == {"a": {1: 1, 3: 1}, "b": {"y": 1, "x": 1}}


def test_cancel_of_done_is_todo_again_for_this_instance_only(location, sweeps, tmp_path):
    sweeper, other = ParamSweeper(location(), sweeps), ParamSweeper(location(), sweeps)
    sweeper.done_batch(sweeps)
    for combination in sweeps:  # "recompute all"
        sweeper.cancel(combination)
    assert sweeper.get_remaining() == sweeps and sweeper.get_done() == []
    assert other.get_done() == sweeps  # others still see them done
    redone = []
    while (combination := sweeper.get_next()) is not None:
        assert other.get_done() == sweeps  # a claim of a done element changes nothing there
        sweeper.done(combination)
        redone.append(combination)
    assert redone == sweeps  # each handed out again exactly once
    assert sweeper.get_done() == sweeps and other.get_done() == sweeps
    assert ParamSweeper(location(), sweeps).get_done() == sweeps
    if "://" not in location():  # a directory: each done again wrote a new done record
        assert len((tmp_path / "sweep" / "done").read_text().splitlines()) == 2 * len(sweeps)


_SKIPPER = """
import sys
from execo_engine.sweep import ParamSweeper
sweeper = ParamSweeper(sys.argv[1], read_only=False)
sweeper.skip_batch(sweeper.get_next_batch(2))
print("skipped", flush=True)
sys.stdin.read()  # lives until the test closes its stdin
"""


def test_the_skips_of_another_process_are_todo_here_and_shown_with_their_holder(
    location, sweeps, poll
):
    url = location(lease="3")  # PostgreSQL judges other processes by their lease
    ParamSweeper(url, sweeps, save_sweeps=True)
    skipper = subprocess.Popen(
        [sys.executable, "-c", _SKIPPER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert skipper.stdout.readline() == b"skipped\n"
        sweeper = ParamSweeper(url, sweeps)  # a relaunch while the skipper still lives
        assert sweeper.get_skipped() == [] and sweeper.get_remaining() == sweeps
        skips = sweeper.get_skips()  # who skipped what, as execo-sweep status shows it
        assert [(c, owner[1], dead) for c, owner, _, dead in skips] == [
            (sweeps[0], skipper.pid, False),
            (sweeps[1], skipper.pid, False),
        ]
        assert sweeper.counts()["skipped"] == 0 and sweeper.counts()["remaining"] == 6
        assert sweeper.take(sweeps[0]) is None  # todo here
        assert sweeper.get_next_batch(9) == sweeps[1:]
        assert sweeper.get_skips() == []  # taken: their claims replaced the skips
    finally:
        skipper.communicate()
    sweeper.cancel_batch(sweeps[:2])
    assert sweeper.get_remaining() == sweeps[:2]


def test_skips_of_an_ended_process_go(location, sweeps, poll):
    url = location(lease="3")
    ParamSweeper(url, sweeps, save_sweeps=True)
    skipper = subprocess.Popen(
        [sys.executable, "-c", _SKIPPER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert skipper.stdout.readline() == b"skipped\n"
        sweeper = ParamSweeper(url, sweeps)
        assert len(sweeper.get_skips()) == 2
    finally:
        skipper.communicate()
    poll(lambda: sweeper.get_skips() == [], "the skips of an exited process to go")
    assert sweeper.get_remaining() == sweeps


def test_reset_forgets_this_instances_skips(location, sweeps):
    sweeper, other = ParamSweeper(location(), sweeps), ParamSweeper(location(), sweeps)
    sweeper.skip_batch(sweeps[:2])
    other.skip(sweeps[2])
    assert sweeper.get_skipped() == sweeps[:2] and other.get_skipped() == [sweeps[2]]
    assert sweeper.take(sweeps[0]) is None  # a skip of this very instance can be taken back
    sweeper.cancel(sweeps[0])
    assert sweeper.get_skipped() == [sweeps[1]] and sweeper.get_remaining()[0] == sweeps[0]
    sweeper.reset()
    assert sweeper.get_skipped() == [] and other.get_skipped() == [sweeps[2]]
    assert [c for c, _, _, _ in sweeper.get_skips()] == [sweeps[2]]
    assert sweeper.get_next_batch(3) == sweeps[:3]  # the other instance's skip is todo here
    sweeper.reset(reset_inprogress=True)  # every claim and skip record of every instance
    assert sweeper.get_skips() == [] and other.get_inprogress() == []
    assert other.get_skipped() == [sweeps[2]]  # as in execo: an instance keeps what it skipped


def test_status_counts_without_saved_sweeps(location, sweeps):
    writer = ParamSweeper(location(), sweeps)  # save_sweeps=False, execo's default
    writer.done_batch(sweeps[:2])
    writer.get_next()
    writer.skip(sweeps[5])
    view = ParamSweeper(location(), [], read_only=True)
    assert view.combinations() == 6 and view.get_sweeps() == []
    assert view.counts() == {  # without sweeps: from the records, every skip counted
        "total": 6,
        "done": 2,
        "inprogress": 1,
        "skipped": 1,
        "remaining": 2,
        "failed": 0,
    }
    assert writer.counts() == view.counts()  # the writer's own skip


# -- failed attempts (issue 14) ----------------------------------------------------------------


def test_fail_counts_an_attempt_keeps_the_error_and_gives_back(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps)  # no max_attempts: never failed for good
    first, second = sweeper.get_next_batch(2)
    assert sweeper.fail(first, "RuntimeError: disk full") is False
    assert sweeper.get_remaining() == [first, *sweeps[2:]]
    assert sweeper.get_inprogress() == [second]
    assert sweeper.get_next() == first  # back in sweeps order, as a cancel
    assert sweeper.fail(first, "OSError: again") is False
    failures = sweeper.get_failures()
    assert list(failures) == [first]
    assert (failures[first].attempts, failures[first].error) == (2, "OSError: again")
    assert failures[first].failed is False and sweeper.get_failed() == {}
    sweeper.cancel(second)  # a cancel counts nothing
    assert list(sweeper.get_failures()) == [first]


def test_max_attempts_makes_an_element_failed_for_every_instance(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps, save_sweeps=True, max_attempts=2)
    target = sweeper.get_next()
    assert sweeper.fail(target, "ValueError: 1") is False
    assert sweeper.get_next() == target
    assert sweeper.fail(target, "ValueError: 2") is True
    other = ParamSweeper(location(), sweeps)  # another instance, no limit of its own
    for view in (sweeper, other, ParamSweeper(location(), read_only=True)):
        failed = view.get_failed()
        assert list(failed) == [target]
        assert (failed[target].attempts, failed[target].error) == (2, "ValueError: 2")
    assert other.take(target) == "failed"
    assert other.get_next_batch(9) == sweeps[1:]  # never handed out again
    other.done_batch(sweeps[1:])
    assert other.get_next() is None
    sweeps_, remaining, skipped, inprogress, done = other.stats()  # still the 5-tuple
    assert (len(sweeps_), remaining, skipped, inprogress, done) == (6, [], [], [], sweeps[1:])
    assert sweep_stats(other.stats())["remaining"] == {}  # failed is not remaining
    assert other.counts()["failed"] == 1 and other.counts()["remaining"] == 0
    assert str(other).endswith("0 in progress, 0 remaining, 1 failed>")


def test_done_wins_over_failed_and_is_not_counted(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps, max_attempts=1)
    first, second = sweeper.get_next_batch(2)
    sweeper.done(second)
    assert sweeper.fail_batch([first, second], "boom") == [first]  # done: not counted
    assert list(sweeper.get_failures()) == [first]
    sweeper.done(first)  # done anyway (by hand, by another run): done it is
    assert sweeper.get_failed() == {} and sweeper.get_done() == [first, second]
    assert sweeper.get_failures()[first].attempts == 1  # the attempts stay visible


def test_reset_failed_makes_them_todo_with_no_attempts(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps, max_attempts=1)
    claimed = sweeper.get_next_batch(3)
    sweeper.fail_batch(claimed[:2], "boom")
    other = ParamSweeper(location(), sweeps)
    assert list(other.get_failed()) == claimed[:2]
    sweeper.reset()  # without reset_failed: failed stays failed
    assert list(other.get_failed()) == claimed[:2]
    other.reset(reset_failed=True)
    for view in (sweeper, other):
        assert view.get_failed() == {} and view.get_failures() == {}
        assert view.get_remaining() == [*claimed[:2], *sweeps[3:]]
        assert view.get_inprogress() == [claimed[2]]  # claims stay
    assert sweeper.get_next() == claimed[0]
    assert sweeper.fail(claimed[0], "again") is True  # counted from zero again
    assert sweeper.get_failed()[claimed[0]].attempts == 1


def test_error_text_is_bounded_to_its_first_lines(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps)
    lines = [f"line {i} " + "x" * 30 for i in range(50)]
    sweeper.fail(sweeper.get_next(), "\n".join(lines))
    assert sweeper.get_failures()[sweeps[0]].error == "\n".join(lines[:5]) + "..."
    sweeper.fail(sweeper.get_next(), "y" * 100_000)
    error = sweeper.get_failures()[sweeps[0]].error
    assert len(error) == 1000 and error.endswith("...")


def test_claim_fails_on_an_exception_and_cancels_on_an_interruption(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps)
    with pytest.raises(ZeroDivisionError):
        with sweeper.claim() as combination:
            line = sys._getframe().f_lineno + 1
            combination["a"] / 0
    failure = sweeper.get_failures()[sweeps[0]]
    assert failure.attempts == 1
    assert (
        failure.error == f"{os.path.relpath(__file__)}:{line}: ZeroDivisionError: division by zero"
    )
    with pytest.raises(KeyboardInterrupt):
        with sweeper.claim() as combination:
            assert combination == sweeps[0]
            raise KeyboardInterrupt
    with pytest.raises(SystemExit):  # as SIGTERM raises under Engine
        with sweeper.claim() as combination:
            raise SystemExit(143)
    assert sweeper.get_failures()[sweeps[0]].attempts == 1  # interruptions count nothing
    assert sweeper.get_remaining() == sweeps


def test_release_claims_with_an_error_fails_them(location, sweeps):
    sweeper = ParamSweeper(location(), sweeps, max_attempts=1)
    claimed = sweeper.get_next_batch(2)
    assert sweeper.release_claims(RuntimeError("the run stopped")) == claimed
    failed = sweeper.get_failed()
    assert list(failed) == claimed
    assert failed[claimed[0]].error == "RuntimeError: the run stopped"  # never raised: no line


def test_max_attempts_must_be_a_positive_whole_number(location, sweeps):
    for wrong in (0, -1, 1.5, "3"):
        with pytest.raises(ValueError, match=f"max_attempts={wrong!r}: give a whole number"):
            ParamSweeper(location(), sweeps, max_attempts=wrong)


def test_runs_and_the_results_they_recorded(location, sweeps):
    ParamSweeper(location(), sweeps).record_result(sweeps[5], {"x": 0})  # outside any run
    run = provenance.start_run(provenance.capture("engine"))
    try:
        first, second = ParamSweeper(location(), sweeps), ParamSweeper(location(), sweeps)
        first.done(first.get_next())
        second.record_result(sweeps[1], {"x": 1})
        second.fail(second.get_next(), "an error")
        ParamSweeper(location(), sweeps, read_only=True)  # a reader takes no part in the run
    finally:
        provenance.end_run()
    view = ParamSweeper(location(), [], read_only=True)
    [merged] = view.get_runs()
    assert (merged["id"], merged["kind"], merged["processes"], merged["ended"]) == (
        run.id,
        "engine",
        1,  # two instances, one process: one start record
        1,
    )
    assert (merged["done"], merged["failed"], merged["commit"]) == (1, 1, run.commit)
    results = view.get_results()
    assert [r.get("run") for r in results] == [None, run.id]
