"""Where a sweep lives: a directory, or a ``postgresql://`` URL (chosen by its scheme)."""

from __future__ import annotations

import os

from execo_engine.codec import Codec
from execo_engine.dirstore import DirectoryStore, check_subdirectory
from execo_engine.liveness import DEFAULT_LEASE
from execo_engine.pgstore import (
    PostgresStore,
    is_postgresql_url,
    parse_url,
    sweeps_below,
    with_sweep,
    without_password,
)

Location = str | os.PathLike[str]
Store = DirectoryStore | PostgresStore


def open_store(
    location: Location, codec: Codec, read_only: bool = False, lease: float | None = None
) -> Store:
    """The store of ``location``: a PostgreSQL sweep for a ``postgresql://`` URL, else a
    directory (the default, which needs no database). ``lease`` (seconds, directories only:
    a URL says ``&lease=``) defaults to :data:`execo_engine.liveness.DEFAULT_LEASE`."""
    if is_postgresql_url(location):
        if lease is not None:
            raise ValueError(
                f"{without_password(str(location))}: give the lease of a PostgreSQL sweep in "
                f"its URL (&lease=SECONDS), not as lease="
            )
        return PostgresStore(str(location), codec, read_only)
    return DirectoryStore(location, codec, read_only, DEFAULT_LEASE if lease is None else lease)


def child_location(location: Location, name: str) -> str:
    """The location of sweep ``name`` below ``location`` (a subdirectory, or the sweep
    ``<sweep>/<name>`` of the same database); ``NotADirectoryError`` if the subdirectory is a
    symbolic link (see :func:`check_subdirectory`)."""
    if is_postgresql_url(location):
        return with_sweep(str(location), f"{parse_url(str(location))[1]}/{name}")
    path = os.path.join(location, name)
    check_subdirectory(path)
    return path


def child_locations(location: Location) -> dict[str, str]:
    """``{name: location}`` of the sweeps below ``location`` that have done records or
    claims."""
    if is_postgresql_url(location):
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
    return without_password(text) if is_postgresql_url(text) else text
