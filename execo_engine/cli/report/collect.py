"""What ``execo-sweep report`` shows, read from a location: per sweep its progress, claims,
failures and per-factor counts (read-only ParamSweeper views); the recorded results as flat rows
(:func:`execo_engine.results.result_table`); the runs (``ParamSweeper.get_runs``, as
:func:`execo_engine.results.load_runs` gives them).

Reading only: every sweep is opened read-only (no lock, no write), so a report never slows a
running sweep down for more than one read. A :class:`Reader` keeps its views open from one read to
the next (``--watch``): each read then costs what changed since, plus the results and runs, read
whole.
"""

from __future__ import annotations

import collections
import datetime
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from execo_engine.cli.views import Views, sweep_locations, usage_errors
from execo_engine.results import result_table
from execo_engine.store.locations import shown
from execo_engine.sweep import sweep_stats
from execo_engine.sweeper import ParamSweeper

#: The states a combination of the sweeps can be in, as the report names them, in the order
#: the report shows them.
STATES = ("done", "failed", "inprogress", "skipped", "remaining")
#: The rate is measured over at most this many of the last finished combinations.
RATE_WINDOW = 500


@dataclass(frozen=True)
class Holding:
    """A combination held by a process: a claim (``in progress``) or a skip."""

    combination: Any  #: a dict of factors (or any element of the sweeps)
    host: str
    pid: int
    since: float  #: when it was taken, seconds since the epoch
    state: str  #: ``"in progress"`` or ``"skipped"``
    dead: bool  #: the holder is gone: the next writer gives it back


@dataclass(frozen=True)
class FailureRow:
    """A combination with failed attempts: failed for good, todo again or done after all."""

    combination: Any  #: a dict of factors (or any element of the sweeps)
    attempts: int
    error: str  #: the last attempt's error
    since: float  #: when the last attempt failed, seconds since the epoch
    state: str  #: ``"failed"``, ``"todo"`` (it will be retried) or ``"done"``


@dataclass(frozen=True)
class LevelCounts:
    """How many combinations with one level of a factor are in each state."""

    level: Any
    total: int
    counts: dict[str, int]  #: state (see :data:`STATES`) -> count


@dataclass
class SweepData:
    """One sweep as the report shows it."""

    name: str
    location: str  #: printable (a URL without its password)
    counts: dict[str, int]  #: ``total`` and each of :data:`STATES`
    factors: list[str]  #: the factor columns its results have (in the results' order)
    by_factor: dict[str, list[LevelCounts]] | None  #: None: the sweeps were not saved
    holdings: list[Holding]
    failures: list[FailureRow]
    rate: float | None = None  #: combinations finished per second lately (None: unknown)
    rate_basis: str = ""  #: what the rate was measured on, for a person

    @property
    def complete(self) -> bool:
        """Nothing left to do: no combination remaining nor in progress (a sweep of no
        combination is complete at once)."""
        return self.counts["remaining"] == 0 and self.counts["inprogress"] == 0

    @property
    def workers(self) -> list[str]:
        """``host:pid`` of the live processes holding claims."""
        return sorted(
            {f"{h.host}:{h.pid}" for h in self.holdings if h.state == "in progress" and not h.dead}
        )

    @property
    def dead_owners(self) -> list[str]:
        """``host:pid`` of the dead processes that still hold claims or skips."""
        return sorted({f"{h.host}:{h.pid}" for h in self.holdings if h.dead})

    @property
    def time_left(self) -> float | None:
        """Seconds until the remaining combinations are done at :attr:`rate` (None: unknown,
        or nobody works on the sweep)."""
        if self.complete:
            return 0.0
        if not self.rate or not self.workers:
            return None
        return (self.counts["remaining"] + self.counts["inprogress"]) / self.rate


@dataclass
class ReportData:
    """Everything one report shows, read at :attr:`generated`."""

    location: str  #: printable
    generated: float  #: seconds since the epoch
    sweeps: list[SweepData]
    columns: list[str]  #: the columns of the rows
    factors: list[str]  #: which of them are factors
    values: list[str]  #: which of them are recorded values
    rows: list[dict[str, Any]]  #: the results (:func:`execo_engine.results.result_table`)
    runs: list[dict[str, Any]]  #: as :func:`execo_engine.results.load_runs` gives them

    @property
    def complete(self) -> bool:
        """Every sweep is complete."""
        return bool(self.sweeps) and all(s.complete for s in self.sweeps)


