"""The format version of a persistence directory, in its ``format`` file.

- Format 1 (no ``format`` file): ``done``, ``inprogress``, ``sweeps``, ``results``, ``lock``.
- Format 2: the same files and records, plus skip records in ``inprogress`` (skips held by
  live owners, see :mod:`execo_engine.store.log.records`: a format 1 reader would call them
  corrupt),
  ``format``, and ``grid`` (how many combinations the sweeps have, so that a status can be
  reported without saved sweeps). Owners in claim records may have a fourth field (PID
  namespace).
- Format 3: format 2 plus the records of failed attempts in ``done`` (see
  :mod:`execo_engine.store.log.records`: a format 2 reader would call them corrupt, and would
  hand failed combinations out again).
- Format 4: format 3 whose skip records carry a sixth field, the number of the ParamSweeper
  instance that skipped, their owner being the process that created that instance (see
  :class:`~execo_engine.store.owner.Instance`): a skip is that instance's, every other
  instance sees the combination todo. A format 3 reader would call such records corrupt (it
  knows skip records of five fields), so the format is bumped. Skip records of five fields,
  read here, keep their format 3 meaning: the owner process's skip, for every instance, while
  it lives.

Format 3 directories may also hold a ``runs`` file (run records: see
:mod:`execo_engine.store.runs`), and their result records a ``run`` field (the id of the run that
wrote them). Neither needed a new version: every format 3 reader ignores files it does not open
and fields a result record does not need, and a directory without them reads as having no
runs.

A writer marks an older directory as the current format when it opens it (every record of
an older format is a record of the current one). A reader meeting a newer format than it
knows stops with :class:`NewerFormatError`.

A directory written by execo 2.x has no ``format`` file either, but its ``done``,
``inprogress`` and ``sweeps`` are pickle files, usually without a single newline: read as
journals, each would be one torn record, cut off by the first writer. Such a directory is
refused (:class:`Execo2DirectoryError`) before anything reads or writes it.
"""

from __future__ import annotations

import os

from execo_engine.errors import CorruptRecordError, Execo2DirectoryError, NewerFormatError
from execo_engine.store.directory.files import open_regular, replace_atomically

FORMAT = 4
FORMAT_FILE = "format"
_EXECO2_FILES = ("done", "inprogress", "sweeps")  #: the files execo 2.x pickled


def directory_format(directory: str) -> int:
    """The format version of ``directory`` (1 when it has no ``format`` file); a
    :class:`CorruptRecordError` (a ``ValueError``) naming the file if it does not hold a
    version number."""
    path = os.path.join(directory, FORMAT_FILE)
    try:
        fd, _ = open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        return 1
    try:
        text = os.read(fd, 64)
    finally:
        os.close(fd)
    try:
        version = int(text)
    except ValueError:
        raise CorruptRecordError(
            f"{path}: not a format version number: {text[:20]!r} (a format file holds one "
            f"line such as '2')"
        ) from None
    if version < 1:
        raise CorruptRecordError(f"{path}: format version {version} is not >= 1")
    return version


def _pickled(directory: str) -> str | None:
    """The first of execo 2.x's files in ``directory`` that begins as a binary pickle does
    (the PROTO opcode, protocol 2 to 5); no record of this package begins with that byte."""
    for name in _EXECO2_FILES:
        path = os.path.join(directory, name)
        try:
            fd, _ = open_regular(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            head = os.read(fd, 2)
        finally:
            os.close(fd)
        if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
            return path
    return None


def check_format(directory: str) -> None:
    """``NewerFormatError`` if ``directory`` is of a format newer than :data:`FORMAT`;
    :class:`Execo2DirectoryError` naming the file if execo 2.x wrote it."""
    found = directory_format(directory)
    if found == 1 and (pickled := _pickled(directory)) is not None:
        raise Execo2DirectoryError(
            f"persistence directory {directory!r} was written by execo 2.x: {pickled} is a "
            f"pickle file, which this version never unpickles (nor changes): finish that "
            f"sweep with execo 2.x, or give this version a new directory"
        )
    if found > FORMAT:
        raise NewerFormatError(
            f"persistence directory {directory!r} is in format version {found}, written by a "
            f"newer execo_engine; this one reads versions 1 to {FORMAT}: upgrade execo_engine "
            f"to use it"
        )


def mark_format(directory: str) -> None:
    """Mark ``directory`` as of format :data:`FORMAT` if it is older (only records were
    added); with the directory lock held, as every replacement of a directory's files."""
    if directory_format(directory) < FORMAT:
        replace_atomically(os.path.join(directory, FORMAT_FILE), f"{FORMAT}\n".encode())
