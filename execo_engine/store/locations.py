"""Where a sweep lives: a directory, or a ``postgresql://`` URL (chosen by its scheme).

The only code that knows location syntaxes: the ParamSweeper, the pytest plugin and the CLI
open stores and name locations through it.
"""

from __future__ import annotations

import os

from execo_engine.codec import Codec
from execo_engine.store.contract import Store
from execo_engine.store.directory import DirectoryStore, check_subdirectory

Location = str | os.PathLike[str]
_SCHEMES = ("postgresql://", "postgres://")  # the PostgreSQL store (imported only for them)


def is_directory(location: Location) -> bool:
    """Whether ``location`` names a directory (not a database)."""
    return not os.fspath(location).startswith(_SCHEMES)


def open_store(
    location: Location, codec: Codec, read_only: bool = False, lease: float | None = None
) -> Store:
    """The store of ``location``: a PostgreSQL sweep for a ``postgresql://`` URL, else a
    directory (the default, which needs no database). ``lease``: see
    :mod:`execo_engine.store.contract`."""
    if not is_directory(location):
        from execo_engine.pgstore import PostgresStore

        return PostgresStore(str(location), codec, read_only, lease)
    return DirectoryStore(location, codec, read_only, lease)


def child_location(location: Location, name: str) -> str:
    """The location of sweep ``name`` below ``location`` (a subdirectory, or the sweep
    ``<sweep>/<name>`` of the same database); ``NotADirectoryError`` if the subdirectory is a
    symbolic link (see :func:`check_subdirectory`)."""
    if not is_directory(location):
        from execo_engine.pgstore import parse_url, with_sweep

        return with_sweep(str(location), f"{parse_url(str(location))[1]}/{name}")
    path = os.path.join(location, name)
    check_subdirectory(path)
    return path


def child_locations(location: Location) -> dict[str, str]:
    """``{name: location}`` of the sweeps below ``location`` that have done records or
    claims."""
    if not is_directory(location):
        from execo_engine.pgstore import sweeps_below

        return sweeps_below(str(location))
    if not os.path.isdir(location):
        return {}
    return {
        entry.name: entry.path
        for entry in os.scandir(location)
        if entry.is_dir(follow_symlinks=False)  # never a link out of the directory
        and any(os.path.exists(os.path.join(entry.path, f)) for f in ("done", "inprogress"))
    }


def shown(location: Location) -> str:
    """``location`` as it can be printed: a URL without its password."""
    text = os.fspath(location)
    if is_directory(text):
        return text
    from execo_engine.pgstore import without_password

    return without_password(text)
