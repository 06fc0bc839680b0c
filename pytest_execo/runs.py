"""The run of a pytest session with a sweep dir: its provenance (see
:mod:`execo_engine.provenance`).

- A session that runs test bodies captures its run at configuration (kind ``pytest``: the git
  commit of the project at the rootdir, the versions of execo_engine, pytest and the packages
  named by the ini option ``execo_record_versions``, the command line) and makes it the current
  run of the process: each sweep it writes to gets a start record, every result it records
  carries the run's id, and an end record says what it finished (at the end of the session).
  Its sessions claim ahead (see ``execo-sweep status``).
- Under pytest-xdist the controller captures the run and hands it to the workers
  (``workerinput``): a worker is a process of the same run.
- At collection, the controller reads the runs already recorded in each sweep, and for each
  sweep the session runs whose earlier results came from other code (another commit, another
  change of a dirty tree) than this session's, one line says so (see
  :func:`~execo_engine.provenance.earlier_code_note`).
"""

from __future__ import annotations

from typing import Any

import pytest

from execo_engine.codec import Codec
from execo_engine.provenance import Run, capture, earlier_code_note, end_run, merge_runs, start_run
from execo_engine.store.locations import child_locations, open_store
from pytest_execo.plugin import VERSIONS_INI

RUN_KEY = "execo_run"  #: workerinput: the run's start record
NOTES_KEY = "execo_run_notes"  #: workerinput: {sweep name: note}
PLUGIN = "execo-run"  #: the name this plugin is registered under


def _notes(directory: str, run: Run) -> dict[str, str]:
    """``{sweep name: note}`` for the sweeps below ``directory`` whose earlier runs ran other
    code than ``run``."""
    notes = {}
    for name, location in child_locations(directory).items():
        store = open_store(location, Codec(), read_only=True)
        try:
            note = earlier_code_note(merge_runs(store.read_runs()), run)
        finally:
            store.close()
        if note is not None:
            notes[name] = note
    return notes


class SessionRun:
    """The run of this session (see the module docstring)."""

    def __init__(self, config: pytest.Config, directory: str) -> None:
        given: dict[str, Any] | None = getattr(config, "workerinput", None)
        if given is not None and RUN_KEY in given:  # an xdist worker: the controller's run
            self.run = Run.from_record(given[RUN_KEY])
            self.notes: dict[str, str] = given.get(NOTES_KEY, {})
        else:
            self.run = capture(
                "pytest",
                directory=config.rootpath,
                packages=config.getini(VERSIONS_INI),
                command=["pytest", *config.invocation_params.args],
            )
            self.notes = _notes(directory, self.run)
        start_run(self.run, claims_ahead=True)

    def lines(self, sweeps: dict[str, str]) -> list[str]:
        """The notes of ``sweeps`` (``{name: key}``, the sweeps this session runs)."""
        return [
            f"execo: {key}: {self.notes[name]}"
            for name, key in sweeps.items()
            if name in self.notes
        ]

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller: every worker is a process of this run."""
        node.workerinput[RUN_KEY] = self.run.record()
        node.workerinput[NOTES_KEY] = self.notes

    @pytest.hookimpl(trylast=True)  # after the recorder wrote and gave back everything
    def pytest_sessionfinish(self) -> None:
        end_run()
