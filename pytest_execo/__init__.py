"""pytest_execo: parametrize tests from execo sweep dicts, and resume grids across sessions.

The plugin lives in :mod:`pytest_execo.plugin` (registered through the ``pytest11`` entry
point); its extension hooks are specified in :mod:`pytest_execo.hooks`.
"""
