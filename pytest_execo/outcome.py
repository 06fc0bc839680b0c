"""What an item's reports make of its combination: an outcome, then a state.

- Outcome (:func:`outcome_of`): over the reports of the item's last attempt (pytest-
  rerunfailures reports earlier attempts as ``"rerun"``), failed or error → ``"failed"``,
  skipped (xfail too) → ``"skipped"``, a call phase that ran and passed → ``"passed"``; None
  when no test body ran (``--setup-only``, ``--setup-plan``).
- State: the ``pytest_execo_state`` hook maps the outcome to one of :data:`STATES`; its default
  implementation (:func:`pytest_execo_state`, registered with :mod:`pytest_execo.plugin`, runs
  last) is :data:`DEFAULT_STATES`.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from pytest_execo.failures import failure_text

STATES = ("done", "skip", "cancel", "fail")  #: what ``pytest_execo_state`` may return
#: The default outcome -> state mapping (see the ``pytest_execo_state`` hook).
DEFAULT_STATES = {"passed": "done", "skipped": "skip", "failed": "fail"}


def is_rerun(report: pytest.TestReport) -> bool:
    """A failed attempt that pytest-rerunfailures runs again (an outcome pytest does not
    know)."""
    outcome: str = report.outcome
    return outcome == "rerun"


class Attempt:
    """The reports of an item's current attempt, as far as the recording needs them."""

    __slots__ = ("again", "call_passed", "duration", "error", "values", "worst")

    def __init__(self) -> None:
        self.worst: str | None = None  #: "failed", else "skipped", if a report was so
        self.again = False  #: pytest-rerunfailures runs this attempt again (a "rerun" came)
        self.call_passed = False
        self.duration = 0.0
        self.values: dict[str, Any] | None = None  #: execo_record values a report carried
        self.error: str | None = None  #: the short text of the first report that did not pass

    def add(self, report: pytest.TestReport, root: str | os.PathLike[str]) -> bool:
        """Take a report in (``root``: where the error text's paths are relative to); a
        ``"rerun"`` one (pytest-rerunfailures) starts a new attempt. Returns whether it is the
        item's last report: a teardown's, unless its attempt is run again (pytest-rerunfailures
        logs the rest of that attempt's reports after its ``"rerun"`` one, or none of them)."""
        self.duration += report.duration
        outcome: str = report.outcome
        if report.when == "setup":  # an attempt begins
            self.again = False
        if outcome == "passed":
            if report.when == "call":
                self.call_passed = True
        elif is_rerun(report):
            self.worst, self.call_passed, self.error = None, False, None
            self.again = True
        else:
            if outcome == "failed" or (outcome == "skipped" and self.worst is None):
                self.worst = outcome
            if self.error is None:
                self.error = failure_text(report, root)
        values = getattr(report, "execo_record", None)
        if values:
            self.values = values
        return report.when == "teardown" and not self.again


def outcome_of(attempt: Attempt) -> str | None:
    """``"failed"``, ``"skipped"``, ``"passed"``, or None when no test body ran."""
    return attempt.worst or ("passed" if attempt.call_passed else None)


@pytest.hookimpl(trylast=True)
def pytest_execo_state(outcome: str) -> str:
    """The default outcome -> state mapping (runs last): :data:`DEFAULT_STATES`."""
    return DEFAULT_STATES[outcome]
