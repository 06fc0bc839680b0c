"""pytest-xdist: what the controller hands its workers, and what they send back.

- Controller → workers (``workerinput``, in ``pytest_configure_node``): the
  :class:`~pytest_execo.snapshot.SessionSnapshot` it read, so that every worker deselects, and
  so collects, the same items; and whether its scheduler keeps the items queued to a worker (see
  :mod:`pytest_execo.xdist_queue`).
- Workers → controller (``workeroutput``, when a worker ends): its collection counts (every
  worker collects the same items: the controller keeps the first counts it receives), for the
  collection line the controller prints (see :mod:`pytest_execo.summary`).

This module only carries values; it knows nothing of what they mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_execo.snapshot import Plain, SessionSnapshot
from pytest_execo.xdist_queue import keeps_queues

SNAPSHOT_KEY = "execo_snapshot"  #: workerinput: the done snapshot (plain)
KEEPS_QUEUES_KEY = "execo_keeps_queues"  #: workerinput: see pytest_execo.xdist_queue
COUNTS_KEY = "execo_counts"  #: workeroutput: a worker's collection counts

Counts = dict[str, int]


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker."""
    return hasattr(config, "workerinput")


def given_snapshot(config: pytest.Config) -> SessionSnapshot | None:
    """In a worker, the snapshot the controller handed it; elsewhere None."""
    if not is_worker(config):
        return None
    return SessionSnapshot.from_plain(config.workerinput[SNAPSHOT_KEY])  # type: ignore[attr-defined]


def given_keeps_queues(config: pytest.Config) -> bool:
    """In a worker, whether the controller's scheduler never moves a queued item."""
    return is_worker(config) and bool(config.workerinput.get(KEEPS_QUEUES_KEY, False))  # type: ignore[attr-defined]


def send_counts(config: pytest.Config, counts: Counts) -> None:
    """In a worker, have ``counts`` sent to the controller when the worker ends."""
    config.workeroutput[COUNTS_KEY] = counts  # type: ignore[attr-defined]


class ControllerHandoff:
    """Registered in a session that is no xdist worker (its hooks are called only in an xdist
    controller): hands ``snapshot`` to each worker, and passes the first collection counts a
    worker sends back to ``counts_received``."""

    def __init__(
        self,
        config: pytest.Config,
        snapshot: SessionSnapshot,
        counts_received: Callable[[Counts], None],
    ) -> None:
        self._config = config
        self._snapshot = snapshot
        self._plain: Plain | None = None
        self._counts_received = counts_received
        self._counted = False

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self._plain is None:  # converted once for every worker
            self._plain = self._snapshot.to_plain()
        node.workerinput[SNAPSHOT_KEY] = self._plain
        node.workerinput[KEEPS_QUEUES_KEY] = keeps_queues(self._config)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any) -> None:
        counts = getattr(node, "workeroutput", {}).get(COUNTS_KEY)
        if counts is not None and not self._counted:
            self._counted = True
            self._counts_received(counts)
