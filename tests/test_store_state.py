"""The state machine of record-log stores, without any file: records in, states out."""

from execo_engine.codec import Codec
from execo_engine.store.contract import State
from execo_engine.store.log.records import (
    CLAIM,
    FAIL,
    RELEASE,
    RESET_FAILURES,
    SKIP,
    Changes,
    DonePiece,
)
from execo_engine.store.log.state import SweepState
from execo_engine.store.owner import Instance, Owner

ME, OTHER = Owner("here", 1, "a"), Owner("there", 2, "b")
MINE = Instance(ME, 1)  #: the instance the replaying SweepState stands for
SWEEPS = ["a", "b", "c", "d", "e"]


def _valid():
    """The records given here are records of the done stream (decoding checks them)."""


def changes(done=(), claims=(), done_restarted=False, claims_restarted=False):
    return Changes(
        iter([DonePiece([list(record) for record in done], _valid)] if done else []),
        done_restarted,
        list(claims),
        claims_restarted,
        True,
    )


def state(*applied):
    machine = SweepState(list(SWEEPS), Codec().from_plain, MINE)
    for change in applied:
        machine.apply(change, lambda: ME)
    return machine


def states(machine):
    return {s.name: machine.in_state(s) for s in State if machine.in_state(s)}


def test_records_replay_into_states():
    machine = state(
        changes(
            done=[(0, "a"), (9, "c")],  # a wrong hint is looked up
            claims=[
                (CLAIM, OTHER, "b", 1, 10.0, None),
                (CLAIM, OTHER, "d", None, 11.0, None),
                (SKIP, OTHER, "e", 4, 12.0, None),
            ],
        )
    )
    assert states(machine) == {"DONE": ["a", "c"], "CLAIMED": ["b", "d"], "SKIPPED": ["e"]}
    assert [(h.element, h.state.name) for h in machine.holders([OTHER])] == [
        ("b", "CLAIMED"),
        ("d", "CLAIMED"),
        ("e", "SKIPPED"),
    ]
    assert all(h.dead for h in machine.holders([OTHER]))


def test_done_wins_over_claims_and_releases_give_back():
    machine = state(
        changes(claims=[(CLAIM, OTHER, "a", 0, 1.0, None), (CLAIM, OTHER, "b", 1, 1.0, None)])
    )
    machine.apply(
        changes(done=[(0, "a")], claims=[(RELEASE, None, "b", None, None, None)]), lambda: ME
    )
    assert states(machine) == {"DONE": ["a"], "TODO": ["b", "c", "d", "e"]}
    machine.apply(
        changes(claims=[(CLAIM, OTHER, "a", 0, 2.0, None)]), lambda: ME
    )  # claim of a done one
    assert machine.in_state(State.DONE) == ["a"] and machine.holders([]) == []


def test_a_hold_replaces_the_previous_one_and_a_release_ends_it():
    machine = state(
        changes(claims=[(SKIP, OTHER, "c", 2, 1.0, None), (CLAIM, ME, "c", 2, 2.0, None)])
    )
    assert machine.in_state(State.CLAIMED) == ["c"] and machine.in_state(State.SKIPPED) == []
    machine.apply(changes(claims=[(SKIP, ME, "c", 2, 3.0, None)]), lambda: ME)
    assert machine.in_state(State.SKIPPED) == ["c"] and machine.in_state(State.CLAIMED) == []
    machine.apply(changes(claims=[(RELEASE, None, "c", None, None, None)]), lambda: ME)
    assert machine.in_state(State.TODO) == SWEEPS and machine.holders([]) == []


