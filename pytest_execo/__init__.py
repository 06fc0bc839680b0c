"""pytest_execo: parametrize tests from execo sweep dicts, and resume grids across sessions.

The plugin lives in :mod:`pytest_execo.plugin` (registered through the ``pytest11`` entry
point); its extension hooks are specified in :mod:`pytest_execo.hooks`. Imports run one way,
from the plugin down:

- :mod:`~pytest_execo.plugin`: options, the marker, parametrization, fixtures; in a session
  with a sweep dir, it registers the modules below (imported only then);
- :mod:`~pytest_execo.summary` (header, collection line, terminal summary) over
  :mod:`~pytest_execo.recorder` (deselect, claim, record);
- :mod:`~pytest_execo.xdist_handoff` (controller ↔ workers), :mod:`~pytest_execo.xdist_queue`,
  :mod:`~pytest_execo.snapshot` (what was done before the session),
  :mod:`~pytest_execo.writer` (durability), :mod:`~pytest_execo.preemption`;
- :mod:`~pytest_execo.items` (what the marker leaves on items), :mod:`~pytest_execo.outcome`
  (reports → outcome → state), :mod:`~pytest_execo.naming`, :mod:`~pytest_execo.failures`,
  :mod:`~pytest_execo.alarm`: they import nothing above them.
"""
