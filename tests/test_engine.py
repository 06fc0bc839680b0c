"""Engine scripts run as real subprocesses: chaining, options, outputs, -c, kills."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest

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


def run_script(tmp_path, source, *args, check=True):
    script = tmp_path / "engine_script.py"
    script.write_text(textwrap.dedent(source))
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def result_dirs(tmp_path):
    return [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("Leaf_")]


def test_init_and_run_ancestors_first_with_custom_options(tmp_path):
    result = run_script(tmp_path, THREE_LEVELS, "--middle-option", "7", "--base-option", "x")
    [directory] = result_dirs(tmp_path)
    assert result.stdout.splitlines()[:5] == [
        "init Base",
        "init Middle",
        "init Leaf",
        "run Base x",
        f"run Leaf 7 {directory.name}",
    ]
    assert "command line:" in result.stderr and f"result directory: {directory}" in result.stderr
    assert "a debug line" not in result.stderr


@pytest.mark.parametrize("level", ["DEBUG", "10", "debug"])
def test_log_level(tmp_path, level):
    assert "a debug line" in run_script(tmp_path, THREE_LEVELS, "-l", level).stderr


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


@pytest.mark.parametrize(
    "args,message",
    [
        (["-c", "a-file"], "-c a-file: not an existing directory"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["-l", "LOUD"], "invalid log level 'LOUD'"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, args, message):
    (tmp_path / "a-file").write_text("")
    result = run_script(tmp_path, THREE_LEVELS, *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


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
        [sys.executable, str(script), *args], cwd=tmp_path, stderr=subprocess.PIPE, text=True
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


def test_sigterm_gives_the_current_combination_back_at_once(tmp_path):
    engine = start_engine(tmp_path)
    directory = wait_for_result_dir(tmp_path)
    wait_for_started(directory / "started", 30, engine)
    engine.send_signal(signal.SIGTERM)
    _, stderr = engine.communicate(timeout=60)
    assert engine.returncode == 128 + signal.SIGTERM
    assert "unfinished combination(s) back to todo" in stderr
    assert "/200 done" in stderr  # a progress line was logged
    sweeper = ParamSweeper(directory / "sweeps")
    assert sweeper.get_inprogress() == []
    assert sweeper.get_failures() == {}  # an interruption is no failed attempt
    done = len(sweeper.get_done())
    assert len(sweeper.get_remaining()) == 200 - done and done >= 29
