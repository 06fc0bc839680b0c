"""The public API as a user's ``mypy --strict`` sees it."""

import os
import subprocess
import sys
import textwrap

import pytest

import execo_engine

pytestmark = pytest.mark.slow

USER_SCRIPT = """
from execo_engine import HashableDict, ParamSweeper, sweep
from execo_engine.ordered_set import OrderedSet

sweeper = ParamSweeper("results", sweep({"size": [1, 2], "algo": ["a"]}))
typed: ParamSweeper[HashableDict] = sweeper
combination: HashableDict | None = sweeper.get_next()
remaining: OrderedSet[HashableDict] = sweeper.get_remaining() | sweeper.get_done()
if combination is not None:
    sweeper.done(combination)
loaded = ParamSweeper[HashableDict]("results")
ints = ParamSweeper("results", [1, 2, 3])
number: int | None = ints.get_next()
"""


def test_a_users_strict_mypy_accepts_the_generic_param_sweeper(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install mypy)")
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(USER_SCRIPT))
    wrong = tmp_path / "wrong.py"
    wrong.write_text(USER_SCRIPT.replace("number: int | None", "number: str | None"))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script), str(wrong)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        # an editable install is invisible to mypy: point it at the package's directory
        env={**os.environ, "MYPYPATH": os.path.dirname(os.path.dirname(execo_engine.__file__))},
    )
    errors = [  # (errors inside execo_engine are the package's own checks' business)
        line
        for line in result.stdout.splitlines()
        if ": error:" in line and line.startswith(("user_script.py", "wrong.py"))
    ]
    assert len(errors) == 1 and errors[0].startswith("wrong.py:13:"), result.stdout
