"""pytest_execo through real pytest sessions (pytester) and real xdist workers."""

import subprocess
import sys
from collections import Counter

import pytest
from plugin_helpers import ALL, BIG_GRID_TEST, ids, runs_of, sweeper_of, write_grid

from execo_engine.sweep import HashableDict

pytest_plugins = ["pytester"]


def test_plain_parametrization_without_sweep_dir(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.execo_sweep({"x": [1, 2], "mode": {"fast": {"level": [0, 1]}, "slow": {}}})
        def test_sub(combination, x, level):
            assert combination["x"] == x
            assert level == combination.get("level")
            assert type(combination).__name__ == "HashableDict"

        @pytest.mark.execo_sweep([{"a": 1}, {"a": 2, "b": "z"}])
        def test_list(combination):
            assert combination["a"] in (1, 2)
    """)
    result = pytester.runpytest("-v", "--strict-markers")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(
        [
            "*test_sub[[]1-fast-0[]] PASSED*",
            "*test_sub[[]2-slow[]] PASSED*",
            "*test_list[[]2-z[]] PASSED*",
        ]
    )
    written = [p.name for p in pytester.path.iterdir() if p.name != ".pytest_cache"]
    assert written == ["test_plain_parametrization_without_sweep_dir.py"]


def test_bad_marker_argument_is_a_clear_collection_error(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.execo_sweep("size")
        def test_bad(combination):
            pass
    """)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*execo_sweep needs a sweep dict or a list of combinations*"])
    assert result.ret != 0


def test_outcome_mapping_and_resume(pytester):
    pytester.makepyfile(
        conftest="""
        import pytest

        @pytest.fixture
        def setup_error(combination):
            if combination["case"] == "setup-error":
                raise RuntimeError("setup")
            yield
            if combination["case"] == "teardown-error":
                raise RuntimeError("teardown")
    """
    )
    pytester.makepyfile(
        test_cases="""
        import pytest

        CASES = ["pass", "skip", "xfail", "fail", "setup-error", "teardown-error"]

        @pytest.mark.execo_sweep({"case": CASES})
        def test_case(case, setup_error):
            if case == "skip":
                pytest.skip("not now")
            if case == "xfail":
                pytest.xfail("known")
            assert case != "fail"
    """
    )
    first = pytester.runpytest("--execo-sweep-dir=results")
    # teardown-error: its call passed, then its teardown errored
    first.assert_outcomes(passed=2, skipped=1, xfailed=1, failed=1, errors=2)
    sweeper = sweeper_of(pytester, "test_case")
    assert [c["case"] for c in sweeper.get_done()] == ["pass"]
    assert [c["case"] for c in sweeper.get_remaining()] == [
        "skip",
        "xfail",
        "fail",
        "setup-error",
        "teardown-error",
    ]
    assert sweeper.get_inprogress() == []
    second = pytester.runpytest("--execo-sweep-dir=results", "-v")
    second.stdout.fnmatch_lines(["execo: 1/6 combinations done in *results, running 5"])
    second.assert_outcomes(passed=1, skipped=1, xfailed=1, failed=1, errors=2)
    assert "test_case[pass]" not in second.stdout.str()


def test_second_session_runs_exactly_what_is_not_done(pytester):
    runs = write_grid(pytester, body='assert not (size == 3 and os.path.exists("fail-3"))')
    (pytester.path / "fail-3").write_text("")
    pytester.runpytest("--execo-sweep-dir=results").assert_outcomes(passed=4, failed=2)
    assert ids(sweeper_of(pytester).get_remaining()) == ["3-a", "3-b"]
    (pytester.path / "fail-3").unlink()
    pytester.runpytest("--execo-sweep-dir=results").assert_outcomes(passed=2)
    pytester.runpytest("--execo-sweep-dir=results").assert_outcomes()
    assert runs_of(runs) == Counter({"1-a": 1, "1-b": 1, "2-a": 1, "2-b": 1, "3-a": 2, "3-b": 2})
    assert ids(sweeper_of(pytester).get_done()) == ALL


