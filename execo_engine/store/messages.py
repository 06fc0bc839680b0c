"""The log lines every store writes when it gives back what others held: one wording for all
stores, so that people (and their log filters) see the same thing whatever the store.

Giving back what a dead owner held needs nothing from anyone: found while *reading* (building
a sweeper, printing it, a getter, :meth:`~execo_engine.sweeper.ParamSweeper.update`), it is
logged at :data:`~execo_engine.log.DETAIL` (shown with ``-l detail``), so that a script that
prints a sweep's state while workers run, or after they died, prints only what it means to;
found by an operation that changes the state (a claim, a take, done, skip, cancel, fail, an
explicit ``reclaim()``), it is a WARNING, as it says why work may run again. ``execo-sweep
status`` shows dead owners in its own output either way.
"""

from __future__ import annotations

import logging

from execo_engine.log import DETAIL, logger


def _level(reading: bool) -> int:
    return DETAIL if reading else logging.WARNING


def reclaimed_dead(
    name: str, count: int, why: str, host: str, pid: int, skipped: int = 0, reading: bool = False
) -> None:
    """``count`` combinations held by the owner ``host``/``pid``, gone because of ``why`` (a
    dead process, an expired lease), were given back; ``skipped`` of them were skips;
    ``reading``: found by an operation that only reads."""
    logger.log(
        _level(reading),
        "%s: reclaimed %d combination(s) held by %s %s (pid %d)%s",
        name,
        count,
        why,
        host,
        pid,
        f", {skipped} of them skipped" if skipped else "",
    )


def reclaimed_old(name: str, count: int, older_than: float) -> None:
    """``count`` claims older than ``older_than`` seconds were given back, whoever held them."""
    logger.warning(
        "%s: reclaimed %d combination(s) claimed more than %g s ago", name, count, older_than
    )


def lease_expired(
    where: str, host: str, pid: int, silent: float, lease: float, reading: bool = False
) -> None:
    """The owner ``host``/``pid`` has not renewed its lease for ``silent`` seconds (its lease:
    ``lease``): it is taken for dead (``reading``: found by an operation that only reads)."""
    logger.log(
        _level(reading),
        "%s: no heartbeat from host %s pid %d for %.1f s (its lease: %g s)",
        where,
        host,
        pid,
        silent,
        lease,
    )
