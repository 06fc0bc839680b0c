"""Failed combinations in pytest sessions (pytester, real xdist workers): attempts counted once
per failing session, --execo-max-attempts, deselection and the summary of failed ones, the
execo-sweep status and reset of them."""

import json
import subprocess
import sys
from collections import Counter

import pytest

from execo_engine.sweep import ParamSweeper

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

# One test fails for one combination, another errors in setup for one: both count attempts.
GRID = """
import os, pytest

@pytest.fixture
def checked(n):
    if n == 2:
        raise RuntimeError("no device for n=2")

@pytest.mark.execo_sweep({{"size": [1, 2, 3], "algo": ["a", "b"]}})
def test_grid(size, algo):
    with open({runs!r}, "a") as f:
        f.write(f"grid {{size}}-{{algo}}\\n")
    assert not (size == 3 and algo == "b"), "too big"

@pytest.mark.execo_sweep({{"n": [1, 2]}})
def test_device(n, checked):
    with open({runs!r}, "a") as f:
        f.write(f"device {{n}}\\n")
"""


def _line_of(source, text):
    return next(n for n, line in enumerate(source.split("\n"), 1) if text in line)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "execo_engine", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_grid_run_again_until_its_failing_combinations_are_failed(pytester, xdist):
    runs = pytester.path / "runs.txt"
    source = GRID.format(runs=str(runs)).lstrip("\n")  # as makepyfile writes it
    pytester.makepyfile(test_failing=source)
    options = ["--execo-sweep-dir=results", "--execo-max-attempts=2", "-p", "no:randomly", *xdist]

    def deselected(count):  # the xdist controller collects nothing: workers deselect
        return {} if xdist else {"deselected": count}

    def session():
        before = Counter(runs.read_text().splitlines()) if runs.exists() else Counter()
        result = pytester.runpytest_subprocess(*options)
        return result, Counter(runs.read_text().splitlines()) - before

    first, ran = session()
    first.assert_outcomes(passed=6, failed=1, errors=1)
    assert ran == Counter([f"grid {s}-{a}" for s in (1, 2, 3) for a in "ab"] + ["device 1"])
    second, ran = session()  # only the failing ones, once more: their second attempt
    second.assert_outcomes(failed=1, errors=1, **deselected(6))
    assert ran == Counter(["grid 3-b"])  # the setup error never reaches the body
    third, ran = session()  # both failed for good: nothing runs
    assert third.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    third.assert_outcomes(**deselected(8))
    assert ran == Counter()
    if not xdist:
        assert any("6/8 combinations done, 2 failed in" in line for line in third.outlines)
    where = f"test_failing.py:{_line_of(source, 'too big')}"
    third.stdout.fnmatch_lines(
        [
            "*execo sweeps*",
            "*test_device*: 2 total, 1 done, 0 in progress, 0 remaining, 1 failed*",
            f"    failed after 2 attempt(s): {{'n': 2}}: setup: test_failing.py:"
            f"{_line_of(source, 'no device')}: RuntimeError: no device for n=2",
            "*test_grid*: 6 total, 5 done, 0 in progress, 0 remaining, 1 failed*",
            f"    failed after 2 attempt(s): {{'size': 3, 'algo': 'b'}}: {where}: "
            "AssertionError: too big",
        ]
    )

    [grid] = (pytester.path / "results").glob("*test_grid-*")
    failed = ParamSweeper(grid, read_only=True).get_failed()
    assert [(dict(c), f.attempts) for c, f in failed.items()] == [({"size": 3, "algo": "b"}, 2)]
    status = _cli("status", pytester.path / "results", "--failed")
    assert status.count(", 1 failed") == 2
    assert f"failed: {{'size': 3, 'algo': 'b'}} after 2 attempt(s): {where}" in status

    reset = _cli("reset", pytester.path / "results", "--failed")
    assert reset.count(": 1 failed combination(s) back to todo") == 2
    fourth, ran = session()  # brought back: they run again, attempts counted from zero
    fourth.assert_outcomes(failed=1, errors=1, **deselected(6))
    assert ran == Counter(["grid 3-b"])
    report = json.loads(_cli("status", pytester.path / "results", "--json"))
    assert [(e["failed"], e["remaining"]) for e in report["sweeps"]] == [(0, 1), (0, 1)]
    failures = ParamSweeper(grid, read_only=True).get_failures()
    assert [(dict(c), f.attempts) for c, f in failures.items()] == [({"size": 3, "algo": "b"}, 1)]


def test_without_a_limit_failing_combinations_run_every_session(pytester):
    pytester.makepyfile(test_failing=GRID.format(runs=str(pytester.path / "runs.txt")))
    for attempt in (1, 2, 3):
        result = pytester.runpytest_subprocess("--execo-sweep-dir=results")
        result.assert_outcomes(failed=1, errors=1, **({"passed": 6} if attempt == 1 else {}))
        assert "failed after" not in result.stdout.str()
    [grid] = (pytester.path / "results").glob("*test_grid-*")
    failures = ParamSweeper(grid, read_only=True).get_failures()
    assert [f.attempts for f in failures.values()] == [3]  # counted, never failed for good
    assert not any(f.failed for f in failures.values())


def test_the_ini_twin_and_the_state_hook_returning_fail(pytester):
    pytester.makeini("[pytest]\nexeco_max_attempts = 1\n")
    pytester.makeconftest("""
        def pytest_execo_state(item, combination, outcome):
            if outcome == "skipped":
                return "fail"  # a skip here means the device is missing: count it
    """)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.execo_sweep({"n": [1, 2]})
        def test_skipping(n):
            if n == 2:
                pytest.skip("no device")
    """)
    pytester.runpytest_subprocess("--execo-sweep-dir=results").assert_outcomes(passed=1, skipped=1)
    [directory] = (pytester.path / "results").iterdir()
    [(combination, failure)] = ParamSweeper(directory, read_only=True).get_failed().items()
    assert (combination, failure.attempts) == ({"n": 2}, 1)
    assert failure.error.startswith("test_the_ini_twin_and_the_state_hook_returning_fail.py:")
    assert failure.error.endswith(": Skipped: no device")
    again = pytester.runpytest_subprocess("--execo-sweep-dir=results")
    again.assert_outcomes(deselected=2)


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_max_attempts_is_a_usage_error(pytester, value):
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess(
        "--execo-sweep-dir=results", f"--execo-max-attempts={value}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--execo-max-attempts*{value}*a whole number >= 1*"])


def test_a_bad_ini_max_attempts_is_a_usage_error_naming_the_ini_value(pytester):
    pytester.makeini("[pytest]\nexeco_max_attempts = two\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--execo-sweep-dir=results")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini execo_max_attempts = two: give a whole number >= 1*"])


@pytest.mark.parametrize("name", ["execo_rerun_done", "execo_all_done_ok"])
def test_an_ini_flag_that_is_no_boolean_is_named(pytester, name):
    """pytest said "invalid truth value 'maybe'", naming no setting."""
    pytester.makeini(f"[pytest]\n{name} = maybe\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--execo-sweep-dir=results")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: ini {name}: invalid truth value 'maybe': give true or false"]
    )
