"""Side by side with execo 2.8.2 installed in its own virtual environment (``$EXECO_PYTHON``, or
``/tmp/execo-venv/bin/python``): the same outputs of sweep, geom, igeom, slugify, sweep_stats and
``import *`` (through benchmarks/compare_execo.py), and the same Engine behaviour (result
directory names, ``-c`` creating its directory, log line format, DETAIL level)."""

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import execo_engine
from execo_engine import geom, igeom

COMPARE = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_execo.py"
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def execo_python():
    """The interpreter where execo 2.8.2 is installed (skip when there is none)."""
    python = os.environ.get("EXECO_PYTHON") or "/tmp/execo-venv/bin/python"
    if not os.access(python, os.X_OK):
        pytest.skip(f"no execo 2.8.2 interpreter at {python} (set EXECO_PYTHON)")
    version = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('execo'))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if version.returncode != 0:
        pytest.skip(f"{python} has no execo installed (pip install execo==2.8.2)")
    return python


@pytest.mark.slow
def test_same_outputs_as_execo(execo_python):
    result = subprocess.run(
        [sys.executable, str(COMPARE), "--execo-python", execo_python, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr
    differences = json.loads(result.stdout)["differences"]
    assert set(differences) == {
        "sweep",
        "geom",
        "igeom",
        "slugify",
        "slugify(separator)",
        "sweep_stats",
        "import *",
        "dir(execo_engine)",
    }
    assert {section: cases[:3] for section, cases in differences.items() if cases} == {}


ENGINE = """
import os, sys
from execo_engine import Engine, logger

class Probe(Engine):
    def run(self):
        logger.info("an info line")
        logger.detail("a detail line")
        print("result dir:", os.path.realpath(self.result_dir))
        print("log level:", repr(self.args.log_level))

Probe().start(sys.argv[1:])
"""


def run_engine(python, directory, *args):
    directory.mkdir()
    (directory / "probe.py").write_text(textwrap.dedent(ENGINE))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [python, "probe.py", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "TZ": "Asia/Kolkata"},
    )
    assert result.returncode == 0, result.stderr
    return ANSI_COLOUR.sub("", result.stdout).splitlines()


@pytest.mark.parametrize("interpreter", ["execo", "ours"])
def test_engine_behaves_as_execo(execo_python, tmp_path, interpreter):
    python = execo_python if interpreter == "execo" else sys.executable
    if not os.path.exists("/usr/share/zoneinfo/Asia/Kolkata"):
        pytest.skip("no time zone database (/usr/share/zoneinfo)")
    lines = run_engine(python, tmp_path / "default")
    [directory] = [p for p in (tmp_path / "default").iterdir() if p.is_dir()]
    assert re.fullmatch(r"Probe_\d{8}_\d{6}_\+0530", directory.name), directory.name
    assert f"result dir: {directory}" in lines
    assert any(
        re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO: an info line", line)
        for line in lines
    ), lines
    assert not any("a detail line" in line for line in lines)
    assert "log level: None" in lines

    lines = run_engine(python, tmp_path / "continued", "-c", "new/sub", "-l", "DETAIL")
    created = tmp_path / "continued" / "new" / "sub"
    assert created.is_dir() and f"result dir: {created}" in lines
    assert any(line.endswith("DETAIL: a detail line") for line in lines), lines
    assert "log level: 'DETAIL'" in lines

    lines = run_engine(python, tmp_path / "numbered", "-l", "25")
    assert "log level: '25'" in lines
    assert not any("an info line" in line for line in lines)  # level 25 set: INFO hidden


# Values printed by execo 2.8.2 (checked live, with thousands more, by
# test_same_outputs_as_execo where execo is installed).
@pytest.mark.parametrize(
    "args,floats,integers",
    [
        ((1, 20, 5), [1.0, 2.114742526881128, 4.472135954999579, 9.457416090031757, 20.0], None),
        (
            (1, 1000, 7),
            [
                1.0,
                3.162277660168379,
                9.999999999999998,
                31.622776601683785,
                99.99999999999997,
                316.2277660168378,
                1000.0,
            ],
            [1, 3, 10, 32, 100, 316, 1000],
        ),
        ((0.5, 8, 4), [0.5, 1.2599210498948732, 3.174802103936399, 8.0], [0, 1, 3, 8]),
        ((1.5, 10.5, 3), [1.5, 3.968626966596886, 10.5], [1, 2, 4, 10]),
        ((10, 1, 4), [10.0, 4.641588833612779, 2.154434690031884, 1.0], [1, 2, 5, 10]),
        ((3.5, 296, 1), [3.5], [3]),
        ((1, 10, 3.0), [1.0, 3.1622776601683795, 10.0], [1, 3, 10]),
        # strings, as argparse gives options (execo's igeom int()ed "1.5": ValueError)
        (("1", 100, 3), [1.0, 10.0, 100.0], [1, 10, 100]),
        ((1, "100", "3"), [1.0, 10.0, 100.0], [1, 10, 100]),
        ((" 1 ", "1_0", "+3"), [1.0, 3.1622776601683795, 10.0], [1, 3, 10]),
        (("1.5", "10.5", "3"), [1.5, 3.968626966596886, 10.5], None),
    ],
)
def test_geom_and_igeom_give_execo_values(args, floats, integers):
    assert geom(*args) == floats
    if integers is not None:
        assert igeom(*args) == integers


def test_geom_accepts_any_whole_number_of_steps():
    numpy = pytest.importorskip("numpy")
    assert geom(1, 100, numpy.int64(3)) == geom(1, 100, 3) == [1.0, 10.0, 100.0]


@pytest.mark.parametrize(
    "steps,error",
    [
        (2.5, ValueError),
        (float("nan"), ValueError),
        (-1, ValueError),
        ("-1", ValueError),
        ("3.5", ValueError),
        ("three", ValueError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_geom_refuses_what_execo_answered_with_nonsense(steps, error):
    with pytest.raises(error, match="num_steps"):
        geom(1, 10, steps)


@pytest.mark.parametrize(
    "bounds,error,message",
    [
        (("ten", 100), ValueError, "range_min must be a number, got 'ten'"),
        ((1, "0x10"), ValueError, "range_max must be a number, got '0x10'"),
        ((None, 100), TypeError, "range_min must be a number, got None"),
    ],
)
def test_geom_names_a_bound_that_is_no_number(bounds, error, message):
    for function in (geom, igeom):
        with pytest.raises(error, match=message):
            function(*bounds, 3)


INF, NAN = float("inf"), float("nan")


# execo 2.8.2: [1.0, inf, inf], [nan, nan, 2.0], [1e-320, inf, 1.0], OverflowError...
@pytest.mark.parametrize(
    "bounds,message",
    [
        ((1, INF), "range_max must be a finite number"),
        ((-INF, -1), "range_min must be a finite number"),
        ((NAN, 2), "range_min must be a finite number"),
        ((1, "nan"), "range_max must be a finite number"),
        ((1, 10**400), "range_max must be a finite number"),
        ((1e-320, 1), r"range_max / range_min \(1 / 1e-320\) is beyond a float's range"),
        ((1e300, 1e-300), r"range_max / range_min \(1e-300 / 1e\+300\) is beyond"),
    ],
)
def test_geom_refuses_bounds_execo_answered_with_nonsense(bounds, message):
    for function in (geom, igeom):
        with pytest.raises(ValueError, match=rf"^{function.__name__}: {message}"):
            function(*bounds, 3)


# -- ParamSweeper side by side (issue 28) ----------------------------------------------------

GETTERS = """
import sys
import execo_engine
from execo_engine.sweep import HashableDict, ParamSweeper, sweep
print(execo_engine.__file__, file=sys.stderr)
sweeper = ParamSweeper(sys.argv[1], sweep({"a": [1, 2, 3], "b": ["x"]}))
print("%s/%s" % (sweeper.get_done(), sweeper.get_sweeps()))
sweeper.done(HashableDict(a=2, b="x"))
print("%s/%s" % (sweeper.get_done(), sweeper.get_skipped()))
print(sweeper.stats()[4])
"""


def _as_set(text):
    """What a printed set shows: ``set()``, or the sorted texts of its members (execo's sets
    print in hash order, ours in sweeps order)."""
    tree = ast.parse(text, mode="eval").body
    if isinstance(tree, ast.Call) and ast.unparse(tree) == "set()":
        return "set()"
    assert isinstance(tree, ast.Set), text
    return sorted(ast.unparse(member) for member in tree.elts)


@pytest.mark.slow
def test_getters_print_as_execo_sets(execo_python, tmp_path):
    printed = {}
    for name, python in (("execo", execo_python), ("ours", sys.executable)):
        result = subprocess.run(
            [python, "-c", GETTERS, str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=120,
            env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
            cwd=tmp_path,  # not a directory holding this checkout's execo_engine
        )
        assert result.returncode == 0, result.stderr
        printed[name] = result.stdout.splitlines()
        imported = Path(result.stderr.strip()).resolve()
        mine = Path(execo_engine.__file__).resolve()  # what this test imported
        assert (imported == mine) == (name == "ours"), imported
    execo, ours = printed["execo"], printed["ours"]
    assert ours[0] == "set()/{{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}, {'a': 3, 'b': 'x'}}"
    assert ours[1:] == execo[1:] == ["{{'a': 2, 'b': 'x'}}/set()", "{{'a': 2, 'b': 'x'}}"]
    for mine, theirs in zip(ours, execo, strict=True):
        assert [_as_set(part) for part in mine.split("/")] == [
            _as_set(part) for part in theirs.split("/")
        ]


EXECO_SWEEP = """
import sys
from execo_engine import ParamSweeper, sweep
sweeper = ParamSweeper(sys.argv[1], sweep({"a": [1, 2, 3, 4]}), save_sweeps=True)
for _ in range(3):
    sweeper.done(sweeper.get_next())
sweeper.get_next()  # one in progress
"""


@pytest.mark.slow
def test_a_directory_execo_wrote_is_refused_and_left_for_execo(execo_python, tmp_path):
    """A directory of execo 2.8.2's pickle files: refused by a writer, a reader and status,
    and left as it was, so that execo still finishes it."""
    directory = tmp_path / "execo-sweep"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    written = subprocess.run(
        [execo_python, "-c", EXECO_SWEEP, str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert written.returncode == 0, written.stderr
    files = {path.name: path.read_bytes() for path in directory.iterdir()}
    assert sorted(files) == ["done", "inprogress", "sweeps"]
    for read_only in (False, True):
        with pytest.raises(execo_engine.Execo2DirectoryError, match=r"written by execo 2\.x"):
            execo_engine.ParamSweeper(directory, read_only=read_only)
    status = subprocess.run(
        [sys.executable, "-m", "execo_engine.cli", "status", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode != 0
    assert "was written by execo 2.x" in status.stderr and "Traceback" not in status.stderr
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == files
    finished = subprocess.run(
        [
            execo_python,
            "-c",
            "import sys; from execo_engine import ParamSweeper; "
            "print(len(ParamSweeper(sys.argv[1]).get_done()))",
            str(directory),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert finished.stdout.split() == ["3"], finished.stderr
