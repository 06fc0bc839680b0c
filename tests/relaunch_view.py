"""A relaunch of a script, in a process of its own: prints as JSON what it sees of the grid of
``forked_skips.py`` at LOCATION (``python relaunch_view.py LOCATION``)."""

import json
import sys

from execo_engine.sweep import ParamSweeper, sweep

sweeper = ParamSweeper(sys.argv[1], sweep({"i": list(range(24))}))
print(
    json.dumps(
        {
            "skipped": sorted(c["i"] for c in sweeper.get_skipped()),
            "remaining": sorted(c["i"] for c in sweeper.get_remaining()),
        }
    )
)
