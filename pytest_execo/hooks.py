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
    failed → fail.
    """


def pytest_execo_recorded(item: pytest.Item, combination: Any, outcome: str, state: str) -> None:
    """Called after a combination's ``state`` (see :func:`pytest_execo_state`) was recorded,
    in the process that ran it."""
