"""Engine scripts run as real subprocesses, in the style of execo 2.x scripts: start order,
options added in ``__init__`` and ``init``, outputs, ``-c``, result directory names, kills."""

import importlib.util
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import execo_engine
from execo_engine.sweep import ParamSweeper

THREE_LEVELS = """
import os, subprocess, sys
from execo_engine import Engine, logger

class Base(Engine):
    def __init__(self):
        super().__init__()
        self.args_parser.add_argument("--base-option", default="b")
    def init(self):
        print("init Base")
    def run(self):
        print("run Base", self.args.base_option)

class Middle(Base):
    def init(self):
        print("init Middle")
        self.args_parser.add_argument("--middle-option", type=int, default=0)

class Leaf(Middle):
    def init(self):
        print("init Leaf")
    def run(self):
        print("run Leaf", self.args.middle_option, os.path.basename(self.result_dir))
        print("to stderr", file=sys.stderr)
        subprocess.run([sys.executable, "-c", "print('child out')"])
        logger.debug("a debug line")
        sys.stdout.flush()

Leaf().start()
"""


def run_script(tmp_path, source, *args, check=True, env=None):
    script = tmp_path / "engine_script.py"
    script.write_text(textwrap.dedent(source))
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=120,
        env=env,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def result_dirs(tmp_path):
    return [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("Leaf_")]


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+: ")


def printed(result):
    """The lines the script printed itself (log lines aside)."""
    return [line for line in result.stdout.splitlines() if not LOG_LINE.match(line)]


def test_init_and_run_ancestors_first_with_custom_options(tmp_path):
    result = run_script(tmp_path, THREE_LEVELS, "--middle-option", "7", "--base-option", "x")
    [directory] = result_dirs(tmp_path)
    assert printed(result)[:5] == [
        "init Base",
        "init Middle",
        "init Leaf",
        "run Base x",
        f"run Leaf 7 {directory.name}",
    ]
    log = result.stdout.splitlines()
    script = str(tmp_path / "engine_script.py")
    assert log[0].endswith(
        f"INFO: command line arguments: {[script, '--middle-option', '7', '--base-option', 'x']}"
    )  # as execo logs it, before the line
    assert log[1].endswith(f"INFO: command line: {script} --middle-option 7 --base-option x")
    assert log[2].endswith(f"INFO: run in directory {directory}")
    assert LOG_LINE.match(log[0]) and LOG_LINE.match(log[1]) and LOG_LINE.match(log[2])
    assert "a debug line" not in result.stdout and result.stderr == "to stderr\n"


@pytest.mark.parametrize("level", ["DEBUG", "10", "debug"])
def test_log_level(tmp_path, level):
    assert "DEBUG: a debug line" in run_script(tmp_path, THREE_LEVELS, "-l", level).stdout


EXECO_STYLE = """
import os
from execo_engine import Engine, logger

class Experiment(Engine):
    def __init__(self):
        super().__init__()
        self.args_parser.add_argument("--early", default="e")

    def init(self):
        if not vars(self.args):
            raise SystemExit("self.args is empty in init")
        with open(os.path.join(self.result_dir, "init.txt"), "w") as f:
            print(self.args.early, self.run_name, self.args.log_level, file=f)
        self.args_parser.add_argument("--late", type=int, default=1)

    def run(self):
        logger.detail("a detail line")
        logger.trace("a trace line")
        print("run", self.args.early, self.args.late, os.path.basename(self.result_dir))

Experiment().start()
"""


def experiment_dirs(tmp_path):
    return [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("Experiment_")]


def test_init_sees_args_result_dir_and_run_sees_options_added_in_init(tmp_path):
    result = run_script(tmp_path, EXECO_STYLE, "--late", "5", "--early", "x", "-l", "DETAIL")
    [directory] = experiment_dirs(tmp_path)
    assert (directory / "init.txt").read_text() == f"x {directory.name} DETAIL\n"
    assert printed(result) == [f"run x 5 {directory.name}"]
    assert "DETAIL: a detail line" in result.stdout and "a trace line" not in result.stdout


@pytest.mark.parametrize("level", ["DEBUG", "debug", "5", "-1"])
def test_args_log_level_is_the_text_given_as_in_execo(tmp_path, level):
    run_script(tmp_path, EXECO_STYLE, "-l", level)
    [directory] = experiment_dirs(tmp_path)
    assert (directory / "init.txt").read_text().split()[2] == level


def test_log_level_trace_shows_detail_and_trace(tmp_path):
    result = run_script(tmp_path, EXECO_STYLE, "-l", "trace")
    assert "DETAIL: a detail line" in result.stdout and "TRACE: a trace line" in result.stdout