def test_rerun_done_option_and_ini(pytester):
    runs = write_grid(pytester)
    pytester.makeini("[pytest]\nexeco_sweep_dir = results\n")
    pytester.runpytest().assert_outcomes(passed=6)
    pytester.runpytest().assert_outcomes()
    pytester.runpytest("--execo-rerun-done").assert_outcomes(passed=6)
    assert set(runs_of(runs).values()) == {2}
    assert ids(sweeper_of(pytester).get_done()) == ALL


def test_stop_early_with_x_gives_claims_back(pytester):
    runs = write_grid(
        pytester,
        body='assert not (combination == {"size": 2, "algo": "a"} and os.path.exists("fail"))',
    )
    (pytester.path / "fail").write_text("")
    pytester.runpytest("--execo-sweep-dir=results", "-x").assert_outcomes(passed=2, failed=1)
    sweeper = sweeper_of(pytester)
    assert sweeper.get_inprogress() == [] and ids(sweeper.get_done()) == ["1-a", "1-b"]
    (pytester.path / "fail").unlink()
    pytester.runpytest("--execo-sweep-dir=results").assert_outcomes(passed=4)
    assert runs_of(runs) == Counter({"1-a": 1, "1-b": 1, "2-a": 2, "2-b": 1, "3-a": 1, "3-b": 1})


@pytest.mark.parametrize(
    ("args", "held"),
    [
        pytest.param((), "6", id="serial-all-6-at-once"),
        # 1-a and the 1-b the worker runs next
        pytest.param(("-n", "1"), "2", id="xdist-worker-with-its-next", marks=pytest.mark.slow),
    ],
)
def test_a_session_claims_the_items_it_runs_next_with_the_first(pytester, args, held):
    write_grid(
        pytester,
        body='if size == 1 and algo == "a":\n'
        '        [d] = [os.path.join("results", d) for d in os.listdir("results")]\n'
        "        view = ParamSweeper(d, read_only=True)\n"
        '        open("held", "w").write(str(len(view.get_inprogress())))',
    )
    run = pytester.runpytest_subprocess if args else pytester.runpytest  # xdist: a subprocess
    result = run("--execo-sweep-dir=results", *args)
    result.assert_outcomes(passed=6)
    assert (pytester.path / "held").read_text() == held  # claimed by one store operation
    sweeper = sweeper_of(pytester)
    assert sweeper.get_inprogress() == [] and ids(sweeper.get_done()) == ALL


@pytest.mark.slow
def test_keyboard_interrupt_in_a_test(pytester):
    runs = write_grid(
        pytester,
        body='if size == 2 and algo == "b" and os.path.exists("stop"):'
        "\n        raise KeyboardInterrupt",
    )
    (pytester.path / "stop").write_text("")
    interrupted = pytester.runpytest_subprocess("--execo-sweep-dir=results")
    assert interrupted.ret == pytest.ExitCode.INTERRUPTED
    sweeper = sweeper_of(pytester)
    assert sweeper.get_inprogress() == [] and ids(sweeper.get_done()) == ["1-a", "1-b", "2-a"]
    (pytester.path / "stop").unlink()
    pytester.runpytest_subprocess("--execo-sweep-dir=results").assert_outcomes(passed=3)
    assert runs_of(runs) == Counter({"1-a": 1, "1-b": 1, "2-a": 1, "2-b": 2, "3-a": 1, "3-b": 1})


