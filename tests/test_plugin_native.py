"""pytest_execo next to the options and plugins people combine it with (issue 15): sessions that
run no test body, pytest-rerunfailures, several items per combination, pytest-forked, where
pytest is started from, and the smaller native touches."""

import shutil
import subprocess
import sys
from collections import Counter

import pytest
from plugin_helpers import ALL, ids, runs_of, sweeper_of, write_grid

from execo_engine.sweep import HashableDict, ParamSweeper

pytest_plugins = ["pytester"]

SWEEP = "--execo-sweep-dir=results"


def sweep_dirs(pytester):
    return sorted(p.name for p in (pytester.path / "results").iterdir())


def done_and_claims(pytester):
    """Every (done, in progress) of every sweep below results/ (if any)."""
    results = pytester.path / "results"
    sweepers = [ParamSweeper(p) for p in sorted(results.iterdir())] if results.exists() else []
    return [(s.get_done(), s.get_inprogress()) for s in sweepers]


# -- 1. sessions that run no test body record nothing --------------------------------------


@pytest.mark.parametrize(
    "option", ["--setup-plan", "--setup-only", "--collect-only", "--fixtures", "--setup-show"]
)
@pytest.mark.slow
def test_sessions_without_test_bodies_record_nothing(pytester, option):
    runs = write_grid(pytester)
    pytester.runpytest(SWEEP, option)
    ran = runs_of(runs)
    if option == "--setup-show":  # runs the bodies: records them
        assert sorted(ran) == ALL and ids(sweeper_of(pytester).get_done()) == ALL
        return
    assert ran == Counter()
    assert all(done == [] and claims == [] for done, claims in done_and_claims(pytester))
    pytester.runpytest(SWEEP).assert_outcomes(passed=6)  # nothing was deselected


# -- 2. pytest-rerunfailures ---------------------------------------------------------------

FLAKY = """
import os, pytest

@pytest.mark.execo_sweep({{"case": ["ok", "flaky", "broken"]}})
def test_case(case):
    with open({runs!r}, "a") as f:
        f.write(case + "\\n")
    if case == "flaky":
        marker = {marker!r}
        first = not os.path.exists(marker)
        open(marker, "a").close()
        assert not first, "fails on the first attempt only"
    assert case != "broken"
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_reruns(pytester, workers):
    pytest.importorskip("pytest_rerunfailures")
    runs = pytester.path / "runs.txt"
    pytester.makepyfile(
        test_flaky=FLAKY.format(runs=str(runs), marker=str(pytester.path / "flaky-ran"))
    )
    result = pytester.runpytest_subprocess(SWEEP, "--reruns", "2", "-p", "no:randomly", *workers)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "by another session" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["rerun"]) == (2, 1, 3)
    assert runs_of(runs) == Counter({"ok": 1, "flaky": 2, "broken": 3})
    sweeper = sweeper_of(pytester, "test_case")
    assert [c["case"] for c in sweeper.get_done()] == ["ok", "flaky"]
    assert [c["case"] for c in sweeper.get_remaining()] == ["broken"]
    assert sweeper.get_inprogress() == []
    summary = [line for line in result.stdout.lines if "this session:" in line]
    assert summary == [
        summary[0].split(":")[0] + ": 3 total, 2 done, 0 in progress, 1 remaining, 0 failed | this "
        "session: 2 passed, 0 skipped, 1 failed"
    ]


# -- 3. several items per combination ------------------------------------------------------

EXTRA_ITEMS = """
import os, pytest

def log(*parts):
    with open({runs!r}, "a") as f:
        f.write("/".join(map(str, parts)) + "\\n")

@pytest.mark.parametrize("mode", ["hot", "cold"])
@pytest.mark.execo_sweep({{"x": [1, 2]}})
def test_direct(x, mode):
    log("direct", x, mode)
    assert not (x == 2 and mode == "cold" and os.path.exists("fail"))

@pytest.fixture
def engine(request):
    return request.param

@pytest.mark.parametrize("engine", ["e1", "e2"], indirect=True)
@pytest.mark.execo_sweep({{"x": [1, 2]}})
def test_indirect(x, engine):
    log("indirect", x, engine)

@pytest.mark.parametrize("flavor", ["sweet", "salty"])
class TestClass:
    @pytest.mark.execo_sweep({{"x": [1, 2]}})
    def test_method(self, x, flavor):
        log("class", x, flavor)
