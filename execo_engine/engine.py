"""Engine: the base class of experiment scripts.

A subclass overrides :meth:`Engine.init` (add options to :attr:`Engine.args_parser`) and
:meth:`Engine.run` (the experiment), and the script calls ``MyEngine().start()``. ``start``:

1. :meth:`Engine.setup_run_name` (class name + date);
2. every ``init`` of the class hierarchy, ancestors first, each class's own method once;
3. parses the command line (:attr:`Engine.args`); a bad option or value exits with status 2
   and a usage message, no traceback;
4. sets the ``execo_engine`` log level (``-l``, a number or a name; logging is configured
   only if the application did not do it);
5. the result directory: ``-c DIR`` continues in an existing one, otherwise
   :meth:`Engine.setup_result_dir` (the run name under the current directory) creates it;
6. ``-R`` redirects, ``-L`` copies stdout and stderr into ``stdout`` and ``stderr`` files
   there (``-M``: one ``stdout+stderr`` file); logs the command line and the directory;
7. every ``run``, ancestors first. SIGTERM unwinds like SIGINT; whatever way ``run`` ends, the
   claimed but unfinished combinations of the sweepers made by :meth:`Engine.sweeper` go back
   at once: failed (one attempt counted, with the exception's summary, see
   ``ParamSweeper.fail``) when ``run`` raised an exception, todo again when it was interrupted
   (SIGINT, SIGTERM) or returned.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from types import FrameType
from typing import Any

from execo_engine.log import logger
from execo_engine.sweeper import ParamSweeper
from execo_engine.utils import copy_outputs, redirect_outputs

#: Seconds between two progress lines of a sweep (stderr, through the logger).
PROGRESS_INTERVAL = 30.0


def _log_level(text: str) -> int:
    if text.lstrip("-").isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    if not isinstance(level, int):
        raise argparse.ArgumentTypeError(
            f"invalid log level {text!r} (a number, or DEBUG, INFO, WARNING, ERROR, CRITICAL)"
        )
    return level


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class _Progress(threading.Thread):
    """Logs ``done/total, rate, time left`` of a sweeper every ``interval`` seconds."""

    def __init__(self, sweeper: ParamSweeper[Any], interval: float) -> None:
        super().__init__(daemon=True, name=f"progress of {sweeper.name}")
        self.sweeper, self.interval = sweeper, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        start, first = time.monotonic(), len(self.sweeper.get_done())
        while not self.stopped.wait(self.interval):
            sweeps, remaining, _, inprogress, done = self.sweeper.stats()
            rate = (len(done) - first) / (time.monotonic() - start)
            left = f"about {len(remaining) / rate:.0f} s left" if rate > 0 else "no rate yet"
            logger.info(
                "%s: %d/%d done, %d in progress, %.2f/s, %s",
                self.sweeper.name,
                len(done),
                len(sweeps),
                len(inprogress),
                rate,
                left,
            )


class Engine:
    """Base class of experiment engines (see the module documentation for ``start``)."""

    def __init__(self) -> None:
        module = sys.modules.get(type(self).__module__)
        path = getattr(module, "__file__", None)
        #: Directory of the engine's source file, None when run interactively.
        self.engine_dir: str | None = os.path.dirname(os.path.abspath(path)) if path else None
        #: Where this run writes its results (set by ``start``).
        self.result_dir: str | None = None
        #: Name of this run (set by ``setup_run_name``).
        self.run_name: str | None = None
        #: Parsed command line, available in ``run`` (not in ``init``).
        self.args: argparse.Namespace | None = None
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
            default=logging.INFO,
            metavar="LEVEL",
            help="log level, a number or a name (default INFO)",
        )
        group.add_argument(
            "-L",
            dest="copy_outputs",
            action="store_true",
            help="copy stdout and stderr into the result directory",
        )
        group.add_argument(
            "-R",
            dest="redirect_outputs",
            action="store_true",
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
            dest="continue_dir",
            metavar="DIR",
            help="continue the experiment in existing result directory DIR",
        )
        self._sweepers: list[ParamSweeper[Any]] = []
        self._progress: list[_Progress] = []

    def setup_run_name(self) -> None:
        """Set :attr:`run_name`: the class name and the date."""
        self.run_name = f"{type(self).__name__}_{time.strftime('%Y%m%d_%H%M%S')}"

    def setup_result_dir(self) -> None:
        """Set :attr:`result_dir`: the run name under the current directory."""
        self.result_dir = os.path.join(os.getcwd(), self.run_name or type(self).__name__)

    def init(self) -> None:
        """Experiment initialization (options); every class's own ``init``, ancestors first."""

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
        claims back when the engine stops (failed on an exception; todo again on SIGINT,
        SIGTERM), and logs its progress every ``progress_interval`` seconds. With ``-c``,
        ``sweeps=None`` reuses the saved ones. ``kwargs`` go to ParamSweeper
        (``max_attempts=3``...)."""
        if self.result_dir is None:
            raise RuntimeError("Engine.sweeper() needs the result directory: call it in run()")
        directory = os.path.join(self.result_dir, name)
        sweeper = ParamSweeper(directory, sweeps, save_sweeps=sweeps is not None, **kwargs)
        self._sweepers.append(sweeper)
        progress = _Progress(sweeper, progress_interval)
        progress.start()
        self._progress.append(progress)
        return sweeper

    def _call_chain(self, method: str) -> None:
        for cls in reversed(type(self).__mro__):
            own = cls.__dict__.get(method)
            if own is not None:
                own(self)

    def _setup_outputs(self, args: argparse.Namespace) -> None:
        if not (args.copy_outputs or args.redirect_outputs):
            return
        assert self.result_dir is not None
        out = os.path.join(self.result_dir, "stdout+stderr" if args.merge_outputs else "stdout")
        err = out if args.merge_outputs else os.path.join(self.result_dir, "stderr")
        (redirect_outputs if args.redirect_outputs else copy_outputs)(out, err)

    def start(self, engineargs: list[str] | None = None) -> None:
        """Run the engine with ``engineargs`` (None: the command line arguments)."""
        self.setup_run_name()
        self._call_chain("init")
        args = self.args = self.args_parser.parse_args(engineargs)
        if not logging.getLogger().handlers:
            logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logger.setLevel(args.log_level)
        if args.continue_dir:
            if not os.path.isdir(args.continue_dir):
                self.args_parser.error(f"-c {args.continue_dir}: not an existing directory")
            self.result_dir = os.path.abspath(args.continue_dir)
        else:
            self.setup_result_dir()
            assert self.result_dir is not None
            os.makedirs(self.result_dir, exist_ok=True)
        self._setup_outputs(args)
        command = sys.argv if engineargs is None else [sys.argv[0], *engineargs]
        logger.info("command line: %s", " ".join(command))
        logger.info("result directory: %s", self.result_dir)
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
        error: Exception | None = None  # a failure of the unfinished combinations
        try:
            self._call_chain("run")
        except Exception as exception:
            error = exception
            raise
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)
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
