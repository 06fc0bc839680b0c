"""``execo-sweep results``, ``runs``, ``plot`` and ``status`` as a user analysing a sweep runs
them: real commands on real sweeps of both stores, what they write read back by pandas."""

import datetime
import io
import json
import os
import subprocess
import sys
import textwrap

import pytest

from execo_engine import provenance
from execo_engine.results import load_results
from execo_engine.sweep import ParamSweeper, sweep

pandas = pytest.importorskip("pandas")

GRID = {"size": [100, 10, 1000], "algo": ["quick", "merge"]}  # levels not in sorted order


def cli(*args, check=True, env=None):
    result = subprocess.run(
        [sys.executable, "-m", "execo_engine", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def recorded(location):
    """A sweep of GRID, in a run: each combination recorded twice (a spread), one of them
    failed once, a value holding a list; ``size=1000, algo=merge`` never ran."""
    where = location("recorded")
    run = provenance.start_run(provenance.capture("engine"))
    sweeper = ParamSweeper(where, sweep(GRID), save_sweeps=True)
    for combination in sweeper.get_sweeps()[:5]:
        sweeper.take(combination)
        for repetition in (1, 2):
            latency = combination["size"] * repetition / 100
            values = {"latency": latency, "trace": [repetition, "x"], "note": "a, b | c"}
            sweeper.record_result(combination, values, "passed", 0.5)
        if combination == {"size": 10, "algo": "quick"}:
            sweeper.fail(combination, "a first failure")
            sweeper.take(combination)
        sweeper.done(combination)
    provenance.end_run()
    return where, run


@pytest.mark.slow  # imports pandas and pyarrow: 1 s
def test_exports_read_back_by_pandas(recorded, tmp_path):
    where, run = recorded
    rows = load_results(where)
    columns = list(rows[0])
    read = {
        "csv": lambda path: pandas.read_csv(path, parse_dates=["time"]),
        "jsonl": lambda path: pandas.read_json(path, lines=True),
        "parquet": pandas.read_parquet,
    }
    for output_format, reader in read.items():
        path = tmp_path / f"results.{output_format}"
        said = cli("results", where, "--format", output_format, "-o", path).stdout
        assert said == f"wrote 10 result(s), {len(columns)} columns, as {output_format} to {path}\n"
        frame = reader(path)
        assert list(frame.columns) == columns, output_format
        assert frame["latency"].tolist() == [r["latency"] for r in rows]
        assert frame["size"].tolist() == [r["size"] for r in rows]
        assert frame["run"].tolist() == [run.id] * 10
        assert frame["attempts"].tolist() == [r["attempts"] for r in rows]
        assert frame["note"].tolist() == ["a, b | c"] * 10
        times = [t.to_pydatetime() for t in pandas.to_datetime(frame["time"], utc=True)]
        assert times == [r["time"] for r in rows], output_format
        trace = frame["trace"].tolist()
        assert trace[:2] == (
            [[1, "x"], [2, "x"]] if output_format == "jsonl" else ['[1, "x"]', '[2, "x"]']
        )

    text = cli("results", where).stdout  # CSV on standard output
    assert pandas.read_csv(io.StringIO(text)).shape == (10, len(columns))
    markdown = cli("results", where, "--format", "markdown").stdout.splitlines()
    assert markdown[0] == "| " + " | ".join(columns) + " |"
    assert markdown[1] == "|" + "---|" * len(columns) and len(markdown) == 12
    assert "| a, b \\| c |" in markdown[2]  # a | in a cell is escaped
    refused = cli("results", where, "--format", "parquet", check=False)
    assert refused.returncode == 2
    assert "--format parquet writes a file: give it with -o FILE" in refused.stderr


def test_runs_lists_each_run_with_its_commit_and_what_it_finished(recorded):
    where, run = recorded
    text = cli("runs", where).stdout.splitlines()
    assert text[0].endswith(":")  # the sweep's name
    assert text[1].startswith(f"  {run.id}  ") and " engine  " in text[1]
    commit = provenance.code_label(run.commit, run.dirty, run.diff)
    assert f"  {commit}  5 done, 1 failed attempt(s), 10 result(s)" in text[1]
    [listed] = json.loads(cli("runs", where, "--json").stdout)["runs"]
    assert (listed["id"], listed["done"], listed["results"], listed["commit"]) == (
        run.id,
        5,
        10,
        run.commit,
    )
    assert datetime.datetime.fromisoformat(listed["start"]).tzinfo is not None


@pytest.mark.slow  # imports matplotlib: 1.5 s
def test_plot_draws_spread_and_counts_series_in_grid_order(recorded, tmp_path):
    pytest.importorskip("matplotlib")
    where, _ = recorded
    png = tmp_path / "latency.png"
    lines = cli("plot", where, "--x", "size", "--y", "latency", "--hue", "algo", "-o", png).stdout
    assert lines.splitlines() == [
        f"wrote {png}: 2 series, mean and spread (smallest to largest)",
        "  algo=quick: 10: 0.15 [0.1, 0.2] n=2, 100: 1.5 [1, 2] n=2, 1000: 15 [10, 20] n=2",
        "  algo=merge: 10: 0.15 [0.1, 0.2] n=2, 100: 1.5 [1, 2] n=2",
    ]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    by_algo = cli("plot", where, "--x", "algo", "--y", "latency", "-o", png).stdout
    assert (
        by_algo.splitlines()[1] == "  latency: quick: 5.55 [0.1, 20] n=6, merge: 0.825 [0.1, 2] n=4"
    )


@pytest.mark.slow  # imports matplotlib: 1.5 s
def test_plot_says_the_file_it_wrote_when_o_has_no_extension(tmp_path):
    pytest.importorskip("matplotlib")
    sweeper = ParamSweeper(tmp_path / "sweep", sweep({"a": [1, 2]}))
    for combination in iter(sweeper.get_next, None):
        sweeper.record_result(combination, {"y": combination["a"] * 1.5})
        sweeper.done(combination)
    lines = cli("plot", tmp_path / "sweep", "--x", "a", "--y", "y", "-o", tmp_path / "out").stdout
    assert lines.splitlines()[0] == (
        f"wrote {tmp_path / 'out.png'}: 1 series, mean and spread (smallest to largest)"
    )
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "out").exists()


def test_without_pandas_the_error_names_the_extra(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pandas.py").write_text("raise ImportError('not installed here')\n")
    sweeper = ParamSweeper(tmp_path / "sweep", sweep({"a": [1]}))
    sweeper.record_result(sweeper.get_next(), {"x": 1.0})
    env = {**os.environ, "PYTHONPATH": str(shadow)}
    script = f"import execo_engine; execo_engine.results_frame({str(tmp_path / 'sweep')!r})"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 1
    assert (
        "ImportError: results_frame needs pandas: pip install 'execo_engine[analysis]'"
        in result.stderr
    )
    out = tmp_path / "r.parquet"
    refused = cli(
        "results", tmp_path / "sweep", "--format", "parquet", "-o", out, check=False, env=env
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "needs pandas and pyarrow: pip install 'execo_engine[analysis]'" in refused.stderr


BLOCKING_TEST = """
import os, time, pytest

@pytest.mark.execo_sweep({{"i": list(range(6))}})
def test_slow(i):
    deadline = time.monotonic() + 120
    while not os.path.exists({release!r}) and time.monotonic() < deadline:
        time.sleep(0.01)  # the experiment runs until the test lets it finish
"""


@pytest.mark.slow
def test_status_tells_running_from_claimed_ahead(location, tmp_path, poll):
    release = tmp_path / "release"
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_slow.py").write_text(
        textwrap.dedent(BLOCKING_TEST.format(release=str(release)))
    )
    where = location("ahead")
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--execo-sweep-dir={where}"],
        cwd=project,
        stdout=subprocess.DEVNULL,
    )
    try:

        def claims():
            entries = json.loads(cli("status", where, "--json", check=False).stdout or "{}")
            return entries.get("sweeps", [{}])[0].get("claims", [])

        poll(lambda: len(claims()) == 6, "the session's claims")
        [entry] = json.loads(cli("status", where, "--json").stdout)["sweeps"]
        assert [claim["ahead"] for claim in entry["claims"]] == [False] + [True] * 5
        assert (entry["inprogress"], entry["claimed_ahead"]) == (6, 5)
        text = cli("status", where).stdout
        assert "6 in progress (1 running, 5 claimed ahead)" in text
        assert "    in progress: {'i': 0} on " in text and "    claimed ahead: {'i': 1} on " in text
    finally:
        release.touch()
        assert session.wait(timeout=120) == 0


def test_the_output_extension_chooses_the_format_unless_format_is_given(recorded, tmp_path):
    """``-o results.parquet`` wrote CSV into a file named .parquet, without a word."""
    where, _ = recorded
    for extension, output_format, starts in (
        ("jsonl", "jsonl", b"{"),
        ("md", "markdown", b"| "),
        ("CSV", "csv", b"size,"),
        ("txt", "csv", b"size,"),  # no known extension: CSV
    ):
        path = tmp_path / f"r.{extension}"
        said = cli("results", where, "-o", path).stdout
        assert said.startswith("wrote 10 result(s), ") and f" as {output_format} to " in said
        assert path.read_bytes().startswith(starts), extension
    contradicted = cli("results", where, "-o", tmp_path / "x.jsonl", "--format", "csv", check=False)
    assert contradicted.returncode == 2
    assert contradicted.stderr == (
        f"execo-sweep results: -o {tmp_path / 'x.jsonl'} names a jsonl file, but --format csv: "
        f"leave out --format (the extension decides), or give a matching file name\n"
    )
    assert not (tmp_path / "x.jsonl").exists()