"""


@pytest.mark.slow
def test_each_item_of_a_combination_is_its_own_unit_of_work(pytester):
    runs = pytester.path / "runs.txt"
    pytester.makepyfile(test_extra=EXTRA_ITEMS.format(runs=str(runs)))
    (pytester.path / "fail").write_text("")
    first = pytester.runpytest(SWEEP, "-p", "no:randomly", "-v")
    first.assert_outcomes(passed=11, failed=1)
    first.stdout.fnmatch_lines(
        ["execo: 0/12 items (6 combinations, several items each) done in *results, running 12"]
    )
    assert "by another session" not in first.stdout.str()
    assert sorted(runs_of(runs)) == sorted(
        [f"direct/{x}/{m}" for x in (1, 2) for m in ("hot", "cold")]
        + [f"indirect/{x}/{e}" for x in (1, 2) for e in ("e1", "e2")]
        + [f"class/{x}/{f}" for x in (1, 2) for f in ("sweet", "salty")]
    )
    assert len(sweep_dirs(pytester)) == 6  # one sweep per test and extra parametrization
    (pytester.path / "fail").unlink()
    second = pytester.runpytest(SWEEP, "-p", "no:randomly", "-v")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(
        [
            "execo: 11/12 items (6 combinations, several items each) done in *results, running 1",
            "*test_direct[[]2-cold[]] PASSED*",
        ]
    )
    assert pytester.runpytest(SWEEP).ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert sum(runs_of(runs).values()) == 13


@pytest.mark.slow
def test_pytest_repeat_count(pytester):
    pytest.importorskip("pytest_repeat")
    runs = write_grid(pytester)
    pytester.runpytest(SWEEP, "--count", "2").assert_outcomes(passed=12)
    assert runs_of(runs) == Counter(dict.fromkeys(ALL, 2))
    pytester.runpytest(SWEEP, "--count", "2").assert_outcomes()


@pytest.mark.slow
def test_anyio_two_backends(pytester):
    pytest.importorskip("anyio")
    runs = pytester.path / "runs.txt"
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(params=[
            pytest.param(("asyncio", {}), id="asyncio"),
            pytest.param(("asyncio", {"debug": True}), id="asyncio-debug"),
        ])
        def anyio_backend(request):
            return request.param
    """)
    pytester.makepyfile(
        test_async=f"""
        import pytest

        @pytest.mark.anyio
        @pytest.mark.execo_sweep({{"x": [1, 2, 3]}})
        async def test_async(x, anyio_backend):
            with open({str(runs)!r}, "a") as f:
                f.write(f"{{x}}-{{anyio_backend[1].get('debug', False)}}\\n")
    """
    )
    pytester.runpytest(SWEEP).assert_outcomes(passed=6)
    assert set(runs_of(runs).values()) == {1} and len(runs_of(runs)) == 6
    pytester.runpytest(SWEEP).assert_outcomes()


# -- 4. pytest-forked ----------------------------------------------------------------------


@pytest.mark.slow
def test_forked(pytester):
    pytest.importorskip("pytest_forked")
    pytester.makepyfile(test_probe="def test_probe():\n    pass\n")
    if pytester.runpytest_subprocess("--forked", "test_probe.py").ret != 0:
        pytest.skip(f"pytest-forked fails a passing test on pytest {pytest.__version__}")
    (pytester.path / "test_probe.py").unlink()
    runs = write_grid(pytester, body="assert size != 3")
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(autouse=True)
        def record(execo_record, combination):
            yield
            execo_record(double=2 * combination["size"])
    """)
    first = pytester.runpytest_subprocess(SWEEP, "--forked")
    first.assert_outcomes(passed=4, failed=2)
    sweeper = sweeper_of(pytester)
    assert ids(sweeper.get_done()) == ["1-a", "1-b", "2-a", "2-b"]
    assert sweeper.get_inprogress() == []
    results = {(r["combination"]["size"], r["combination"]["algo"]) for r in sweeper.get_results()}
    assert len(results) == 6
    assert {r["values"]["double"] for r in sweeper.get_results()} == {2, 4, 6}
    pytester.runpytest_subprocess(SWEEP, "--forked").assert_outcomes(failed=2)
    assert runs_of(runs) == Counter({"1-a": 1, "1-b": 1, "2-a": 1, "2-b": 1, "3-a": 2, "3-b": 2})


# -- 5. the identity of a sweep does not depend on where pytest is started ---------------------


def make_project(root):
    """A checkout (a git working tree, no ini file) with a test in ``pkg/tests``: run from
    ``pkg/tests``, pytest's rootdir is ``pkg/tests``, run from the top, the top."""
    (root / "pkg" / "tests").mkdir(parents=True)
    (root / ".git").mkdir()
    runs = root / "runs.txt"
    (root / "pkg" / "tests" / "test_where.py").write_text(
        "import pytest\n\n"
        '@pytest.mark.execo_sweep({"x": [1, 2, 3]})\n'
        "def test_where(x):\n"
        f"    open({str(runs)!r}, 'a').write(f'{{x}}\\n')\n"
    )
    return runs


