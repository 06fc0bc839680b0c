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


#: A directory holding one of these files is a sweep (a ParamSweeper's persistence directory).
SWEEP_FILES = ("sweeps", "done", "inprogress")


def sweep_locations(location: Location) -> list[str]:
    """The sweeps at ``location``: itself when it is one (a directory holding one of
    :data:`SWEEP_FILES`), else the sweeps in its subdirectories, sorted by name (a pytest
    ``--execo-sweep-dir``, an Engine result directory); for a ``postgresql://`` URL, the sweeps
    named below its sweep, else itself. ``FileNotFoundError`` when the directory does not
    exist, ``ValueError`` when it holds no sweep (both name it)."""
    text = os.fspath(location)
    if not is_directory(text):
        return list(child_locations(text).values()) or [text]
    if not os.path.isdir(text):
        raise FileNotFoundError(f"{text}: no such directory")

    def is_sweep(path: str) -> bool:
        return any(os.path.isfile(os.path.join(path, name)) for name in SWEEP_FILES)

    if is_sweep(text):
        return [text]
    found = sorted(
        entry.path
        for entry in os.scandir(text)
        if entry.is_dir(follow_symlinks=False) and is_sweep(entry.path)
    )
    if not found:
        raise ValueError(
            f"{text}: not a sweep directory (no {', '.join(SWEEP_FILES)} file in it nor in "
            f"its subdirectories)"
        )
    return found


def shown(location: Location) -> str:
    """``location`` as it can be printed: a URL without its password."""
    text = os.fspath(location)
    if is_directory(text):
        return text
    from execo_engine.pgstore import without_password

    return without_password(text)
