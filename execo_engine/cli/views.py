"""The sweeps a command-line LOCATION names, opened read-only, shared by the commands of
``execo-sweep`` (status, results, plot, report)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from execo_engine.errors import CorruptRecordError
from execo_engine.results import open_view
from execo_engine.store.locations import sweeps_at

__all__ = ["UsageError", "open_view", "sweep_locations", "usage_errors"]


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
