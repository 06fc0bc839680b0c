"""execo_engine: persistent, crash-safe parameter sweeps for experiments.

Re-exports the public names: ``sweep``, ``ParamSweeper``, ``HashableDict``, ``sweep_stats``,
``geom``, ``igeom`` (from :mod:`execo_engine.sweep`), ``slugify``, ``redirect_outputs``,
``copy_outputs`` (from :mod:`execo_engine.utils`), ``logger`` (from :mod:`execo_engine.log`) and
``Engine`` (from :mod:`execo_engine.engine`). ``from execo_engine import *`` gives exactly the
names execo 2.x's package gives: these, and the modules ``engine``, ``log`` and ``utils``.
The error classes of :mod:`execo_engine.errors`, ``submit`` (from :mod:`execo_engine.launch`),
``load_results``, ``results_frame`` and ``load_runs`` (from :mod:`execo_engine.results`) are
importable from here too, outside ``__all__``.

All but the pure combinatorics of :mod:`execo_engine.sweep` are imported on first use, so that
importing a submodule stays cheap (the pytest plugin imports ``execo_engine.sweep`` in every
pytest session).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Eager (pure and cheap), and it binds ``sweep`` to the function, not to the submodule.
from execo_engine.sweep import HashableDict, geom, igeom, sweep, sweep_stats

if TYPE_CHECKING:
    from execo_engine import engine, log, utils
    from execo_engine.engine import Engine
    from execo_engine.errors import CannotConnectError as CannotConnectError
    from execo_engine.errors import ConnectionLostError as ConnectionLostError
    from execo_engine.errors import CorruptRecordError as CorruptRecordError
    from execo_engine.errors import DirectoryVanishedError as DirectoryVanishedError
    from execo_engine.errors import Execo2DirectoryError as Execo2DirectoryError
    from execo_engine.errors import NewerFormatError as NewerFormatError
    from execo_engine.errors import NotARegularFileError as NotARegularFileError
    from execo_engine.errors import PickleNotAllowedError as PickleNotAllowedError
    from execo_engine.errors import UnsupportedValueError as UnsupportedValueError
    from execo_engine.launch import submit as submit
    from execo_engine.log import logger
    from execo_engine.results import load_results as load_results
    from execo_engine.results import load_runs as load_runs
    from execo_engine.results import results_frame as results_frame
    from execo_engine.sweeper import ParamSweeper
    from execo_engine.utils import copy_outputs, redirect_outputs, slugify

__version__ = "3.0.0.dev0"

#: Where each lazily imported public name lives.
_HOMES = {
    "Engine": "engine",
    "logger": "log",
    "ParamSweeper": "sweeper",
    "copy_outputs": "utils",
    "redirect_outputs": "utils",
    "slugify": "utils",
    # not in __all__, which lists execo 2.x's names: submit, results and the error classes
    "submit": "launch",
    "load_results": "results",
    "load_runs": "results",
    "results_frame": "results",
    "CannotConnectError": "errors",
    "ConnectionLostError": "errors",
    "CorruptRecordError": "errors",
    "DirectoryVanishedError": "errors",
    "Execo2DirectoryError": "errors",
    "NewerFormatError": "errors",
    "NotARegularFileError": "errors",
    "PickleNotAllowedError": "errors",
    "UnsupportedValueError": "errors",
}
_SUBMODULES = ("engine", "log", "utils")

__all__ = [
    "Engine",
    "HashableDict",
    "ParamSweeper",
    "copy_outputs",
    "engine",
    "geom",
    "igeom",
    "log",
    "logger",
    "redirect_outputs",
    "slugify",
    "sweep",
    "sweep_stats",
    "utils",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"execo_engine.{name}")
    if name not in _HOMES:
        raise AttributeError(f"module 'execo_engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"execo_engine.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
