"""Leases for a persistence directory: heartbeats of the writing processes, judged by each reader.

A process that holds claims, or that created a writing store object (whose skips last while
it lives, whichever of its forked processes wrote them), *heartbeats* in the directory: a
background thread
rewrites its small file ``owners/<token>`` every ``lease/3`` seconds (also while the process runs
one long combination), one JSON line ``{"owner": [...], "lease": seconds, "beat": counter}`` whose
counter never repeats within the process. An owner that this process cannot judge by its pid
(another host, another PID namespace: see :mod:`execo_engine.store.owner`) is dead when its
file has not changed for ``lease`` seconds *as seen by this reader's monotonic clock*: clock skew
between hosts does not matter, and only NFS close-to-open consistency is relied on (each look opens
the file again). A heartbeat file that is missing is not a beat: an owner whose file vanished (or
never appeared) is dead ``lease`` seconds after this reader first looked. Owners of this host and
PID namespace are still judged at once by their pid.

The lease is the writer's: each file states it, and readers use it (a file that cannot be read
as a heartbeat falls back on the reader's lease). Trade-off: a shorter lease gives a vanished
host's claims back sooner (within ``lease + lease/3`` of its death, as soon as some instance
operates), but a process that is paused, starved of CPU, or cut from the file server for more
than ``lease`` seconds loses its claims: when it resumes it logs so, its ``done()`` still counts
(done is idempotent), and the combination may have run twice. Leases shorter than
:data:`MIN_LEASE` are refused: a renewal has to fit in two thirds of the lease.

Heartbeat files are removed by their process when it stops (last instance gone, or exit), and by
any writer once their owner is known dead. Nothing read here is executed or unpickled; files are
opened relative to ``owners/`` without following symbolic links, and anything that is not a
regular file is refused.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import errno
import hashlib
import itertools
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from execo_engine.log import logger
from execo_engine.store.directory.files import open_regular
from execo_engine.store.lease import DEFAULT_LEASE, Heart, check_lease, running_heart, the_heart
from execo_engine.store.log.records import owner_text
from execo_engine.store.messages import lease_expired
from execo_engine.store.owner import Owner, current_owner, decode_owner, is_dead, judged_by_pid

OWNERS_DIR = "owners"
_MAX_HEARTBEAT = 4096  # bytes read from a heartbeat file at most


def token(owner: Owner) -> str:
    """The name of ``owner``'s heartbeat file: readable, and unique to the owner."""
    digest = hashlib.sha256(owner_text(owner).encode()).hexdigest()[:16]
    host = re.sub(r"[^A-Za-z0-9.-]", "_", owner.host)[:64]
    return f"{host}.{owner.pid}.{digest}"


# -- files ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _owners_dir(directory: str, create: bool) -> Iterator[int | None]:
    """A descriptor of ``directory/owners`` (made if ``create``; None if missing): never a
    symbolic link, and never ``directory`` itself re-created if it vanished."""
    path = os.path.join(directory, OWNERS_DIR)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if not create:
            yield None
            return
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o755)  # FileNotFoundError if the directory itself is gone
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):  # EMFILE, EACCES...: as they are
            raise
        raise OSError(
            error.errno, f"{path} is not a directory (a symbolic link?): remove it"
        ) from None
    try:
        yield fd
    finally:
        os.close(fd)


def _read(owners: int, name: str) -> bytes | None:
    """The content of heartbeat file ``name`` (None if it does not exist)."""
    try:
        fd, _ = open_regular(name, os.O_RDONLY, dir_fd=owners, shown=f"{OWNERS_DIR}/{name}")
    except FileNotFoundError:
        return None
    try:
        return os.pread(fd, _MAX_HEARTBEAT, 0)
    finally:
        os.close(fd)


def _parse(data: bytes | None) -> tuple[Owner, float] | None:
    """The owner and lease a heartbeat holds, or None if it is not one."""
    if data is None:
        return None
    try:
        record = json.loads(data)
        return decode_owner(record["owner"]), check_lease(record["lease"])
    except (ValueError, TypeError, KeyError, RecursionError):
        return None


_beats = itertools.count()  # never repeats in a process: a rewritten file always differs


