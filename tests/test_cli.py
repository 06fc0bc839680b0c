"""The execo-sweep command line, run as a real command on real sweep directories."""

import ast
import csv
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from execo_engine.sweep import ParamSweeper, sweep, sweep_stats

pytest_plugins = ["pytester"]
WORKER = Path(__file__).with_name("sweeper_worker.py")
GRID = {"size": [1, 2, 3], "algo": ["a", "b"]}


def cli(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "execo_engine", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def mixed(tmp_path):
    """A sweep with 2 done, 1 claim of this live process, 2 of a dead one, 1 remaining."""
    directory = tmp_path / "sweep"
    sweeps = sweep(GRID)
    live = ParamSweeper(directory, sweeps, save_sweeps=True)
    live.done_batch(sweeps[:2])
    live.take(sweeps[2])
    subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import os
        from execo_engine.sweep import ParamSweeper
        ParamSweeper({str(directory)!r}).get_next_batch(2)
        os._exit(0)
    """),
        ],
        check=True,
    )
    return directory, sweeps


def test_status_json_matches_the_sweeper(mixed):
    directory, sweeps = mixed
    before = sorted(p.name for p in directory.iterdir())
    report = json.loads(cli("status", directory, "--json", "--by-factor").stdout)
    [entry] = report["sweeps"]
    assert entry["location"] == entry["directory"] == str(directory)  # the old key kept
    view = ParamSweeper(directory, read_only=True)
    total, remaining, _, inprogress, done = view.stats()
    assert (
        (entry["total"], entry["done"], entry["inprogress"], entry["remaining"])
        == (len(total), len(done), len(inprogress), len(remaining))
        == (6, 2, 3, 1)
    )
    claims = {(tuple(c["combination"].items()), c["dead"]) for c in entry["claims"]}
    assert claims == {
        (tuple(sweeps[2].items()), False),
        (tuple(sweeps[3].items()), True),
        (tuple(sweeps[4].items()), True),
    }
    assert all(c["age"] >= 0 for c in entry["claims"])
    expected = sweep_stats(view.stats())
    assert entry["by_factor"]["done"] == {"size": {"1": 2}, "algo": {"a": 1, "b": 1}}
    assert entry["by_factor"]["total"] == {
        f: {str(k): v for k, v in levels.items()} for f, levels in expected["total"].items()
    }
    assert sorted(p.name for p in directory.iterdir()) == before  # status never writes


@pytest.mark.slow
def test_status_text_by_factor_and_reclaim(mixed):
    directory, _ = mixed
    text = cli("status", directory.parent, "--by-factor", "size").stdout
    assert "6 total, 2 done, 3 in progress, 1 remaining" in text
    assert text.count("DEAD (reclaim with: execo-sweep reclaim)") == 2
    assert "size:" in text and "algo:" not in text
    assert "33.3%" in text
    reclaimed = cli("reclaim", directory)
    assert "reclaimed 2 combination(s)" in reclaimed.stdout
    assert "held by dead process" in reclaimed.stderr
    after = json.loads(cli("status", directory, "--json").stdout)["sweeps"][0]
    assert (after["inprogress"], after["remaining"]) == (1, 3)
    cli("reset", directory, "--inprogress")
    assert json.loads(cli("status", directory, "--json").stdout)["sweeps"][0]["inprogress"] == 0


@pytest.mark.slow
def test_status_while_four_processes_work(tmp_path):
    directory = tmp_path / "sweep"
    n = 3000
    ParamSweeper(directory, sweep({"i": range(n)}), save_sweeps=True)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                str(directory),
                str(tmp_path / f"{k}.txt"),
                "1",
                "1",
                "0.0005",
            ]
        )
        for k in range(4)
    ]
    seen = []
    while any(w.poll() is None for w in workers):
        entry = json.loads(cli("status", directory, "--json").stdout)["sweeps"][0]
        assert entry["done"] + entry["inprogress"] + entry["remaining"] == entry["total"] == n
        seen.append(entry["done"])
    assert [w.wait() for w in workers] == [0] * 4
    assert seen == sorted(seen) and len(seen) >= 2
    reported = [int(x) for k in range(4) for x in (tmp_path / f"{k}.txt").read_text().split()]
    assert sorted(reported) == list(range(n))  # nothing lost, nothing done twice
    assert len(ParamSweeper(directory).get_done()) == n


RECORDING_TEST = """
import pytest

@pytest.mark.execo_sweep({"size": [1, 2, 3], "algo": ["a", "b"]})
def test_grid(size, algo, execo_record):
    execo_record(latency=size * (2 if algo == "b" else 1) / 10, label=f"{algo}, {size}")
    assert (size, algo) != (3, "b")
"""

ENGINE = """
from execo_engine import Engine, sweep

class Bench(Engine):
    def run(self):
        sweeper = self.sweeper(sweep({"size": [10, 1000, 100000], "algo": ["x", "y"]}))
        for combination in sweeper:
            sweeper.record_result(combination, {"latency": combination["size"] / 1000},
                                  "passed", 0.0)
            sweeper.done(combination)

Bench().start()
"""


@pytest.mark.slow
def test_results_of_pytest_xdist_and_engine_runs(pytester, tmp_path):
    pytester.makepyfile(test_rec=RECORDING_TEST)
    pytester.runpytest_subprocess("--execo-sweep-dir=results", "-n", "2").assert_outcomes(
        passed=5, failed=1
    )
    exported = cli("results", pytester.path / "results").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 6
    assert list(rows[0])[:4] == ["size", "algo", "latency", "label"]
    by_id = {(r["size"], r["algo"]): r for r in rows}
    assert by_id[("3", "b")]["outcome"] == "failed" and by_id[("2", "b")]["latency"] == "0.4"
    assert by_id[("1", "a")]["label"] == "a, 1"  # a comma survives CSV quoting
    assert all(float(r["duration"]) >= 0 and r["host"] and r["time"] for r in rows)
    lines = cli("results", pytester.path / "results", "--format", "jsonl").stdout.splitlines()
    assert sorted(json.loads(line)["latency"] for line in lines) == [0.1, 0.2, 0.2, 0.3, 0.4, 0.6]

    engine = tmp_path / "engine.py"
    engine.write_text(ENGINE)
    subprocess.run(
        [sys.executable, str(engine), "-c", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    rows = list(csv.DictReader(io.StringIO(cli("results", tmp_path).stdout)))
    assert [(r["size"], r["algo"], r["latency"]) for r in rows] == [
        ("10", "x", "0.01"),
        ("10", "y", "0.01"),
        ("1000", "x", "1.0"),
        ("1000", "y", "1.0"),
        ("100000", "x", "100.0"),
        ("100000", "y", "100.0"),
    ]

    png = tmp_path / "latency.png"
    drawn = cli("plot", tmp_path, "--x", "size", "--y", "latency", "--hue", "algo", "-o", png)
    assert f"wrote {png}" in drawn.stdout
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (800, 500)


@pytest.mark.parametrize(
    "args,message",
    [
        (["status", "{missing}"], "no such directory"),
        (["status", "{empty}"], "not a sweep directory"),
        (
            ["status", "{sweep}", "--by-factor", "colour"],
            "unknown factor 'colour' (available: size, algo)",
        ),
        (["plot", "{sweep}", "--x", "colour", "--y", "latency"], "unknown factor 'colour'"),
        (["plot", "{sweep}", "--x", "size", "--y", "speed"], "unknown value 'speed'"),
        (["reset", "{sweep}"], "say what to reset: --inprogress, --failed, or both"),
    ],
)
@pytest.mark.slow
def test_bad_input_is_a_clear_error(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    sweeper = ParamSweeper(tmp_path / "sweep", sweep(GRID), save_sweeps=True)
    sweeper.record_result(sweep(GRID)[0], {"latency": 1.0})
    paths = {
        "missing": tmp_path / "missing",
        "empty": tmp_path / "empty",
        "sweep": tmp_path / "sweep",
    }
    result = cli(*[a.format(**paths) for a in args], check=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "execo-sweep"  # installed beside this python
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "status" in result.stdout


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "matplotlib.py").write_text("raise ImportError('not installed here')\n")
    ParamSweeper(tmp_path / "sweep", sweep(GRID)).record_result(sweep(GRID)[0], {"x": 1.0})
    result = subprocess.run(
        [sys.executable, "-m", "execo_engine", "plot", str(tmp_path), "--x", "size", "--y", "x"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(shadow)},
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "plot needs matplotlib: pip install 'execo_engine[plot]'" in result.stderr


@pytest.mark.parametrize("saved", [True, False], ids=["saved", "unsaved"])
def test_status_counts_and_shows_the_skips_of_every_instance(tmp_path, saved):
    directory = tmp_path / "sweep"
    sweeps = sweep(GRID)
    sweeper = ParamSweeper(directory, sweeps, save_sweeps=saved)
    sweeper.skip(sweeps[1])  # skipped for that instance only, held while this process lives
    [entry] = json.loads(cli("status", directory, "--json").stdout)["sweeps"]
    assert (entry["skipped"], entry["remaining"]) == (1, 5)
    assert [(s["pid"], s["dead"]) for s in entry["skips"]] == [(os.getpid(), False)]
    text = cli("status", directory).stdout
    assert "6 total, 0 done, 0 in progress, 5 remaining, 1 skipped" in text
    [line] = [line for line in text.splitlines() if line.startswith("    skipped: ")]
    shown_skip, holder = line[len("    skipped: ") :].split(" on ", 1)
    assert ast.literal_eval(shown_skip) == sweeps[1]
    assert holder.startswith(f"{os.uname().nodename} pid {os.getpid()}, for ")


def test_status_of_a_directory_without_saved_sweeps(tmp_path):
    directory = tmp_path / "unsaved"
    sweeps = sweep(GRID)
    sweeper = ParamSweeper(directory, sweeps)  # save_sweeps=False, the execo default
    sweeper.done_batch(sweeps[:2])
    sweeper.take(sweeps[2])
    sweeper.skip(sweeps[3])
    [entry] = json.loads(cli("status", directory, "--json").stdout)["sweeps"]
    counts = {k: entry[k] for k in ("total", "done", "inprogress", "skipped", "remaining")}
    assert counts == {"total": 6, "done": 2, "inprogress": 1, "skipped": 1, "remaining": 2}
    assert entry["sweeps_saved"] is False
    assert [s["pid"] for s in entry["skips"]] == [os.getpid()]  # who skipped what
    text = cli("status", directory, "--by-factor").stdout
    assert "6 total, 2 done, 1 in progress, 2 remaining, 1 skipped" in text
    skipped = "{'algo': 'b', 'size': 2}"  # as recorded: keys in canonical order
    assert f"skipped: {skipped} on {os.uname().nodename} pid {os.getpid()}" in text
    assert "per-factor tables need saved sweeps" in text


@pytest.mark.slow
def test_failed_combinations_in_status_results_and_reset(tmp_path):
    directory, sweeps = tmp_path / "sweep", sweep(GRID)
    sweeper = ParamSweeper(directory, sweeps, save_sweeps=True, max_attempts=2)
    for combination in sweeps[:2]:  # size=1: algo a and b fail twice
        for attempt in (1, 2):
            assert sweeper.take(combination) is None
            sweeper.fail(combination, f"ValueError: attempt {attempt}\n  more detail")
    sweeper.fail(sweeper.get_next(), "TimeoutError")  # size=2, algo=a: one attempt, todo
    sweeper.take(sweeps[2])
    sweeper.record_result(sweeps[2], {"latency": 0.5}, "passed", 1.0)
    sweeper.done(sweeps[2])

    text = cli("status", directory, "--by-factor", "size", "--failed").stdout
    assert "6 total, 1 done, 0 in progress, 3 remaining, 2 failed" in text
    for algo in ("a", "b"):
        assert (
            f"    failed: {{'size': 1, 'algo': '{algo}'}} after 2 attempt(s): ValueError: "
            f"attempt 2\n          more detail\n" in text
        )
    assert "           1  [....................]   0.0%  2 total, 0 done, 0 in progress, " in text
    assert "0 remaining, 2 failed" in text
    assert "retrying:" not in text  # size=2, algo=a failed once, then was done
    assert "failed:" not in cli("status", directory).stdout  # listed on request only

    [entry] = json.loads(cli("status", directory, "--json", "--by-factor").stdout)["sweeps"]
    assert (entry["failed"], entry["remaining"], entry["done"]) == (2, 3, 1)
    assert [
        (f["combination"], f["attempts"], f["error"]) for f in entry["failed_combinations"]
    ] == [(dict(c), 2, "ValueError: attempt 2\n  more detail") for c in sweeps[:2]]
    assert entry["by_factor"]["failed"] == {"size": {"1": 2}, "algo": {"a": 1, "b": 1}}
    assert entry["retrying_combinations"] == []

    rows = list(csv.DictReader(io.StringIO(cli("results", directory).stdout)))
    assert [(r["size"], r["algo"], r["attempts"]) for r in rows] == [("2", "a", "1")]

    reset = cli("reset", directory, "--failed")
    assert "2 failed combination(s) back to todo" in reset.stdout
    [entry] = json.loads(cli("status", directory, "--json").stdout)["sweeps"]
    assert (entry["failed"], entry["remaining"], entry["failed_combinations"]) == (0, 5, [])
    assert ParamSweeper(directory, read_only=True).get_failures() == {}  # attempts cleared


FORMAT_FILES = {
    "9": "persistence directory {sweep!r} is in format version 9, written by a newer "
    "execo_engine; this one reads versions 1 to 4: upgrade execo_engine to use it",
    "x": "{sweep}/format: not a format version number: b'x\\n' (a format file holds one line "
    "such as '2')",
}
EVERY_COMMAND = [  # status in the fast lane, the other commands (a subprocess each) slow
    pytest.param(["status"], id="status"),
    *(
        pytest.param(command, marks=pytest.mark.slow, id=" ".join(command))
        for command in (
            ["status", "--watch"],
            ["results"],
            ["runs"],
            ["plot", "--x", "size", "--y", "latency"],
            ["report", "-o", "report.html"],
            ["reclaim"],
            ["reset", "--inprogress"],
        )
    ),
]


@pytest.mark.parametrize("written", sorted(FORMAT_FILES))
@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_a_bad_format_file_is_one_line_naming_it_in_every_command(tmp_path, written, command):
    directory = tmp_path / "sweep"
    ParamSweeper(directory, sweep(GRID), save_sweeps=True)
    (directory / "format").write_text(f"{written}\n")
    name, *options = command
    result = subprocess.run(
        [sys.executable, "-m", "execo_engine", name, str(directory), *options],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    message = FORMAT_FILES[written].format(sweep=str(directory))
    assert (result.returncode, result.stderr) == (1, f"execo-sweep {name}: {message}\n")


@pytest.mark.parametrize("interval", ["-1", "nan", "inf", "0"])
def test_status_watch_refuses_an_interval_that_is_no_finite_number_above_0(tmp_path, interval):
    directory = tmp_path / "sweep"
    ParamSweeper(directory, sweep(GRID), save_sweeps=True)  # not complete: it would watch
    result = cli("status", directory, "--watch", "--interval", interval, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        f"execo-sweep status: --interval {interval}: give a finite number of seconds above 0\n",
    )


@pytest.mark.parametrize("seconds", ["-5", "nan", "inf"])
def test_reclaim_refuses_an_age_that_is_no_finite_number_of_seconds(tmp_path, seconds):
    directory = tmp_path / "sweep"
    live = ParamSweeper(directory, sweep(GRID), save_sweeps=True)
    claimed = live.get_next()  # held by this live process
    result = cli("reclaim", directory, "--older-than", seconds, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        f"execo-sweep reclaim: --older-than {seconds}: give a finite number of seconds 0 or more\n",
    )
    assert ParamSweeper(directory, read_only=True).get_inprogress() == [claimed]


def test_status_watch_shows_the_failed_combinations_as_status_does(tmp_path):
    directory = tmp_path / "sweep"
    sweeper = ParamSweeper(directory, sweep({"n": [1, 2, 3]}), save_sweeps=True, max_attempts=1)
    sweeper.fail(sweeper.get_next(), "ValueError: boom")
    for combination in iter(sweeper.get_next, None):
        sweeper.done(combination)
    counts = "3 total, 2 done, 0 in progress, 0 remaining, 1 failed"
    assert counts in cli("status", directory).stdout
    _, line = cli("status", directory, "--watch").stdout.splitlines()
    assert (
        line == "sweep  [#############.......]  66.7%  2/3 done, 0 in progress, 0 remaining, "
        "1 failed, complete"
    )


def test_status_watch_of_a_sweep_of_no_combination_stops_at_once(tmp_path):
    ParamSweeper(tmp_path / "empty", [], save_sweeps=True)
    command = ["status", tmp_path / "empty", "--watch", "--interval", "0.05"]
    watching = subprocess.run(  # looping, it would print a frame every 0.05 s until the timeout
        [sys.executable, "-m", "execo_engine", *map(str, command)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert watching.returncode == 0, watching.stderr
    _, line = watching.stdout.splitlines()
    assert (
        line
        == "empty  [....................]     -  0/0 done, 0 in progress, 0 remaining, complete"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--watch", "--json"],
            "--watch does not go with --json (it shows one line per sweep): "
            "leave out --json, or --watch",
        ),
        (
            ["--watch", "--failed", "--by-factor"],
            "--watch does not go with --failed, --by-factor "
            "(it shows one line per sweep): leave out --failed, --by-factor, or --watch",
        ),
        (["--interval", "3"], "--interval 3 needs --watch: add --watch, or leave out --interval"),
        (
            ["--json", "--interval", "0.5"],
            "--interval 0.5 needs --watch: add --watch, or leave out --interval",
        ),
    ],
)
def test_status_refuses_options_that_do_not_go_together(tmp_path, options, message):
    ParamSweeper(tmp_path / "sweep", sweep(GRID), save_sweeps=True)
    result = cli("status", tmp_path / "sweep", *options, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        f"execo-sweep status: {message}\n",
    )


def test_a_location_taken_by_by_factor_for_a_factor_is_said_so(tmp_path):
    """``status --by-factor LOCATION``: argparse only said LOCATION was missing."""
    ParamSweeper(tmp_path / "sweep", sweep(GRID), save_sweeps=True)
    result = cli("status", "--by-factor", tmp_path / "sweep", check=False)
    assert result.returncode == 2
    assert result.stderr.endswith(
        "execo-sweep status: error: the following arguments are required: LOCATION "
        "(--by-factor takes every word after it for a factor: put LOCATION first, as in: "
        "execo-sweep status LOCATION --by-factor FACTOR ...)\n"
    )
    missing = cli("status", check=False)  # without --by-factor: argparse's words alone
    assert missing.stderr.endswith("the following arguments are required: LOCATION\n")
    shown = cli("status", tmp_path / "sweep", "--by-factor", "size")
    assert "size:" in shown.stdout


@pytest.mark.parametrize(
    "command", [["results"], ["plot", "--x", "size", "--y", "latency"], ["report"]], ids=" ".join
)
def test_an_empty_output_file_name_is_refused(tmp_path, command):
    sweeper = ParamSweeper(tmp_path / "sweep", sweep(GRID), save_sweeps=True)
    sweeper.record_result(sweeper.get_next(), {"latency": 1.0})
    name, *options = command
    result = cli(name, tmp_path / "sweep", *options, "-o", "", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        f"execo-sweep {name}: -o '': an empty file name: give the file to write, or leave out -o\n",
    )


@pytest.mark.parametrize(
    "command", [["results"], ["plot", "--x", "size", "--y", "latency"], ["report"]], ids=" ".join
)
def test_an_output_in_a_missing_directory_is_refused_before_any_work(tmp_path, command):
    """The report named its own temporary file (``.report-XXXX.html``) in a raw ``[Errno 2]``;
    results and plot gave the raw error too."""
    sweeper = ParamSweeper(tmp_path / "sweep", sweep(GRID), save_sweeps=True)
    sweeper.record_result(sweeper.get_next(), {"latency": 1.0})
    (tmp_path / "file").write_text("")
    name, *options = command
    for parent, what in (("missing", "does not exist"), ("file", "is not a directory")):
        output = tmp_path / parent / "out.html"
        result = cli(name, tmp_path / "sweep", *options, "-o", output, check=False)
        assert (result.returncode, result.stdout, result.stderr) == (
            2,
            "",
            f"execo-sweep {name}: -o {output}: {tmp_path / parent} {what}: create that "
            f"directory first, or give a file in an existing one\n",
        )
        assert not (tmp_path / parent).is_dir()


@pytest.mark.parametrize(
    ("command", "inside"),
    [
        (["results"], "done"),
        (["results"], "sub/../results"),
        (["report"], "results"),
        (["plot", "--x", "size", "--y", "seconds"], "plot.png"),
    ],
)
def test_an_output_inside_a_sweep_directory_is_refused(tmp_path, command, inside):
    """``results own -o own/done`` wrote over the done records: the sweep was unreadable."""
    parent = tmp_path / "sweeps"  # a directory holding a sweep, as a pytest sweep dir does
    directory = parent / "one"
    sweeper = ParamSweeper(directory, sweep(GRID), save_sweeps=True)
    for combination in sweeper:
        sweeper.record_result(combination, {"seconds": combination["size"] / 10}, "passed", 0.1)
        sweeper.done(combination)
    (tmp_path / "link").symlink_to(directory)
    files = {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}
    for location, output in (
        (directory, directory / inside),
        (parent, directory / inside),
        (directory, tmp_path / "link" / inside),  # through a symbolic link
    ):
        result = cli(*command[:1], location, *command[1:], "-o", output, check=False)
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            f"execo-sweep {command[0]}: -o {output}: inside the sweep directory "
            f"{directory}, where it would replace or sit among the sweep's own files: write "
            f"it outside the sweep directory\n"
        )
    assert {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()} == files
    assert cli("results", parent, "-o", parent / "results.csv").returncode == 0  # beside it


def test_status_failed_lists_the_combinations_that_failed_and_run_again(tmp_path):
    """Without max_attempts no combination is ever failed for good: --failed showed nothing,
    while the pytest tutorial sent users there to see their failed attempts."""
    directory, sweeps = tmp_path / "sweep", sweep(GRID)
    sweeper = ParamSweeper(directory, sweeps, save_sweeps=True)
    for attempt in (1, 2):
        assert sweeper.take(sweeps[1]) is None
        sweeper.fail(sweeps[1], f"AssertionError: run {attempt}\n  detail")
    assert sweeper.take(sweeps[1]) is None  # running again
    text = cli("status", directory, "--failed").stdout
    assert text.splitlines()[1:3] == [
        "    retrying: {'size': 1, 'algo': 'b'} after 2 failed attempt(s): AssertionError: run 2",
        "          detail",
    ]
    assert "retrying:" not in cli("status", directory).stdout  # on request only
    [entry] = json.loads(cli("status", directory, "--json").stdout)["sweeps"]
    assert entry["failed_combinations"] == []
    assert [
        (f["combination"], f["attempts"], f["error"]) for f in entry["retrying_combinations"]
    ] == [({"size": 1, "algo": "b"}, 2, "AssertionError: run 2\n  detail")]
    sweeper.done(sweeps[1])
    assert "retrying:" not in cli("status", directory, "--failed").stdout  # done after all