@pytest.mark.slow
def test_xdist_worker_killed_outright(pytester):
    runs = write_grid(
        pytester,
        body='if size == 2 and algo == "b" and os.path.exists("kill"):\n'
        '        wait_until_others_done("2-b")\n'
        "        os._exit(1)",
    )
    (pytester.path / "kill").write_text("")
    crashed = pytester.runpytest_subprocess("--execo-sweep-dir=results", "-n", "2")
    crashed.stdout.fnmatch_lines(["*worker*crashed*"])
    (pytester.path / "kill").unlink()
    pytester.runpytest_subprocess("--execo-sweep-dir=results", "-n", "2")
    assert ids(sweeper_of(pytester).get_done()) == ALL
    assert sweeper_of(pytester).get_inprogress() == []
    assert runs_of(runs) == Counter({"1-a": 1, "1-b": 1, "2-a": 1, "2-b": 2, "3-a": 1, "3-b": 1})


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "2", "4"])
def test_xdist_matches_serial(pytester, workers):
    runs = pytester.path / "runs.txt"
    pytester.makepyfile(test_big=BIG_GRID_TEST.format(runs=str(runs)))
    args = ["--execo-sweep-dir=results", "-p", "no:randomly"]
    result = pytester.runpytest_subprocess(*args, "-n", workers)
    result.assert_outcomes(passed=54, skipped=14, failed=12)
    summary = [line for line in result.stdout.lines if "this session:" in line]
    assert len(summary) == 1
    assert summary[0].endswith(
        ": 80 total, 54 done, 0 in progress, 26 remaining, 0 failed | this "
        "session: 54 passed, 14 skipped, 12 failed"
    )
    sweeper = sweeper_of(pytester, "test_big")
    assert [(c["i"], c["j"]) for c in sweeper.get_done()] == [
        (i, j) for i in range(40) for j in "xy" if i % 7 != 3 and i % 5 != 1
    ]
    assert sweeper.get_inprogress() == []
    assert sum(runs_of(runs).values()) == 80
    again = pytester.runpytest_subprocess(*args, "-n", workers)
    again.assert_outcomes(passed=0, skipped=14, failed=12)
    assert sum(runs_of(runs).values()) == 106


