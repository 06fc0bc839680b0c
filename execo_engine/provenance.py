"""Provenance: which code produced the results of a sweep, where, when and by whom.

A *run* is one pytest session (its xdist workers included), one ``Engine`` run, or one process
of a worker started by ``execo-sweep submit``. The process that starts it captures a
:class:`Run` (:func:`capture`) and makes it the current run of the process (:func:`start_run`);
from then on, every writing ``ParamSweeper`` of the process joins it (:func:`join`): the
first one on each sweep writes a *start record* there, the results it records carry the run's
id, and when the run ends (:func:`end_run`, or when the interpreter exits) an *end record*
says how many combinations this process finished there. An xdist worker or a process forked
from a run is a process of the same run (the same id, a start and an end record of its own).

Records (JSON objects, kept by every store: :mod:`execo_engine.store.runs`):

- start: ``id``, ``kind`` (``pytest``, ``engine``, ``worker``), ``start`` (seconds since the
  epoch), ``host``, ``user``, ``command`` (the argument list), ``cwd``, ``python`` (version),
  ``versions`` (``{package: version or null}``: execo_engine, pytest, and the packages the user
  names), ``commit`` (the ``HEAD`` commit of the git repository of the project, null outside one
  or without ``git``), ``dirty`` (tracked files differ from ``HEAD``, as ``git describe
  --dirty`` says: untracked files, such as a results directory inside the repository, do not
  count; null without a commit), ``diff`` (a digest of that difference, ``git diff HEAD``; null
  when clean), ``worker`` (``EXECO_WORKER_INDEX`` of a submitted worker, else null),
  ``process`` (the owner identity of the writing process, see :mod:`execo_engine.store.owner`) and
  ``claims_ahead`` (this process claims combinations before it runs them, as a pytest session
  does: ``execo-sweep status`` then tells the one it runs from those claimed ahead);
- end: ``id``, ``process``, ``end`` (seconds since the epoch), ``done`` and ``failed`` (the
  combinations this process marked done, and the failed attempts it counted, in this sweep).

Readers keep unknown fields and tolerate missing ones (a record of another version).
:func:`merge_runs` makes one summary per run from the records of a sweep. Nothing here ever
fails a run: ``git`` missing, slow (:data:`GIT_TIMEOUT`) or refusing gives a null commit.
"""

from __future__ import annotations

import atexit
import datetime
import getpass
import hashlib
import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from execo_engine.log import logger
from execo_engine.preempt import INDEX_ENV, LOCATION_ENV
from execo_engine.store.contract import Store
from execo_engine.store.owner import current_owner

#: Seconds each git command may take before the commit is given up (recorded as null).
GIT_TIMEOUT = 10.0
#: The packages whose versions every run records (besides those the user names).
BASE_PACKAGES = ("execo_engine", "pytest")
KINDS = ("pytest", "engine", "worker")


class GitState(NamedTuple):
    """The state of a git working tree (see the module docstring)."""

    commit: str | None
    dirty: bool | None
    diff: str | None  #: ``sha256:<hex>`` of ``git diff HEAD --binary``, None when clean


def _git(directory: str, *arguments: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["git", "-C", directory, *arguments],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},  # never lock the index
    )


def _digest_of(process: subprocess.Popen[bytes], deadline: float) -> tuple[str, int] | None:
    """The sha256 of what ``process`` prints and how many bytes, None if it fails or runs
    past ``deadline`` (then killed)."""
    digest, size = hashlib.sha256(), 0
    assert process.stdout is not None
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), process.kill)
    timer.start()
    try:
        while chunk := process.stdout.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
        status = process.wait()
    finally:
        timer.cancel()
        process.stdout.close()
    return (digest.hexdigest(), size) if status == 0 else None


