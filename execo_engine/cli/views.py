"""The sweeps a command-line LOCATION names, opened read-only, shared by the commands of
``execo-sweep`` (status, results, plot, report)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from execo_engine.errors import CorruptRecordError
from execo_engine.results import open_view
from execo_engine.store.locations import local_directory, sweeps_at
from execo_engine.sweeper import ParamSweeper

__all__ = ["KEEP_OPEN", "UsageError", "Views", "open_view", "sweep_locations", "usage_errors"]

#: How many database sweeps a command that reads them again and again (``status --watch``,
#: ``report --watch``) keeps open between two reads: an open view of a PostgreSQL sweep holds a
#: connection (a directory's view holds no descriptor between its reads: always kept)
KEEP_OPEN = 8


class UsageError(Exception):
    """Bad input: the message is printed and the command exits with status 2."""


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Bad input met by the library (no such location, not a sweep, an unknown name, a
    missing extra) as a :class:`UsageError`; a corrupt record (a broken file) stays what it
    is."""
    try:
        yield
    except CorruptRecordError:
        raise
    except (FileNotFoundError, ValueError, ImportError) as error:
        raise UsageError(str(error)) from None


def sweep_locations(location: str) -> list[str]:
    """The sweeps at ``location`` (itself, or those below it: see
    :func:`execo_engine.store.locations.sweeps_at`); a :class:`UsageError` when there is none
    (or when a URL needs psycopg, not installed)."""
    with usage_errors():
        return sweeps_at(location)


class Views:
    """The views of the sweeps a command reads again and again, kept open from one read to the
    next (a view then reads only what is new); those of database sweeps only when there are at
    most :data:`KEEP_OPEN` sweeps, else opened for each read and closed after it."""

    def __init__(self) -> None:
        self._open: dict[str, ParamSweeper[Any]] = {}

    @contextlib.contextmanager
    def reading(self, path: str, sweeps: int) -> Iterator[ParamSweeper[Any]]:
        """The view of the sweep at ``path``, one of the ``sweeps`` this read goes through."""
        view = self._open.pop(path, None) or open_view(path)
        try:
            yield view
        finally:
            if sweeps <= KEEP_OPEN or local_directory(path) is not None:
                self._open[path] = view
            else:
                view.close()

    def close(self) -> None:
        """Close the views kept open."""
        for view in self._open.values():
            view.close()
        self._open.clear()