def _write(directory: str, owner: Owner, lease: float) -> None:
    """Write one heartbeat of ``owner`` in ``directory`` (re-creating a file deleted meanwhile)."""
    name = token(owner)
    data = json.dumps({"owner": list(owner), "lease": lease, "beat": next(_beats)}).encode() + b"\n"
    with _owners_dir(directory, create=True) as owners:
        assert owners is not None  # made if missing
        for _ in range(3):
            where = os.path.join(directory, OWNERS_DIR, name)
            fd, _ = open_regular(name, os.O_WRONLY | os.O_CREAT, dir_fd=owners, shown=where)
            try:
                os.pwrite(fd, data, 0)
                os.ftruncate(fd, len(data))
                written = os.fstat(fd).st_ino
            finally:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                if os.stat(name, dir_fd=owners, follow_symlinks=False).st_ino == written:
                    return  # else removed while being written (taken for dead): write it again


def _remove(directory: str, names: Iterable[str]) -> None:
    with _owners_dir(directory, create=False) as owners:
        if owners is None:
            return
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=owners)


@dataclass
class Heartbeat:
    """One owner's heartbeat file as ``execo-sweep status`` shows it."""

    owner: Owner
    lease: float
    age: float  #: seconds since it was last written, by this host's clock (file mtime)


def heartbeats(directory: str) -> dict[Owner, Heartbeat]:
    """The heartbeat of every owner in ``directory`` (read only, no lock)."""
    found: dict[Owner, Heartbeat] = {}
    with _owners_dir(directory, create=False) as owners:
        if owners is None:
            return found
        now = time.time()
        for name in os.listdir(owners):
            with contextlib.suppress(OSError):
                parsed = _parse(_read(owners, name))
                if parsed is not None:
                    mtime = os.stat(name, dir_fd=owners, follow_symlinks=False).st_mtime
                    found[parsed[0]] = Heartbeat(parsed[0], parsed[1], max(0.0, now - mtime))
    return found


# -- judging others ------------------------------------------------------------------------------


@dataclass
class _Seen:
    data: bytes | None  # the content as last seen (None: missing)
    since: float  # when this reader first saw it (monotonic)
    read: float  # when this reader last read it (monotonic)
    lease: float  # the lease it states (or the reader's)
    reported: bool = False


@dataclass
class _Observations:
    """What this process saw of the heartbeats of one directory (shared by its instances)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: dict[str, _Seen] = field(default_factory=dict)


_observations: dict[str, _Observations] = {}
_observations_lock = threading.Lock()


def _observations_of(directory: str) -> _Observations:
    with _observations_lock:
        return _observations.setdefault(os.path.realpath(directory), _Observations())


# -- heartbeating --------------------------------------------------------------------------------


#: The stops that finalizers of :class:`Liveness` objects asked for (see :class:`_Section`)
_stops: collections.deque[tuple[Heart, str, float]] = collections.deque()


class _Section:
    """A lock of this module that knows whether the calling thread is inside one: a finalizer
    (:func:`_request_stop`) runs wherever a garbage collection happens, also in a thread that
    holds such a lock, which it must then not wait for (a deadlock); its stop is then done as
    that thread leaves its outermost section."""

    depth = threading.local()  #: ``value``: how many sections the thread is inside

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @classmethod
    def entered(cls) -> bool:
        """Whether the calling thread is inside a section."""
        return bool(getattr(cls.depth, "value", 0))

    def __enter__(self) -> None:
        self._lock.acquire()
        _Section.depth.value = getattr(_Section.depth, "value", 0) + 1

    def __exit__(self, *exc: object) -> None:
        _Section.depth.value -= 1
        self._lock.release()
        if not _Section.depth.value and _stops:
            _drain()


class _Beating:
    """This process's heartbeat in one directory, a :class:`~execo_engine.store.lease.Beat`
    kept by the process's heart."""

    def __init__(self, directory: str, owner: Owner) -> None:
        self.directory, self.owner = directory, owner
        self.lock = _Section()  # a beat and the removal of the file exclude each other
        self.leases: list[float] = []  # one per instance that needs it
        self.last = 0.0  # monotonic time of the last beat
        self.cleaned = 0.0  # monotonic time of the last look for dead owners' files
        self.failing = False  # the last beat failed (logged once until one works again)
        self.stopped = False  # the file was removed: no more beats

    @property
    def lease(self) -> float:
        return max(self.leases)

    def due(self) -> float:
        return self.last + min(self.leases) / 3

    def warn_if_late(self, now: float) -> None:
        """Log that the last beat is older than the lease, if it is: the process was paused
        or starved, and other instances may have taken its claims back."""
        if self.last and now - self.last > self.lease:
            logger.warning(
                "%s: this process did not heartbeat for %.1f s (paused, or starved of CPU or "
                "I/O), more than its lease of %g s: other instances may have taken its claims "
                "back (its done() calls still count)",
                self.directory,
                now - self.last,
                self.lease,
            )

    def beat(self) -> None:
        """Write the heartbeat file now (errors go to the caller)."""
        now = time.monotonic()
        self.warn_if_late(now)
        _write(self.directory, self.owner, self.lease)
        self.last = now

    def keep(self) -> None:
        """Beat; once a lease, remove the heartbeat files of dead owners."""
        with self.lock:
            if self.stopped:
                return
            try:
                self.beat()
                if time.monotonic() - self.cleaned >= self.lease:
                    self.cleaned = time.monotonic()
                    _clean(self.directory, self.lease)
                self.failing = False
            except Exception as error:
                if not self.failing:
                    logger.warning(
                        "%s: could not heartbeat (%s): if this lasts for a lease, other "
                        "instances take this process's claims back",
                        self.directory,
                        error,
                    )
                self.failing = True
                self.last = time.monotonic()  # try again a third of a lease later

    def stop(self) -> None:
        """Remove the heartbeat file; no beat after it."""
        with self.lock:
            if not self.stopped:  # a process resumed and ending before its next beat
                self.warn_if_late(time.monotonic())
            self.stopped = True
            with contextlib.suppress(OSError):
                _remove(self.directory, [token(self.owner)])


