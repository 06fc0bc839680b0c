"""Provenance: every run records which code produced its results (a real git repository, real
pytest sessions and Engine scripts, both stores), and a run resuming a sweep that other code
worked on says so."""

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from execo_engine import Engine, engine, provenance
from execo_engine.results import load_results, load_runs
from execo_engine.sweep import ParamSweeper, sweep

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

SWEPT_TEST = """
import pytest

@pytest.mark.execo_sweep({"size": [1, 2, 3], "algo": ["a", "b"]})
def test_grid(size, algo, execo_record):
    execo_record(latency=size / 10)
    assert (size, algo) != (STOP, "b")

STOP = 2
"""


def git(repository, *arguments):
    return subprocess.run(
        ["git", "-C", str(repository), *arguments],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
        | {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"},
    ).stdout.strip()


def commit(repository, message):
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", message)
    return git(repository, "rev-parse", "HEAD")


@pytest.fixture
def repository(tmp_path):
    path = tmp_path / "project"
    path.mkdir()
    git(path, "init", "-q")
    return path


def test_run_ids_are_never_read_as_numbers():
    """An id of 12 hex digits was digits only, or digits around one "e" (``358561736e41``), about
    once in 140: pandas.read_csv and spreadsheets read those as numbers (an export read back
    failed on one). 20,000 ids of the old kind hold about 140 such."""
    ids = [provenance.new_run_id() for _ in range(20_000)]
    assert [run_id for run_id in ids if _is_number(run_id)] == []
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"r[0-9a-f]{11}", run_id) for run_id in ids)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_git_state_across_two_commits_and_a_dirty_tree(repository):
    assert provenance.git_state(repository) == (None, None, None)  # no commit yet
    (repository / "code.py").write_text("x = 1\n")
    first = commit(repository, "first")
    assert provenance.git_state(repository) == (first, False, None)
    (repository / "results").mkdir()
    (repository / "results" / "done").write_text("untracked\n")
    assert provenance.git_state(repository) == (first, False, None)  # untracked: not dirty
    (repository / "code.py").write_text("x = 2\n")
    dirty = provenance.git_state(repository)
    assert (dirty.commit, dirty.dirty) == (first, True) and dirty.diff.startswith("sha256:")
    (repository / "code.py").write_text("x = 3\n")
    git(repository, "add", "code.py")  # a staged change counts too
    other = provenance.git_state(repository)
    assert other.dirty and other.diff != dirty.diff
    second = commit(repository, "second")
    assert provenance.git_state(repository / "results") == (second, False, None)
    assert second != first


def test_no_git_or_no_repository_records_no_commit(tmp_path, monkeypatch):
    assert provenance.git_state(tmp_path) == (None, None, None)
    monkeypatch.setenv("PATH", str(tmp_path))  # git is not found
    assert provenance.git_state(tmp_path) == (None, None, None)
    run = provenance.capture("engine", tmp_path, packages=["pytest", "no-such-package-x"])
    assert (run.commit, run.dirty, run.diff) == (None, None, None)
    assert run.versions["pytest"] == pytest.__version__
    assert run.versions["no-such-package-x"] is None and run.versions["execo_engine"]
    assert list(run.versions) == ["execo_engine", "pytest", "no-such-package-x"]


def _session(pytester, location, *arguments):
    return pytester.runpytest_subprocess(
        f"--execo-sweep-dir={location}", "-p", "no:cacheprovider", *arguments
    )


@pytest.mark.slow
def test_pytest_sessions_across_two_commits_and_a_dirty_tree(pytester, location):
    _three_sessions(pytester, location("sweepdir"), [])


@pytest.mark.slow
def test_xdist_workers_take_part_in_the_run_of_their_session(pytester):
    _three_sessions(pytester, "sweepdir", ["-n", "2"])