def _holdings(view: ParamSweeper[Any]) -> list[Holding]:
    held = [(claim, "in progress") for claim in view.get_claims()]
    held += [(skip, "skipped") for skip in view.get_skips()]
    return [
        Holding(combination, owner.host, owner.pid, since, state, dead)
        for (combination, owner, since, dead), state in held
    ]


def _failures(view: ParamSweeper[Any]) -> list[FailureRow]:
    done = view.get_done()
    return [
        FailureRow(
            combination,
            failure.attempts,
            failure.error,
            failure.since,
            "done" if combination in done else "failed" if failure.failed else "todo",
        )
        for combination, failure in view.get_failures().items()
    ]


def _by_factor(view: ParamSweeper[Any]) -> dict[str, list[LevelCounts]] | None:
    """Per factor, per level (in sweeps order), the count in each state; None without saved
    sweeps, or when they are not all dicts (no factors then)."""
    saved = view.get_sweeps()
    if not saved or not all(isinstance(element, Mapping) for element in saved):
        return None
    sweeps, remaining, skipped, inprogress, done = view.stats()
    table = sweep_stats((sweeps, remaining, skipped, inprogress, done, list(view.get_failed())))
    return {
        str(factor): [
            LevelCounts(
                level,
                total,
                {state: table.get(state, {}).get(factor, {}).get(level, 0) for state in STATES},
            )
            for level, total in levels.items()
        ]
        for factor, levels in table["total"].items()
    }


def _utc(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def _runs(view: ParamSweeper[Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs of the sweep of ``view`` as :func:`execo_engine.results.load_runs` gives them
    (with ``sweep``, and ``results``: how many results carry the run's id), counted on its
    ``rows`` already read rather than on a second reading of its results."""
    carried = collections.Counter(row["run"] for row in rows)
    return [{**run, "sweep": view.name, "results": carried[run["id"]]} for run in view.get_runs()]


def results_rate(rows: list[dict[str, Any]], factors: list[str], now: float) -> float | None:
    """Combinations finished per second, over the last :data:`RATE_WINDOW` distinct
    combinations with results: how many they are / the time since the first of them finished
    (None: fewer than 2)."""
    seen: set[tuple[str, ...]] = set()
    first = now
    timed = [row for row in rows if row["time"] is not None]
    for row in sorted(timed, key=lambda r: r["time"], reverse=True):
        key = tuple(repr(row[f]) for f in factors)
        if key not in seen:
            seen.add(key)
            first = row["time"].timestamp()
            if len(seen) == RATE_WINDOW:
                break
    span = now - first
    return len(seen) / span if len(seen) >= 2 and span > 0 else None


class Reader:
    """Reads what a report shows from ``location`` (see :func:`~execo_engine.cli.views.
    sweep_locations`), again at each :meth:`read`: the rate of a sweep is measured on the done
    count since the first read when it moved, else on the times of its results."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._views = Views()
        self._first: dict[str, tuple[float, int]] = {}  # path -> (time, done) at the first read

    def close(self) -> None:
        """Release what the views hold (a database connection)."""
        self._views.close()

    def read(self) -> ReportData:
        """Everything the report shows, now."""
        now = time.time()
        with usage_errors():
            table = result_table(self.location)
        by_sweep: dict[str, list[dict[str, Any]]] = {}
        for row in table.rows:
            by_sweep.setdefault(row["sweep"], []).append(row)
        sweeps, runs = [], []
        paths = sweep_locations(self.location)
        for path in paths:
            with self._views.reading(path, len(paths)) as view:
                rows = by_sweep.get(view.name, [])
                runs += _runs(view, rows)
                factors = [f for f in table.factors if any(row[f] is not None for row in rows)]
                data = SweepData(
                    name=view.name,
                    location=shown(path),
                    counts=view.counts(),
                    factors=factors,
                    by_factor=_by_factor(view),
                    holdings=_holdings(view),
                    failures=_failures(view),
                )
            since, done_then = self._first.setdefault(path, (now, data.counts["done"]))
            if data.counts["done"] > done_then and now > since:
                data.rate = (data.counts["done"] - done_then) / (now - since)
                data.rate_basis = f"done since {_utc(since):%H:%M:%S} UTC"
            else:
                data.rate = results_rate(rows, factors, now)
                data.rate_basis = f"the last {RATE_WINDOW} results at most" if data.rate else ""
            sweeps.append(data)
        return ReportData(
            location=shown(self.location),
            generated=now,
            sweeps=sweeps,
            columns=table.columns,
            factors=table.factors,
            values=table.values,
            rows=table.rows,
            runs=runs,
        )
