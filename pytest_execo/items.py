"""What the marker leaves on swept items, for the modules that record them.

:mod:`pytest_execo.plugin` parametrizes a swept test function and keeps, per function, its
combinations and their ids (:data:`SWEPT`); in a session that records, each item carries the
position of its combination as the value of a hidden argument (:data:`HIDDEN_ARG`).
:func:`swept_position` reads both back. :data:`RECORDED` holds an item's ``execo_record``
values. This module imports nothing of this package: the plugin and the recorder both import
it, never each other backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from execo_engine.sweep import HashableDict

MARKER = "execo_sweep"
#: The argument the marker adds to a test that asks for no factor (so that each combination is
#: still an item of its own), and to every swept test of a session that records: its value is
#: then where the item's combination stands in the sweep (None otherwise).
HIDDEN_ARG = "_execo_combination"
RECORDER = "execo-recorder"  #: the name of the recorder plugin (sessions with a sweep dir)
RUN_PLUGIN = "execo-run"  #: the name of the session's run plugin (pytest_execo.runs)
VERSIONS_INI = "execo_record_versions"  #: ini: packages whose versions a run records


@dataclass(frozen=True)
class SweptFunction:
    """What the marker made of one test function: its combinations and their ids."""

    combinations: list[HashableDict]
    ids: list[str]


SWEPT = pytest.StashKey[dict[str, SweptFunction]]()  #: config: function node id -> SweptFunction
RECORDED = pytest.StashKey[dict[str, Any]]()  #: item: its ``execo_record`` values


def swept_position(item: pytest.Item) -> tuple[str, SweptFunction, int] | None:
    """The node id of an item's test function, its swept function and the position of its
    combination, or None for an item of a test without the marker (or of a session that does
    not record: no position)."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    position = callspec.params.get(HIDDEN_ARG)
    if position is None:
        return None
    function = item.nodeid.partition("[")[0]
    return function, item.config.stash[SWEPT][function], position
