"""The mistakes of a user's first week (issue 27), each through the real entry point it comes
in by: the API, the ``execo-sweep`` command (a subprocess), a pytest session (``pytester``),
a PostgreSQL URL to a closed port. Each gets a clear answer at the call, naming what is wrong,
and never leaves the sweep unreadable. ``docs/reference/errors.md`` lists these messages."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from fractions import Fraction

import pytest

from execo_engine.errors import CannotConnectError, UnsupportedValueError
from execo_engine.store.postgresql.connection import CONNECT_TIMEOUT, RECONNECT_SECONDS
from execo_engine.sweep import HashableDict, ParamSweeper, sweep

GRID = {"size": [1, 2], "algo": ["a", "b"]}
PASSWORD = "s3cret-pw"
#: How long an unreachable database may take to be reported: well under the 2 minutes of
#: the reconnect budget it used to take, with room for a loaded machine (not a benchmark)
REPORTED_WITHIN = 30.0


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "execo_engine", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- record_result: what a writer accepts, every reader reads ---------------------------------


def test_a_plain_dict_equal_to_a_combination_is_that_combination(location):
    url = location()
    sweeper = ParamSweeper(url, sweep(GRID), save_sweeps=True)
    combination = sweeper.get_next()
    sweeper.record_result(dict(combination), {"latency": 0.5}, "passed", 0.1)
    sweeper.done(dict(combination))
    assert sweeper.get_done() == [combination]
    for reader in (ParamSweeper(url, sweep(GRID)), ParamSweeper(url, read_only=True)):
        [result] = reader.get_results()
        assert type(result["combination"]) is HashableDict
        assert result["combination"] == combination and result["values"] == {"latency": 0.5}
    rows = cli("results", url, "--format", "jsonl")
    assert rows.returncode == 0, rows.stderr
    [row] = [json.loads(line) for line in rows.stdout.splitlines()]
    assert (row["size"], row["algo"], row["latency"], row["outcome"]) == (1, "a", 0.5, "passed")


def test_anything_else_is_refused_as_done_refuses_it(location):
    sweeper = ParamSweeper(location(), sweep(GRID))
    combination = sweeper.get_next()
    for bad in ({"size": 9, "algo": "a"}, {"size": [1]}, [1, "a"]):
        with pytest.raises(TypeError) as by_done:
            sweeper.done(bad)
        with pytest.raises(TypeError) as by_record:
            sweeper.record_result(bad, {"latency": 0.5})
        assert str(by_record.value) == str(by_done.value)
        assert repr(bad) in str(by_done.value)
    with pytest.raises(TypeError, match="plain dict equal to no combination of the sweeps"):
        sweeper.done({"size": 9, "algo": "a"})
    assert sweeper.get_results() == [] and sweeper.get_inprogress() == [combination]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (42, "error=42: give a text, an exception instance"),
        (ValueError, "error=<class 'ValueError'> is an exception class: pass an instance"),
        ((ValueError, ValueError("x"), None), "error=(<class 'ValueError'>, ValueError('x')"),
    ],
)
def test_a_failure_that_is_no_text_nor_exception_is_refused_before_anything_is_written(
    tmp_path, error, message
):
    sweeper = ParamSweeper(tmp_path, sweep(GRID))
    combination = sweeper.get_next()
    with pytest.raises(TypeError, match=re.escape(f"ParamSweeper: {message}")):
        sweeper.fail(combination, error)
    assert sweeper.get_inprogress() == [combination] and sweeper.get_failed() == {}
    assert sweeper.fail(combination, ValueError("why")) is False  # and the right call works
    assert sweeper.get_inprogress() == []


@pytest.mark.parametrize("method", ["done_batch", "skip_batch", "cancel_batch", "fail_batch"])
def test_a_batch_method_given_one_combination_refuses_it(tmp_path, method):
    """``done_batch(combination)`` iterated the dict: its keys were written as done records."""
    sweeper = ParamSweeper(tmp_path, sweep(GRID))
    combination = sweeper.get_next()
    for bad, what in ((combination, "one combination"), (None, "the value"), ("ab", "the value")):
        with pytest.raises(TypeError) as raised:
            getattr(sweeper, method)(bad)
        assert str(raised.value) == (
            f"ParamSweeper: expected a list of combinations, got {what} {bad!r}: pass a list "
            f"(or any iterable) of combinations, [combination] for one"
        )
    assert not (tmp_path / "done").exists()  # nothing written
    assert sweeper.get_inprogress() == [combination]
    getattr(sweeper, method)(iter([combination]))  # any iterable
    assert sweeper.get_inprogress() == []


def test_a_filter_that_is_no_function_or_returns_no_combinations_is_named(tmp_path):
    """``get_next(5)`` said "'int' object is not callable", a filter returning None "'NoneType'
    object is not iterable", from inside the store."""
    sweeper = ParamSweeper(tmp_path, sweep(GRID))
    with pytest.raises(TypeError, match=r"^ParamSweeper: filtr=5 is not callable: give a"):
        sweeper.get_next(5)

    def first_only(todo):
        return todo[0]  # a combination, not a list of them

    for filtr, returned in (
        (lambda _todo: None, "'<lambda>' returned None"),
        (first_only, "'first_only' returned {'size': 1, 'algo': 'a'}"),
    ):
        with pytest.raises(TypeError, match=re.escape(f"ParamSweeper: the filter {returned}: ")):
            sweeper.get_next(filtr)
        with pytest.raises(TypeError, match=re.escape(returned)):
            sweeper.get_next_batch(2, filtr)
    assert sweeper.get_inprogress() == []
    assert sweeper.get_next(lambda todo: todo[::-1]) == {"size": 2, "algo": "b"}


