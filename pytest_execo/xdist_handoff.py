"""pytest-xdist: what the controller hands its workers, and what they send back.

- Controller → workers (``workerinput``, in ``pytest_configure_node``): the
  :class:`~pytest_execo.snapshot.SessionSnapshot` it read, so that every worker deselects, and
  so collects, the same items; and whether its scheduler keeps the items queued to a worker (see
  :mod:`pytest_execo.xdist_queue`).
- Workers → controller: its collection counts (every worker collects the same items: the
  controller keeps the first counts it receives), for the collection line the controller prints
  (see :mod:`pytest_execo.summary`). A worker writes them to a file of a directory the
  controller made, which the controller reads when that worker's collection reaches it, so that
  the line comes at collection as in a serial session; a worker of another host (no such
  directory there) sends them in its ``workeroutput`` at its end, and the line then comes with
  the summary.

This module only carries values; it knows nothing of what they mean.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

from pytest_execo.snapshot import Plain, SessionSnapshot
from pytest_execo.xdist_queue import keeps_queues

SNAPSHOT_KEY = "execo_snapshot"  #: workerinput: the done snapshot (plain)
KEEPS_QUEUES_KEY = "execo_keeps_queues"  #: workerinput: see pytest_execo.xdist_queue
COUNTS_KEY = "execo_counts"  #: workeroutput: a worker's collection counts
COUNTS_DIR_KEY = "execo_counts_dir"  #: workerinput: where workers write their counts

Counts = dict[str, Any]


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
    """In a worker, hand ``counts`` to the controller: at once through the controller's
    directory when this host has it, and in any case when the worker ends."""
    config.workeroutput[COUNTS_KEY] = counts  # type: ignore[attr-defined]
    given: dict[str, Any] = config.workerinput  # type: ignore[attr-defined]
    directory, worker = given.get(COUNTS_DIR_KEY), given.get("workerid")
    if directory is None or worker is None or not os.path.isdir(directory):
        return
    path = os.path.join(directory, f"{worker}.json")
    with open(path + ".tmp", "w") as out:
        json.dump(counts, out)
    os.replace(path + ".tmp", path)  # whole, before xdist sends the collection


class ControllerHandoff:
    """Registered in a session that is no xdist worker (its hooks are called only in an xdist
    controller): hands ``snapshot`` to each worker, and passes the first collection counts a
    worker sends back to ``counts_received(counts, at_collection)``."""

    def __init__(
        self,
        config: pytest.Config,
        snapshot: SessionSnapshot,
        counts_received: Callable[[Counts, bool], None],
    ) -> None:
        self._config = config
        self._snapshot = snapshot
        self._plain: Plain | None = None
        self._counts_received = counts_received
        self._counted = False
        self._counts_dir: str | None = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self._plain is None:  # converted once for every worker
            self._plain = self._snapshot.to_plain()
            self._counts_dir = tempfile.mkdtemp(prefix="execo-counts-")
        node.workerinput[SNAPSHOT_KEY] = self._plain
        node.workerinput[KEEPS_QUEUES_KEY] = keeps_queues(self._config)
        node.workerinput[COUNTS_DIR_KEY] = self._counts_dir

    def _received(self, counts: Counts, at_collection: bool) -> None:
        if not self._counted:
            self._counted = True
            self._counts_received(counts, at_collection)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any) -> None:
        if self._counted or self._counts_dir is None:
            return
        try:
            with open(os.path.join(self._counts_dir, f"{node.gateway.id}.json")) as given:
                counts = json.load(given)
        except (OSError, ValueError):  # a worker of another host: at its end
            return
        self._received(counts, at_collection=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any) -> None:
        counts = getattr(node, "workeroutput", {}).get(COUNTS_KEY)
        if counts is not None:
            self._received(counts, at_collection=False)

    def pytest_sessionfinish(self) -> None:
        if self._counts_dir is not None:
            shutil.rmtree(self._counts_dir, ignore_errors=True)
