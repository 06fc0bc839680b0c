"""execo_engine: persistent, crash-safe parameter sweeps for experiments.

Re-exports the public names: ``sweep``, ``ParamSweeper``, ``HashableDict``, ``sweep_stats``,
``geom``, ``igeom`` (from :mod:`execo_engine.sweep`), ``slugify``, ``redirect_outputs``,
``copy_outputs`` (from :mod:`execo_engine.utils`) and ``logger`` (from :mod:`execo_engine.log`).
"""

from execo_engine.log import logger
from execo_engine.sweep import HashableDict, geom, igeom, sweep, sweep_stats
from execo_engine.utils import copy_outputs, redirect_outputs, slugify

__all__ = ["HashableDict", "copy_outputs", "geom", "igeom", "logger", "redirect_outputs",
           "slugify", "sweep", "sweep_stats"]