@pytest.mark.parametrize("location", ["", None, 5, b"sweep"])
def test_a_location_that_is_no_path_or_empty_is_named(tmp_path, monkeypatch, location):
    """``''`` was a FileNotFoundError naming '' (execo used the current directory), None and
    numbers an error of os.fspath."""
    monkeypatch.chdir(tmp_path)
    kind = ValueError if location == "" else TypeError
    with pytest.raises(kind, match=re.escape(f"ParamSweeper: persistence_dir={location!r}")):
        ParamSweeper(location, sweep(GRID))
    assert os.listdir(tmp_path) == []


def test_get_next_batch_counts_as_execo_did(tmp_path):
    """None for 0 or less, a fraction rounded up (execo 2.8.2 does both); a clear error for
    anything that is not a number."""
    sweeper = ParamSweeper(tmp_path, sweep(GRID))
    assert sweeper.get_next_batch(0) == [] and sweeper.get_next_batch(-1) == []
    assert (
        len(sweeper.get_next_batch(1.5)) == 2 and len(sweeper.get_next_batch(Fraction(1, 3))) == 1
    )
    for bad in (None, "2", True, float("nan"), float("inf")):
        with pytest.raises(TypeError, match=re.escape(f"num_combs={bad!r}: give how many")):
            sweeper.get_next_batch(bad)
    assert len(sweeper.get_inprogress()) == 3


def test_arguments_swapped_are_refused_saying_so(location):
    sweeper = ParamSweeper(location(), sweep(GRID))
    combination = sweeper.get_next()
    with pytest.raises(TypeError, match=r"arguments swapped\? The first, \{'latency': 0.5\}"):
        sweeper.record_result({"latency": 0.5}, combination, "passed", 0.1)
    with pytest.raises(TypeError, match=r"values=\{'size': 1.* is not a mapping|swapped"):
        sweeper.record_result(HashableDict(latency=0.5), combination)
    assert sweeper.get_results() == []