_beatings_lock = _Section()  # adding or dropping an instance's lease


def _request_stop(heart: Heart, directory: str, lease: float) -> None:
    """The finalizer of a :class:`Liveness`: :func:`_stop_beating` now or, when this thread
    is inside a section of this module, as soon as it leaves it (see :class:`_Section`);
    nothing in a forked child, which inherited it."""
    if heart.pid == os.getpid():
        _stops.append((heart, directory, lease))
        if not _Section.entered():
            _drain()


def _drain() -> None:
    """Do the stops asked for so far (outside any section: :class:`_Section`)."""
    while True:
        try:
            heart, directory, lease = _stops.popleft()
        except IndexError:
            return
        _stop_beating(heart, directory, lease)


def _start_beating(directory: str, lease: float) -> Heart:
    """Heartbeat in ``directory`` from now on, for one more instance (the first beat before
    returning: its errors go to the caller, before any claim is written)."""
    heart = the_heart()
    with _beatings_lock:
        beating = heart.beats.get(("directory", directory))
        if isinstance(beating, _Beating):
            beating.leases.append(lease)
        else:
            beating = _Beating(directory, current_owner())
            beating.leases.append(lease)
            beating.beat()
            heart.add(("directory", directory), beating)
    return heart


def _stop_beating(heart: Heart, directory: str, lease: float) -> None:
    """One instance no longer needs the heartbeat of ``directory``; the last one removes the
    file."""
    if heart.pid != os.getpid():  # a finalizer inherited by a forked child
        return
    with _beatings_lock:
        beating = heart.beats.get(("directory", directory))
        if not isinstance(beating, _Beating):
            return
        if len(beating.leases) > 1:
            beating.leases.remove(lease)
            return
        # the last one: off the heart before anything else, so that the heart never sees a
        # beat without a lease (it may be keeping it right now: stop() waits for that)
        heart.remove(("directory", directory))
    beating.stop()


def _at_exit() -> None:
    """Remove every heartbeat file of this process."""
    heart = running_heart()
    if heart is None:
        return
    for key, beat in list(heart.beats.items()):
        if isinstance(beat, _Beating):
            heart.remove(key)
            beat.stop()


def _after_fork_in_child() -> None:
    # Another thread may have held one of these locks at fork time; the child heartbeats on
    # its own heart (see execo_engine.store.lease) from its first claim on.
    global _beatings_lock, _observations_lock
    _beatings_lock, _observations_lock = _Section(), threading.Lock()
    _stops.clear()  # the parent's
    _Section.depth.value = 0
    for observations in _observations.values():
        observations.lock = threading.Lock()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the store's view ----------------------------------------------------------------------------


