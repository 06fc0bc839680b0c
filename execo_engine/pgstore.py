"""A ParamSweeper store in a PostgreSQL database, for hosts that share no filesystem.

``ParamSweeper("postgresql://user@host/db?sweep=NAME&lease=60", sweeps)``: the same records as a
directory (:mod:`execo_engine.records`), one row each, in tables created on first use
(``execo_schema`` holds their version). Several sweeps share a database, told apart by NAME.
Other query parameters go to the driver (psycopg 3, the ``postgresql`` extra).

- Every operation is one transaction holding ``pg_advisory_xact_lock`` on the sweep: rows are
  appended in commit order, so each instance reads only the rows after the last it saw (the
  role of the directory lock and of the file offsets). Done is durable at commit.
- Claim compaction and reset replace the claim rows and bump an epoch that tells readers to
  read them all again.
- Liveness is a lease: each instance renews ``(sweep, owner) -> expires`` every ``lease/3``
  seconds (from a background thread too, so a long combination keeps its claims); a claim whose
  owner's lease expired (database time, no clock skew) is reclaimed by the next operation of
  any instance. ``lease`` is in seconds, 60 by default.

No SQL text is ever built from user data: every value is a query parameter.
"""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, Self

from execo_engine.codec import Codec
from execo_engine.log import logger
from execo_engine.owner import Owner, current_owner
from execo_engine.records import SKIP, Changes, Claim, Locate, RecordStore, owner_text
from execo_engine.store.contract import Failure
from execo_engine.sweep import HashableDict

SCHEMA_VERSION = 1
DEFAULT_LEASE = 60.0
FETCH = 10_000
_SCHEMA_LOCK = 0x6578_6563_6F00  # "execo": the advisory lock serializing schema creation
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS execo_schema (version integer NOT NULL)",
    "CREATE TABLE IF NOT EXISTS execo_state (sweep text PRIMARY KEY, done_epoch bigint NOT NULL "
    "DEFAULT 0, claims_epoch bigint NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS execo_sweeps (sweep text NOT NULL, position integer NOT NULL, "
    "element text NOT NULL, PRIMARY KEY (sweep, position))",
    "CREATE TABLE IF NOT EXISTS execo_done (id bigserial PRIMARY KEY, sweep text NOT NULL, "
    "record text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS execo_claims (id bigserial PRIMARY KEY, sweep text NOT NULL, "
    "record text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS execo_results (id bigserial PRIMARY KEY, sweep text NOT NULL, "
    "record text NOT NULL)",
    "ALTER TABLE execo_state ADD COLUMN IF NOT EXISTS combinations bigint",
    "CREATE TABLE IF NOT EXISTS execo_leases (sweep text NOT NULL, owner text NOT NULL, "
    "expires timestamptz NOT NULL, PRIMARY KEY (sweep, owner))",
    "CREATE INDEX IF NOT EXISTS execo_done_sweep ON execo_done (sweep, id)",
    "CREATE INDEX IF NOT EXISTS execo_claims_sweep ON execo_claims (sweep, id)",
    "CREATE INDEX IF NOT EXISTS execo_results_sweep ON execo_results (sweep, id)",
]
STREAMS = {"done": "execo_done", "claims": "execo_claims"}


def is_postgresql_url(location: object) -> bool:
    """Whether ``location`` names a PostgreSQL sweep rather than a directory."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def without_password(url: str) -> str:
    """``url`` as it can be printed or logged."""
    parts = urllib.parse.urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    user = user.partition(":")[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def parse_url(url: str) -> tuple[str, str, float]:
    """``(conninfo for the driver, sweep name, lease seconds)`` of a sweep URL."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    sweep = query.pop("sweep", "")
    shown = without_password(url)
    if not sweep:
        raise ValueError(f"{shown}: a PostgreSQL sweep URL needs ?sweep=NAME")
    try:
        lease = float(query.pop("lease", DEFAULT_LEASE))
    except ValueError:
        raise ValueError(f"{shown}: lease must be a number of seconds") from None
    if lease <= 0:
        raise ValueError(f"{shown}: lease must be > 0 seconds")
    conninfo = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return conninfo, sweep, lease