@pytest.mark.slow
def test_two_concurrent_sessions_run_each_combination_once(pytester):
    runs = pytester.path / "runs.txt"
    pytester.makepyfile(
        test_big=BIG_GRID_TEST.format(runs=str(runs)).replace(
            'assert i % 7 != 3\n    if i % 5 == 1:\n        pytest.skip("later")',
            "import time; time.sleep(0.02)",
        )
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-n",
        "2",
        "--execo-sweep-dir=results",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    sessions = [
        subprocess.Popen(
            command, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [session.communicate(timeout=300)[0] for session in sessions]
    assert [session.returncode for session in sessions] == [0, 0], outputs
    counts = runs_of(runs)
    assert len(counts) == 80 and set(counts.values()) == {1}, counts
    assert len(sweeper_of(pytester, "test_big").get_done()) == 80


@pytest.mark.slow
def test_combination_held_by_another_live_session_is_skipped(pytester):
    write_grid(pytester, body="assert size != 1")
    pytester.runpytest("--execo-sweep-dir=results").assert_outcomes(passed=4, failed=2)
    held = HashableDict(size=2, algo="a")
    other = sweeper_of(pytester)  # a live session elsewhere holds 2-a
    assert other.take(held) == "done"
    held = HashableDict(size=1, algo="b")
    assert other.take(held) is None
    result = pytester.runpytest("--execo-sweep-dir=results", "-rs")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*execo: combination in progress (host *, pid *) by another session*"]
    )
    assert other.get_inprogress() == [held]


def test_help_markers_and_strict_markers(pytester):
    pytester.runpytest("--help").stdout.fnmatch_lines(
        [
            "*execo parameter sweeps*",
            "*--execo-sweep-dir=DIR*",
            "*--execo-rerun-done*",
            "*execo_sweep_dir*",
        ]
    )
    pytester.runpytest("--markers").stdout.fnmatch_lines(["@pytest.mark.execo_sweep(parameters)*"])


@pytest.mark.slow
def test_hooks_observe_and_remap_outcomes(pytester):
    pytester.makeconftest("""
        def pytest_execo_state(item, combination, outcome):
            if outcome == "failed" and combination["algo"] == "b":
                return "done"  # a known failure: do not retry it

        def pytest_execo_recorded(item, combination, outcome, state):
            with open("recorded.txt", "a") as f:
                f.write(f"{combination['size']}-{combination['algo']} {outcome} {state}\\n")
    """)
    write_grid(pytester, body="assert size != 3")
    pytester.runpytest("--execo-sweep-dir=results").assert_outcomes(passed=4, failed=2)
    recorded = sorted((pytester.path / "recorded.txt").read_text().splitlines())
    assert recorded == [
        "1-a passed done",
        "1-b passed done",
        "2-a passed done",
        "2-b passed done",
        "3-a failed fail",
        "3-b failed done",
    ]
    assert ids(sweeper_of(pytester).get_remaining()) == ["3-a"]


def test_swept_test_without_arguments_and_combination_fixture_misuse(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.execo_sweep({"x": [1, 2]})
        def test_no_args():
            pass

        def test_not_swept(combination):
            pass
    """)
    result = pytester.runpytest("--execo-sweep-dir=results", "-v")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_no_args[[]1[]] PASSED*",
            "*the `combination` fixture needs @pytest.mark.execo_sweep*",
        ]
    )


@pytest.mark.slow
def test_collection_line_counts_what_k_selected(pytester):
    write_grid(pytester)
    first = pytester.runpytest("--execo-sweep-dir=results", "-k", "a and not b")
    first.stdout.fnmatch_lines(["execo: 0/3 combinations done in *results, running 3"])
    second = pytester.runpytest("--execo-sweep-dir=results")
    second.stdout.fnmatch_lines(["execo: 3/6 combinations done in *results, running 3"])
    second.assert_outcomes(passed=3)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_a_bad_state_from_the_hook_stops_the_session_saying_so(pytester, workers):
    """Under xdist, the usage error it was made the worker crash, and the controller showed an
    INTERNALERROR without the message."""
    pytester.makeconftest("""
        def pytest_execo_state(item, combination, outcome):
            return "finished"
    """)
    write_grid(pytester)
    result = pytester.runpytest_subprocess("--execo-sweep-dir=results", *workers)
    result.stdout.fnmatch_lines(
        [
            "*Interrupted: pytest_execo_state returned 'finished' for *test_grid*: "
            "expected one of done, skip, cancel, fail*"
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    sweeper = sweeper_of(pytester)
    assert sweeper.get_inprogress() == [] and sweeper.get_done() == []
    assert len(sweeper.get_remaining()) == len(sweeper.get_sweeps())  # each given back


AHEAD_TEST = """
import os, pytest
from execo_engine.sweep import ParamSweeper

RUNS = {runs!r}

@pytest.mark.execo_sweep({{"i": list(range(60))}})
def test_ahead(i):
    with open(RUNS, "a") as f:
        f.write(f"start {{i}}\\n")
    [directory] = os.listdir("results")
    claims = ParamSweeper(os.path.join("results", directory), read_only=True).get_claims()
    started = {{line.split()[1] for line in open(RUNS) if line.startswith("start")}}
    mine = [c[0]["i"] for c in claims if c[1][1] == os.getpid()]
    ahead = [x for x in mine if str(x) not in started]  # claimed, not started yet by anyone
    with open(RUNS, "a") as f:
        f.write(f"ahead {{len(ahead)}}\\n")
"""


@pytest.mark.slow
@pytest.mark.parametrize("dist", ["load", "loadscope", "loadfile", "worksteal"])
def test_xdist_workers_claim_their_queue_ahead_unless_the_scheduler_moves_it(pytester, dist):
    """Under the modes whose scheduler never moves a queued item, a worker claims the items
    queued to it with the one it runs (more than ``nextitem`` ahead); under worksteal only
    ``nextitem`` (a stolen item would be found claimed). Either way every combination runs
    once, none is skipped."""
    runs = pytester.path / "runs.txt"
    pytester.makepyfile(test_ahead=AHEAD_TEST.format(runs=str(runs)))
    result = pytester.runpytest_subprocess(
        "--execo-sweep-dir=results", "-p", "no:randomly", "-n", "2", f"--dist={dist}"
    )
    result.assert_outcomes(passed=60)
    lines = [line.split() for line in runs.read_text().splitlines()]
    assert sorted(int(x) for kind, x in lines if kind == "start") == list(range(60))
    most_ahead = max(int(x) for kind, x in lines if kind == "ahead")
    if dist == "worksteal":
        assert most_ahead <= 1
    else:
        assert most_ahead >= 2
    sweeper = sweeper_of(pytester, "test_ahead")
    assert len(sweeper.get_done()) == 60 and sweeper.get_inprogress() == []
