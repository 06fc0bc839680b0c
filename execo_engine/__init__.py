"""execo_engine: persistent, crash-safe parameter sweeps for experiments.

Re-exports the public names: ``sweep``, ``ParamSweeper``, ``HashableDict``, ``sweep_stats``,
``geom``, ``igeom`` (from :mod:`execo_engine.sweep`), ``slugify``, ``redirect_outputs``,
``copy_outputs`` (from :mod:`execo_engine.utils`), ``logger`` (from :mod:`execo_engine.log`) and
``Engine`` (from :mod:`execo_engine.engine`). ``from execo_engine import *`` gives exactly the
names execo 2.x's package gives: these, and the modules ``engine``, ``log`` and ``utils``.
``submit`` (from :mod:`execo_engine.launch`) is importable from here too, outside ``__all__``.
"""

__version__ = "3.0.0.dev0"

from execo_engine import engine, log, utils
from execo_engine.engine import Engine
from execo_engine.launch import submit as submit
from execo_engine.log import logger
from execo_engine.sweep import HashableDict, geom, igeom, sweep, sweep_stats
from execo_engine.sweeper import ParamSweeper
from execo_engine.utils import copy_outputs, redirect_outputs, slugify

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