def run_in(directory, *args):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_sweep_identity_is_the_same_from_any_directory_and_checkout(pytester, tmp_path):
    project = tmp_path / "checkout-a"
    runs = make_project(project)
    results = tmp_path / "results"
    first = run_in(project, f"--execo-sweep-dir={results}", "-k", "1 or 2")
    assert first.returncode == 0, first.stdout
    # from inside the tests directory (rootdir changes), then from a copy at another path
    from_below = run_in(project / "pkg" / "tests", f"--execo-sweep-dir={results}")
    assert "execo: 2/3 combinations done" in from_below.stdout, from_below.stdout
    shutil.copytree(project, tmp_path / "checkout-b")
    from_copy = run_in(tmp_path / "checkout-b", f"--execo-sweep-dir={results}")
    assert from_copy.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, from_copy.stdout
    assert sorted(runs.read_text().split()) == ["1", "2", "3"]
    [directory] = results.iterdir()  # one sweep, whichever directory pytest ran from
    assert directory.name.startswith("test_where-test_where-")


@pytest.mark.slow
def test_directories_named_by_older_versions_are_still_read(pytester, tmp_path):
    """Older versions named the directory after the rootdir-relative node id: from
    ``pkg/tests`` (no ini file) that is ``test_where.py::test_where``."""
    from pytest_execo.naming import sweep_subdir_name

    project = tmp_path / "checkout"
    runs = make_project(project)
    results = tmp_path / "results"
    legacy = ParamSweeper(
        results / sweep_subdir_name("test_where.py::test_where"),
        [HashableDict(x=x) for x in (1, 2, 3)],
        save_sweeps=True,
    )
    legacy.done(HashableDict(x=1))
    outcome = run_in(project / "pkg" / "tests", f"--execo-sweep-dir={results}")
    assert "execo: 1/3 combinations done" in outcome.stdout, outcome.stdout
    assert sorted(runs.read_text().split()) == ["2", "3"]
    assert [c["x"] for c in legacy.get_done()] == [1, 2, 3]
    assert len(list(results.iterdir())) == 1


# -- 6. smaller native touches -----------------------------------------------------------------