def test_default_result_dir_is_named_as_execo_names_it(tmp_path):
    if not os.path.exists("/usr/share/zoneinfo/Asia/Kolkata"):
        pytest.skip("no time zone database (/usr/share/zoneinfo)")
    run_script(tmp_path, EXECO_STYLE, env={**os.environ, "TZ": "Asia/Kolkata"})
    [directory] = experiment_dirs(tmp_path)
    assert re.fullmatch(r"Experiment_\d{8}_\d{6}_\+0530", directory.name), directory.name
    assert (directory / "init.txt").read_text().split()[1] == directory.name  # the run name


def test_help_lists_options_added_in_init_and_leaves_no_directory(tmp_path):
    result = run_script(tmp_path, THREE_LEVELS, "-h")
    assert "--base-option" in result.stdout and "--middle-option" in result.stdout  # in init
    assert "run Base" not in result.stdout and result_dirs(tmp_path) == []


POSITIONAL = """
from execo_engine import Engine

class Positional(Engine):
    def __init__(self):
        super().__init__()
        self.args_parser.add_argument("cluster", help="where to run")

    def init(self):
        self.args_parser.add_argument("--nodes", type=int, default=1)

    def run(self):
        print("run on", self.args.cluster, self.args.nodes)

Positional().start()
"""


@pytest.mark.slow
def test_help_with_a_required_argument_is_answered_at_once(tmp_path):
    result = run_script(tmp_path, POSITIONAL, "-h")
    assert "cluster" in result.stdout and "where to run" in result.stdout
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []
    complete = run_script(tmp_path, POSITIONAL, "-h", "grid5000")
    assert "--nodes" in complete.stdout and "run on" not in complete.stdout
    assert printed(run_script(tmp_path, POSITIONAL, "--nodes", "4", "nancy")) == ["run on nancy 4"]


def test_a_missing_required_argument_is_a_usage_error_before_anything_runs(tmp_path):
    result = run_script(tmp_path, POSITIONAL, check=False)
    assert result.returncode == 2 and "the following arguments are required: cluster" in (
        result.stderr
    )
    assert result.stdout == "" and [p for p in tmp_path.iterdir() if p.is_dir()] == []


