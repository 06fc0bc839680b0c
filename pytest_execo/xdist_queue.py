"""What a pytest-xdist worker runs next, so that it can claim those items ahead in one store
operation (as a serial session claims the next items in its order).

A worker always knows ``nextitem``, which xdist never takes back. The items queued after it are
safe to claim only when the scheduler never moves an item once queued to a worker: true of
``--dist load``, ``loadscope``, ``loadfile`` and ``loadgroup`` (a crashed worker's items go to
others, but its claims die with it); not of ``worksteal``, which takes queued items back for
idle workers (another worker would then find them claimed), nor of ``each``. The controller
knows the mode and tells its workers (:func:`keeps_queues`); a worker reads its queue from
pytest-xdist's ``TestQueue`` (pytest-xdist 3.6 and later; with an older one, or a queue it
does not recognize, it claims ``nextitem`` alone).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

#: The --dist modes whose scheduler never moves an item queued to a worker.
KEEPING_MODES = frozenset({"load", "loadscope", "loadfile", "loadgroup"})


def keeps_queues(config: pytest.Config) -> bool:
    """xdist controller: whether its scheduler never moves an item queued to a worker."""
    return config.getoption("dist", None) in KEEPING_MODES


def _test_queue(config: pytest.Config) -> Any | None:
    """The ``TestQueue`` of the worker's ``WorkerInteractor`` plugin, or None."""
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor":
            queue = getattr(plugin, "torun", None)
            if callable(getattr(queue, "lock", None)):
                return queue
    return None


class WorkerQueue:
    """The indices (in ``session.items``) of the items queued to this worker after
    ``nextitem``; none when the queue may change (see the module)."""

    def __init__(self, config: pytest.Config, keeps: bool) -> None:
        self._queue = _test_queue(config) if keeps else None

    def upcoming(self, count: int) -> list[int]:
        """The first ``count`` (at most) queued after ``nextitem``, in order."""
        if self._queue is None:
            return []
        with self._queue.lock() as indices:
            return [i for i in itertools.islice(indices, count) if type(i) is int]