class Liveness:
    """The leases of one store instance on ``directory``: this process's heartbeat there, and
    the judgement of other owners.

    ``read_only`` instances never write nor remove anything.
    """

    def __init__(self, directory: str, lease: float = DEFAULT_LEASE, read_only: bool = False):
        self.directory = os.path.abspath(directory)  # the heartbeat thread may outlive a chdir
        self.lease = check_lease(lease)
        self.read_only = read_only
        self._observations = _observations_of(directory)
        self._heart: Heart | None = None
        self._stop: weakref.finalize[[Heart, str, float], Liveness] | None = None

    def beat(self) -> None:
        """Make sure this process heartbeats in the directory (call it before writing a claim
        or a skip; cheap once started). It goes on until :meth:`stop`, the instance is garbage
        collected, or the process exits."""
        if (
            self._heart is not None
            and self._heart.pid == current_owner().pid
            and self._stop is not None
            and self._stop.alive
        ):
            return  # beating already (a forked child beats on a heart of its own)
        if self._stop is not None:
            self._stop.detach()  # the parent's, in a forked child
        heart = _start_beating(self.directory, self.lease)
        self._heart = heart
        self._stop = weakref.finalize(self, _request_stop, heart, self.directory, self.lease)

    def stop(self) -> None:
        """This instance holds nothing any more: its heartbeat may stop."""
        if self._stop is not None:
            self._stop()

    def dead_owners(
        self, owners: Iterable[Owner], quiet: bool = False, reading: bool = False
    ) -> list[Owner]:
        """The ``owners`` known to be gone: a process of this host and PID namespace that no
        longer runs, or any other owner whose heartbeat has not changed for its lease as seen
        by this process (logged once, unless ``quiet``; at DETAIL when ``reading``: see
        :mod:`execo_engine.store.messages`). Writers also remove the heartbeat files of the
        dead."""
        me = current_owner()
        dead = []
        others = []
        for owner in owners:
            if owner == me:
                continue
            if judged_by_pid(owner):
                if is_dead(owner):
                    dead.append(owner)
            else:
                others.append(owner)
        if others:
            dead += self._expired(others, quiet or self.read_only, reading)
        if dead and not self.read_only:
            _remove(self.directory, map(token, dead))
        return dead

    def _expired(self, owners: list[Owner], quiet: bool, reading: bool) -> list[Owner]:
        """The ``owners`` whose heartbeat has not changed for their lease."""
        observations = self._observations
        reread = max(0.1, self.lease / 10)  # more often would not judge any sooner
        expired = []
        with observations.lock, _owners_dir(self.directory, create=False) as owners_fd:
            for owner in owners:
                name = token(owner)
                seen = observations.seen.get(name)
                now = time.monotonic()
                if seen is None or now - seen.read >= reread:
                    data = self._look(owners_fd, name, owner)
                    if seen is None or (data is not None and data != seen.data):
                        parsed = _parse(data)
                        lease = parsed[1] if parsed is not None else self.lease
                        seen = observations.seen[name] = _Seen(data, now, now, lease)
                    seen.read = now
                if now - seen.since >= seen.lease:
                    expired.append(owner)
                    if not seen.reported and not quiet:
                        seen.reported = True
                        lease_expired(
                            self.directory,
                            owner.host,
                            owner.pid,
                            now - seen.since,
                            seen.lease,
                            reading,
                        )
        return expired

    @staticmethod
    def _look(owners_fd: int | None, name: str, owner: Owner) -> bytes | None:
        """The heartbeat of ``owner`` as it is now (None: none, or not this owner's)."""
        if owners_fd is None:
            return None
        data = _read(owners_fd, name)
        if data is None and name in os.listdir(owners_fd):  # an NFS client's stale lookup
            data = _read(owners_fd, name)
        parsed = _parse(data)
        return data if parsed is None or parsed[0] == owner else None


def _clean(directory: str, lease: float) -> None:
    """Remove the heartbeat files of owners known dead (those that hold nothing are found here;
    the others when their claims are reclaimed)."""
    with _owners_dir(directory, create=False) as owners:
        if owners is None:
            return
        found = {}
        for name in os.listdir(owners):
            with contextlib.suppress(OSError):
                parsed = _parse(_read(owners, name))
                if parsed is not None and token(parsed[0]) == name:
                    found[parsed[0]] = name
    Liveness(directory, lease).dead_owners(found, quiet=True)