@pytest.mark.parametrize(
    "args,message",
    [
        (["--late", "many"], "argument --late: invalid int value: 'many'"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_usage_errors_found_after_init(tmp_path, args, message):
    result = run_script(tmp_path, EXECO_STYLE, *args, check=False)
    assert result.returncode == 2 and result.stderr.startswith("usage: engine_script.py")
    assert message in result.stderr and "Traceback" not in result.stderr
    [directory] = experiment_dirs(tmp_path)  # init wrote in it: kept
    assert printed(result) == [] and (directory / "init.txt").exists()


def test_a_usage_error_leaves_no_empty_result_dir(tmp_path):
    result = run_script(tmp_path, THREE_LEVELS, "--no-such-option", check=False)
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr
    assert result_dirs(tmp_path) == []


@pytest.mark.parametrize(
    "option,files",
    [
        ("-L", {"stdout": ["run Leaf", "child out"], "stderr": ["to stderr"]}),
        ("-R", {"stdout": ["run Leaf", "child out"], "stderr": ["to stderr"]}),
        ("-M", {"stdout+stderr": ["run Leaf", "child out", "to stderr"]}),
    ],
)
def test_output_files(tmp_path, option, files):
    args = ["-R", "-M"] if option == "-M" else [option]
    result = run_script(tmp_path, THREE_LEVELS, *args)
    [directory] = result_dirs(tmp_path)
    for name, expected in files.items():
        text = (directory / name).read_text()
        assert all(line in text for line in expected), (name, text)
    if option == "-L":
        assert "child out" in result.stdout and "to stderr" in result.stderr
    else:
        assert "child out" not in result.stdout


def test_continue_reuses_the_directory(tmp_path):
    existing = tmp_path / "earlier"
    existing.mkdir()
    result = run_script(tmp_path, THREE_LEVELS, "-c", str(existing), "-L")
    assert "run Leaf 0 earlier" in result.stdout
    assert result_dirs(tmp_path) == [] and (existing / "stdout").exists()
    assert f"INFO: run in directory {existing}" in (existing / "stdout").read_text()


@pytest.mark.parametrize(
    "args,message",
    [
        (["-c", "a-file"], "-c a-file: exists and is not a directory"),
        (["-l", "LOUD"], "invalid log level 'LOUD'"),
        (["-l"], "argument -l: expected one argument"),
    ],
)
def test_bad_engine_option_is_a_usage_error_before_anything_runs(tmp_path, args, message):
    (tmp_path / "a-file").write_text("")
    result = run_script(tmp_path, THREE_LEVELS, *args, check=False)
    assert result.returncode == 2 and result.stderr.startswith("usage: engine_script.py")
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == "" and result_dirs(tmp_path) == []


RESUMABLE = """
import os
from execo_engine import Engine, ParamSweeper, slugify, sweep

class Leaf(Engine):
    def init(self):
        self.args_parser.add_argument("--stop-after", type=int)

    def run(self):
        sweeper = ParamSweeper(
            os.path.join(self.result_dir, "sweeps"), sweep({"i": range(10), "j": [1, 2]})
        )
        for count, combination in enumerate(sweeper):
            if count == self.args.stop_after:
                raise SystemExit(3)  # a crash in the middle of the grid
            with open(os.path.join(self.result_dir, slugify(combination)), "x"):
                pass
            sweeper.done(combination)

Leaf().start()
"""


@pytest.mark.slow
def test_same_c_dir_on_the_first_run_and_to_resume(tmp_path):
    directory = tmp_path / "results" / "first"  # neither exists yet
    first = run_script(tmp_path, RESUMABLE, "-c", "results/first", "--stop-after", "7", check=False)
    assert first.returncode == 3, first.stderr
    assert len(list(directory.iterdir())) == 1 + 7  # the sweep, and one file per done combination
    run_script(tmp_path, RESUMABLE, "-c", "results/first")
    files = {p.name for p in directory.iterdir()} - {"sweeps"}
    expected = {f"i-{i}-j-{j}" for i in range(10) for j in (1, 2)}
    assert files == expected  # each combination ran once ("x": a second run would fail)
    assert result_dirs(tmp_path) == []


SWEEPING = """
import os, sys, time
from execo_engine import Engine, sweep

class Leaf(Engine):
    def run(self):
        sweeper = self.sweeper(sweep({"i": range(200)}), progress_interval=0.2)
        for combination in sweeper:
            with open(os.path.join(self.result_dir, "started"), "a") as f:
                f.write(f"{combination['i']}\\n")
            time.sleep(0.01)  # the experiment
            sweeper.done(combination)

Leaf().start()
"""


def start_engine(tmp_path, *args):
    script = tmp_path / "engine_script.py"
    script.write_text(textwrap.dedent(SWEEPING))
    return subprocess.Popen(
        [sys.executable, str(script), *args], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )


def wait_for_result_dir(tmp_path):
    deadline = time.monotonic() + 60
    while not result_dirs(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.005)
    [directory] = result_dirs(tmp_path)
    return directory


def wait_for_started(path, count, process):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and len(path.read_text().split()) >= count:
            return
        time.sleep(0.005)


@pytest.mark.slow
def test_sigkill_then_continue_completes_the_grid(tmp_path):
    engine = start_engine(tmp_path)
    directory = wait_for_result_dir(tmp_path)
    wait_for_started(directory / "started", 50, engine)
    engine.kill()
    engine.wait()
    before = ParamSweeper(directory / "sweeps")
    assert 0 < len(before.get_done()) < 200
    again = start_engine(tmp_path, "-c", str(directory))
    again.communicate(timeout=120)
    assert again.returncode == 0
    after = ParamSweeper(directory / "sweeps")
    assert [c["i"] for c in after.get_done()] == list(range(200))
    lines = (directory / "sweeps" / "done").read_text().splitlines()
    assert len(lines) == len(set(lines)) == 200  # no combination done twice
    started = (directory / "started").read_text().split()
    assert len(started) - len(set(started)) <= 1  # only the one killed mid-way ran again


@pytest.mark.slow
def test_sigterm_gives_the_current_combination_back_at_once(tmp_path):
    engine = start_engine(tmp_path)
    directory = wait_for_result_dir(tmp_path)
    wait_for_started(directory / "started", 30, engine)
    engine.send_signal(signal.SIGTERM)
    stdout, _ = engine.communicate(timeout=60)
    assert engine.returncode == 128 + signal.SIGTERM
    assert "unfinished combination(s) back to todo" in stdout
    assert "/200 done" in stdout  # a progress line was logged
    sweeper = ParamSweeper(directory / "sweeps")
    assert sweeper.get_inprogress() == []
    assert sweeper.get_failures() == {}  # an interruption is no failed attempt
    done = len(sweeper.get_done())
    assert len(sweeper.get_remaining()) == 200 - done and done >= 29


TYPED = """
import argparse
import os

from execo_engine import Engine, ParamSweeper, logger, sweep


class Typed(Engine):
    def init(self) -> None:
        self.args_parser.add_argument("--size", type=int, default=1)
        namespace: argparse.Namespace = self.args
        logger.detail("%s", namespace)

    def run(self) -> None:
        path: str = os.path.join(self.result_dir, "sweeps")
        sweeper = ParamSweeper(path, sweep({"size": [self.args.size]}))
        logger.trace("%s %s", self.run_name.upper(), sweeper.get_next())


Typed().start()
"""


@pytest.mark.slow
def test_a_typed_engine_subclass_passes_mypy_strict(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy)")
    (tmp_path / "typed_engine.py").write_text(TYPED)
    package_root = os.path.dirname(os.path.dirname(execo_engine.__file__))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "typed_engine.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MYPYPATH": package_root},  # an editable install is not found else
    )
    # Only the user's file is judged (the package is checked by its own gate).
    assert result.stdout.splitlines()[-1].startswith(("Found", "Success")), result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("typed_engine")] == []
