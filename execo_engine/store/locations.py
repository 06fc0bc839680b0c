"""Where a sweep lives: a directory, or a ``postgresql://`` URL (chosen by its scheme).

The one resolver of locations: the ParamSweeper, the launcher, the pytest plugin and the CLI
open stores and name locations through these functions, which hand each location to its
kind (:class:`Kind`): :mod:`execo_engine.store.directory.location` or
:mod:`execo_engine.store.postgresql.location` (imported only for a URL). A new store is one
more kind here.
"""

from __future__ import annotations

import os
from typing import Protocol

from execo_engine.codec import Codec
from execo_engine.store.contract import Store

Location = str | os.PathLike[str]
_SCHEMES = ("postgresql", "postgres")  # the PostgreSQL store (imported only for them)


class Kind(Protocol):
    """What one kind of location (a medium) knows of its locations."""

    def open(self, location: str, codec: Codec, read_only: bool, lease: float | None) -> Store:
        """The store of ``location`` (``lease``: see :mod:`execo_engine.store.contract`)."""
        ...

    def check(self, location: str) -> None:
        """Raise what makes ``location`` unusable, seen without opening it (a file in the way
        of a directory: ``NotADirectoryError`` naming it; a malformed URL: ``ValueError``)."""
        ...

    def child(self, location: str, name: str) -> str:
        """The location of sweep ``name`` below ``location``."""
        ...

    def children(self, location: str) -> dict[str, str]:
        """``{name: location}`` of the sweeps below ``location`` that hold any state."""
        ...

    def sweeps_at(self, location: str) -> list[str]:
        """The sweeps a reader of ``location`` means: itself if it is one, else those below
        it (see :func:`sweeps_at`)."""
        ...

    def shown(self, location: str) -> str:
        """``location`` as it can be printed or logged (no password)."""
        ...

    def resolved(self, location: str, base: str) -> str:
        """``location`` as another process (a worker started elsewhere) finds it, a relative
        one taken relative to ``base``."""
        ...

    def name(self, location: str) -> str:
        """A short name of the sweep, for file and job names."""
        ...

    def local_directory(self, location: str) -> str | None:
        """The directory the sweep lives in (None: not a directory)."""
        ...


def kind_of(location: Location) -> Kind:
    """The kind of ``location``: PostgreSQL for a ``postgresql:`` or ``postgres:`` URL, the
    scheme in any case (RFC 3986), else a directory. A location that starts so but is no URL
    (``postgresql:/...``) is refused by that kind, naming it."""
    scheme, colon, _ = os.fspath(location).partition(":")
    if colon and scheme.lower() in _SCHEMES:
        from execo_engine.store.postgresql.location import DATABASE

        return DATABASE
    from execo_engine.store.directory.location import DIRECTORY

    return DIRECTORY


def open_store(
    location: Location, codec: Codec, read_only: bool = False, lease: float | None = None
) -> Store:
    """The store of ``location``: a PostgreSQL sweep for a ``postgresql://`` URL, else a
    directory (the default, which needs no database)."""
    return kind_of(location).open(os.fspath(location), codec, read_only, lease)


def check_location(location: Location) -> None:
    """Raise what makes ``location`` unusable, without opening it: ``NotADirectoryError``
    naming the file in the way of a directory, ``ValueError`` for a malformed URL."""
    kind_of(location).check(os.fspath(location))


def child_location(location: Location, name: str) -> str:
    """The location of sweep ``name`` below ``location`` (a subdirectory, which may not be a
    symbolic link, or the sweep ``<sweep>/<name>`` of the same database)."""
    return kind_of(location).child(os.fspath(location), name)


def child_locations(location: Location) -> dict[str, str]:
    """``{name: location}`` of the sweeps below ``location`` that have done records or
    claims."""
    return kind_of(location).children(os.fspath(location))


def sweeps_at(location: Location) -> list[str]:
    """The sweeps at ``location``: itself when it is one, else the sweeps below it, sorted by
    name (a pytest ``--execo-sweep-dir``, an Engine result directory, the sweeps named below a
    URL's sweep). ``FileNotFoundError`` when the directory does not exist, ``ValueError`` when it
    holds no sweep (both name it)."""
    return kind_of(location).sweeps_at(os.fspath(location))


def shown(location: Location) -> str:
    """``location`` as it can be printed: a URL without its password."""
    return kind_of(location).shown(os.fspath(location))


def resolved(location: Location, base: str | None = None) -> str:
    """``location`` as another process finds it: a relative directory taken relative to
    ``base`` (default: the current directory); a URL as it is."""
    return kind_of(location).resolved(os.fspath(location), base or os.getcwd())


def sweep_name(location: Location) -> str:
    """A short name of the sweep at ``location`` (its directory's name, or its URL's sweep)."""
    return kind_of(location).name(os.fspath(location))


def local_directory(location: Location) -> str | None:
    """The directory of the sweep at ``location``, absolute (None: a database)."""
    return kind_of(location).local_directory(os.fspath(location))