@pytest.mark.parametrize(
    ("values", "outcome", "duration", "error", "message"),
    [
        ({"ratio": Fraction(1, 3)}, None, None, UnsupportedValueError, r"Fraction\(1, 3\)"),
        ({"n": 10**5000}, None, None, UnsupportedValueError, r"integer 0x[0-9a-f]+\.\.\. \("),
        ({"deep": [[[[[1]]]]] * 1}, None, None, None, ""),  # fine: nests a few levels
        ([("latency", 0.5)], None, None, TypeError, r"values=\[\('latency', 0.5\)\] is not a"),
        ({"latency": 0.5}, 200, None, TypeError, r"outcome=200: give a string"),
        ({"latency": 0.5}, None, float("nan"), ValueError, r"duration=nan: give seconds"),
        ({"latency": 0.5}, None, -1, ValueError, r"duration=-1: give seconds"),
        ({"latency": 0.5}, None, True, ValueError, r"duration=True: give seconds"),
    ],
)
def test_values_are_checked_before_anything_is_written(
    location, values, outcome, duration, error, message
):
    url = location()
    sweeper = ParamSweeper(url, sweep(GRID))
    combination = sweeper.get_next()
    if error is None:
        sweeper.record_result(combination, values, outcome, duration)
        assert ParamSweeper(url, [], read_only=True).get_results()[0]["values"] == values
        return
    with pytest.raises(error, match=message):
        sweeper.record_result(combination, values, outcome, duration)
    sweeper.record_result(combination, {"latency": 0.5})  # nothing half-written before
    assert [r["values"] for r in ParamSweeper(url, [], read_only=True).get_results()] == [
        {"latency": 0.5}
    ]


