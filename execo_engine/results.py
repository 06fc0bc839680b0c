"""Recorded results as flat rows, ready for analysis (and the runs that produced them).

The API (stable: :mod:`execo_engine.cli` and the HTML report build on it)::

    load_results(location, include_pending=False) -> list[dict[str, Any]]
    result_table(location, include_pending=False) -> ResultTable(columns, factors, values, rows)
    results_frame(location, include_pending=False) -> pandas.DataFrame
    load_runs(location) -> list[dict[str, Any]]

``location`` is what ``execo-sweep`` takes: a sweep directory, a directory holding several (a
pytest ``--execo-sweep-dir``, an Engine result directory), or a ``postgresql://...?sweep=NAME``
URL (that sweep, or the sweeps named ``NAME/...``); see
:func:`~execo_engine.store.locations.sweep_locations`. Reading never writes nor locks: it is
safe while the sweep runs.

:func:`load_results` gives one dict per recorded result (``ParamSweeper.record_result``, the
pytest ``execo_record`` fixture), every dict with the same keys in the same order (the
columns):

- the combination's factors, in the order of the sweep (a combination that is not a dict is
  one column, ``combination``); a factor whose name is also the name of a column below gets
  the prefix ``factor_`` (``factor_time``), a recorded value named like a column after the
  values gets the prefix ``value_``;
- the recorded values, in the order they first appear;
- ``outcome`` (``"passed"``, ``"failed"``, ``"skipped"`` or what the recorder said, None when
  none), ``attempts`` (the failed attempts counted on the combination when read: 0 when none),
  ``duration`` (seconds, None when unknown), ``host``, ``time`` (when it was recorded, a
  timezone-aware UTC :class:`datetime.datetime`), ``sweep`` (the sweep's name: its directory's
  or its database sweep's, always present), ``run`` (the id of the run that recorded it, see
  :mod:`execo_engine.provenance`; None for results recorded outside a run or by older
  versions), ``commit`` and ``dirty`` (of that run; None when unknown);
- with ``include_pending=True``, ``state`` (the combination's state now: ``todo``,
  ``inprogress``, ``skipped``, ``done`` or ``failed``), and one more row per combination of the
  saved sweeps that has no result, with its state (its other columns None). A sweep whose
  sweeps were not saved adds no such row (its combinations are not known).

Rows come sweep by sweep (sorted by name); within a sweep, in the order they were recorded, or,
with ``include_pending``, in sweeps order (each combination's results in the order they were
recorded, or its pending row; then the results of combinations outside the sweeps).
:func:`result_table` also tells the columns (a table without rows still has them), and which
of them are factors and recorded values.
:func:`results_frame` gives the same rows as a :class:`pandas.DataFrame` (``time`` as a UTC
``datetime64``); pandas and pyarrow come with the ``analysis`` extra (``pip install
'execo_engine[analysis]'``).

:func:`load_runs` gives one dict per run recorded in the sweeps at ``location``
(see :func:`execo_engine.provenance.merge_runs` for the fields), plus ``sweep`` and
``results`` (how many results of that sweep carry the run's id), in the order they started.
"""

from __future__ import annotations

import collections
import datetime
import itertools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from execo_engine.codec import Codec
from execo_engine.errors import CorruptRecordError
from execo_engine.store.contract import State
from execo_engine.store.locations import Location, sweep_locations
from execo_engine.sweeper import ParamSweeper

if TYPE_CHECKING:
    import pandas

#: The columns after the factors and the recorded values, in this order.
RESULT_COLUMNS = (
    "outcome",
    "attempts",
    "duration",
    "host",
    "time",
    "sweep",
    "run",
    "commit",
    "dirty",
)
STATE_COLUMN = "state"  #: the last column with ``include_pending=True``
FACTOR_PREFIX, VALUE_PREFIX = "factor_", "value_"
COMBINATION_COLUMN = "combination"  #: the column of a combination that is not a dict
#: The name of each state in the ``state`` column.
STATE_NAMES = {
    State.TODO: "todo",
    State.CLAIMED: "inprogress",
    State.SKIPPED: "skipped",
    State.DONE: "done",
    State.FAILED: "failed",
}
ANALYSIS_EXTRA = "pip install 'execo_engine[analysis]'"