def test_restarted_streams_and_compaction_keep_what_is_still_there():
    machine = state(changes(done=[(0, "a")], claims=[(CLAIM, ME, "b", 1, 1.0, None)]))
    machine.claim([(2, "c")], ME, 2.0)
    assert list(machine.mine) == ["c"]  # "b": a claim of this process, not of this instance
    machine.apply(
        changes(claims=[(CLAIM, ME, "c", 2, 2.0, None)], claims_restarted=True), lambda: ME
    )
    assert machine.in_state(State.CLAIMED) == ["c"] and list(machine.mine) == ["c"]
    machine.apply(changes(done_restarted=True), lambda: ME)  # done file deleted
    assert machine.in_state(State.DONE) == [] and machine.in_state(State.CLAIMED) == ["c"]


def test_undone_positions_stay_todo_here_until_done_again():
    machine = state(changes(done=[(0, "a"), (1, "b")]))
    machine.undo_done(0)
    assert machine.in_state(State.TODO)[:1] == ["a"]
    machine.apply(changes(done=[(0, "a"), (1, "b")], done_restarted=True), lambda: ME)  # re-read
    assert machine.in_state(State.DONE) == ["b"]
    assert next(machine.todo_positions()) == 0
    machine.claim([(0, "a")], ME, 1.0)
    machine.done([(0, "a")])
    assert machine.in_state(State.DONE) == ["a", "b"] and machine.holders([]) == []


def test_a_done_record_ends_the_hold_it_finishes_without_a_release():
    machine = state(
        changes(claims=[(CLAIM, OTHER, "a", 0, 1.0, None), (SKIP, OTHER, "b", 1, 1.0, None)])
    )
    machine.apply(changes(done=[(0, "a"), (1, "b")]), lambda: ME)  # no release record
    assert states(machine) == {"DONE": ["a", "b"], "TODO": ["c", "d", "e"]}
    assert machine.holders([]) == [] and machine.owners() == set()
    # Here "c" was done then given back (execo's cancel): another's claim and done of it end
    # that claim, and "c" stays todo here.
    machine.apply(changes(done=[(2, "c")]), lambda: ME)
    machine.undo_done(2)
    machine.apply(changes(claims=[(CLAIM, OTHER, "c", 2, 2.0, None)]), lambda: ME)
    machine.apply(changes(done=[(2, "c")]), lambda: ME)
    assert machine.holders([]) == [] and "c" in machine.in_state(State.TODO)


def test_a_claim_lost_before_its_done_is_reported_when_the_claims_are_read():
    machine = state()
    machine.claim([(0, "a"), (1, "b")], ME, 1.0)
    machine.done([(0, "a"), (1, "b")])  # written while only the done stream was read
    assert machine.apply(changes(), lambda: ME, claims_read=False) == []
    reclaimed = changes(
        claims=[(RELEASE, None, "a", None, None, None), (CLAIM, OTHER, "a", 0, 2.0, None)]
    )
    assert machine.apply(reclaimed, lambda: ME) == ["a"]  # given back while this one ran it
    assert machine.in_state(State.DONE) == ["a", "b"] and machine.finished == {}
    assert machine.apply(changes(claims=[(RELEASE, None, "a", None, None, None)]), lambda: ME) == []


def test_todo_positions_follow_sweeps_order_and_come_back():
    machine = state(changes(done=[(1, "b")]))
    positions = machine.todo_positions()
    assert [next(positions), next(positions)] == [0, 2]
    machine.claim([(0, "a"), (2, "c")], ME, 1.0)
    machine.release("a")
    assert list(machine.todo_positions()) == [0, 3, 4]  # a given back comes first again


