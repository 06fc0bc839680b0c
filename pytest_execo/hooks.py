"""Hooks that a ``conftest.py`` or a plugin can implement to extend pytest_execo."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_execo_state(item: pytest.Item, combination: Any, outcome: str) -> str | None:
    """Decide what a combination's outcome does to its state in the sweep directory.

    ``outcome`` is ``"passed"`` (the call phase ran and passed, and nothing failed),
    ``"skipped"`` (xfail included) or ``"failed"`` (failure or error in setup, call or
    teardown), over the last attempt when pytest-rerunfailures ran it several times; an item
    whose test body never ran (``--setup-only``) is given back without asking this hook.
    Return ``"done"`` (never run again), ``"skip"`` (not run again in this session, retried by
    the next one), ``"cancel"`` (retried by the next session, nothing counted) or ``"fail"``
    (one failed attempt counted, with the short text of the first report that did not pass:
    retried by the next session until ``--execo-max-attempts`` is reached), or None to leave
    the decision to the next implementation. The default is passed → done, skipped → skip,
    failed → fail. Anything else gives the combination back and stops the session after this
    item (every xdist worker too), with a message naming the value.

    When: in the process that ran the item (an xdist worker; under pytest-forked, the parent),
    as its last report (its teardown's) is logged, before the other implementations of
    ``pytest_runtest_logreport`` see that report (the terminal, pytest-xdist, junitxml, conftest
    hooks; only a ``tryfirst`` hook wrapper registered later sees it first). The item's
    ``execo_record`` results are already written (in the kernel); the state returned is
    written right after this hook returns.
    """


def pytest_execo_recorded(item: pytest.Item, combination: Any, outcome: str, state: str) -> None:
    """Called once a combination's ``state`` (see :func:`pytest_execo_state`) is recorded, in
    the process that ran it, as its last report (its teardown's) is logged, before the other
    implementations of ``pytest_runtest_logreport`` see that report (the terminal shows it,
    pytest-xdist sends it to the controller; only a ``tryfirst`` hook wrapper registered later
    sees it first), and before the next item starts.

    Durability when it fires: the state's record is written (``write(2)``: in the kernel), so
    that no kill of any process (SIGKILL, ``os._exit``, the OOM killer) makes a combination
    recorded ``"done"`` run again; ``"done"`` records and results are fsync'd within
    ``pytest_execo.flusher.SYNC_INTERVAL`` (0.1 s) plus one fsync, so that a crash of the
    machine loses at most that window; ``"fail"`` records are already fsync'd; ``"skip"`` and
    ``"cancel"`` are claims of this live process, which its death gives back anyway. With a
    ``postgresql://`` sweep dir, every record is committed (durable) when it fires.
    """