@pytest.mark.slow
def test_ids_are_usable_in_k_and_distinct_for_1_and_string_1(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.execo_sweep({"level": [1, "1", 1.5, None, "fast"], "n": [10]})
        def test_levels(level, n):
            pass
    """)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "*test_levels[[]1-10[]]",
            "*test_levels[[]str:1-10[]]",
            "*test_levels[[]1.5-10[]]",
            "*test_levels[[]None-10[]]",
            "*test_levels[[]fast-10[]]",
        ]
    )
    pytester.runpytest("-k", "fast-10").assert_outcomes(passed=1)
    pytester.runpytest("-k", "str:1-10").assert_outcomes(passed=1)
    pytester.runpytest("-k", "test_levels[1-10]").assert_outcomes(passed=1)


SET_LEVELS = """
import pytest

class Opaque:
    pass

@pytest.mark.execo_sweep(
    {"tags": [frozenset({"alpha", "beta", "gamma", "delta"}), frozenset({"x", "y", "z", "w"})],
     "shape": [({"p", "q", "r"},), (Opaque(),)]}
)
def test_sets(tags, shape):
    pass
"""


@pytest.mark.slow
def test_ids_are_the_same_in_every_process(pytester, monkeypatch):
    """Set members iterate in an order that follows string hashes, which differ between
    processes, and an object's default repr holds its address: pytest-xdist's workers
    collected different ids and the session stopped."""
    pytester.makepyfile(test_sets=SET_LEVELS)
    first = "frozenset({'alpha', 'beta', 'delta', 'gamma'})-({'p', 'q', 'r'},)"
    last = "frozenset({'w', 'x', 'y', 'z'})-(<test_sets.Opaque object>,)"
    for hash_seed in ("1", "2"):
        monkeypatch.setenv("PYTHONHASHSEED", hash_seed)
        collected = pytester.runpytest_subprocess("--collect-only", "-q").stdout.lines
        assert f"test_sets.py::test_sets[{first}]" in collected, hash_seed
        assert f"test_sets.py::test_sets[{last}]" in collected, hash_seed
    monkeypatch.delenv("PYTHONHASHSEED")  # each worker hashes strings its own way
    result = pytester.runpytest_subprocess("-n", "2")
    assert "Different tests were collected" not in result.stdout.str()
    result.assert_outcomes(passed=4)
    pytester.makepyfile(  # what a sweep dir can keep: frozensets, not sets nor objects
        test_sets=SET_LEVELS.replace('[({"p", "q", "r"},), (Opaque(),)]', "[1]")
    )
    result = pytester.runpytest_subprocess("--execo-sweep-dir=sweeps", "-n", "2")
    assert "Different tests were collected" not in result.stdout.str()
    result.assert_outcomes(passed=2)


def test_no_execo_line_without_swept_tests(pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest(SWEEP)
    result.assert_outcomes(passed=1)
    assert "execo: 0/0" not in result.stdout.str()
    assert "combinations done in" not in result.stdout.str()


@pytest.mark.slow
def test_collection_line_under_xdist(pytester):
    write_grid(pytester)
    pytester.runpytest(SWEEP, "-k", "1").assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess(SWEEP, "-n", "2")
    result.assert_outcomes(passed=4)
    # at collection, as a serial session prints it: before the tests' progress
    result.stdout.fnmatch_lines(["execo: 2/6 combinations done in *results, running 4", "*100%*"])
    assert "execo: 2/6" not in result.stdout.str().split("[100%]")[1]  # not in the summary again


def test_collection_line_counts_what_lf_deselects(pytester):
    write_grid(pytester, body="assert size != 2")
    pytester.runpytest(SWEEP).assert_outcomes(passed=4, failed=2)
    (pytester.path / "results").rename(pytester.path / "first")
    result = pytester.runpytest(SWEEP, "--lf")
    result.assert_outcomes(failed=2)
    # pytest 7 deselects --lf items after this plugin counted, pytest 8+ before collecting them
    result.stdout.fnmatch_lines(["execo: 0/* combinations done in *results, running 2"])


def test_skip_reason_points_at_the_test(pytester):
    write_grid(pytester)
    pytester.runpytest(SWEEP, "-k", "1").assert_outcomes(passed=2)
    sweeper = sweeper_of(pytester)
    assert sweeper.take(HashableDict(size=2, algo="a")) is None  # held by a live "other session"
    result = pytester.runpytest(SWEEP, "-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] test_grid.py:*: execo: combination in progress (host *"]
    )
    assert "plugin.py" not in result.stdout.str() and "recorder.py" not in result.stdout.str()


def test_help_says_deselect_and_postgresql(pytester):
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())
    assert "deselect the combinations already done" in text
    assert "postgresql://" in text
    assert "--execo-all-done-ok" in text


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_all_done_ok_exits_0(pytester, workers):
    write_grid(pytester)
    pytester.runpytest(SWEEP).assert_outcomes(passed=6)
    assert pytester.runpytest_subprocess(SWEEP, *workers).ret == pytest.ExitCode.NO_TESTS_COLLECTED
    done_ok = pytester.runpytest_subprocess(SWEEP, "--execo-all-done-ok", *workers)
    assert done_ok.ret == pytest.ExitCode.OK
    pytester.makeini("[pytest]\nexeco_all_done_ok = true\n")
    assert pytester.runpytest_subprocess(SWEEP, *workers).ret == pytest.ExitCode.OK
    # nothing collected at all is still "no tests ran"
    assert pytester.runpytest_subprocess(SWEEP, "-k", "nothing").ret == 5


# -- issue 10, point 9: --execo-rerun-done records results --------------------------------------


def test_rerun_done_records_results(pytester):
    write_grid(pytester, body="execo_record(size2=size * size)").write_text("")
    test = pytester.path / "test_grid.py"
    test.write_text(
        test.read_text().replace(
            "(combination, size, algo)", "(combination, size, algo, execo_record)"
        )
    )
    pytester.runpytest(SWEEP).assert_outcomes(passed=6)
    pytester.runpytest(SWEEP, "--execo-rerun-done").assert_outcomes(passed=6)
    results = sweeper_of(pytester).get_results()
    assert len(results) == 12
    assert Counter((r["combination"]["size"], r["values"]["size2"]) for r in results) == Counter(
        {(1, 1): 4, (2, 4): 4, (3, 9): 4}
    )
    assert ids(sweeper_of(pytester).get_done()) == ALL
