"""The execo_engine logger: prints INFO and above to stdout by default (as execo), has DETAIL
and TRACE, and steps aside, without touching the root logger, when the application configures
logging. Scripts run as real subprocesses; pytest's own logging is used in-process."""

import logging
import re
import subprocess
import sys
import textwrap

import pytest

from execo_engine.log import DETAIL, TRACE, default_handler, logger

LOG_LINE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "


def run(source, *args, cwd=None):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_a_script_without_engine_sees_its_lines_on_stdout():
    result = run("""
        import sys
        from execo_engine import logger
        logger.info("result: %d", 42)
        logger.debug("not shown")
        logger.error("giving up")
        sys.exit(1)
    """)
    assert result.returncode == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(LOG_LINE + "INFO: result: 42", lines[0]), lines
    assert re.fullmatch(LOG_LINE + "ERROR: giving up", lines[1]), lines


def test_detail_and_trace_levels():
    result = run("""
        import logging
        from execo_engine.log import logger, DETAIL, TRACE
        assert (DETAIL, TRACE) == (15, 12)
        assert logging.getLevelName("DETAIL") == 15 and logging.getLevelName(12) == "TRACE"
        logger.detail("hidden at INFO")
        logger.setLevel(DETAIL)
        logger.detail("a detail %s", "line")
        logger.trace("hidden at DETAIL")
        logger.setLevel(TRACE)
        logger.trace("a trace line")
    """)
    assert result.returncode == 0, result.stderr
    assert [line.split(" ", 2)[2] for line in result.stdout.splitlines()] == [
        "DETAIL: a detail line",
        "TRACE: a trace line",
    ]


def test_detail_and_trace_name_the_caller(caplog):
    caplog.set_level(TRACE, logger="execo_engine")
    logger.detail("d")
    logger.trace("t")
    assert [(r.levelname, r.funcName, r.filename) for r in caplog.records] == [
        ("DETAIL", "test_detail_and_trace_name_the_caller", "test_log.py"),
        ("TRACE", "test_detail_and_trace_name_the_caller", "test_log.py"),
    ]


APPLICATION = """
    import logging, os, sys
    logging.basicConfig(stream=sys.stderr, format="app %(name)s %(levelname)s %(message)s")
    logging.getLogger().setLevel(logging.WARNING)
    root_handlers = list(logging.getLogger().handlers)
    from execo_engine import Engine, logger

    class Experiment(Engine):
        def run(self):
            logger.info("an engine line")
            logging.getLogger("app").warning("an application line")

    Experiment().start(["-c", os.getcwd()])
    assert logging.getLogger().handlers == root_handlers, "start changed the root handlers"
    assert logging.getLogger().level == logging.WARNING
"""


def test_an_application_with_its_own_root_handler_sees_each_line_once(tmp_path):
    result = run(APPLICATION, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        f"app execo_engine INFO command line arguments: {['-c', '-c', str(tmp_path)]}",
        "app execo_engine INFO command line: -c -c " + str(tmp_path),  # argv[0] is -c
        "app execo_engine INFO run in directory " + str(tmp_path),
        "app execo_engine INFO an engine line",
        "app app WARNING an application line",
    ]


def test_a_handler_of_the_application_on_the_execo_engine_logger_gets_each_line_once():
    result = run("""
        import logging, sys
        from execo_engine import logger
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mine %(message)s"))
        logger.addHandler(handler)
        logger.info("one")
        logger.propagate = False
        logger.info("two")
    """)
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "mine one\nmine two\n")


def test_the_root_logger_is_never_touched(tmp_path):
    result = run(
        """
        import logging, os
        root = logging.getLogger()
        from execo_engine import Engine, ParamSweeper, logger
        Engine().start(["-c", os.getcwd(), "-l", "DEBUG"])
        assert root.handlers == [] and root.level == logging.WARNING, (root.handlers, root.level)
        print("root untouched")
        """,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[3:] == ["root untouched"]  # after 3 log lines


@pytest.mark.parametrize(
    "silence",
    [
        "logger.setLevel(logging.WARNING)",
        "logger.removeHandler(default_handler)",
        "logging.basicConfig(filename='run.log', level=logging.INFO)",
    ],
)
def test_silence_or_reroute_as_the_readme_says(tmp_path, silence):
    result = run(
        f"""
        import logging
        from execo_engine.log import logger, default_handler
        {silence}
        logger.info("an info line")
        """,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    log_file = tmp_path / "run.log"
    if "basicConfig" in silence:
        assert log_file.read_text() == "INFO:execo_engine:an info line\n"


def test_lines_go_to_the_current_stdout():
    result = run("""
        import contextlib, io
        from execo_engine import logger
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            logger.info("inside")
        print("captured:", captured.getvalue().split(" ", 2)[2].strip())
    """)
    assert result.stdout == "captured: INFO: inside\n", result.stderr


def test_under_pytest_lines_are_captured_not_printed(caplog, capsys):
    logger.info("seen by pytest")
    assert [r.getMessage() for r in caplog.records] == ["seen by pytest"]
    assert "seen by pytest" not in capsys.readouterr().out
    assert default_handler in logger.handlers and logger.level == logging.INFO
    assert DETAIL == 15
