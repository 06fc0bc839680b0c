"""The ``execo_engine`` logger: prints by default, steps aside once logging is configured.

:data:`logger` (the logger named ``execo_engine``) writes INFO and above to standard output as
``2026-01-31 12:00:00,000 INFO: message``, as execo's engine logger does, so a script that never
configures logging sees its ``logger.info`` and ``logger.error`` lines. It has execo's two extra
levels, :data:`DETAIL` (15) and :data:`TRACE` (12), with ``logger.detail()`` and
``logger.trace()``; their names are registered with :mod:`logging` (``-l DETAIL`` works).

The printing handler, :data:`default_handler`, prints a record only when the record reaches no
other handler (``NullHandler`` aside, whatever the other handler's level): as soon as the
application configures logging (a handler on the root logger, as ``logging.basicConfig`` or
pytest add, or a handler of its own on ``execo_engine``), the lines reach the application's
handlers only, each once. Nothing here touches the root logger.

Silence or reroute it with the standard :mod:`logging` calls:

- fewer lines: ``logger.setLevel(logging.WARNING)`` (an Engine script: ``-l WARNING``);
- no default output at all: ``logger.removeHandler(default_handler)``;
- elsewhere (a file, stderr, another format): configure logging in the application, for
  example ``logging.basicConfig(filename="run.log", level=logging.INFO)``; the lines then
  propagate to its handlers and are not printed here.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["DETAIL", "TRACE", "EngineLogger", "default_handler", "logger"]

#: execo's level between DEBUG and INFO: details of what is going on.
DETAIL = 15
#: execo's level between DEBUG and DETAIL: tracing.
TRACE = 12

logging.addLevelName(DETAIL, "DETAIL")
logging.addLevelName(TRACE, "TRACE")

#: The format of the default output, as execo's (without its terminal colours).
FORMAT = "%(asctime)s %(levelname)s: %(message)s"


class EngineLogger(logging.Logger):
    """A :class:`logging.Logger` with execo's ``detail`` and ``trace`` methods."""

    def detail(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Log ``msg % args`` at level :data:`DETAIL`."""
        if self.isEnabledFor(DETAIL):
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
            self.log(DETAIL, msg, *args, **kwargs)

    def trace(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Log ``msg % args`` at level :data:`TRACE`."""
        if self.isEnabledFor(TRACE):
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
            self.log(TRACE, msg, *args, **kwargs)


def _reaches_another_handler(name: str, handler: logging.Handler) -> bool:
    """Whether a record of logger ``name`` propagates to a handler other than ``handler``
    (``NullHandler`` aside), walking the hierarchy as :meth:`logging.Logger.callHandlers`."""
    current: logging.Logger | None = logging.getLogger(name)
    while current is not None:
        for other in current.handlers:
            if other is not handler and not isinstance(other, logging.NullHandler):
                return True
        if not current.propagate:
            return False
        current = current.parent
    return False


class DefaultHandler(logging.Handler):
    """Writes records to the current ``sys.stdout`` (looked up at each record, so a redirected
    or captured stdout is honoured), unless they reach another handler too."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass ``record`` only if no other handler receives it, and the filters pass it."""
        return not _reaches_another_handler(record.name, self) and bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        """Write the formatted record and a newline to ``sys.stdout``, and flush."""
        stream = sys.stdout
        if stream is None:  # pythonw, or stdout closed on purpose
            return
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _engine_logger() -> EngineLogger:
    """The ``execo_engine`` logger as an :class:`EngineLogger` with its default handler."""
    engine_logger = logging.getLogger("execo_engine")
    if not isinstance(engine_logger, EngineLogger):
        # An application may have created it (getLogger) before this import; the subclass only
        # adds methods, so the existing logger, its level and handlers, stays the same object.
        engine_logger.__class__ = EngineLogger
    assert isinstance(engine_logger, EngineLogger)
    if engine_logger.level == logging.NOTSET:
        engine_logger.setLevel(logging.INFO)
    return engine_logger


#: The logger of execo_engine and of experiment scripts (``from execo_engine import logger``).
logger = _engine_logger()

#: The handler printing :data:`logger`'s records to stdout when nothing else receives them.
default_handler = DefaultHandler()
default_handler.setFormatter(logging.Formatter(FORMAT))
logger.addHandler(default_handler)
