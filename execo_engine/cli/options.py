"""Checks of the ``execo-sweep`` options that argparse cannot make: each refuses bad input
with a :class:`~execo_engine.cli.views.UsageError` naming the option and what to give."""

from __future__ import annotations

import math

from execo_engine.cli.views import UsageError


def check_seconds(option: str, value: float, zero: bool = False) -> None:
    """Refuse ``value`` of ``option`` unless it is a finite number of seconds above 0
    (``zero``: or 0)."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        least = "0 or more" if zero else "above 0"
        raise UsageError(f"{option} {value:g}: give a finite number of seconds {least}")