def open_view(location: str) -> ParamSweeper[Any]:
    """A read-only ParamSweeper on the sweep ``location``, with its saved sweeps (or none:
    its records stay readable)."""
    try:
        return ParamSweeper(location, read_only=True)
    except CorruptRecordError:  # a ValueError too, but not "no saved sweeps"
        raise
    except ValueError:  # no saved sweeps
        return ParamSweeper(location, [], read_only=True)


def _column(name: Any) -> str:
    return name if isinstance(name, str) else repr(name)


def _utc(seconds: float | None) -> datetime.datetime | None:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


class _Sweep:
    """What one sweep contributes to the table: its records, read once."""

    def __init__(self, location: str, include_pending: bool) -> None:
        view = open_view(location)
        try:
            self._read(view, include_pending)
        finally:
            view.close()

    def _read(self, view: ParamSweeper[Any], include_pending: bool) -> None:
        self.name = view.name
        self.sweeps = list(view.get_sweeps())
        self.records = view.get_results()
        self.attempts = {
            _CODEC.encode(element): failure.attempts
            for element, failure in view.get_failures().items()
        }
        self.runs = {run["id"]: run for run in view.get_runs()}
        self.states: dict[str, State] = {}
        if include_pending:
            _, todo, skipped, inprogress, done = view.stats()
            for state, elements in (
                (State.TODO, todo),
                (State.SKIPPED, skipped),
                (State.CLAIMED, inprogress),
                (State.DONE, done),
                (State.FAILED, view.get_failed()),
            ):
                self.states.update((_CODEC.encode(element), state) for element in elements)

    def factors(self) -> Iterable[Any]:
        """The factor names of the sweep's combinations, those of the sweeps first."""
        for elements in (self.sweeps, (record["combination"] for record in self.records)):
            yield from dict.fromkeys(
                itertools.chain.from_iterable(e for e in elements if isinstance(e, Mapping))
            )

    def plain(self) -> bool:
        """Whether some combination is not a dict (it gets a ``combination`` column)."""
        return not all(isinstance(e, Mapping) for e in self.sweeps) or not all(
            isinstance(r["combination"], Mapping) for r in self.records
        )


_CODEC = Codec()


def _unique(name: str, prefix: str, taken: set[str]) -> str:
    while name in taken:
        name = prefix + name
    return name


def _layout(
    sweeps: list[_Sweep], include_pending: bool
) -> tuple[list[str], dict[Any, str], dict[Any, str]]:
    """The columns, and the column of each factor name and of each value name."""
    fixed = list(RESULT_COLUMNS) + ([STATE_COLUMN] if include_pending else [])
    factor_names = list(dict.fromkeys(f for s in sweeps for f in s.factors()))
    if any(s.plain() for s in sweeps):
        factor_names.append(COMBINATION_COLUMN)
    value_names = list(dict.fromkeys(v for s in sweeps for r in s.records for v in r["values"]))
    taken = set(fixed)
    values = {name: _unique(_column(name), VALUE_PREFIX, taken) for name in value_names}
    taken |= set(values.values())
    factors = {}
    for name in factor_names:
        factors[name] = _unique(_column(name), FACTOR_PREFIX, taken)
        taken.add(factors[name])
    return [*factors.values(), *values.values(), *fixed], factors, values


def _combination_cells(combination: Any, factors: dict[Any, str]) -> dict[str, Any]:
    if isinstance(combination, Mapping):
        return {factors[name]: level for name, level in combination.items()}
    return {factors[COMBINATION_COLUMN]: combination}


class ResultTable(NamedTuple):
    """The rows of :func:`load_results` with their columns."""

    columns: list[str]  #: every column, in order
    factors: list[str]  #: the columns of the factors
    values: list[str]  #: the columns of the recorded values
    rows: list[dict[str, Any]]


