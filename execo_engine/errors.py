"""Every error class execo_engine raises of its own, in one place (each is also a subclass of
the built-in error a caller would catch without knowing it: ``ValueError``, ``OSError``...).

All are importable from :mod:`execo_engine` too (``from execo_engine import
CorruptRecordError``); they are not in its ``__all__``, which lists execo 2.x's names.
"""

from __future__ import annotations


class CorruptRecordError(ValueError):
    """A complete record that cannot be decoded, or is not of the shape its stream holds; the
    message names the file (or table) and where the record stands."""


class UnsupportedValueError(TypeError):
    """A value the text codec cannot carry (and pickle was not allowed); the message names it."""


class PickleNotAllowedError(ValueError):
    """A file holds a pickled value and the reader did not opt in to unpickling."""


class Execo2DirectoryError(PickleNotAllowedError):
    """A persistence directory written by execo 2.x (pickle files): never unpickled nor
    changed; the message names the file and what to do."""


class NotARegularFileError(OSError):
    """A fixed name of the directory (``done``, ``sweeps``...) is a FIFO, a device, a
    directory or a symbolic link: refused, it could block every reader or lead elsewhere."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


class DirectoryVanishedError(FileNotFoundError):
    """The persistence directory was deleted (or moved away) while in use."""


class NewerFormatError(RuntimeError):
    """A directory written by a newer execo_engine, in a format this one does not know."""


class ConnectionLostError(ConnectionError):
    """The database could not be reached again within the store's reconnection time."""


class CannotConnectError(ConnectionError):
    """A database a store could not connect to in the first place (a wrong host, port,
    database, user or password, or a server that is not running): a configuration error,
    reported at once rather than retried; the message names the server, never a password."""
