"""Reads stay quiet (issue 28): a script that prints a sweep's state (``print(sweeper)``, the
getters) while workers run or after they died prints no WARNING lines; the claims it finds
held by dead processes are given back with a DETAIL line (``-l detail``); an operation that
changes the state still warns; ``execo-sweep status`` shows the dead owner."""

import logging
import subprocess
import sys
import textwrap

import pytest

from execo_engine.log import DETAIL
from execo_engine.sweep import ParamSweeper, sweep

pytestmark = pytest.mark.slow  # real processes

GRID = {"i": list(range(6))}

# A worker that claims two combinations and dies without giving them back.
_DIES_HOLDING = """
import os, sys
from execo_engine.sweep import ParamSweeper, sweep
ParamSweeper(sys.argv[1], sweep({"i": list(range(6))})).get_next_batch(2)
os._exit(0)
"""

# A second script that only looks at the sweep (``detail``: it runs with ``-l detail``).
_LOOKS = """
import sys
from execo_engine import logger
from execo_engine.log import DETAIL
from execo_engine.sweep import ParamSweeper, sweep
if sys.argv[2] == "detail":
    logger.setLevel(DETAIL)
sweeper = ParamSweeper(sys.argv[1], sweep({"i": list(range(6))}))
print(sweeper)
print("%s/%s" % (sweeper.get_inprogress(), sweeper.get_sweeps()))
print(len(sweeper.get_remaining()), sweeper.stats()[3])
"""


def run(script, *args):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_script_printing_the_state_after_workers_died_prints_no_warning(location):
    url = location()
    run(_DIES_HOLDING, url)
    view = ParamSweeper(url, sweep(GRID), read_only=True)
    held = view.get_claims()
    assert len(held) == 2 and all(dead for _, _, _, dead in held)  # found dead, kept: read-only
    output = run(_LOOKS, url, "info")
    assert "WARNING" not in output and "reclaimed" not in output
    assert output.splitlines()[1:] == [
        "set()/{{'i': 0}, {'i': 1}, {'i': 2}, {'i': 3}, {'i': 4}, {'i': 5}}",  # given back
        "6 set()",
    ]
    run(_DIES_HOLDING, url)
    detailed = run(_LOOKS, url, "detail")
    [line] = [line for line in detailed.splitlines() if "reclaimed" in line]
    assert " DETAIL: " in line and "reclaimed 2 combination(s) held by" in line


def test_an_operation_that_changes_the_state_still_warns(location, caplog):
    url = location()
    sweeper = ParamSweeper(url, sweep(GRID))
    run(_DIES_HOLDING, url)
    with caplog.at_level(DETAIL, logger="execo_engine"):
        assert set(sweeper.get_next_batch(6)) == set(sweep(GRID))  # the dead worker's too
    [record] = [r for r in caplog.records if "reclaimed" in r.getMessage()]
    assert record.levelno == logging.WARNING


def test_status_shows_the_dead_owner(tmp_path):
    directory = tmp_path / "sweep"
    ParamSweeper(directory, sweep(GRID), save_sweeps=True)
    run(_DIES_HOLDING, str(directory))
    status = subprocess.run(
        [sys.executable, "-m", "execo_engine", "status", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("DEAD (reclaim with: execo-sweep reclaim)") == 2
    assert "WARNING" not in status.stdout + status.stderr