@pytest.mark.slow
def test_an_unreadable_result_row_is_skipped_with_one_warning_naming_it(postgresql, caplog):
    """The PostgreSQL twin of tests/test_hostile_files.py's results case: a row written by
    hand (or by an older version) that is not a result record costs that row only."""
    url = postgresql.url("hostile-results")
    sweeper = ParamSweeper(url, sweep(GRID), save_sweeps=True)
    first, second = sweeper.get_next_batch(2)
    sweeper.record_result(first, {"latency": 0.5}, "passed", 0.1)
    [(sweep_id,)] = postgresql.execute(
        "SELECT id FROM execo_sweeps WHERE name = %s", url.split("sweep=")[1].split("&")[0]
    )
    [(row,)] = postgresql.execute(
        "INSERT INTO execo_results (sweep, token, record) VALUES (%s, gen_random_uuid(), %s) "
        "RETURNING id",
        sweep_id,
        '{"combination":{"__dict__":[["size",1]]},"values":{},"outcome":null,'
        '"duration":null,"host":"h","time":1.0}',
    )
    sweeper.record_result(second, {"latency": 0.7}, "failed", 0.2)
    for reader in (ParamSweeper(url, sweep(GRID)), ParamSweeper(url, read_only=True)):
        caplog.clear()
        for _ in range(2):  # read twice, warned once
            assert [(r["combination"], r["values"]) for r in reader.get_results()] == [
                (first, {"latency": 0.5}),
                (second, {"latency": 0.7}),
            ]
        [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert f"unreadable result record in execo_results, id {row}, skipped" in warning
    exported = cli("results", url, "--format", "jsonl")
    assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 2
    assert f"id {row}, skipped" in exported.stderr


# -- a database never reached -------------------------------------------------------------


def closed_port() -> int:
    """A port of 127.0.0.1 nobody listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable_url(port: int, **parameters: object) -> str:
    query = "".join(f"&{key}={value}" for key, value in parameters.items())
    return f"postgresql://someone:{PASSWORD}@127.0.0.1:{port}/db?sweep=x{query}"


@pytest.fixture
def psycopg():
    return pytest.importorskip("psycopg", reason="the postgresql extra is not installed")


def check_unreachable_message(text: str, port: int) -> None:
    assert f"cannot connect to 127.0.0.1:{port}: Connection refused; check the URL" in text
    assert "postgresql://someone@127.0.0.1" in text  # the URL, without its password
    assert PASSWORD not in text and "could not reach the database again" not in text


def test_a_closed_port_is_a_configuration_error_at_once_through_the_api(psycopg):
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(CannotConnectError) as error:
        ParamSweeper(unreachable_url(port), sweep(GRID))
    elapsed = time.monotonic() - started
    check_unreachable_message(str(error.value), port)
    assert elapsed < REPORTED_WITHIN < RECONNECT_SECONDS, elapsed
    print(f"closed port reported after {elapsed:.2f} s")


@pytest.mark.parametrize("password_in", ["user part", "query"])
def test_a_closed_port_through_execo_sweep_status(psycopg, password_in):
    port = closed_port()
    url = unreachable_url(port)
    if password_in == "query":  # libpq also reads ?password=
        url = url.replace(f":{PASSWORD}@", "@") + f"&password={PASSWORD}"
    started = time.monotonic()
    result = cli("status", url)
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("execo-sweep status: cannot connect to")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    check_unreachable_message(result.stderr, port)
    assert elapsed < REPORTED_WITHIN, elapsed


@pytest.mark.parametrize("scheme", ["POSTGRESQL", "PostgreSQL", "postgres"])
def test_a_url_scheme_in_any_case_is_a_url_to_the_command(psycopg, scheme):
    port = closed_port()
    result = cli("status", unreachable_url(port).replace("postgresql", scheme, 1))
    assert (result.returncode, result.stderr) == (
        2,
        f"execo-sweep status: cannot connect to 127.0.0.1:{port}: Connection refused; check the "
        f"URL {scheme.lower()}://someone@127.0.0.1:{port}/db?sweep=x\n",
    )


def test_a_location_that_starts_as_a_url_but_is_none_is_named_without_its_password():
    result = cli("status", f"postgresql:/someone:{PASSWORD}@127.0.0.1:5499/db?sweep=x")
    assert (result.returncode, result.stderr) == (
        2,
        "execo-sweep status: postgresql:/someone@127.0.0.1:5499/db?sweep=x: not a postgresql:// "
        "URL: write postgresql://user@host:port/database?sweep=NAME\n",
    )


PARAMETERS_PAGE = "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("&bogus=1", 'invalid URI query parameter: "bogus"'),
        ("&connect_timeout=abc", "bad value for connect_timeout: 'abc'"),
    ],
)
def test_a_url_parameter_libpq_refuses_is_named_by_the_command(psycopg, query, reason):
    result = cli("status", f"postgresql://someone:{PASSWORD}@127.0.0.1:5499/db?sweep=x{query}")
    assert (result.returncode, result.stderr) == (
        2,
        f"execo-sweep status: postgresql://someone@127.0.0.1:5499/db?sweep=x{query}: {reason}: "
        f"fix or remove that URL parameter (those libpq takes: {PARAMETERS_PAGE})\n",
    )


def test_a_url_that_is_no_url_is_named_by_the_command():
    result = cli("status", f"postgresql://someone:{PASSWORD}@[::1/db?sweep=x")
    assert (result.returncode, result.stderr) == (
        2,
        "execo-sweep status: postgresql://someone@[::1/db?sweep=x: not a URL (Invalid IPv6 URL): "
        "write postgresql://user@host:port/database?sweep=NAME, an IPv6 host in brackets "
        "(postgresql://user@[::1]/database?sweep=NAME)\n",
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "options, named",
    [
        (["--execo-rerun-done"], "--execo-rerun-done"),
        (
            ["--execo-all-done-ok", "--execo-max-attempts=2"],
            "--execo-all-done-ok, --execo-max-attempts",
        ),
    ],
)
def test_sweep_dir_options_without_a_sweep_dir_are_a_usage_error(pytester, options, named):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(*options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: {named}: acts on a sweep dir, and this session has none*"
            "add --execo-sweep-dir=DIR*"
        ]
    )


def test_their_ini_twins_without_a_sweep_dir_are_left_alone(pytester):
    pytester.makeini("[pytest]\nexeco_rerun_done = true\nexeco_max_attempts = 2\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_a_closed_port_in_pytest_is_a_usage_error(pytester, psycopg):
    pytester.makepyfile(
        test_grid="""
        import pytest
        @pytest.mark.execo_sweep({"size": [1, 2]})
        def test_grid(size):
            pass
        """
    )
    port = closed_port()
    started = time.monotonic()
    result = pytester.runpytest_subprocess(f"--execo-sweep-dir={unreachable_url(port)}")
    elapsed = time.monotonic() - started
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text and "Traceback" not in text
    result.stderr.fnmatch_lines(["ERROR: --execo-sweep-dir: cannot connect to 127.0.0.1:*"])
    check_unreachable_message(text, port)
    assert elapsed < REPORTED_WITHIN, elapsed


@pytest.fixture
def silent_server():
    """A port of 127.0.0.1 that accepts connections and never answers (a wrong service, a
    firewall that swallows packets): only a timeout ends a connection attempt."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.mark.slow  # waits for the 2 s timeout it checks
def test_the_urls_connect_timeout_is_honoured(psycopg, silent_server):
    started = time.monotonic()
    with pytest.raises(CannotConnectError, match=r"127.0.0.1:\d+: connection timeout expired"):
        ParamSweeper(unreachable_url(silent_server, connect_timeout=1), [1])
    elapsed = time.monotonic() - started
    assert elapsed < CONNECT_TIMEOUT, elapsed  # the URL's 1 s (per attempt), not the default
    print(f"connect_timeout=1 reported after {elapsed:.2f} s")


@pytest.mark.slow
def test_without_connect_timeout_a_silent_server_is_reported_after_the_default(
    psycopg, silent_server
):
    started = time.monotonic()
    with pytest.raises(CannotConnectError, match="connection timeout expired; check the URL"):
        ParamSweeper(unreachable_url(silent_server), [1])
    elapsed = time.monotonic() - started
    assert CONNECT_TIMEOUT <= elapsed < RECONNECT_SECONDS, elapsed
    print(f"default connect timeout reported after {elapsed:.2f} s")


# -- the pytest marker --------------------------------------------------------------------


def test_a_factor_without_levels_is_a_collection_error_naming_it_and_the_test(pytester):
    pytester.makepyfile(
        test_x="""
        import pytest
        @pytest.mark.execo_sweep({"n": [], "m": [1, 2]})
        def test_x(n, m):
            pass
        """
    )
    result = pytester.runpytest("--execo-sweep-dir=results")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "test_x.py::test_x: factor 'n' of @pytest.mark.execo_sweep has no levels ([]), so "
            "sweep() leaves it out of every combination, yet the test takes an argument 'n'*"
        ]
    )
    text = result.stdout.str()
    assert "fixture 'n' not found" not in text and "Traceback" not in text
    result.assert_outcomes(errors=1)
    # no item ran: no attempt was counted (failed attempts live in each sweep's done file)
    assert list((pytester.path / "results").glob("*/done")) == []


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('"not a dict"', "needs a sweep dict or a list of combinations (dicts), got str"),
        ('{"m": "12"}', "sweep: levels of factor 'm' must be a non-string iterable"),
        (
            '{"m": [1]}, {"m": [2]}',
            "takes one argument, a sweep dict or a list of combinations, and for a sweep dict "
            "exclude=... (got 2 argument(s))",
        ),
        (
            '{"m": [1]}, excludes=[{"m": 1}]',
            "exclude=... (got 1 argument(s), and excludes=)",
        ),
    ],
)
def test_a_malformed_marker_is_a_collection_error_with_the_message_only(pytester, marker, message):
    pytester.makepyfile(
        test_y=f"""
        import pytest
        @pytest.mark.execo_sweep({marker})
        def test_y(m):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"test_y.py::test_y: *{message}*"])
    errors = result.stdout.str().split("ERROR collecting")[1].split("short test summary")[0]
    assert "pluggy" not in errors and "Traceback" not in errors and "_hooks.py" not in errors
    [_, shown, _] = errors.strip().splitlines()  # the header's end, the message, a rule
    assert shown.startswith("test_y.py::test_y: ") and message in shown


UNKEPT_LEVELS = [
    ("[[1, 2], [3]]", "cannot be recorded: ParamSweeper: element {'n': [1, 2]} is unhashable"),
    ("[Opaque()]", "cannot be recorded: cannot store <test_z.Opaque object at 0x"),
    ('[float("nan")]', "cannot be recorded: cannot store {'n': nan} as an element: NaN"),
    ("[1, 1, 2]", "gives the combination {'n': 1} twice: a combination is one unit of work"),
]


def _unkept_level_session(pytester, levels, message, *workers):
    """A session recording a marker with ``levels``: a collection error showing ``message``,
    naming the test, nothing recorded; its text."""
    pytester.makepyfile(
        test_z=f"""
        import pytest
        class Opaque:
            pass
        @pytest.mark.execo_sweep({{"n": {levels}}})
        def test_z(n):
            pass
        """
    )
    run = pytester.runpytest_subprocess if workers else pytester.runpytest
    result = run("--execo-sweep-dir=results", *workers)
    # a collection error: pytest stops (xdist's controller says: tests failed)
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if workers else pytest.ExitCode.INTERRUPTED)
    outcomes = result.parseoutcomes()  # xdist: one error or one per worker, whichever came
    assert outcomes.get("errors", 0) >= 1 and "passed" not in outcomes
    text = result.stdout.str() + result.stderr.str()
    assert f"test_z.py::test_z: @pytest.mark.execo_sweep{' ' if 'twice' in message else ': '}" in (
        text
    )
    assert message in text
    assert "INTERNALERROR" not in text and "Traceback" not in text
    assert list((pytester.path / "results").glob("*/done")) == []
    return text


@pytest.mark.parametrize(("levels", "message"), UNKEPT_LEVELS)
def test_a_level_a_sweep_dir_cannot_keep_is_a_collection_error_naming_it(pytester, levels, message):
    """They were an INTERNALERROR when the first item ran (or a false skip "done by another
    session" for a repeated combination), and the tests after it never ran."""
    _unkept_level_session(pytester, levels, message)
    assert pytester.runpytest().ret == pytest.ExitCode.OK  # without a sweep dir: run as they are


def test_a_level_a_sweep_dir_cannot_keep_is_a_collection_error_under_xdist(pytester):
    """Under xdist, the INTERNALERROR was an assertion of xdist's naming no level."""
    _unkept_level_session(pytester, *UNKEPT_LEVELS[0], "-n", "2")
    assert pytester.runpytest_subprocess("-n", "2").ret == pytest.ExitCode.OK  # no sweep dir


def test_two_markers_on_one_test_are_a_collection_error(pytester):
    """Only the closest was used: each item failed on a missing fixture, counting attempts."""
    pytester.makepyfile(
        test_s="""
        import pytest
        @pytest.mark.execo_sweep({"a": [1, 2]})
        @pytest.mark.execo_sweep({"b": [3, 4]})
        def test_stack(a, b):
            pass
        """
    )
    result = pytester.runpytest("--execo-sweep-dir=results")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "test_s.py::test_stack: @pytest.mark.execo_sweep is given 2 times on test_stack: "
            "give one, with every factor in one sweep dict*"
        ]
    )
    assert "fixture 'a' not found" not in result.stdout.str()
    assert list((pytester.path / "results").glob("*/done")) == []