def with_sweep(url: str, sweep: str) -> str:
    """``url`` naming another sweep of the same database."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["sweep"] = sweep
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _connect(conninfo: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise ImportError(
            "a postgresql:// sweep needs psycopg 3: pip install 'execo_engine[postgresql]'"
        ) from None
    connection = psycopg.connect(conninfo, autocommit=True)
    # Claims may be lost in a crash of the server (their owners are gone with it anyway): no
    # need to wait for the disk; done and results switch it back on (SET LOCAL).
    connection.execute("SET synchronous_commit TO off")
    return connection


def sweeps_below(url: str) -> dict[str, str]:
    """``{name: URL}`` of the sweeps named ``<this URL's sweep>/<name>``."""
    conninfo, prefix, _ = parse_url(url)
    with _connect(conninfo) as connection:
        _ensure_schema(connection)
        rows = connection.execute(
            "SELECT sweep FROM execo_state WHERE starts_with(sweep, %s) ORDER BY sweep",
            (prefix + "/",),
        ).fetchall()
    return {sweep[len(prefix) + 1 :]: with_sweep(url, sweep) for (sweep,) in rows}


def _ensure_schema(connection: Any) -> None:
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        for statement in _SCHEMA:
            connection.execute(statement)
        row = connection.execute("SELECT version FROM execo_schema").fetchone()
        if row is None:
            connection.execute("INSERT INTO execo_schema VALUES (%s)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise RuntimeError(
                f"the execo tables are at schema version {row[0]}; this "
                f"execo_engine knows version {SCHEMA_VERSION}"
            )


class _Rows:
    """A batch of rows ``(id, record)`` read from one stream (see records.Batch)."""

    def __init__(
        self,
        rows: list[tuple[int, str]],
        restarted: bool = False,
        seen: dict[str, int] | None = None,
        stream: str = "",
    ) -> None:
        self._rows, self.restarted, self._seen, self._stream = rows, restarted, seen, stream

    @property
    def empty(self) -> bool:
        return not self._rows

    def chunks(self) -> Iterator[tuple[Locate, list[bytes]]]:
        for start in range(0, len(self._rows), FETCH):
            rows = self._rows[start : start + FETCH]
            ids = [row_id for row_id, _ in rows]
            yield (lambda index: f"row id {ids[index]}"), [record.encode() for _, record in rows]
            if self._seen is not None:  # read up to there: the next read starts after it
                self._seen[self._stream] = ids[-1]


class _LeaseKeeper(threading.Thread):
    """One thread per process renewing the leases of every open PostgreSQL store."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="execo lease keeper")
        self.stores: weakref.WeakSet[PostgresStore] = weakref.WeakSet()

    def run(self) -> None:
        while True:
            time.sleep(0.5)
            for store in list(self.stores):
                try:
                    store.renew_lease(when_due=True)
                except Exception as error:
                    logger.warning(
                        "%s: could not renew the lease (%s): if it expires, other "
                        "instances take this process's claims back",
                        store.path,
                        error,
                    )


_keeper: _LeaseKeeper | None = None
_keeper_lock = threading.Lock()


def _keep_leases(store: PostgresStore) -> None:
    global _keeper
    with _keeper_lock:
        if _keeper is None or not _keeper.is_alive():  # none yet, or this is a forked child
            _keeper = _LeaseKeeper()
            _keeper.start()
        _keeper.stores.add(store)


class _Lock:
    """The instance's thread lock, plus a transaction holding the sweep's advisory lock."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._transaction: Any = None

    def __enter__(self) -> Self:
        self._thread_lock.acquire()
        if self._depth == 0 and not self._store.read_only:
            try:
                self._transaction = self._store.connection.transaction()
                self._transaction.__enter__()
                self._store.connection.execute(
                    "SELECT pg_advisory_xact_lock(%s)", (self._store.key,)
                )
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._transaction is not None:
                transaction, self._transaction = self._transaction, None
                transaction.__exit__(*exc_info)  # commit, or roll back on an exception
        finally:
            self._thread_lock.release()


