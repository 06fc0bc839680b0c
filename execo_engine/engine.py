"""Engine: the base class of experiment scripts.

A subclass overrides :meth:`Engine.init` (add options to :attr:`Engine.args_parser`, prepare)
and :meth:`Engine.run` (the experiment), and the script calls ``MyEngine().start()``. ``start``
goes in execo's order:

1. parses the command line (:attr:`Engine.args`); options added to the parser in ``__init__``
   are known now; any others are left for step 6. A bad value of a known option, a bad ``-l``
   or ``-c`` is a usage error at once (exit status 2, usage line, no traceback) and nothing is
   created;
2. sets the ``execo_engine`` log level from ``-l`` (a number or a name, DETAIL and TRACE
   included; without ``-l`` the level stays what it is, INFO by default);
3. :meth:`Engine.setup_run_name` (class name, local date, UTC offset), then the result
   directory, created when missing: ``-c DIR`` (the same ``-c`` on the first run and to
   continue), otherwise :meth:`Engine.setup_result_dir` (the run name under the current
   directory);
4. ``-R`` redirects, ``-L`` copies stdout and stderr into ``stdout`` and ``stderr`` files of the
   result directory (``-M``: one ``stdout+stderr`` file);
5. logs the command line and the result directory (and, when ``-c DIR`` created DIR, that it
   did), and starts the run's provenance record (see :mod:`execo_engine.provenance`: the git
   commit of the directory of the engine's source file, the versions of
   :attr:`Engine.record_versions`), which every sweeper of :meth:`Engine.sweeper` joins;
6. every ``init`` of the class hierarchy, ancestors first, each class's own method once:
   ``self.args``, ``self.run_name`` and ``self.result_dir`` are set. Then parses the command
   line again with every option (``-h`` is answered here, so its help lists the options added
   in ``init``, unless a required argument is missing: then at step 1); an unknown option or a
   bad value is a usage error, and a result directory created by this start that is still
   empty is removed;
7. every ``run``, ancestors first.

The signals of :data:`STOP_SIGNALS` unwind ``init`` and ``run`` like Ctrl-C (``finally``
blocks run, exit status 128 + signal number); whatever way they end, the claimed but
unfinished combinations of the sweepers made by :meth:`Engine.sweeper` go back at once: failed
(one attempt counted, with the exception's summary: see ``ParamSweeper.fail``) when ``init`` or
``run`` raised an exception, todo again when they were interrupted (Ctrl-C, a stop signal) or
returned. Each sweeper logs a start line (``new sweep in DIR: N combinations``, or ``resuming
DIR: d/N done, f failed, r to run``, and a line when earlier runs on it ran other code), its
progress (the first line within :data:`FIRST_PROGRESS` seconds, then at each tenth of the grid
and at least every ``progress_interval`` seconds) and, at the end, its counts and wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import logging
import os
import shlex
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from execo_engine.log import logger
from execo_engine.paths import not_a_directory
from execo_engine.preempt import PREEMPTION_SIGNALS, preemptible
from execo_engine.provenance import capture, current_run, earlier_code_note, end_run, start_run
from execo_engine.sweeper import ParamSweeper
from execo_engine.utils import copy_outputs, redirect_outputs

#: Seconds between two progress lines of a sweep at most (through the logger).
PROGRESS_INTERVAL = 30.0
#: Seconds after the start of a sweeper when its first progress line is logged at most.
FIRST_PROGRESS = 5.0
#: Seconds between two looks at the progress of a sweeper (to log each tenth of the grid).
PROGRESS_LOOK = 1.0

#: Signals that stop ``init`` and ``run`` as Ctrl-C does (``SystemExit(128 + signal)``), so
#: that the sweepers' unfinished claims are given back before the process exits: SIGTERM and
#: the schedulers' preemption warnings SIGUSR1, SIGUSR2 (see :mod:`execo_engine.preempt`).
STOP_SIGNALS = PREEMPTION_SIGNALS

_LEVEL_NAMES = ("TRACE", "DEBUG", "DETAIL", "INFO", "WARNING", "ERROR", "CRITICAL")
_HELP_OPTIONS = ("-h", "--help")


def _level_number(text: str) -> int:
    """The logging level ``-l`` names: a number, or a level name in any case. Raises
    ``ValueError`` naming ``text`` and the valid levels when it names none."""
    if text.lstrip("-").isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    if not isinstance(level, int):
        raise ValueError(f"invalid log level {text!r} (a number, or {', '.join(_LEVEL_NAMES)})")
    return level


def _log_level(text: str) -> str:
    """``-l``'s value as given (``self.args.log_level`` is ``"DEBUG"`` or ``"5"``, as in execo),
    once checked that it names a level (else a usage error)."""
    try:
        _level_number(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _without_help(argv: Sequence[str]) -> list[str]:
    """``argv`` without its help options (those before a ``--``)."""
    end = argv.index("--") if "--" in argv else len(argv)
    return [arg for arg in argv[:end] if arg not in _HELP_OPTIONS] + list(argv[end:])


class _Progress(threading.Thread):
    """Logs the progress of a sweeper (``done/total``, rate, time left): first after
    :data:`FIRST_PROGRESS` seconds (or ``interval``, if shorter), then each time another tenth
    of the grid is done, and at least every ``interval`` seconds; its :meth:`end_line` tells
    the counts and the wall time at the end.

    It looks at the sweeper every :data:`PROGRESS_LOOK` seconds, or less often when a look
    costs more than a hundredth of that (a huge grid)."""

    def __init__(self, sweeper: ParamSweeper[Any], interval: float) -> None:
        super().__init__(daemon=True, name=f"progress of {sweeper.name}")
        self.sweeper, self.interval = sweeper, interval
        self.stopped = threading.Event()
        self.start_time = time.monotonic()
        self.done_before = len(sweeper.get_done())
        self.total = len(sweeper.get_sweeps())

    def _line(self) -> int:
        """Log a progress line; returns how many are done."""
        sweeps, remaining, _, inprogress, done = self.sweeper.stats()
        elapsed = time.monotonic() - self.start_time
        rate = (len(done) - self.done_before) / elapsed if elapsed > 0 else 0.0
        to_finish = len(remaining) + len(inprogress)
        left = f"about {to_finish / rate:.0f} s left" if rate > 0 else "no rate yet"
        logger.info(
            "%s: %d/%d done (%.0f%%), %d in progress, %.2f/s, %s",
            self.sweeper.name,
            len(done),
            len(sweeps),
            100 * len(done) / len(sweeps) if sweeps else 100.0,
            len(inprogress),
            rate,
            left,
        )
        return len(done)

    def _tenth(self, done: int) -> int:
        return 10 * done // self.total if self.total else 10

    def run(self) -> None:
        look, tenth = PROGRESS_LOOK, self._tenth(self.done_before)
        next_line = self.start_time + min(FIRST_PROGRESS, self.interval)
        while not self.stopped.wait(max(0.0, min(look, next_line - time.monotonic()))):
            began = time.monotonic()
            done = len(self.sweeper.get_done())
            look = max(PROGRESS_LOOK, 100 * (time.monotonic() - began))
            if began < next_line and self._tenth(done) <= tenth:
                continue
            tenth = self._tenth(self._line())
            next_line = time.monotonic() + self.interval

    def end_line(self) -> None:
        """Log the counts and the wall time of this run on the sweeper."""
        counts = self.sweeper.counts()
        logger.info(
            "%s: end of run: %d/%d done (%d in this run), %d failed, %d remaining; wall "
            "time %.1f s",
            self.sweeper.name,
            counts["done"],
            counts["total"],
            counts["done"] - self.done_before,
            counts["failed"],
            counts["total"] - counts["done"] - counts["failed"],
            time.monotonic() - self.start_time,
        )


def _log_start(sweeper: ParamSweeper[Any], directory: str, new: bool) -> None:
    """The start line of a sweeper (a new sweep, or where the one resumed stands), and a line
    when earlier runs on it ran other code than this run (see :mod:`execo_engine.provenance`)."""
    counts = sweeper.counts()
    if new:
        logger.info("new sweep in %s: %d combinations", directory, counts["total"])
    else:
        logger.info(
            "resuming %s: %d/%d done, %d failed, %d to run",
            directory,
            counts["done"],
            counts["total"],
            counts["failed"],
            counts["total"] - counts["done"] - counts["failed"],
        )
    note = earlier_code_note(sweeper.get_runs(), current_run())
    if note is not None:
        logger.warning("%s: %s", directory, note)


class Engine:
    """Base class of experiment engines (see the module documentation for ``start``).

    :attr:`record_versions` names the packages whose installed versions the run records
    (besides execo_engine and pytest), in each sweep made by :meth:`sweeper`, with the git
    commit of the directory of the engine's source file (see :mod:`execo_engine.provenance`).
    """

    #: Packages whose versions the run records in its sweeps (``("numpy", "scipy")``).
    record_versions: Sequence[str] = ()

    def __init__(self) -> None:
        module = sys.modules.get(type(self).__module__)
        path = getattr(module, "__file__", None)
        #: Directory of the engine's source file, None when run interactively.
        self.engine_dir: str | None = os.path.dirname(os.path.abspath(path)) if path else None
        #: Absolute path of the directory where this run writes its results; set by ``start``
        #: before ``init`` (empty before).
        self.result_dir: str = ""
        #: Name of this run; set by :meth:`setup_run_name` before ``init`` (empty before).
        self.run_name: str = ""
        #: Parsed command line. In ``init``: the options known before ``init`` (a value of an
        #: option added in ``init`` may be taken there for a positional argument); in ``run``:
        #: every option, including those added in ``init``. Empty before ``start``.
        self.args = argparse.Namespace()
        #: Add options and arguments here, in ``__init__`` or ``init``.
        self.args_parser = argparse.ArgumentParser(
            prog=os.path.basename(sys.argv[0]) if sys.argv[0] else type(self).__name__,
            description=type(self).__doc__,
        )
        group = self.args_parser.add_argument_group("engine options")
        group.add_argument(
            "-l",
            dest="log_level",
            type=_log_level,
            metavar="LEVEL",
            help=f"log level, a number or a name ({', '.join(_LEVEL_NAMES)}); "
            "default: unchanged (INFO)",
        )
        group.add_argument(
            "-L",
            dest="output_mode",
            action="store_const",
            const="copy",
            help="copy stdout and stderr into the result directory",
        )
        group.add_argument(
            "-R",
            dest="output_mode",
            action="store_const",
            const="redirect",
            help="redirect stdout and stderr into the result directory",
        )
        group.add_argument(
            "-M",
            dest="merge_outputs",
            action="store_true",
            help="with -L or -R, one stdout+stderr file",
        )
        group.add_argument(
            "-c",
            dest="use_dir",
            metavar="DIR",
            help="use (create, or continue in) result directory DIR",
        )
        self._sweepers: list[ParamSweeper[Any]] = []
        self._progress: list[_Progress] = []
        #: While :meth:`sweeper` opens one: whether its sweep is new, its progress interval.
        self._opening: tuple[bool, float] | None = None

    def setup_run_name(self) -> None:
        """Set :attr:`run_name`: ``<ClassName>_<YYYYmmdd_HHMMSS>_<UTC offset>`` in local time,
        for example ``MyEngine_20260131_142501_+0100``, as execo names it."""
        now = datetime.datetime.now().astimezone()
        self.run_name = f"{type(self).__name__}_{now.strftime('%Y%m%d_%H%M%S_%z')}"

    def setup_result_dir(self) -> None:
        """Set :attr:`result_dir`: the run name under the current directory (not called when
        ``-c DIR`` gives it)."""
        self.result_dir = os.path.join(os.getcwd(), self.run_name)

    def init(self) -> None:
        """Experiment initialization (options, preparation); every class's own ``init``,
        ancestors first. :attr:`args`, :attr:`run_name` and :attr:`result_dir` are set."""

    def run(self) -> None:
        """The experiment; every class's own ``run``, ancestors first."""

    def sweeper(
        self,
        sweeps: Iterable[Any] | None = None,
        name: str = "sweeps",
        progress_interval: float = PROGRESS_INTERVAL,
        **kwargs: Any,
    ) -> ParamSweeper[Any]:
        """A ParamSweeper in ``result_dir/name``, its sweeps saved, that gives its unfinished
        claims back when the engine stops (failed on an exception; todo again on SIGINT and
        :data:`STOP_SIGNALS`), and logs its progress every ``progress_interval`` seconds. With
        ``-c``, ``sweeps=None`` reuses the saved ones. ``kwargs`` go to ParamSweeper
        (``max_attempts=3``...). Call it in ``init`` or ``run``."""
        if not self.result_dir:
            raise RuntimeError("Engine.sweeper() needs the result directory: call it in init/run")
        directory = os.path.join(self.result_dir, name)
        self._opening = (not os.path.exists(directory), progress_interval)
        try:
            sweeper = ParamSweeper(directory, sweeps, save_sweeps=sweeps is not None, **kwargs)
        finally:
            self._opening = None
        self._sweepers.append(sweeper)
        return sweeper

    def _joined(self, sweeper: ParamSweeper[Any], location: str) -> None:
        """A writing sweeper joined this run (see :func:`execo_engine.provenance.start_run`),
        made by :meth:`sweeper` or by the script itself: its start line, then its progress
        lines, and its end line when the run ends. A sweep the script opened itself is new
        when no run and no finished combination is recorded in it yet."""
        if self._opening is not None:
            new, interval = self._opening
        else:
            counts, runs = sweeper.counts(), sweeper.get_runs()
            current = current_run()
            earlier = [run for run in runs if current is None or run.get("id") != current.id]
            new, interval = not earlier and not counts["done"] + counts["failed"], PROGRESS_INTERVAL
        _log_start(sweeper, location, new)
        progress = _Progress(sweeper, interval)
        progress.start()
        self._progress.append(progress)

    def _call_chain(self, method: str) -> None:
        for cls in reversed(type(self).__mro__):
            own = cls.__dict__.get(method)
            if own is not None:
                own(self)

    def _create_result_dir(self) -> bool:
        """Set :attr:`result_dir` (``-c`` or :meth:`setup_result_dir`) and create it; whether
        it was created now. A ``-c`` path that cannot be a directory is a usage error naming
        the component in the way."""
        if self.args.use_dir:
            self.result_dir = os.path.abspath(self.args.use_dir)
        else:
            self.setup_result_dir()
        problem = not_a_directory(self.result_dir)
        if problem is not None:
            option = f"-c {self.args.use_dir}" if self.args.use_dir else "result directory"
            self.args_parser.error(f"{option}: {problem}")
        created = not os.path.isdir(self.result_dir)
        try:
            os.makedirs(self.result_dir, exist_ok=True)
        except OSError as error:
            self.args_parser.error(f"cannot create result directory {self.result_dir}: {error}")
        return created

    def _setup_outputs(self) -> None:
        if self.args.output_mode is None:
            return
        merged = self.args.merge_outputs
        out = os.path.join(self.result_dir, "stdout+stderr" if merged else "stdout")
        err = out if merged else os.path.join(self.result_dir, "stderr")
        (redirect_outputs if self.args.output_mode == "redirect" else copy_outputs)(out, err)

    def _parse_known(self, argv: Sequence[str]) -> argparse.Namespace:
        """The options known before ``init``, the others left for :meth:`_parse_all`. ``-h``
        is left for it too (its help then lists every option), unless the command line is a
        usage error without it (a required argument missing): then it is answered at once."""
        without_help = _without_help(argv)
        if len(without_help) == len(argv):
            return self.args_parser.parse_known_args(argv)[0]
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                return self.args_parser.parse_known_args(without_help)[0]
        except SystemExit:
            self.args_parser.parse_known_args(argv)  # prints the help, or the error, and exits
            raise

    def _parse_all(self, argv: Sequence[str], created: bool) -> argparse.Namespace:
        """Parse ``argv`` with every option; on a usage error or ``-h``, remove the result
        directory if this start created it and it is still empty, then exit as argparse does."""
        try:
            return self.args_parser.parse_args(argv)
        except SystemExit:
            if created:
                with contextlib.suppress(OSError):
                    os.rmdir(self.result_dir)
            raise

    @contextlib.contextmanager
    def _claims_given_back(self) -> Iterator[None]:
        """Within the block, :data:`STOP_SIGNALS` stop the engine; after it, however it ends,
        the progress lines stop and the sweepers' unfinished claims go back: failed on an
        exception, todo again otherwise."""
        error: Exception | None = None
        try:
            with preemptible():
                yield
        except Exception as exception:
            error = exception
            raise
        finally:
            for progress in self._progress:
                progress.stopped.set()
            for sweeper in self._sweepers:
                if given_back := sweeper.release_claims(error):
                    logger.info(
                        "%s: %d unfinished combination(s) %s",
                        sweeper.name,
                        len(given_back),
                        "failed (one attempt counted)" if error else "back to todo",
                    )
            for progress in self._progress:
                progress.end_line()
            end_run()

    def start(self, engineargs: Sequence[str] | None = None) -> None:
        """Run the engine with ``engineargs`` (None: the command line arguments), in the order
        given in the module documentation."""
        argv = list(sys.argv[1:] if engineargs is None else engineargs)
        self.args = self._parse_known(argv)
        if self.args.log_level is not None:
            logger.setLevel(_level_number(self.args.log_level))
        self.setup_run_name()
        created = self._create_result_dir()
        self._setup_outputs()
        command = [sys.argv[0], *argv]
        logger.info("command line arguments: %s", command)  # as execo: the list, then the line
        logger.info("command line: %s", shlex.join(command))
        logger.info("run in directory %s", self.result_dir)
        if created and self.args.use_dir:
            logger.info(
                "created %s (-c %s did not exist): a new run, not the continuation of one",
                self.result_dir,
                self.args.use_dir,
            )
        start_run(
            capture("engine", self.engine_dir, self.record_versions, command),
            on_join=self._joined,
        )
        with self._claims_given_back():
            self._call_chain("init")
            self.args = self._parse_all(argv, created)
            self._call_chain("run")
