"""The ``execo_engine`` logger.

A plain :mod:`logging` logger with only a ``NullHandler``: the library never installs a handler
that prints, so an application (or pytest) that configures logging sees each message once.
``Engine.start`` configures the root logger for scripts that have not done so themselves.
"""

import logging

logger = logging.getLogger("execo_engine")
logger.addHandler(logging.NullHandler())
