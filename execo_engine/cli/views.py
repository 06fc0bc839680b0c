"""The sweeps a command-line LOCATION names, opened read-only, shared by the commands of
``execo-sweep`` (status, results, plot, report)."""

from __future__ import annotations

import os
from typing import Any

from execo_engine.errors import CorruptRecordError
from execo_engine.store.locations import child_locations, is_directory
from execo_engine.sweeper import ParamSweeper

SWEEPER_FILES = ("sweeps", "done", "inprogress")


class UsageError(Exception):
    """Bad input: the message is printed and the command exits with status 2."""


def sweep_dirs(directory: str) -> list[str]:
    """The ParamSweeper directories in ``directory`` (itself, or its subdirectories), or the
    sweeps of a ``postgresql://`` URL (those named below it, or itself)."""
    if not is_directory(directory):
        return list(child_locations(directory).values()) or [directory]
    if not os.path.isdir(directory):
        raise UsageError(f"{directory}: no such directory")

    def is_sweeper(path: str) -> bool:
        return any(os.path.isfile(os.path.join(path, name)) for name in SWEEPER_FILES)

    if is_sweeper(directory):
        return [directory]
    found = sorted(
        entry.path for entry in os.scandir(directory) if entry.is_dir() and is_sweeper(entry.path)
    )
    if not found:
        raise UsageError(
            f"{directory}: not a sweep directory (no {', '.join(SWEEPER_FILES)} "
            f"file in it nor in its subdirectories)"
        )
    return found


def open_view(directory: str) -> ParamSweeper[Any]:
    """A read-only ParamSweeper on ``directory`` (its saved sweeps, or none)."""
    try:
        return ParamSweeper(directory, read_only=True)
    except CorruptRecordError:  # a ValueError too, but not a missing sweeps file
        raise
    except ValueError:  # no saved sweeps: claims and results are still readable
        return ParamSweeper(directory, [], read_only=True)
