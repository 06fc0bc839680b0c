"""The sweeps a command-line LOCATION names, opened read-only, shared by the commands of
``execo-sweep`` (status, results, plot, report)."""

from __future__ import annotations

from execo_engine.results import open_view
from execo_engine.store.locations import sweeps_at

__all__ = ["UsageError", "open_view", "sweep_locations"]


class UsageError(Exception):
    """Bad input: the message is printed and the command exits with status 2."""


def sweep_locations(location: str) -> list[str]:
    """The sweeps at ``location`` (itself, or those below it: see
    :func:`execo_engine.store.locations.sweeps_at`); a :class:`UsageError` when there is none
    (or when a URL needs psycopg, not installed)."""
    try:
        return sweeps_at(location)
    except (FileNotFoundError, ValueError, ImportError) as error:
        raise UsageError(str(error)) from None