def git_state(directory: str | os.PathLike[str], timeout: float = GIT_TIMEOUT) -> GitState:
    """The commit of ``directory``'s git repository, whether its tracked files differ from it,
    and a digest of the difference; every field None when there is no repository, no commit,
    no ``git``, or git fails or does not answer within ``timeout`` seconds (logged)."""
    where = os.fspath(directory)
    deadline = time.monotonic() + timeout
    try:
        head = _git(where, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    except FileNotFoundError:  # no git
        return GitState(None, None, None)
    try:
        out, _ = head.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        head.kill()
        head.wait()
        out = b""
    if head.returncode == 0:
        diff = _digest_of(
            _git(where, "diff", "HEAD", "--binary", "--no-ext-diff", "--no-textconv"), deadline
        )
        if diff is not None:
            digest, size = diff
            commit = out.decode("ascii", "replace").strip()
            return GitState(commit, size > 0, f"sha256:{digest}" if size else None)
    elif out or head.returncode >= 0:  # not killed: no repository, or no commit yet
        return GitState(None, None, None)
    logger.warning(
        "%s: git did not tell the state of the tree (an error, or no answer within %g s): "
        "this run records no commit",
        where,
        timeout,
    )
    return GitState(None, None, None)


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """``{name: installed version}`` (None when not installed), in the order given."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return str(os.getuid())


@dataclass(frozen=True)
class Run:
    """What a run records at its start (see the module docstring for the fields)."""

    id: str
    kind: str
    start: float
    host: str
    user: str
    command: list[str]
    cwd: str
    python: str
    versions: dict[str, str | None]
    commit: str | None
    dirty: bool | None
    diff: str | None
    worker: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  #: fields of another version, kept

    def record(self) -> dict[str, Any]:
        """The run's fields as a start record holds them (without the process fields)."""
        fields = asdict(self)
        return {**fields.pop("extra"), **fields}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Run:
        """The run of a start record (as :meth:`record` gives it, e.g. handed to an xdist
        worker); ``ValueError`` when a field is missing."""
        names = [f for f in cls.__dataclass_fields__ if f != "extra"]
        try:
            known = {name: record[name] for name in names if name != "worker"}
        except KeyError as error:
            raise ValueError(f"not a run record: no {error} field") from None
        extra = {k: v for k, v in record.items() if k not in names and k not in _PROCESS}
        return cls(**known, worker=record.get("worker"), extra=extra)


_PROCESS = ("process", "claims_ahead")  #: the fields a start record adds for its process


def _worker_index() -> int | None:
    text = os.environ.get(INDEX_ENV, "")
    return int(text) if text.isdigit() else None


def new_run_id() -> str:
    """A new run id: ``r`` and 11 random hex digits. The letter in front keeps spreadsheets
    and ``pandas.read_csv`` from taking an id for a number, as they would take ``358561736e41``
    (3.6e49) or an id of digits only: about 1 id of 140 made of 12 hex digits."""
    return "r" + uuid.uuid4().hex[:11]


def capture(
    kind: str,
    directory: str | os.PathLike[str] | None = None,
    packages: Sequence[str] = (),
    command: Sequence[str] | None = None,
) -> Run:
    """A new run of ``kind`` (one of :data:`KINDS`), started now: the commit of ``directory``'s
    repository (default: the current directory), the versions of :data:`BASE_PACKAGES` and
    ``packages``, ``command`` (default: ``sys.argv``)."""
    if kind not in KINDS:
        raise ValueError(f"run kind {kind!r}: expected one of {', '.join(KINDS)}")
    git = git_state(directory if directory is not None else os.getcwd())
    return Run(
        id=new_run_id(),
        kind=kind,
        start=round(time.time(), 3),
        host=socket.gethostname(),
        user=_user(),
        command=list(sys.argv if command is None else command),
        cwd=os.getcwd(),
        python=platform.python_version(),
        versions=package_versions(dict.fromkeys([*BASE_PACKAGES, *packages])),
        commit=git.commit,
        dirty=git.dirty,
        diff=git.diff,
        worker=_worker_index(),
    )


# -- the current run of this process ------------------------------------------------------------


class Tally:
    """What this process finished and recorded in one sweep during run ``run`` (an id),
    counted by ParamSweeper."""

    def __init__(self, store: Store, run: str) -> None:
        self.store, self.run = store, run
        #: whether the ParamSweeper of :attr:`store` closed it (the end record then opens it
        #: again, and closes it after: see :func:`end_run`)
        self.store_closed = False
        self.done = 0
        self.failed = 0
        self.results = 0
        self._lock = threading.Lock()

    def count(self, done: int = 0, failed: int = 0, results: int = 0) -> None:
        """Add ``done`` combinations marked done, ``failed`` failed attempts and ``results``
        results recorded."""
        with self._lock:
            self.done += done
            self.failed += failed
            self.results += results


#: Called with a ParamSweeper and its location when it is the first of its process to join
#: the current run in that sweep (see :func:`start_run`).
OnJoin = Callable[[Any, str], None]


class _Current:
    """The current run, as this process takes part in it."""

    def __init__(self, run: Run, claims_ahead: bool, on_join: OnJoin | None) -> None:
        self.run, self.claims_ahead, self.pid = run, claims_ahead, os.getpid()
        self.on_join = on_join
        self.tallies: dict[str, Tally] = {}  #: by the location of each sweep joined
        self.lock = threading.Lock()


_current: _Current | None = None


def _here() -> _Current | None:
    """The current run, as this very process takes part in it: a process forked from a run
    is a process of the run of its own (nothing joined yet, and no ``on_join``: the process
    that started the run reports on it)."""
    global _current
    current = _current
    if current is not None and current.pid != os.getpid():
        current = _current = _Current(current.run, current.claims_ahead, None)
    return current


def start_run(run: Run, claims_ahead: bool = False, on_join: OnJoin | None = None) -> Run:
    """Make ``run`` the current run of this process (ending the one before, if any): the
    writing ParamSweepers opened from now on join it. ``claims_ahead``: see the module.
    ``on_join(sweeper, location)`` is called when a ParamSweeper, set up but for its run, is
    the first of this process to join the run in its sweep (an Engine logs where the sweep
    stands)."""
    global _current
    end_run()
    _current = _Current(run, claims_ahead, on_join)
    atexit.unregister(end_run)
    atexit.register(end_run)
    return run


def current_run() -> Run | None:
    """The current run of this process, None when there is none."""
    current = _here()
    return current.run if current is not None else None


def join(store: Store, sweeper: Any) -> Tally | None:
    """Have this process take part in the current run in ``store`` (a writing store, opened
    by ``sweeper``): a start record written there once per process, and the :class:`Tally` to
    count into (the same one for every ParamSweeper of the process on the same sweep). Without
    a current run, a submitted worker (``EXECO_SWEEP_LOCATION`` set) starts one of kind
    ``worker``; else None."""
    current = _here()
    if current is None:
        if LOCATION_ENV not in os.environ:
            return None
        start_run(capture("worker"))
        current = _here()
        assert current is not None
    with current.lock:
        tally = current.tallies.get(store.location)
        first = tally is None
        if tally is not None and tally.store_closed:  # the end record goes through this one
            tally.store, tally.store_closed = store, False
        if tally is None:
            store.add_run(
                {
                    **current.run.record(),
                    "process": list(current_owner()),
                    "claims_ahead": current.claims_ahead,
                }
            )
            tally = current.tallies[store.location] = Tally(store, current.run.id)
    if first and current.on_join is not None:
        current.on_join(sweeper, store.location)
    return tally


def end_run() -> None:
    """Write the end record of this process in every sweep it joined, and forget the current
    run (called when the interpreter exits, if not before). A store that cannot be written
    any more is logged, never raised."""
    global _current
    current = _here()
    _current = None
    if current is None:
        return
    owner, now = list(current_owner()), round(time.time(), 3)
    for location, tally in current.tallies.items():
        try:
            tally.store.add_run(
                {
                    "id": current.run.id,
                    "process": owner,
                    "end": now,
                    "done": tally.done,
                    "failed": tally.failed,
                    "results": tally.results,
                }
            )
            if tally.store_closed:  # hold nothing open again (many sweeps: descriptors)
                tally.store.close()
        except Exception as error:
            logger.warning(
                "%s: could not write the end of run %s: %s", location, current.run.id, error
            )


# -- reading -------------------------------------------------------------------------------------


def _utc(seconds: Any) -> datetime.datetime | None:
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        try:
            return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def merge_runs(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per run of the records of a sweep, in the order the runs started:

    ``id``, ``kind``, ``start`` (a UTC :class:`datetime.datetime`), ``host``, ``user``,
    ``command`` (one shell-quoted line), ``python``, ``versions``, ``commit``, ``dirty``,
    ``diff``, ``worker`` (from the first start record); ``processes`` (how many processes took
    part), ``ended`` (how many of them wrote their end record: fewer while it runs, or when one
    was killed), ``end`` (the last end record's time, None without one), ``done``, ``failed``
    and ``results`` (results recorded; summed over the end records, None without any; end
    records written before results were counted count none), ``owners_ahead`` (the owner
    identities of its processes that claim ahead). Fields of the wrong type read as None."""
    runs: dict[str, dict[str, Any]] = {}
    for record in records:
        run = runs.get(record["id"])
        if run is None:
            run = runs[record["id"]] = {
                "id": record["id"],
                "processes": 0,
                "ended": 0,
                "end": None,
                "done": None,
                "failed": None,
                "results": None,
                "owners_ahead": [],
                "_started": False,
            }
        if "end" in record:
            run["ended"] += 1
            run["end"] = max(filter(None, (run["end"], _utc(record["end"]))), default=None)
            run["done"] = (run["done"] or 0) + _count(record.get("done"))
            run["failed"] = (run["failed"] or 0) + _count(record.get("failed"))
            run["results"] = (run["results"] or 0) + _count(record.get("results"))
            continue
        run["processes"] += 1
        if record.get("claims_ahead") is True and isinstance(record.get("process"), list):
            run["owners_ahead"].append(tuple(record["process"]))
        if run["_started"]:
            continue
        run["_started"] = True
        command = record.get("command")
        versions = record.get("versions")
        run.update(
            kind=_text(record.get("kind")),
            start=_utc(record.get("start")),
            host=_text(record.get("host")),
            user=_text(record.get("user")),
            command=shlex.join(map(str, command)) if isinstance(command, list) else None,
            python=_text(record.get("python")),
            versions=versions if isinstance(versions, dict) else {},
            commit=_text(record.get("commit")),
            dirty=record.get("dirty") if isinstance(record.get("dirty"), bool) else None,
            diff=_text(record.get("diff")),
            worker=record.get("worker") if type(record.get("worker")) is int else None,
        )
    merged = []
    for run in runs.values():
        if not run.pop("_started"):  # end records alone (the start record was lost)
            run.update(dict.fromkeys(("kind", "start", "host", "user", "command", "python")))
            run.update(versions={}, commit=None, dirty=None, diff=None, worker=None)
        merged.append(run)
    epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return sorted(merged, key=lambda run: run["start"] or epoch)


def code_label(commit: str | None, dirty: bool | None, diff: str | None) -> str:
    """How a person reads the code of a run: ``1a2b3c4d5e6f``, ``1a2b3c4d5e6f-dirty:9f8e7d6c``
    (the digest of the difference), or ``no commit``."""
    if commit is None:
        return "no commit"
    label = commit[:12]
    if dirty:
        label += "-dirty"
        if diff:
            label += ":" + diff.removeprefix("sha256:")[:8]
    return label


def _code(run: dict[str, Any] | Run) -> tuple[str | None, bool | None, str | None]:
    if isinstance(run, Run):
        return run.commit, run.dirty, run.diff
    return run["commit"], run["dirty"], run["diff"]


def earlier_code_note(runs: Sequence[dict[str, Any]], current: Run | None) -> str | None:
    """One line when the runs of a sweep (:func:`merge_runs`) that may have finished
    combinations, and ``current`` (if any), ran different code (another commit, or a tree with
    other changes): ``this sweep has results from 2 commits: 1a2b3c4d5e6f (2 runs, 30 done),
    9f8e7d6c5b4a-dirty:0a1b2c3d (this run)``. A run counts unless it ended having finished
    nothing (no combination done or failed, no result recorded); a count with ``+`` misses
    processes that did not end (running, or killed). None when they all ran the same code."""
    codes: dict[tuple[str | None, bool | None, str | None], list[dict[str, Any]]] = {}
    for run in runs:
        if current is not None and run["id"] == current.id:
            continue
        if run["ended"] >= run["processes"] and not (
            run["done"] or run["failed"] or run["results"]
        ):
            continue  # ended having finished nothing
        codes.setdefault(_code(run), []).append(run)
    mine = _code(current) if current is not None else None
    if mine is not None:
        codes.setdefault(mine, [])
    if len(codes) < 2:
        return None
    parts = []
    for code, group in codes.items():
        counts = []
        if group:
            done = sum(run["done"] or 0 for run in group)
            results = sum(run["results"] or 0 for run in group)
            counted = "" if all(run["ended"] >= run["processes"] for run in group) else "+"
            counts.append(f"{len(group)} run{'s' if len(group) > 1 else ''}")
            counts.append(f"{done}{counted} done")
            if not done and results:  # results of combinations finished by other runs
                counts.append(f"{results}{counted} result{'s' if results > 1 else ''}")
        if code == mine:
            counts.append("this run")
        parts.append(f"{code_label(*code)} ({', '.join(counts)})")
    distinct = len({code[0] for code in codes}) == len(codes)  # one code per commit
    what = "commits" if distinct else "versions of the code"
    return f"this sweep has results from {len(codes)} {what}: {', '.join(parts)}"