class PostgresStore(RecordStore):
    """Reads and appends the records of one sweep in a PostgreSQL database.

    Every method but :meth:`load_sweeps` must be called inside ``with store.lock:``.
    ``read_only=True`` takes no advisory lock and writes nothing.
    """

    def __init__(
        self, url: str, codec: Codec, read_only: bool = False, lease: float | None = None
    ) -> None:
        conninfo, sweep, url_lease = parse_url(url)
        lease = url_lease if lease is None else lease
        super().__init__(without_password(url), codec, read_only)
        self.name, self.sweep, self.lease = sweep, sweep, lease
        self.key = int.from_bytes(hashlib.sha1(sweep.encode()).digest()[:8], "big", signed=True)
        self.connection = _connect(conninfo)
        _ensure_schema(self.connection)
        self.lock = _Lock(self)
        self._last = {"done": 0, "claims": 0}
        self._epochs: dict[str, int] = {}
        self._restart_pending = {"done": False, "claims": False}
        self._claim_rows = 0
        self._renewed = 0.0
        self._state_created = False
        if not read_only:
            self.renew_lease()
            _keep_leases(self)

    def _execute(self, query: str, *params: Any) -> Any:
        return self.connection.execute(query, params)

    def _durable(self) -> None:
        """Make this transaction's commit wait for the disk (the connection does not by
        default, for claims)."""
        self._execute("SET LOCAL synchronous_commit TO on")

    # -- reading ------------------------------------------------------------------------------

    def read(self) -> Changes:
        """The rows appended since the last read (one query; a second for a stream that was
        compacted or reset meanwhile)."""
        rows = self._execute(
            "SELECT 0, done_epoch, claims_epoch, NULL FROM execo_state WHERE sweep = %s "
            "UNION ALL SELECT 1, id, 0, record FROM execo_done WHERE sweep = %s AND id > %s "
            "UNION ALL SELECT 2, id, 0, record FROM execo_claims WHERE sweep = %s AND id > %s "
            "ORDER BY 1, 2",
            self.sweep,
            self.sweep,
            self._last["done"],
            self.sweep,
            self._last["claims"],
        ).fetchall()
        epochs = (
            dict(zip(STREAMS, rows[0][1:3], strict=False))
            if rows and rows[0][0] == 0
            else dict.fromkeys(STREAMS, 0)
        )
        batches = {}
        for index, stream in enumerate(STREAMS, start=1):
            restarted = (
                self._restart_pending[stream]
                or self._epochs.get(stream, epochs[stream]) != epochs[stream]
            )
            self._restart_pending[stream] = False
            self._epochs[stream] = epochs[stream]
            found = [(row_id, record) for kind, row_id, _, record in rows if kind == index]
            if restarted:
                self._last[stream] = 0
                found = self._execute(
                    f"SELECT id, record FROM {STREAMS[stream]} WHERE sweep = %s ORDER BY id",
                    self.sweep,
                ).fetchall()
            if stream == "claims":
                self._claim_rows = (0 if restarted else self._claim_rows) + len(found)
            batches[stream] = _Rows(found, restarted, self._last, stream)
        return self._changes(
            batches["done"], batches["claims"], f"{self.path} (done)", f"{self.path} (claims)"
        )

    def restart(self) -> None:
        """Make the next :meth:`read` return everything (``restarted`` set on both)."""
        self._restart_pending = {"done": True, "claims": True}

    def close(self) -> None:
        """Close the connection (the store is not used after)."""
        if _keeper is not None:
            _keeper.stores.discard(self)
        self.connection.close()

    # -- appending ----------------------------------------------------------------------------

    def _append(self, stream: str, lines: list[str]) -> None:
        if not lines:
            return
        self._create_state()
        if stream == "done":  # claims need not wait for the disk
            self._durable()
        ids = self._execute(
            f"INSERT INTO {STREAMS[stream]} (sweep, record) SELECT %s, r FROM "
            f"unnest(%s::text[]) WITH ORDINALITY AS t(r, n) ORDER BY n "
            f"RETURNING id",
            self.sweep,
            lines,
        ).fetchall()
        self._last[stream] = max(self._last[stream], *(i for (i,) in ids))
        if stream == "claims":
            self._claim_rows += len(ids)

    def _create_state(self) -> None:
        if not self._state_created:
            self._execute(
                "INSERT INTO execo_state (sweep) VALUES (%s) ON CONFLICT DO NOTHING", self.sweep
            )
            self._state_created = True

    def append_done(self, done: Iterable[tuple[int | None, Any]]) -> None:
        """Append done records for ``(position, element)`` pairs (durable at commit)."""
        self._append("done", self._done_lines(done))

    def append_failures(
        self, failures: Iterable[tuple[int | None, Failure]], reset: bool = False
    ) -> None:
        """Append failure records for ``(position, failure)`` pairs to the done stream (with
        ``reset``, after a record forgetting every earlier one; durable at commit)."""
        lines = [self._reset_failures_line()] if reset else []
        self._append("done", lines + self._failure_lines(failures))

    def append_holds(
        self, kind: str, taken: Iterable[tuple[int | None, Any]], owner: Owner, since: float
    ) -> None:
        """Record that ``owner`` took (``kind`` CLAIM) or skipped (SKIP) the elements of
        ``(position, element)`` pairs."""
        lines = self._claim_lines(
            ((element, owner, position, since) for position, element in taken), kind
        )
        if lines:
            self.renew_lease(when_due=True)
            self._append("claims", lines)

    def append_releases(self, elements: Iterable[Any]) -> None:
        """Record that ``elements`` are no longer held (claimed nor skipped)."""
        self._append("claims", self._release_lines(elements))

    @property
    def claim_records(self) -> int:
        """How many claim rows the sweep holds (to decide on compaction)."""
        return self._claim_rows

    def rewrite_claims(self, claims: Iterable[Claim], skips: Iterable[Claim] = ()) -> None:
        """Replace the claim rows by exactly these claims and skips (compaction, reset)."""
        lines = self._claim_lines(claims) + self._claim_lines(skips, SKIP)
        self._execute("DELETE FROM execo_claims WHERE sweep = %s", self.sweep)
        self._execute(
            "INSERT INTO execo_state (sweep, claims_epoch) VALUES (%s, 1) ON CONFLICT "
            "(sweep) DO UPDATE SET claims_epoch = execo_state.claims_epoch + 1",
            self.sweep,
        )
        epoch = self._execute(
            "SELECT claims_epoch FROM execo_state WHERE sweep = %s", self.sweep
        ).fetchone()[0]
        self._epochs["claims"], self._last["claims"], self._claim_rows = epoch, 0, 0
        self._append("claims", lines)

    def grid_size(self) -> int | None:
        """The number of combinations of the last writer's sweeps (None: unknown)."""
        row = self._execute(
            "SELECT combinations FROM execo_state WHERE sweep = %s", self.sweep
        ).fetchone()
        return None if row is None else row[0]

    def set_grid_size(self, size: int) -> None:
        """Record that the sweeps have ``size`` combinations."""
        self._create_state()
        self._execute(
            "UPDATE execo_state SET combinations = %s WHERE sweep = %s AND combinations IS "
            "DISTINCT FROM %s",
            size,
            self.sweep,
            size,
        )

    # -- leases -------------------------------------------------------------------------------

    def renew_lease(self, when_due: bool = False) -> None:
        """Push this process's lease on the sweep ``lease`` seconds ahead (only if a third of
        it went by, with ``when_due``)."""
        if when_due and time.monotonic() - self._renewed < self.lease / 3:
            return
        with self.lock._thread_lock:
            self._execute(
                "INSERT INTO execo_leases VALUES (%s, %s, now() + %s * interval "
                "'1 second') ON CONFLICT (sweep, owner) DO UPDATE SET expires = "
                "EXCLUDED.expires",
                self.sweep,
                owner_text(current_owner()),
                self.lease,
            )
            self._renewed = time.monotonic()

    dead_owner = "the expired lease of"  #: how logs call an owner reported by dead_owners

    def dead_owners(self, owners: Iterable[Owner]) -> list[Owner]:
        """The owners whose lease expired (or who never had one)."""
        owners = list(owners)
        if not owners:
            return []
        alive = {
            owner
            for (owner,) in self._execute(
                "SELECT owner FROM execo_leases WHERE sweep = %s AND expires > now()", self.sweep
            ).fetchall()
        }
        return [owner for owner in owners if owner_text(owner) not in alive]

    # -- sweeps, snapshots, results --------------------------------------------------------

    def _all(self, table: str, column: str = "record", order: str = "id") -> _Rows:
        rows = self._execute(
            f"SELECT {order}, {column} FROM {table} WHERE sweep = %s ORDER BY {order}", self.sweep
        ).fetchall()
        return _Rows(rows)

    def done_texts(self) -> list[str]:
        """The canonical text of every element of a done record."""
        return self._done_texts(f"{self.path} (done)", self._all("execo_done"))

    def append_result(self, record: HashableDict) -> None:
        """Append a result record (durable at commit)."""
        line = self._result_line(record)
        self._durable()
        self._execute("INSERT INTO execo_results (sweep, record) VALUES (%s, %s)", self.sweep, line)

    def read_results(self) -> list[Any]:
        """Every result record, in the order they were written."""
        return self._decode_results(f"{self.path} (results)", self._all("execo_results"))

    def load_sweeps(self) -> list[Any] | None:
        """The saved elements, in order, or None when none were saved."""
        rows = self._all("execo_sweeps", "element", "position")
        return self._decode_sweeps(f"{self.path} (sweeps)", rows) if not rows.empty else None

    def save_sweeps(self, elements: Iterable[Any]) -> None:
        """Replace the saved elements (in the transaction of the lock)."""
        lines = self._sweeps_lines(elements)
        self._execute(
            "INSERT INTO execo_state (sweep) VALUES (%s) ON CONFLICT DO NOTHING", self.sweep
        )
        self._durable()
        self._execute("DELETE FROM execo_sweeps WHERE sweep = %s", self.sweep)
        with self.connection.cursor() as cursor:
            with cursor.copy("COPY execo_sweeps (sweep, position, element) FROM STDIN") as copy:
                for position, line in enumerate(lines):
                    copy.write_row((self.sweep, position, line))
