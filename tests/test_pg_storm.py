"""Issue 26's storm on a real PostgreSQL server, once (``tests/pg_storm.py --runs 10 --busy 2``
runs it ten times on a loaded machine): worker processes claim, run and finish combinations
while they are SIGKILLed, paused, cut from the server, and the server restarts cleanly and
crashes."""

import pytest
from pg import Server
from pg_storm import CHAOS, storm

pytestmark = pytest.mark.slow


def test_storm_of_kills_pauses_terminations_and_restarts(tmp_path):
    if not Server().available:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    result = storm(keep=tmp_path / "storm")  # the logs stay in the test's directory
    # every kind of fault of the plan happened during the run, both restarts included (a fast
    # grid may complete before the last few kills of the plan)
    assert all(result.chaos[kind] > 0 for kind in CHAOS), result.chaos
    assert (result.chaos["fast"], result.chaos["immediate"]) == (1, 1), result.chaos
    print("worker failures (a worker may die of a fault; the promises below still hold):")
    print("\n".join(result.failures) or "none")
    assert result.duplicates == []  # nothing started while a worker that started it lived
    assert result.lost == []  # nothing acknowledged done was lost, done twice or redone
    assert result.completed, result.stuck  # the grid completed
    assert result.acknowledged <= result.combinations <= result.started
