"""What was done, and failed for good, in each sweep of the sweep dir before the session.

A session deselects from this snapshot, read once (by a serial session, or by the pytest-xdist
controller, which hands it to its workers: see :mod:`pytest_execo.xdist_handoff`), so that what
other sessions finish meanwhile never changes which items are collected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from execo_engine.store.locations import child_locations
from execo_engine.sweeper import snapshot

#: The snapshot as plain data (execnet carries lists, not frozensets): (done, failed)
Plain = tuple[dict[str, list[str]], dict[str, list[str]]]


class SessionSnapshot(NamedTuple):
    """``{sweep directory name: canonical texts}`` done, and failed for good (not done)."""

    done: Mapping[str, frozenset[str]]
    failed: Mapping[str, frozenset[str]]

    @classmethod
    def read(cls, location: str) -> SessionSnapshot:
        """The snapshot of every sweep below ``location`` now (each sweep's records read
        once)."""
        taken = {name: snapshot(at) for name, at in child_locations(location).items()}
        return cls(
            {name: sweep.done for name, sweep in taken.items()},
            {name: sweep.failed for name, sweep in taken.items()},
        )

    def to_plain(self) -> Plain:
        return (
            {name: list(texts) for name, texts in self.done.items()},
            {name: list(texts) for name, texts in self.failed.items()},
        )

    @classmethod
    def from_plain(cls, plain: Plain) -> SessionSnapshot:
        done, failed = plain
        return cls(
            {name: frozenset(texts) for name, texts in done.items()},
            {name: frozenset(texts) for name, texts in failed.items()},
        )

    def done_count(self) -> int:
        """How many combinations were done, over every sweep."""
        return sum(len(texts) for texts in self.done.values())