def _three_sessions(pytester, where, workers):
    """Sessions at two commits, then with a dirty tree: what each recorded, what each said."""
    project = pytester.path
    git(project, "init", "-q")
    pytester.makeini("[pytest]\nexeco_record_versions = psycopg no-such-package-x\n")
    pytester.makepyfile(test_grid=SWEPT_TEST)
    # what the sessions write stays untracked (the results, pytest's files)
    (project / ".gitignore").write_text("sweepdir/\nrunpytest-*\n__pycache__/\nstdout\nstderr\n")
    first = commit(project, "first")
    _session(pytester, where, *workers).assert_outcomes(passed=5, failed=1)

    (project / "test_grid.py").write_text(SWEPT_TEST.replace("STOP = 2", "STOP = 0"))
    second = commit(project, "second")
    result = _session(pytester, where, *workers)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "execo: 5/6 combinations done in *, running 1",
            f"execo: test_grid.py::test_grid: this sweep has results from 2 commits: "
            f"{first[:12]} (1 run, 5 done), {second[:12]} (this run)",
        ]
    )
    rows = load_results(where)
    assert [
        (r["outcome"], r["commit"], r["dirty"], r["attempts"])
        for r in rows
        if (r["size"], r["algo"]) == (2, "b")
    ] == [("failed", first, False, 1), ("passed", second, False, 1)]
    runs = load_runs(where)
    assert [(r["commit"], r["done"], r["results"], r["kind"]) for r in runs] == [
        (first, 5, 6, "pytest"),
        (second, 1, 1, "pytest"),
    ]
    assert {r["run"] for r in rows} == {r["id"] for r in runs}
    assert runs[0]["versions"]["no-such-package-x"] is None and runs[0]["versions"]["psycopg"]
    assert (
        runs[0]["command"].startswith("pytest --basetemp=")
        and " -p no:cacheprovider" in runs[0]["command"]
    )
    assert runs[0]["processes"] == runs[0]["ended"] >= 1

    (project / "notes.txt").write_text("untracked: the tree stays clean\n")
    (project / "test_grid.py").write_text(SWEPT_TEST.replace("STOP = 2", "STOP = 3"))
    result = _session(pytester, where, "--execo-rerun-done", "-k", "1", *workers)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"*this sweep has results from 3 versions of the code: {first[:12]} (1 run, 5 done), "
            f"{second[:12]} (1 run, 1 done), {second[:12]}-dirty:* (this run)"
        ]
    )
    third = load_runs(where)[-1]
    assert (third["commit"], third["dirty"], third["diff"][:7]) == (second, True, "sha256:")
    assert load_results(where)[-1]["dirty"] is True


@pytest.mark.slow  # two pytest sessions in subprocesses
def test_a_run_without_git_records_no_commit_and_no_note(pytester):
    pytester.makepyfile(test_grid=SWEPT_TEST)
    for _ in range(2):
        result = _session(pytester, "results")
    assert "this sweep has results from" not in result.stdout.str()
    [run, again] = load_runs(pytester.path / "results")
    assert (run["commit"], run["dirty"], again["commit"]) == (None, None, None)


ENGINE = """
import time
from execo_engine import Engine, sweep

class Bench(Engine):
    record_versions = ("pytest",)

    def run(self):
        sweeper = self.sweeper(sweep({"size": [1, 2, 3, 4]}), progress_interval=0.1)
        for combination in sweeper:
            if combination["size"] == LIMIT:
                raise SystemExit(3)
            sweeper.record_result(combination, {"twice": 2 * combination["size"]})
            sweeper.done(combination)

LIMIT = 3
Bench().start()
"""


