"""Directories as locations (see :class:`execo_engine.store.locations.Kind`): a sweep is a
directory; the sweeps below one are its subdirectories, never followed through a symbolic
link."""

from __future__ import annotations

import os

from execo_engine.codec import Codec
from execo_engine.paths import not_a_directory
from execo_engine.store.contract import Store
from execo_engine.store.directory.files import check_directory_path
from execo_engine.store.directory.store import DirectoryStore, check_subdirectory

#: The files whose presence makes a directory a sweep, for a reader looking for sweeps.
SWEEP_FILES = ("sweeps", "done", "inprogress")


def _is_sweep(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, name)) for name in SWEEP_FILES)


class DirectoryKind:
    """The locations that name a directory."""

    def open(self, location: str, codec: Codec, read_only: bool, lease: float | None) -> Store:
        return DirectoryStore(location, codec, read_only, lease)

    def child(self, location: str, name: str) -> str:
        path = os.path.join(location, name)
        check_subdirectory(path)
        return path

    def children(self, location: str) -> dict[str, str]:
        if not os.path.isdir(location):
            return {}
        return {
            entry.name: entry.path
            for entry in os.scandir(location)
            if entry.is_dir(follow_symlinks=False)  # never a link out of the directory
            and any(os.path.exists(os.path.join(entry.path, f)) for f in ("done", "inprogress"))
        }

    def check(self, location: str) -> None:
        check_directory_path(location)

    def sweeps_at(self, location: str) -> list[str]:
        if _is_sweep(location):
            return [location]
        problem = not_a_directory(location)
        if problem is not None:
            raise FileNotFoundError(f"{location}: {problem}")
        if not os.path.isdir(location):
            raise FileNotFoundError(f"{location}: no such directory")
        found = sorted(
            entry.path
            for entry in os.scandir(location)
            if entry.is_dir(follow_symlinks=False) and _is_sweep(entry.path)
        )
        if not found:
            raise ValueError(
                f"{location}: not a sweep directory (no {', '.join(SWEEP_FILES)} "
                f"file in it nor in its subdirectories)"
            )
        return found

    def shown(self, location: str) -> str:
        return location

    def resolved(self, location: str, base: str) -> str:
        return os.path.abspath(os.path.join(base, location))

    def name(self, location: str) -> str:
        return os.path.basename(os.path.abspath(location))

    def local_directory(self, location: str) -> str | None:
        return os.path.abspath(location)


DIRECTORY = DirectoryKind()