def result_table(location: Location, include_pending: bool = False) -> ResultTable:
    """The rows of :func:`load_results`, with the columns (also when there is no row)."""
    sweeps = [_Sweep(at, include_pending) for at in sweep_locations(location)]
    columns, factors, values = _layout(sweeps, include_pending)
    empty = dict.fromkeys(columns)

    def result_row(sweep: _Sweep, record: Any, text: str) -> dict[str, Any]:
        run = record.get("run") if isinstance(record.get("run"), str) else None
        known = sweep.runs.get(run, {}) if run is not None else {}
        row = {
            **empty,
            **_combination_cells(record["combination"], factors),
            **{values[name]: value for name, value in record["values"].items()},
            "outcome": record["outcome"],
            "attempts": sweep.attempts.get(text, 0),
            "duration": record["duration"],
            "host": record["host"],
            "time": _utc(record["time"]),
            "sweep": sweep.name,
            "run": run,
            "commit": known.get("commit"),
            "dirty": known.get("dirty"),
        }
        if include_pending:
            row[STATE_COLUMN] = STATE_NAMES[sweep.states.get(text, State.DONE)]
        return row

    rows: list[dict[str, Any]] = []
    for sweep in sweeps:
        texts = [_CODEC.encode(record["combination"]) for record in sweep.records]
        if not include_pending:
            rows += map(result_row, itertools.repeat(sweep), sweep.records, texts)
            continue
        by_text: dict[str, list[Any]] = {}
        for text, record in zip(texts, sweep.records, strict=True):
            by_text.setdefault(text, []).append(record)
        for element in sweep.sweeps:  # sweeps order: results, or the pending row
            text = _CODEC.encode(element)
            if text in by_text:
                rows += (result_row(sweep, record, text) for record in by_text.pop(text))
                continue
            rows.append(
                {
                    **empty,
                    **_combination_cells(element, factors),
                    "attempts": sweep.attempts.get(text, 0),
                    "sweep": sweep.name,
                    STATE_COLUMN: STATE_NAMES[sweep.states.get(text, State.TODO)],
                }
            )
        for text, records in by_text.items():  # combinations outside the sweeps
            rows += (result_row(sweep, record, text) for record in records)
    return ResultTable(columns, list(factors.values()), list(values.values()), rows)


def load_results(location: Location, include_pending: bool = False) -> list[dict[str, Any]]:
    """One flat dict per recorded result at ``location`` (see the module docstring for the
    columns); with ``include_pending``, a ``state`` column and a row per combination without
    a result. ``FileNotFoundError`` or ``ValueError`` naming ``location`` when it holds no
    sweep."""
    return result_table(location, include_pending).rows


def results_frame(location: Location, include_pending: bool = False) -> pandas.DataFrame:
    """The rows of :func:`load_results` as a :class:`pandas.DataFrame`, with the same
    columns (also when there is no row), ``time`` as a UTC ``datetime64``. An
    ``ImportError`` naming the ``analysis`` extra when pandas is not installed."""
    try:
        import pandas
    except ImportError as error:
        raise ImportError(
            f"results_frame needs pandas: {ANALYSIS_EXTRA} ({error})", name=error.name
        ) from None
    columns, _, _, rows = result_table(location, include_pending)
    frame = pandas.DataFrame(rows, columns=columns)
    frame["time"] = pandas.to_datetime(frame["time"], utc=True)
    return frame


def load_runs(location: Location) -> list[dict[str, Any]]:
    """One dict per run recorded in each sweep at ``location`` (see the module docstring),
    sweep by sweep (sorted by name), each sweep's runs in the order they started."""
    runs: list[dict[str, Any]] = []
    for at in sweep_locations(location):
        view = open_view(at)
        try:
            carried = collections.Counter(record.get("run") for record in view.get_results())
            runs += (
                {**run, "sweep": view.name, "results": carried[run["id"]]}
                for run in view.get_runs()
            )
        finally:
            view.close()
    return runs