def _engine(project, *arguments):
    return subprocess.run(
        [sys.executable, str(project / "bench.py"), *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_engine_start_progress_and_end_lines_across_commits(repository):
    (repository / "bench.py").write_text(ENGINE)
    first = commit(repository, "first")
    results = repository / "results"
    crashed = _engine(repository, "-c", "results")
    assert crashed.returncode == 3
    lines = crashed.stdout
    assert f"INFO: created {results} (-c results did not exist): a new run" in lines
    assert f"INFO: new sweep in {results / 'sweeps'}: 4 combinations" in lines
    assert (
        "INFO: sweeps: end of run: 2/4 done (2 in this run), 0 failed, 2 remaining; wall time"
        in lines
    )

    (repository / "bench.py").write_text(ENGINE.replace("LIMIT = 3", "LIMIT = 0"))
    second = commit(repository, "second")
    resumed = _engine(repository, "-c", "results")
    assert resumed.returncode == 0, resumed.stderr
    assert "created" not in resumed.stdout
    assert f"INFO: resuming {results / 'sweeps'}: 2/4 done, 0 failed, 2 to run" in resumed.stdout
    assert (
        f"WARNING: {results / 'sweeps'}: this sweep has results from 2 commits: {first[:12]} "
        f"(1 run, 2 done), {second[:12]} (this run)" in resumed.stdout
    )
    assert (
        "INFO: sweeps: end of run: 4/4 done (2 in this run), 0 failed, 0 remaining"
        in resumed.stdout
    )
    runs = load_runs(results)
    assert [(r["kind"], r["commit"], r["done"], r["results"]) for r in runs] == [
        ("engine", first, 2, 2),
        ("engine", second, 2, 2),
    ]
    assert runs[0]["command"] == f"{repository / 'bench.py'} -c results"
    assert runs[0]["versions"]["pytest"] == pytest.__version__
    assert [r["commit"] for r in load_results(results)] == [first, first, second, second]

    finished = _engine(repository, "-c", "results")  # a finished sweep says where it stands
    assert f"INFO: resuming {results / 'sweeps'}: 4/4 done, 0 failed, 0 to run" in finished.stdout


RESULTS_ONLY = """
from execo_engine import Engine, sweep

class Bench(Engine):
    def run(self):
        sweeper = self.sweeper(sweep({"size": [1, 2]}))
        combination = sweeper.get_next()
        sweeper.record_result(combination, {"twice": 2 * combination["size"]})
        if STOP:
            raise SystemExit(3)  # interrupted after the result, before done()
        sweeper.done(combination)

STOP = True
Bench().start()
"""


def test_a_run_that_recorded_results_but_finished_nothing_counts_in_the_note(repository):
    (repository / "bench.py").write_text(RESULTS_ONLY)
    first = commit(repository, "first")
    assert _engine(repository, "-c", "results").returncode == 3
    (repository / "bench.py").write_text(RESULTS_ONLY.replace("STOP = True", "STOP = False"))
    second = commit(repository, "second")
    resumed = _engine(repository, "-c", "results")
    assert resumed.returncode == 0, resumed.stderr
    sweeps = repository / "results" / "sweeps"
    assert (
        f"WARNING: {sweeps}: this sweep has results from 2 commits: {first[:12]} (1 run, 0 done, "
        f"1 result), {second[:12]} (this run)" in resumed.stdout
    )
    runs = load_runs(repository / "results")
    assert [(r["commit"], r["done"], r["results"]) for r in runs] == [(first, 0, 1), (second, 1, 1)]


def test_engine_progress_lines_come_first_early_then_at_each_tenth(
    tmp_path, monkeypatch, caplog, poll
):
    monkeypatch.setattr(engine, "FIRST_PROGRESS", 0.05)  # 5 s, made short for the test
    monkeypatch.setattr(engine, "PROGRESS_LOOK", 0.01)
    caplog.set_level(logging.INFO, logger="execo_engine")

    def logged(text):
        return any(text in record.getMessage() for record in caplog.records)

    class Tenths(Engine):
        def run(self):
            sweeper = self.sweeper(sweep({"i": range(20)}), progress_interval=3600)
            poll(lambda: logged("sweeps: 0/20 done (0%)"), "the first progress line")
            for tenth in range(1, 11):  # no line for 1 h but at each tenth of the grid
                sweeper.done_batch(sweeper.get_next_batch(2))
                poll(lambda t=tenth: logged(f"sweeps: {2 * t}/20 done ({10 * t}%)"), f"{tenth}/10")

    Tenths().start(["-c", str(tmp_path / "tenths")])
    assert logged(f"created {tmp_path / 'tenths'} (-c {tmp_path / 'tenths'} did not exist)")
    assert logged(f"new sweep in {tmp_path / 'tenths' / 'sweeps'}: 20 combinations")
    assert logged("sweeps: end of run: 20/20 done (20 in this run), 0 failed, 0 remaining")
    caplog.clear()

    class Again(Engine):
        def run(self):
            self.sweeper()  # the saved sweeps

    Again().start(["-c", str(tmp_path / "tenths")])  # the same -c: it continues
    assert not logged("created") and not logged("new sweep")
    assert logged(f"resuming {tmp_path / 'tenths' / 'sweeps'}: 20/20 done, 0 failed, 0 to run")


def test_a_sweeper_the_engine_script_makes_itself_gets_the_same_lines(tmp_path, caplog):
    """The execo 2.x idiom, ``ParamSweeper(os.path.join(self.result_dir, ...))``: its start
    line (new, then resuming) and its end line; a read-only view of it gets none."""
    caplog.set_level(logging.INFO, logger="execo_engine")
    directory = tmp_path / "run" / "direct"

    class Direct(Engine):
        def run(self):
            path, grid = os.path.join(self.result_dir, "direct"), sweep({"i": [1, 2, 3]})
            sweeper = ParamSweeper(path, grid)
            ParamSweeper(path, grid, read_only=True)
            sweeper.done(sweeper.get_next())

    def lines():
        found = [
            r.getMessage()
            for r in caplog.records
            if r.getMessage().startswith(("new", "res", "direct:"))
        ]
        caplog.clear()
        return [line.partition("; wall time")[0] for line in found]

    Direct().start(["-c", str(tmp_path / "run")])
    assert lines() == [
        f"new sweep in {directory}: 3 combinations",
        "direct: end of run: 1/3 done (1 in this run), 0 failed, 2 remaining",
    ]
    Direct().start(["-c", str(tmp_path / "run")])
    assert lines() == [
        f"resuming {directory}: 1/3 done, 0 failed, 2 to run",
        "direct: end of run: 2/3 done (1 in this run), 0 failed, 1 remaining",
    ]


FORKING = """
import os
from execo_engine import Engine, ParamSweeper, sweep

class Forking(Engine):
    def run(self):
        mine = ParamSweeper(os.path.join(self.result_dir, "parent"), sweep({"i": [1, 2]}))
        child = os.fork()
        if child == 0:  # a worker of the run: it works, the process that started the run reports
            theirs = ParamSweeper(os.path.join(self.result_dir, "child"), sweep({"i": [1, 2]}))
            theirs.done(theirs.get_next())
            os._exit(0)
        os.waitpid(child, 0)
        mine.done(mine.get_next())

Forking().start()
"""


def test_a_process_forked_from_an_engine_run_does_not_report_on_its_sweepers(tmp_path):
    (tmp_path / "bench.py").write_text(FORKING)
    result = _engine(tmp_path, "-c", "run")
    assert result.returncode == 0, result.stderr
    assert f"INFO: new sweep in {tmp_path / 'run' / 'parent'}: 2 combinations" in result.stdout
    assert "child" not in result.stdout + result.stderr
    [parent_run] = load_runs(tmp_path / "run" / "parent")
    [child_run] = load_runs(tmp_path / "run" / "child")  # the child took part in the run
    assert (child_run["id"], child_run["kind"]) == (parent_run["id"], "engine")


def test_a_submitted_worker_records_a_worker_run(tmp_path):
    directory = tmp_path / "sweep"
    ParamSweeper(directory, sweep({"i": [1, 2]}), save_sweeps=True)
    script = textwrap.dedent(f"""
        from execo_engine.sweep import ParamSweeper
        sweeper = ParamSweeper({str(directory)!r})
        for combination in sweeper:
            sweeper.record_result(combination, {{"ok": True}})
            sweeper.done(combination)
    """)
    environment = {**os.environ, "EXECO_SWEEP_LOCATION": str(directory), "EXECO_WORKER_INDEX": "3"}
    subprocess.run([sys.executable, "-c", script], check=True, env=environment, timeout=120)
    [run] = load_runs(directory)
    assert (run["kind"], run["worker"], run["done"], run["results"], run["ended"]) == (
        "worker",
        3,
        2,
        2,
        1,
    )


def test_unreadable_run_records_are_skipped_with_a_warning(location, request, caplog):
    run = provenance.start_run(provenance.capture("engine"))
    sweeper = ParamSweeper(location(), sweep({"i": [1]}), save_sweeps=True)
    sweeper.done(sweeper.get_next())
    provenance.end_run()
    bad = ["not json", '{"no": "id"}', json.dumps({"id": run.id, "future": [1]})]
    if location().startswith("postgresql://"):
        name = ParamSweeper(location(), read_only=True).name
        for text in bad:
            request.getfixturevalue("postgresql").execute(
                "INSERT INTO execo_runs (sweep, token, record) "
                "SELECT id, gen_random_uuid(), %s FROM execo_sweeps WHERE name = %s",
                text,
                name,
            )
    else:
        with open(os.path.join(location(), "runs"), "a") as runs:
            runs.write("".join(line + "\n" for line in bad))
    [merged] = ParamSweeper(location(), read_only=True).get_runs()
    assert (merged["id"], merged["done"], merged["processes"]) == (run.id, 1, 2)
    assert "skipped 2 unreadable run record(s) (at " in caplog.text
