"""The log lines every store writes when it gives back what others held: one wording for all
stores, so that people (and their log filters) see the same thing whatever the store."""

from __future__ import annotations

from execo_engine.log import logger


def reclaimed_dead(name: str, count: int, why: str, host: str, pid: int, skipped: int = 0) -> None:
    """``count`` combinations held by the owner ``host``/``pid``, gone because of ``why`` (a
    dead process, an expired lease), were given back; ``skipped`` of them were skips."""
    logger.warning(
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