def test_failed_wins_over_holds_and_a_reset_of_failures_brings_them_back():
    # b failed once (todo again), c failed for good; then a claim of c written before its
    # writer saw the failure: c stays failed, the claim is kept for when failures are reset.
    machine = state(
        changes(
            done=[(FAIL, "b", 1, 1, False, 2.0, "E1"), (FAIL, "c", 2, 2, True, 3.0, "E2")],
            claims=[(CLAIM, OTHER, "b", 1, 1.0, None), (RELEASE, None, "b", None, None, None)],
        )
    )
    assert states(machine) == {"TODO": ["a", "b", "d", "e"], "FAILED": ["c"]}
    machine.apply(changes(claims=[(CLAIM, OTHER, "c", 2, 4.0, None)]), lambda: ME)
    assert states(machine)["FAILED"] == ["c"]
    assert [(f.element, f.attempts, f.error, f.failed) for f in machine.failures_in_order()] == [
        ("b", 1, "E1", False),
        ("c", 2, "E2", True),
    ]
    machine.apply(changes(done=[(1, "b")]), lambda: ME)  # done wins, the attempts stay
    assert states(machine)["DONE"] == ["b"] and len(machine.failures_in_order()) == 2
    machine.apply(changes(done=[(RESET_FAILURES,), (FAIL, "d", 3, 1, False, 5.0, "")]), lambda: ME)
    assert [f.element for f in machine.failures_in_order()] == ["d"]  # after the reset only
    assert states(machine) == {"TODO": ["a", "d", "e"], "DONE": ["b"], "CLAIMED": ["c"]}
    assert list(machine.todo_positions()) == [0, 3, 4]
    machine.apply(changes(done_restarted=True), lambda: ME)  # done deleted: everything goes
    assert machine.failures_in_order() == [] and states(machine)["CLAIMED"] == ["c"]


def test_failures_of_elements_out_of_the_sweeps_come_last():
    machine = state(
        changes(done=[(FAIL, "z", None, 1, True, 1.0, ""), (FAIL, "d", 9, 1, True, 2.0, "")])
    )
    assert [f.element for f in machine.failures_in_order()] == ["d", "z"]
    assert states(machine)["FAILED"] == ["d"]  # a wrong hint is looked up


# -- skips belong to the instance that made them (issue 28) ---------------------------------


def test_a_skip_is_skipped_for_its_instance_and_todo_for_every_other():
    machine = state(
        changes(
            claims=[
                (SKIP, ME, "a", 0, 1.0, 1),  # this instance (a forked process of it wrote it)
                (SKIP, ME, "b", 1, 1.0, 2),  # another instance of the same process
                (SKIP, OTHER, "c", 2, 1.0, 1),  # an instance of another process
                (SKIP, OTHER, "d", 3, 1.0, None),  # format 3: the process's, for everyone
            ]
        )
    )
    assert states(machine) == {"TODO": ["b", "c", "e"], "SKIPPED": ["a", "d"]}
    assert list(machine.todo_positions()) == [1, 2, 4]
    assert [(h.element, h.state.name) for h in machine.holders([])] == [
        ("a", "SKIPPED"),
        ("b", "SKIPPED"),  # every skip shows with its holder (execo-sweep status)
        ("c", "SKIPPED"),
        ("d", "SKIPPED"),
    ]
    assert machine.is_mine(machine.hold_of("a"), OTHER)  # whichever process of the instance
    assert not machine.is_mine(machine.hold_of("b"), ME)


def test_what_this_process_skipped_stays_skipped_here_when_another_instance_took_it():
    machine = state()
    machine.skip([(0, "a")], 1.0)
    assert machine.in_state(State.SKIPPED) == ["a"]
    # another instance takes it (todo there), then skips it too: its skip replaces the record
    machine.apply(changes(claims=[(CLAIM, OTHER, "a", 0, 2.0, None)]), lambda: ME)
    assert machine.in_state(State.CLAIMED) == ["a"]
    machine.apply(changes(claims=[(SKIP, OTHER, "a", 0, 3.0, 7)]), lambda: ME)
    assert machine.in_state(State.SKIPPED) == ["a"]  # never handed back and forth
    machine.apply(changes(claims=[(RELEASE, None, "a", None, None, None)]), lambda: ME)
    assert machine.in_state(State.SKIPPED) == ["a"]
    machine.unskip(["a"])  # this instance took it back, cancelled it, or reset
    assert machine.in_state(State.TODO) == SWEEPS