@pytest.mark.parametrize(
    "parametrize",
    ['"n", [5, 6]', '"x, n", [(0, 5)]', '["n"], [5]', 'argnames="n", argvalues=[5]'],
)
def test_a_factor_parametrize_gives_too_is_a_collection_error_naming_both(pytester, parametrize):
    """pytest said "duplicate parametrization of 'n'", naming no marker."""
    pytester.makepyfile(
        test_p=f"""
        import pytest
        @pytest.mark.parametrize({parametrize})
        @pytest.mark.execo_sweep({{"n": [1, 2]}})
        def test_both(n, x=None):
            pass
        @pytest.mark.parametrize("m", [5, 6])
        @pytest.mark.execo_sweep({{"n": [1, 2]}})
        def test_apart(n, m):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "test_p.py::test_both: 'n' is given by @pytest.mark.execo_sweep and by "
            "@pytest.mark.parametrize: give its levels in one of them only"
        ]
    )
    assert "test_apart" not in result.stdout.str()  # the other test is fine


def test_a_factor_named_request_is_a_collection_error_naming_the_marker(pytester):
    """pytest said "'request' is a reserved name and cannot be used in
    @pytest.mark.parametrize", naming a marker the test does not have."""
    pytester.makepyfile(
        test_r="""
        import pytest
        @pytest.mark.execo_sweep({"request": [1, 2], "n": [3]})
        def test_named(request):
            pass
        @pytest.mark.execo_sweep({"request": [1, 2], "n": [3]})
        def test_unasked(n, combination):
            assert combination["request"] in (1, 2)
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "test_r.py::test_named: factor 'request' of @pytest.mark.execo_sweep has the name "
            "of pytest's own fixture, which no test argument can take: rename the factor (the "
            "test then takes it by its new name, or reads combination[...])"
        ]
    )
    assert "reserved name" not in result.stdout.str()
    assert "test_unasked" not in result.stdout.str()  # a factor the test does not ask for: fine


def test_a_class_marker_with_a_generator_of_levels_gives_each_method_every_level(pytester):
    """The first method used the generator up: the others got one empty combination, recorded
    done, or a "no levels" error."""
    pytester.makepyfile(
        test_g="""
        import pytest
        @pytest.mark.execo_sweep({"n": (i for i in range(3))})
        class TestG:
            def test_a(self, n):
                pass
            def test_b(self, combination):
                assert set(combination) == {"n"}
            def test_c(self, n):
                pass
        """
    )
    result = pytester.runpytest("--execo-sweep-dir=results", "-v")
    result.assert_outcomes(passed=9)
    for method in "abc":
        result.stdout.fnmatch_lines([f"*TestG::test_{method}[[]2[]] PASSED*"])


def test_execo_record_in_a_test_without_the_marker_warns_at_its_line(pytester):
    """With a sweep dir, its values went nowhere in it, without a word."""
    pytester.makepyfile(
        test_o="""
        import pytest
        def test_outside(execo_record):
            execo_record(x=1)
        @pytest.mark.execo_sweep({"n": [1]})
        def test_in(n, execo_record):
            execo_record(x=1)
        """
    )
    result = pytester.runpytest("--execo-sweep-dir=results")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*test_o.py:3: PytestWarning: execo_record in test_o.py::test_outside, a test "
            "without @pytest.mark.execo_sweep: no sweep keeps its values*",
        ]
    )
    pytester.runpytest().assert_outcomes(passed=2, warnings=0)  # no sweep dir: nothing to keep


def test_a_value_execo_record_cannot_store_fails_the_test_at_that_call(pytester):
    pytester.makepyfile(
        test_r="""
        from fractions import Fraction
        import pytest
        @pytest.mark.execo_sweep({"m": [1, 2]})
        def test_r(m, execo_record):
            execo_record(ratio=Fraction(m, 3))
        """
    )
    result = pytester.runpytest("--execo-sweep-dir=results")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            ">*execo_record(ratio=Fraction(m, 3))",
            "E*UnsupportedValueError: cannot store Fraction(1, 3) (type fractions.Fraction)*",
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str()
    # the test's line and the message only: no frame of the plugin, the sweeper or the codec
    # (about 8 of them came between the two)
    for package in ("pytest_execo", "execo_engine"):
        assert f"{package}/" not in result.stdout.str()


# -- paths: the component in the way ----------------------------------------------------


def in_the_way_message(blocker: object) -> str:
    return (
        f"{str(blocker)!r} is in the way: it is a file, not a directory (choose another path, "
        f"or move {str(blocker)!r} away)"
    )


def test_a_file_in_the_way_is_named_by_the_api(tmp_path):
    (tmp_path / "afile.txt").write_text("notes\n")
    with pytest.raises(NotADirectoryError) as error:
        ParamSweeper(tmp_path / "afile.txt" / "sub", sweep(GRID))
    assert str(error.value) == (
        f"persistence directory {str(tmp_path / 'afile.txt' / 'sub')!r}: "
        f"{in_the_way_message(tmp_path / 'afile.txt')}"
    )
    with pytest.raises(NotADirectoryError, match="exists and is not a directory"):
        ParamSweeper(tmp_path / "afile.txt", sweep(GRID))


def test_a_file_in_the_way_is_named_by_the_command(tmp_path):
    (tmp_path / "afile.txt").write_text("notes\n")
    for command in ("status", "results"):
        result = cli(command, tmp_path / "afile.txt" / "sub")
        assert result.returncode == 2
        assert result.stderr.strip() == (
            f"execo-sweep {command}: {tmp_path / 'afile.txt' / 'sub'}: "
            f"{in_the_way_message(tmp_path / 'afile.txt')}"
        )


def test_a_file_in_the_way_is_named_by_submit_before_anything_is_made(tmp_path):
    (tmp_path / "afile.txt").write_text("notes\n")
    result = cli("submit", tmp_path / "afile.txt" / "sub", "--workers", "1", "--", "true")
    assert result.returncode == 1
    assert result.stderr == (
        f"execo-sweep submit: persistence directory "
        f"{str(tmp_path / 'afile.txt' / 'sub')!r}: {in_the_way_message(tmp_path / 'afile.txt')}\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.txt"]


ENGINE = """
from execo_engine import Engine

class Leaf(Engine):
    def run(self):
        print("ran in", self.result_dir)

Leaf().start()
"""


def test_a_file_in_the_way_is_named_by_an_engine_scripts_c_option(tmp_path):
    (tmp_path / "afile.txt").write_text("notes\n")
    (tmp_path / "script.py").write_text(ENGINE)
    result = subprocess.run(
        [sys.executable, "script.py", "-c", "afile.txt/sub"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        f"script.py: error: -c afile.txt/sub: {in_the_way_message(tmp_path / 'afile.txt')}"
    )


def test_a_file_in_the_way_is_named_by_pytest(pytester):
    pytester.makepyfile(
        test_two="""
        import pytest
        @pytest.mark.execo_sweep({"m": [1, 2]})
        def test_two(m):
            pass
        """
    )
    (pytester.path / "afile.txt").write_text("notes\n")
    result = pytester.runpytest("--execo-sweep-dir=afile.txt/sub")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    in_the_way = str(pytester.path / "afile.txt")
    result.stderr.fnmatch_lines(
        [f"ERROR: --execo-sweep-dir: persistence directory *: {in_the_way!r} is in the way*"]
    )
    assert "afile.txt/sub/" not in result.stdout.str() + result.stderr.str()
    assert (pytester.path / "afile.txt").read_text() == "notes\n"


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_sweep_dir_is_a_usage_error(pytester, value):
    """``--execo-sweep-dir=$UNSET`` recorded nothing, without a word."""
    pytester.makepyfile(
        test_two="""
        import pytest
        @pytest.mark.execo_sweep({"m": [1, 2]})
        def test_two(m):
            pass
        """
    )
    result = pytester.runpytest(f"--execo-sweep-dir={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --execo-sweep-dir={value!r}: empty (an unset variable?): give a directory*"]
    )


@pytest.fixture
def read_only_directory(tmpfs):
    """A read-only tmpfs, unmounted afterwards."""
    return tmpfs("read-only", "ro,size=64k")


@pytest.mark.parametrize(("below", "workers"), [("", []), ("/sub", []), ("", ["-n", "2"])])
def test_a_sweep_dir_that_cannot_be_written_is_a_usage_error_before_anything_runs(
    pytester, read_only_directory, below, workers
):
    """It was an INTERNALERROR at the first swept item (under xdist, an AssertionError of
    xdist's naming no file)."""
    pytester.makepyfile(
        test_two="""
        import pytest
        @pytest.mark.execo_sweep({"m": [1, 2]})
        def test_two(m):
            pass
        """
    )
    target = f"{read_only_directory}{below}"
    result = pytester.runpytest_subprocess(f"--execo-sweep-dir={target}", *workers)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --execo-sweep-dir: {target} is not a directory this session can write to "
            f"(Read-only file system): choose a writable directory (or fix its permissions)"
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    collected = pytester.runpytest_subprocess(f"--execo-sweep-dir={target}", "--collect-only")
    assert collected.ret == pytest.ExitCode.OK  # a session that records nothing may read it
