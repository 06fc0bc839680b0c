"""A sweep kept in a PostgreSQL database, for hosts that share no filesystem.

``ParamSweeper("postgresql://user@host/db?sweep=NAME&lease=60", sweeps)``. The database holds
the state, one row per combination (``execo_elements``): its position in the sweep's order, its
canonical text (:mod:`execo_engine.codec`), its state (todo, claimed, done, skipped, failed),
its owner, times, attempts and last error. Every operation is one statement, committed on its
own (autocommit, ``synchronous_commit`` on: a claim, a done or a lease acknowledged to a worker
survives a crash of the server); no lock is held between operations and no instance replays
what others did:

- a claim is one ``UPDATE ... FOR UPDATE SKIP LOCKED`` taking the first todo rows in the order
  of the sweeps; done is one idempotent update (by the row's key, the sweep and the digest of
  the canonical text, for what this instance claimed, else an upsert by canonical text, which
  also records elements outside the sweeps); these two run on libpq directly, prepared once
  per connection (:class:`~.connection.Statement`);
- the order of the sweeps is loaded once with ``COPY`` (a resume with the same sweeps only
  compares a digest); an instance whose sweeps differ from the last ones loaded claims among
  its own elements, in its own order (one statement still, sending its elements);
- liveness: the owner of a claim is a process (a row of ``execo_owners``). One of this host
  and PID namespace is judged by its pid alone, at once (a paused process lives, whatever its
  lease); any other by its lease, renewed every ``lease/3`` seconds by a background thread and
  judged by each reader's own clock (:class:`~.leases.LeaseWatch`: a heartbeat unchanged for a
  lease as the reader saw it, so that a server down for longer than a lease expires no
  lease). The claims and skips of a dead owner go back to todo on the next check of any
  instance (at most every :data:`~execo_engine.store.lease.DEAD_OWNER_CHECK_INTERVAL`
  seconds, and whenever a claim finds nothing), with a log line; a claim or skip locks its
  owner's row, so that none commits after its owner was found dead (see :data:`_ME`);
- a skip is the store object's that made it (see :class:`~execo_engine.store.owner.Instance`):
  its row stays ``todo``, with ``owner`` the lease of the process that created the object and
  ``ticket`` the object's number (:data:`_tickets`), so that every other instance claims it as
  any todo row (from the claim's index, in order) while the instance's processes pass it by;
  a row ``skipped`` (written by earlier versions) is skipped for every instance while its owner
  lives;
- a lost connection (terminated backend, restarted server) is opened again on the next
  operation, retried for up to
  :data:`~execo_engine.store.postgresql.connection.RECONNECT_SECONDS` with a log line. A claim
  or a done whose answer was lost is retried: a claim takes what the lost one took, by its
  ticket, and done is idempotent, so a retry never hands an element out twice nor loses an
  acknowledged done. One whose answer never came (the server stayed away, an exception
  interrupted it) is resolved by the object's next operation (:meth:`PostgresStore._resolve`):
  what such a claim took is given back, a done is checked; a live process never holds a claim
  it does not know about;
- after ``fork()`` the child opens its own connection (the parent's is left alone).

Run records (see :mod:`execo_engine.store.runs`) are rows of ``execo_runs``. That table came
after schema version 4 without changing the version (older code never looks at it): a writer
meeting a version 4 database without it creates it, a reader sees no runs there.

Several sweeps share a database, told apart by NAME; ``options=-c search_path=SCHEMA`` keeps
them in another schema. Query parameters other than ``sweep`` and ``lease`` go to the driver
(psycopg 3, the ``postgresql`` extra) unchanged. No SQL text is ever built from user data.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import json
import os
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

from execo_engine.codec import Codec
from execo_engine.elements import HashableDict
from execo_engine.errors import PickleNotAllowedError, UnsupportedValueError
from execo_engine.log import logger
from execo_engine.store.contract import Choose, Failure, Holder, State
from execo_engine.store.lease import DEAD_OWNER_CHECK_INTERVAL
from execo_engine.store.log.records import read_result, result_text
from execo_engine.store.messages import reclaimed_dead, reclaimed_old
from execo_engine.store.owner import Owner, current_owner, decode_owner, is_dead, judged_by_pid
from execo_engine.store.postgresql.connection import Link, Statement, driver
from execo_engine.store.postgresql.leases import LeaseWatch, keep_lease, stop_lease
from execo_engine.store.postgresql.schema import create_schema
from execo_engine.store.postgresql.urls import (
    checked_lease,
    parse_url,
    with_sweep,
    without_password,
)
from execo_engine.store.runs import decode_runs, encode_run

T = TypeVar("T")

#: The state of a row (the column ``state``) as a :class:`State`.
_STATES = {
    "todo": State.TODO,
    "done": State.DONE,
    "skipped": State.SKIPPED,
    "claimed": State.CLAIMED,
    "failed": State.FAILED,
}

_NO_BOUND = 2**31 - 1  # beyond any position
#: Tickets of claims and numbers of store objects (the ``ticket`` of their skips): unique within
#: a process (owner)
_tickets = itertools.count(1)


# The rows of elements given as canonical texts (%(texts)s), numbered from 1 in that order.
_GIVEN = (
    "unnest(%(texts)s::text[]) WITH ORDINALITY AS t(text, n) JOIN execo_elements e "
    "ON e.sweep = %(sweep)s AND e.digest = md5(t.text)::uuid AND e.text = t.text"
)
_CLAIM_SET = "state = 'claimed', owner = %(owner)s, ticket = %(ticket)s, claimed_at = now()"


def _not_skipped_here(row: str, creator: str, instance: str) -> str:
    """The condition that a ``row`` (``e.``: of table ``e``) is not a skip of this instance
    (``creator``: the parameter of the lease row of the process that created it, ``instance``:
    of its number)."""
    return f"({row}owner, {row}ticket) IS DISTINCT FROM ({creator}::bigint, {instance}::bigint)"


# The owner's row, locked by every statement that makes it hold rows (claims, skips): a look
# for dead owners deletes the row first, which waits for such a statement to end, then gives
# back what that owner holds, in a statement that sees what it committed. Without the lock, a
# claim sent by a process killed meanwhile could commit after the look: held for ever by an
# owner nobody knows any more. A statement whose owner row is gone takes nothing.
_ME = "me AS MATERIALIZED (SELECT FROM execo_owners WHERE id = {} FOR KEY SHARE)"
# A claim in the order of the sweeps loaded last, if they are this instance's (the digest):
# nothing is taken otherwise. Run on libpq directly (a prepared Statement): $1 sweep, $2 owner,
# $3 ticket, $4 bound (positions below), $5 digest, $6 and $7 this instance, $8 count. The rows
# are picked once (a CTE) and joined on their own key: a plan cannot start from the sweep's
# rows (statistics not yet updated for a sweep just loaded make it look empty) and run the pick
# again for each.
_CLAIM_NEXT_SQL = f"""
WITH {_ME.format("$2")},
picked AS MATERIALIZED (
    SELECT sweep, digest FROM execo_elements
    WHERE sweep = $1 AND todo AND position < $4
        AND (SELECT order_digest FROM execo_sweeps WHERE id = $1) = $5
        AND {_not_skipped_here("", "$6", "$7")}
        AND EXISTS (SELECT FROM me)
    ORDER BY position LIMIT {{}} FOR UPDATE SKIP LOCKED)
UPDATE execo_elements e SET state = 'claimed', owner = $2, ticket = $3, claimed_at = now()
FROM picked WHERE e.sweep = picked.sweep AND e.digest = picked.digest
RETURNING e.digest, e.position, e.text"""
_CLAIM_NEXT = Statement(_CLAIM_NEXT_SQL.format("$8"))
# The claim of one element (get_next), with no $8: the server plans a statement again on each
# run unless its generic plan costs no more than the plans made for the parameters, and a
# LIMIT $8 costs as a tenth of the rows in a generic plan (planning cost more than running).
_CLAIM_ONE = Statement(_CLAIM_NEXT_SQL.format("1"))
# After a claim that took nothing: whether the sweeps loaded last are this object's, and
# whether its owner row is still there (a lease that expired: see _register).
_SAME_ORDER = """
SELECT order_digest = %(digest)s, EXISTS (SELECT FROM execo_owners WHERE id = %(owner)s)
FROM execo_sweeps WHERE id = %(sweep)s"""
_OWNER_EXISTS = "SELECT EXISTS (SELECT FROM execo_owners WHERE id = %(owner)s)"
# A claim among given elements (this instance's order, or what a filter chose), in their order.
_CLAIM_AMONG = f"""
WITH {_ME.format("%(owner)s")},
picked AS (
    SELECT e.sweep, e.digest, t.n FROM {_GIVEN} WHERE e.state = 'todo'
        AND {_not_skipped_here("e.", "%(creator)s", "%(instance)s")}
        AND EXISTS (SELECT FROM me)
    ORDER BY t.n LIMIT %(count)s FOR UPDATE OF e SKIP LOCKED),
taken AS (
    UPDATE execo_elements e SET {_CLAIM_SET} FROM picked
    WHERE e.sweep = picked.sweep AND e.digest = picked.digest
    RETURNING e.digest, picked.n - 1 AS index, e.text)
SELECT true, digest::text, index, text FROM taken ORDER BY index"""
# What a claim whose answer was lost took (found by its ticket), which it retries.
_CLAIMED_BY_TICKET = """
SELECT true, digest::text, position, text FROM execo_elements
WHERE sweep = %(sweep)s AND owner = %(owner)s AND ticket = %(ticket)s AND state = 'claimed'
ORDER BY position"""
# Gives back what claims whose answer was lost, and that were not retried, took.
_RELEASE_TICKETS = """
UPDATE execo_elements SET state = 'todo', owner = NULL, ticket = NULL
WHERE sweep = %(sweep)s AND owner = %(owner)s AND ticket = ANY(%(tickets)s::bigint[])
    AND state = 'claimed' RETURNING digest::text"""
# Which of the given rows are done (a done whose answer was lost).
_DONE_AMONG = """
SELECT digest::text FROM execo_elements
WHERE sweep = %(sweep)s AND digest = ANY(%(digests)s::uuid[]) AND state = 'done'"""
# Claims again the given rows that are todo (held by this object when its lease expired).
_ADOPT = f"""
WITH {_ME.format("%(owner)s")}
UPDATE execo_elements SET {_CLAIM_SET}
WHERE sweep = %(sweep)s AND digest = ANY(%(digests)s::uuid[]) AND state = 'todo'
    AND EXISTS (SELECT FROM me)
RETURNING digest::text"""
_TAKE = f"""
WITH {_ME.format("%(owner)s")},
current AS (
    SELECT e.sweep, e.digest, e.state, e.owner, e.ticket, o.owner AS holder FROM {_GIVEN}
    LEFT JOIN execo_owners o ON o.id = e.owner FOR UPDATE OF e),
taken AS (
    UPDATE execo_elements e SET {_CLAIM_SET} FROM current
    WHERE e.sweep = current.sweep AND e.digest = current.digest AND (current.state = 'todo'
        OR (current.state = 'skipped' AND current.owner = %(owner)s)
        OR (current.ticket = %(ticket)s AND current.owner = %(owner)s))
        AND EXISTS (SELECT FROM me)
    RETURNING e.digest)
SELECT current.digest::text, current.state, current.holder, taken.digest IS NOT NULL,
    EXISTS (SELECT FROM me)
FROM current LEFT JOIN taken ON true"""
# Done by digest (what this object claimed): $1 sweep, $2 one digest, or an array of them.
_DONE_BY_DIGEST = """
UPDATE execo_elements SET state = 'done', owner = NULL, ticket = NULL, done_at = now()
WHERE sweep = $1 AND digest {}"""
_DONE_ONE = Statement(_DONE_BY_DIGEST.format("= $2"))
_DONE_MANY = Statement(_DONE_BY_DIGEST.format("= ANY($2::uuid[])"))
_DONE = """
INSERT INTO execo_elements (sweep, text, state, done_at)
SELECT %(sweep)s, t, 'done', now() FROM unnest(%(texts)s::text[]) AS t
ON CONFLICT (sweep, digest) DO UPDATE
SET state = 'done', owner = NULL, ticket = NULL, done_at = now()
WHERE execo_elements.text = EXCLUDED.text"""
# Give back (cancel, skip): todo again, with ``skip`` marked as this instance's skip (held by
# the lease row of the process that created the instance, %(holder)s: locked, see _ME);
# returns each given element's state before, and whether the holder's row is there.
_GIVE_BACK = f"""
WITH {_ME.format("%(holder)s")},
current AS (SELECT e.sweep, e.digest, e.state, t.text FROM {_GIVEN} FOR UPDATE OF e),
changed AS (
    UPDATE execo_elements e SET state = 'todo', claimed_at = now(),
        owner = CASE WHEN %(skip)s THEN %(creator)s::bigint END,
        ticket = CASE WHEN %(skip)s THEN %(instance)s::bigint END
    FROM current WHERE e.sweep = current.sweep AND e.digest = current.digest
        AND current.state IN ('todo', 'claimed', 'skipped')
        AND (NOT %(skip)s OR EXISTS (SELECT FROM me))
    RETURNING e.digest)
SELECT text, state, EXISTS (SELECT FROM me) FROM current"""
# This instance's skips that one of its claims took (it skipped them, another instance took
# the skip over and gave the element back): skipped here again.
_SKIP_AGAIN = """
UPDATE execo_elements SET state = 'todo', owner = %(creator)s, ticket = %(instance)s,
    claimed_at = now()
WHERE sweep = %(sweep)s AND digest = ANY(%(digests)s::uuid[]) AND owner = %(owner)s
    AND state = 'claimed'"""
# One failed attempt counted on each given element not done, with its error: failed for good
# when it reaches max_attempts (NULL: never), else todo again if this process held it (or this
# instance skipped it).
_FAIL = f"""
WITH current AS (
    SELECT e.sweep, e.digest, e.state, t.text,
        (e.owner = %(owner)s AND e.state IN ('claimed', 'skipped'))
        OR (e.state = 'todo' AND e.owner = %(creator)s AND e.ticket = %(instance)s) AS mine
    FROM {_GIVEN} FOR UPDATE OF e)
UPDATE execo_elements e SET attempts = e.attempts + 1, last_error = %(error)s,
    claimed_at = now(),
    state = CASE WHEN current.state = 'failed' OR e.attempts + 1 >= %(max)s::integer
        THEN 'failed' WHEN current.mine THEN 'todo' ELSE e.state END,
    owner = CASE WHEN current.mine THEN NULL ELSE e.owner END,
    ticket = CASE WHEN current.mine THEN NULL ELSE e.ticket END
FROM current
WHERE e.sweep = current.sweep AND e.digest = current.digest AND current.state <> 'done'
RETURNING current.text, e.state"""
_RESET_FAILED = """
UPDATE execo_elements SET attempts = 0, last_error = NULL,
    state = CASE WHEN state = 'failed' THEN 'todo' ELSE state END
WHERE sweep = %(sweep)s AND (attempts > 0 OR state = 'failed') RETURNING digest"""
_RELEASE = """
UPDATE execo_elements SET state = 'todo', owner = NULL, ticket = NULL
WHERE sweep = %(sweep)s AND digest = ANY(%(digests)s::uuid[]) AND owner = %(owner)s
    AND state = 'claimed' RETURNING digest::text"""
_OWNER = """
INSERT INTO execo_owners AS o (sweep, owner, expires, heartbeat)
VALUES (%(sweep)s, %(owner)s, now() + %(lease)s * interval '1 second', now())
ON CONFLICT (sweep, owner) DO UPDATE SET expires = EXCLUDED.expires, heartbeat = now()
RETURNING id, xmax = 0"""
# The owners, their heartbeat (the time of their last renewal, as a value that changes) and
# their lease in seconds (judged by LeaseWatch).
_OWNERS = """
SELECT id, owner, heartbeat, extract(epoch FROM expires - heartbeat)::float8
FROM execo_owners WHERE sweep = %(sweep)s"""
# Forgets dead owners: those found dead by pid (%(dead)s), and those whose lease expired
# (%(expired)s) unless they renewed it meanwhile (their heartbeat is no longer %(beats)s).
# The first statement of _bury: see _ME.
_FORGET = """
DELETE FROM execo_owners WHERE sweep = %(sweep)s AND (id = ANY(%(dead)s::bigint[])
    OR (id, heartbeat) IN (SELECT * FROM unnest(%(expired)s::bigint[], %(beats)s::timestamptz[])))
RETURNING id, owner"""
# Gives the claims and skips of forgotten owners back to todo (the second statement of _bury).
_FREE = """
UPDATE execo_elements e SET state = 'todo', owner = NULL, ticket = NULL
FROM unnest(%(ids)s::bigint[]) AS gone(id)
WHERE e.sweep = %(sweep)s AND e.owner = gone.id AND e.state IN ('claimed', 'skipped', 'todo')
RETURNING gone.id"""
# The rows not plainly todo (a todo row with an owner is a skip: this instance's or another's).
_STATES_QUERY = """
SELECT s.order_digest = %(digest)s, e.position, e.state,
    CASE WHEN s.order_digest = %(digest)s THEN NULL ELSE e.text END,
    e.owner = %(creator)s AND e.ticket = %(instance)s
FROM execo_sweeps s LEFT JOIN execo_elements e ON e.sweep = s.id
    AND (e.state <> 'todo' OR e.owner IS NOT NULL)
WHERE s.id = %(sweep)s"""
_HOLDERS = """
SELECT e.text, CASE WHEN e.state = 'todo' THEN 'skipped' ELSE e.state END, o.owner,
    extract(epoch FROM e.claimed_at)::float8
FROM execo_elements e LEFT JOIN execo_owners o ON o.id = e.owner
WHERE e.sweep = %(sweep)s AND (e.state IN ('claimed', 'skipped')
    OR (e.state = 'todo' AND e.owner IS NOT NULL AND o.id IS NOT NULL))
ORDER BY e.claimed_at, e.position, e.digest"""


#: A load of sweeps whose rows are more than this share of the table's analyzes it (the
#: autovacuum daemon's default threshold)
_ANALYZE_SHARE = 0.1
#: Rows per block of COPY data (a block is built at once, in memory)
_COPY_ROWS = 65536


class _Judged(NamedTuple):
    """An owner row, judged by :meth:`PostgresStore._owners`."""

    row_id: int
    owner: Owner
    expired_beat: Any  #: its heartbeat, if its lease expired (None: judged otherwise)
    dead: bool = True


def _copy_blocks(texts: Sequence[str], tail: str) -> Iterator[bytes]:
    """The ``COPY ... FROM STDIN`` data (text format) of rows ``position, text`` followed by
    ``tail`` (the other columns, tab first), one block of :data:`_COPY_ROWS` rows at a time,
    with no Python code run per row. A canonical text is ASCII with no control character
    (JSON escapes them): only its backslashes need escaping, which the positions and ``tail``
    have none of."""
    for start in range(0, len(texts), _COPY_ROWS):
        rows = texts[start : start + _COPY_ROWS]
        block = "".join(map(f"{{}}\t{{}}{tail}\n".format, itertools.count(start), rows))
        yield block.replace("\\", "\\\\").encode("ascii")


def _order_digest(texts: Sequence[str]) -> bytes:
    return hashlib.sha256("\n".join(texts).encode()).digest()


class PostgresStore:
    """One sweep's state in a PostgreSQL database, seen by one ParamSweeper instance: a
    :class:`~execo_engine.store.contract.Store` (see the module docstring).

    Positions are indexes in this object's sweeps. Every method is thread-safe (one lock
    around the connection, held for one statement, never between operations).
    """

    dead_owner = "the expired lease of"  #: how logs call an owner whose lease expired

    def __init__(
        self, location: str, codec: Codec, read_only: bool = False, lease: float | None = None
    ) -> None:
        conninfo, sweep, url_lease = parse_url(location)
        self.location = without_password(location)
        self.name, self.read_only, self.codec = sweep, read_only, codec
        self.lease = url_lease if lease is None else checked_lease(lease, self.location)
        # a schema check that holds no reference to the store, so that the finalizer below
        # (which holds the link) lets the store be collected
        check = functools.partial(create_schema, read_only=read_only, shown=self.location)
        self._link = Link(conninfo, self.location, check)
        # A store dropped without close() closes its connection once garbage collected
        # (psycopg would warn, ResourceWarning); not at exit, when handlers may still use it.
        weakref.finalize(self, self._link.close).atexit = False
        self._sweep_id = 0
        self._owner: tuple[int, int] | None = None  # (pid, owner row id)
        self._renewed = 0.0
        self._renewal: tuple[int, int] | None = None  # (pid, key) of the heart's renewal
        self._last_dead_check = 0.0
        self._watch = LeaseWatch()  # judges the leases of other hosts' owners
        self._sweeps: list[Any] = []
        self._texts: list[str] = []
        self._digest = b""
        self._digest_text = "\\x"  # the digest as a bytea's text form
        self._index: dict[str, int] | None = None
        self._redo: list[int] = []  # done, but given back here: todo for this object (sorted)
        # claimed here, in claim order: position -> the row's digest (its text form; "": a
        # redo, which has no row to update)
        self._held: dict[int, str] = {}
        self._ticket = 0  # of the last claim: finds what it took if its answer was lost
        # Operations whose outcome this object does not know (their answer was lost with the
        # connection, or an exception interrupted them), resolved by its next operation
        # (see _run): the tickets of claims, the digests of rows marked done.
        self._unsure_claims: set[int] = set()
        self._unsure_done: set[str] = set()
        self._instance = next(_tickets)  # the ticket of this object's skips
        self._skipped: set[int] = set()  # ids of unreadable results warned about
        # the process that created this object, and its lease row: what this object's skips
        # name, in the processes it is forked into too
        self._creator_pid, self._creator_row = os.getpid(), 0
        self._own_skips: set[str] = set()  # texts this process skipped (see SweepState)
        self._link.run(self._find_sweep)
        if not read_only:
            self.renew_lease()

    # -- plumbing ----------------------------------------------------------------------------

    def _find_sweep(self, connection: Any) -> None:
        row = connection.execute("SELECT id FROM execo_sweeps WHERE name = %s", (self.name,))
        row = row.fetchone()
        if row is None and not self.read_only:
            row = connection.execute(
                "INSERT INTO execo_sweeps (name) VALUES (%s) ON CONFLICT (name) DO UPDATE "
                "SET name = EXCLUDED.name RETURNING id",
                (self.name,),
            ).fetchone()
        if row is None:
            raise FileNotFoundError(f"{self.location}: no sweep {self.name!r} in this database")
        self._sweep_id = row[0]

    def _run(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` on the link, after resolving what operations whose outcome is
        unknown did (see :meth:`_resolve`)."""
        with self._link.lock:
            if not (self._unsure_claims or self._unsure_done):
                return self._link.run(work)
            claims, done = set(self._unsure_claims), set(self._unsure_done)

            def resolved_first(connection: Any) -> T:
                self._resolve(connection, claims, done)
                return work(connection)

            return self._link.run(resolved_first)

    def _resolve(self, connection: Any, claims: set[int], done: set[str]) -> None:
        """Find out what the claims of tickets ``claims`` and the dones of digests ``done``,
        whose answers this object never got, did: what such a claim took is given back (its
        caller never got it: nobody would finish it, and this live process would hold it
        for ever); a row found done is no longer held here. Idempotent (it may run again
        if the connection is lost meanwhile)."""
        if self._owner is None or self._owner[0] != os.getpid():
            claims = set()  # taken under a parent's owner, or none: nothing of this process
        released, finished = [], []
        if claims:
            params = {
                "sweep": self._sweep_id,
                "owner": self._owner_id(connection),
                "tickets": sorted(claims),
            }
            released = [d for (d,) in connection.execute(_RELEASE_TICKETS, params).fetchall()]
        if done:
            params = {"sweep": self._sweep_id, "digests": sorted(done)}
            finished = [d for (d,) in connection.execute(_DONE_AMONG, params).fetchall()]
        gone = set(released) | set(finished)
        for position in [p for p, digest in self._held.items() if digest in gone]:
            del self._held[position]
        self._unsure_claims -= claims
        self._unsure_done -= done
        if released:
            logger.warning(
                "%s: gave back %d combination(s) claimed by an operation of this process "
                "whose answer was lost (its caller never got them)",
                self.name,
                len(released),
            )

    def _execute(self, query: str, **values: Any) -> list[tuple[Any, ...]]:
        """The rows of one statement on this sweep (``%(sweep)s``), safe to run twice."""
        params = {"sweep": self._sweep_id, **values}
        return self._run(lambda connection: connection.execute(query, params).fetchall())

    def _check_writable(self) -> None:
        if self.read_only:
            raise PermissionError(f"{self.location}: opened read-only")

    def _owner_id(self, connection: Any) -> int:
        """This process's owner row (registered again in a child after a fork)."""
        if self._owner is None or self._owner[0] != os.getpid():
            self._held.clear()  # a parent's claims are the parent's
            self._unsure_claims.clear()
            self._register(connection)
        assert self._owner is not None
        return self._owner[1]

    def _register(self, connection: Any) -> None:
        if self._renewal is None or self._renewal[0] != os.getpid():  # none yet, or forked
            self._renewal = (os.getpid(), keep_lease(self))
        row_id, inserted = connection.execute(
            _OWNER,
            {
                "sweep": self._sweep_id,
                "owner": json.dumps(list(current_owner())),
                "lease": self.lease,
            },
        ).fetchone()
        lost = inserted and self._owner is not None and self._owner[0] == os.getpid()
        self._owner, self._renewed = (os.getpid(), row_id), time.monotonic()
        if os.getpid() == self._creator_pid:
            self._creator_row = row_id
        if lost:
            # Nothing is held under the former row any more (see _ME): what this object
            # holds and nobody took meanwhile is claimed again, the rest may run twice.
            digests = sorted({digest for digest in self._held.values() if digest})
            adopted = (
                connection.execute(
                    _ADOPT,
                    {
                        "sweep": self._sweep_id,
                        "owner": row_id,
                        "ticket": next(_tickets),
                        "digests": digests,
                    },
                ).fetchall()
                if digests
                else []
            )
            logger.warning(
                "%s: this process's lease had expired: other instances took back its claims; "
                "%d of the %d it holds claimed again, the others may run twice (what it "
                "finishes still counts as done)",
                self.name,
                len(adopted),
                len(digests),
            )

    def renewed_at(self) -> float:
        """``time.monotonic()`` of the last renewal of the lease (0: never)."""
        return self._renewed

    def renew_lease(self, when_due: bool = False) -> None:
        """Push this process's lease ``lease`` seconds ahead (with ``when_due``, only once a
        third of it went by)."""
        if self.read_only or (
            when_due
            and self._owner is not None
            and time.monotonic() - self._renewed < self.lease / 3
        ):
            return
        self._run(self._register)

    def close(self) -> None:
        """Close the connection and stop renewing the lease."""
        if self._renewal is not None and self._renewal[0] == os.getpid():
            stop_lease(self._renewal[1])
            self._renewal = None
        self._link.close()

    def sync(self) -> None:
        """Nothing to wait for: every change is durable when its statement returns
        (``synchronous_commit`` on)."""

    def refresh(self, full: bool = False) -> None:
        """Nothing to catch up with (every query reads the database); gives back what dead
        owners hold."""
        self._reclaim_dead(force=full, reading=True)

    # -- sweeps ------------------------------------------------------------------------------

    def set_sweeps(self, sweeps: list[Any], save: bool) -> None:
        """Iterate on ``sweeps`` (distinct, in order): loaded into the database with ``COPY``
        unless they are the sweeps loaded last (a digest says); done, claims and skips stay,
        by canonical text. With ``save``, also saved (see :meth:`load_sweeps`)."""
        if save:
            self._check_writable()
        try:
            texts = self.codec.encode_many(sweeps)
        except UnsupportedValueError:
            self._refuse_pickles()
            raise
        digest = _order_digest(texts)
        with self._link.lock:
            self._sweeps, self._texts, self._digest, self._index = sweeps, texts, digest, None
            self._digest_text = "\\x" + digest.hex()
            self._redo, self._held = [], {}
        if not self.read_only:
            self._run(lambda connection: self._load(connection, texts, digest))
        if save:
            self._save(sweeps)

    def _refuse_pickles(self) -> None:
        """``PickleNotAllowedError`` if pickled elements were loaded into this sweep (and
        this object's codec does not allow them)."""
        rows = self._execute("SELECT pickled FROM execo_sweeps WHERE id = %(sweep)s")
        if rows and rows[0][0] and not self.codec.allow_pickle:
            raise PickleNotAllowedError(
                f"{self.location}: the sweep holds pickled elements: refusing to unpickle "
                f"them (it could run code); pass allow_pickle=True only if you trust whoever "
                f"writes this sweep"
            )

    def _load(self, connection: Any, texts: list[str], digest: bytes) -> None:
        """Load ``texts`` as the order of the sweep (one transaction), unless it is already;
        then, if that changed many rows of the table (:data:`_ANALYZE_SHARE`), analyze it
        at once: plans made from statistics in which the sweep has no rows scan all of it
        (the autovacuum daemon would analyze it only a minute or so later)."""
        sweep = self._sweep_id
        row = connection.execute("SELECT order_digest FROM execo_sweeps WHERE id = %s", (sweep,))
        if row.fetchone() == (digest,):
            return
        with connection.transaction(), connection.cursor() as cursor:
            row = cursor.execute(
                "SELECT order_digest, EXISTS (SELECT FROM execo_elements WHERE sweep = %s) "
                "FROM execo_sweeps WHERE id = %s FOR UPDATE",
                (sweep, sweep),
            ).fetchone()
            if row[0] == digest:  # loaded by another instance meanwhile
                return
            (rows,) = cursor.execute(
                "SELECT reltuples FROM pg_class WHERE oid = 'execo_elements'::regclass"
            ).fetchone()
            if row[1]:
                cursor.execute(
                    "CREATE TEMPORARY TABLE execo_load (position integer, text text, "
                    "sweep integer) ON COMMIT DROP"
                )
            target = "execo_load" if row[1] else "execo_elements"  # a new sweep: straight in
            with cursor.copy(f"COPY {target} (position, text, sweep) FROM STDIN") as copy:
                for block in _copy_blocks(texts, f"\t{sweep}"):
                    copy.write(block)
            if row[1]:
                cursor.execute(
                    "UPDATE execo_elements SET position = NULL "
                    "WHERE sweep = %s AND position IS NOT NULL",
                    (sweep,),
                )
                cursor.execute(
                    "INSERT INTO execo_elements (sweep, position, text) "
                    "SELECT sweep, position, text FROM execo_load "
                    "ON CONFLICT (sweep, digest) DO UPDATE SET position = EXCLUDED.position"
                )
            pickled = self.codec.allow_pickle and any('"__pickle__"' in t for t in texts)
            cursor.execute(
                "UPDATE execo_sweeps SET order_digest = %s, size = %s, pickled = pickled OR %s "
                "WHERE id = %s",
                (digest, len(texts), pickled, sweep),
            )
        if len(texts) > _ANALYZE_SHARE * rows:  # rows: -1 if never analyzed
            connection.execute("ANALYZE execo_elements")  # only a warning if not the owner

    def _save(self, sweeps: list[Any]) -> None:
        """Replace the saved sweeps, unless they are these already (a digest says); one
        transaction holding the sweep's advisory lock (writers saving at once take turns)."""
        texts = self.codec.encode_many(sweeps, in_order=True)  # factors in the sweep's order
        digest, sweep = _order_digest(texts), self._sweep_id

        def save(connection: Any) -> None:
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (sweep,))
                saved = cursor.execute(
                    "SELECT saved_digest FROM execo_sweeps WHERE id = %s", (sweep,)
                ).fetchone()
                if saved == (digest,):
                    return
                cursor.execute("DELETE FROM execo_saved WHERE sweep = %s", (sweep,))
                with cursor.copy("COPY execo_saved (position, text, sweep) FROM STDIN") as copy:
                    for block in _copy_blocks(texts, f"\t{sweep}"):
                        copy.write(block)
                cursor.execute(
                    "UPDATE execo_sweeps SET saved_digest = %s WHERE id = %s", (digest, sweep)
                )

        self._run(save)

    def load_sweeps(self) -> list[Any] | None:
        """The saved sweeps, in order, or None when none were saved."""
        rows = self._execute(
            "SELECT text FROM execo_saved WHERE sweep = %(sweep)s ORDER BY position"
        )
        return [self.codec.decode_element(text) for (text,) in rows] if rows else None

    def grid_size(self) -> int | None:
        """How many elements the sweeps loaded last had (None: none were loaded)."""
        rows = self._execute(
            "SELECT size FROM execo_sweeps WHERE id = %(sweep)s AND order_digest IS NOT NULL"
        )
        return int(rows[0][0]) if rows else None

    def _position_of_text(self, text: str) -> int | None:
        if self._index is None:
            self._index = {t: i for i, t in enumerate(self._texts)}
        return self._index.get(text)

    def _local_positions(self) -> dict[str, int]:
        """``{text: position}`` of what this object holds or was given back after done (few:
        no index of the whole sweeps needed)."""
        texts = self._texts
        return {texts[p]: p for p in itertools.chain(self._held, self._redo)}

    def _located(self, position: int | None, text: str) -> int | None:
        """This object's position of a row (``position``: in the sweeps loaded last)."""
        texts = self._texts
        if position is not None and 0 <= position < len(texts) and texts[position] == text:
            return position
        return self._position_of_text(text)

    def _elements(self, texts: Iterable[str]) -> list[Any]:
        """The elements of canonical texts: this object's own when in its sweeps."""
        found = []
        for text in texts:
            position = self._position_of_text(text)
            found.append(
                self.codec.decode_element(text) if position is None else self._sweeps[position]
            )
        return found

    # -- claims ------------------------------------------------------------------------------

    def claim(self, count: int, choose: Choose | None = None) -> list[Any]:
        """Claim up to ``count`` todo elements in sweeps order (or among what ``choose``
        returns, in its order): one statement (two with ``choose``, which sees the todo
        list)."""
        self._check_writable()
        if count <= 0:
            return []
        chosen = None
        if choose is not None:
            states = self._state_bytes(reading=False)
            todo = [self._sweeps[p] for p in _positions(states, State.TODO)]
            chosen = [p for e in choose(todo) if (p := self._position(e)) is not None]
            chosen = [p for p in dict.fromkeys(chosen) if states[p] == State.TODO]
        taken, skipped_again = self._run(lambda connection: self._claim(connection, count, chosen))
        if len(taken) < count and (skipped_again or self._reclaim_dead(force=True)):
            taken += self.claim(count - len(taken), choose)
        else:
            self._reclaim_dead()
        return taken

    def _position(self, element: Any, hint: int | None = None) -> int | None:
        """Where ``element`` stands in the sweeps (``hint``: where the caller believes it
        does, checked with one comparison before an index of the sweeps is built)."""
        try:
            text = self.codec.encode(element)
        except TypeError:
            return None
        texts = self._texts
        if type(hint) is int and 0 <= hint < len(texts) and texts[hint] == text:
            return hint
        return self._position_of_text(text)

    def _claim(
        self, connection: Any, count: int, chosen: Sequence[int] | None
    ) -> tuple[list[Any], bool]:
        """One claim (see :meth:`claim`): the elements claimed, and whether some were taken
        back as this process's skips (so that fewer than ``count`` does not mean none is left).
        Unsure (see :meth:`_resolve`) until what it took is held here; retried after a lost
        answer, it takes what the lost one took, by its ticket."""
        owner = self._owner_id(connection)
        if not self._link.retrying:
            self._ticket = next(_tickets)
        self._unsure_claims.add(self._ticket)
        taken = self._claim_rows(connection, owner, count, chosen)
        self._unsure_claims.discard(self._ticket)
        return taken

    def _claim_rows(
        self, connection: Any, owner: int, count: int, chosen: Sequence[int] | None
    ) -> tuple[list[Any], bool]:
        params: dict[str, Any] = {
            "sweep": self._sweep_id,
            "owner": owner,
            "ticket": self._ticket,
            "count": count,
            "creator": self._creator_row,
            "instance": self._instance,
        }
        rows: list[tuple[Any, ...]] = []
        if self._link.retrying:  # the answer to this ticket was lost: what did it take?
            rows = connection.execute(_CLAIMED_BY_TICKET, params).fetchall()
        # elements done but given back here: todo for this object only, merged in order
        rank: Callable[[int], int] = (
            int if chosen is None else {p: i for i, p in enumerate(chosen)}.__getitem__
        )
        redo_set = set(self._redo)
        redo = [p for p in (self._redo if chosen is None else chosen) if p in redo_set][:count]
        if not rows and chosen is None:
            bound = redo[-1] if len(redo) == count else _NO_BOUND
            rows = [
                (True, digest.decode(), int(position), text.decode(self._link.encoding))
                for digest, position, text in self._link.query(
                    connection,
                    _CLAIM_ONE if count == 1 else _CLAIM_NEXT,
                    self._sweep_id,
                    owner,
                    self._ticket,
                    bound,
                    self._digest_text,
                    self._creator_row,
                    self._instance,
                    *(() if count == 1 else (count,)),
                )
            ]
            params["digest"] = self._digest
            if not rows:
                same, registered = connection.execute(_SAME_ORDER, params).fetchone()
                if not registered:  # this process's lease expired: it took nothing
                    return self._claim_again(connection, count, chosen)
                if not same:
                    chosen = range(len(self._texts))  # other sweeps were loaded since: ours
        if not rows and chosen is not None:
            texts = [self._texts[p] for p in chosen]
            rows = connection.execute(_CLAIM_AMONG, {**params, "texts": texts}).fetchall()
            rows = [(ok, i, chosen[index], text) for ok, i, index, text in rows]
            if not rows and not connection.execute(_OWNER_EXISTS, params).fetchone()[0]:
                return self._claim_again(connection, count, chosen)
        taken: dict[int, str] = {}
        stray = []
        for _, digest, position, text in rows:
            if digest is not None:
                mine = self._located(position, text)
                if mine is None:  # not in our sweeps (they changed meanwhile)
                    stray.append(digest)
                else:
                    taken[mine] = digest
        handed = sorted(set(taken) | set(redo), key=rank)[:count]
        if self._own_skips:  # skipped here, then taken over and given back by another instance
            again = [p for p in handed if self._texts[p] in self._own_skips and taken.get(p)]
            if again:
                digests = [taken.pop(p) for p in again]
                connection.execute(_SKIP_AGAIN, {**params, "digests": digests})
                handed = [p for p in handed if p not in again]
        else:
            again = []
        for position in handed:
            if position in redo_set:
                self._redo.remove(position)
            self._held[position] = taken.get(position, "")
        stray += [digest for position, digest in taken.items() if position not in handed]
        if stray:
            connection.execute(_RELEASE, {**params, "digests": stray})
        return [self._sweeps[p] for p in handed], bool(again)

    def _claim_again(
        self, connection: Any, count: int, chosen: Sequence[int] | None
    ) -> tuple[list[Any], bool]:
        """The claim, once more under a new owner row: the former one was deleted (its
        lease expired), so the first try took nothing."""
        self._register(connection)
        assert self._owner is not None
        return self._claim_rows(connection, self._owner[1], count, chosen)

    def take_many(self, wanted: list[tuple[Any, int | None]]) -> list[str | None]:
        """:meth:`take` of each pair in turn (one statement each); when some are held by
        another owner, a look for dead owners (one more statement) and, if it gave anything
        back, those taken again: an element whose owner just died (an xdist worker that
        crashed, whose items go to another) is free."""
        reasons = [self._take(element, position) for element, position in wanted]
        held = [
            i
            for i, reason in enumerate(reasons)
            if reason and reason.startswith(("in progress ", "skipped "))
        ]
        if held and self._reclaim_dead(force=True):
            for i in held:
                reasons[i] = self._take(*wanted[i])
        return reasons

    def take(self, element: Any, position: int | None = None) -> str | None:
        """Claim this very element if it is todo (or skipped by this process): None when
        claimed, else why not (``"done"``, ``"in progress (host H, pid P)"``,
        ``"skipped (host H, pid P)"``, ``"not in the sweeps"``)."""
        return self.take_many([(element, position)])[0]

    def _take(self, element: Any, position: int | None) -> str | None:
        """:meth:`take` in one statement (no look for dead owners)."""
        position = self._position(element, position)
        if position is None:
            return "not in the sweeps"
        self._check_writable()
        with self._link.lock:
            if position in self._redo:
                self._redo.remove(position)
                self._held[position] = ""
                return None
        ticket = next(_tickets)  # the same for a retry, which then finds what it took

        def take(connection: Any) -> list[tuple[Any, ...]]:
            params = {
                "sweep": self._sweep_id,
                "owner": self._owner_id(connection),
                "ticket": ticket,
                "texts": [self._texts[position]],
            }
            self._unsure_claims.add(ticket)  # until held here: see _resolve
            rows = connection.execute(_TAKE, params).fetchall()
            if rows and not rows[0][4]:  # this process's lease expired: it took nothing
                self._register(connection)
                params["owner"] = self._owner_id(connection)
                rows = connection.execute(_TAKE, params).fetchall()
            return rows  # type: ignore[no-any-return]

        with self._link.lock:
            rows = self._run(take)
            if rows and rows[0][3]:
                self._held[position] = rows[0][0]
                self._own_skips.discard(self._texts[position])
            self._unsure_claims.discard(ticket)
        if not rows:
            return "not in the sweeps"
        _, state, holder, taken, _ = rows[0]
        if taken:
            return None
        if holder is not None:
            host, pid, *_ = json.loads(holder)
            return f"{'in progress' if state == 'claimed' else state} (host {host}, pid {pid})"
        return str(state)

    def done(self, elements: list[Any]) -> None:
        """Mark ``elements`` done (claimed or not, in the sweeps or not) and release their
        claims: one idempotent statement, durable when it returns."""
        self._check_writable()
        digests, unknown, others, positions = [], [], [], []
        with self._link.lock:
            # what this object handed out comes back as the very same object: no encoding
            handed = {id(self._sweeps[p]): p for p, digest in self._held.items() if digest}
            for element in elements:
                position = handed.get(id(element))
                if position is None:
                    unknown.append(element)
                else:
                    digests.append(self._held[position])
                    positions.append(position)
            texts = self.codec.encode_many(unknown) if unknown else []
            local = self._local_positions()
            for text in texts:
                digest = self._held.get(local.get(text, -1))
                if digest:  # claimed here, given as an equal object
                    digests.append(digest)
                else:
                    others.append(text)
        if digests:  # one: a scalar parameter (an array costs more to parse than the query)
            query, arg = (
                (_DONE_ONE, digests[0])
                if len(digests) == 1
                else (_DONE_MANY, f"{{{','.join(digests)}}}")
            )
            sweep = self._sweep_id

            def mark(connection: Any) -> None:
                self._unsure_done.update(digests)  # until acknowledged: see _resolve
                self._link.query(connection, query, sweep, arg)

            with self._link.lock:
                self._run(mark)
                for position in positions:
                    self._held.pop(position, None)
                self._unsure_done.difference_update(digests)
        if others:
            params = {"sweep": self._sweep_id, "texts": others}
            self._run(lambda connection: connection.execute(_DONE, params))
        if self._own_skips:
            with self._link.lock:
                self._own_skips.difference_update(self._texts[p] for p in positions)
                self._own_skips.difference_update(texts)
        if texts:
            self._unhold(texts)

    def _unhold(self, texts: list[str]) -> None:
        """Forget that this object holds (or is to redo) the elements of ``texts``."""
        with self._link.lock:
            local = self._local_positions()
            for text in texts:
                position = local.get(text)
                if position is not None:
                    self._held.pop(position, None)
                    if position in self._redo:
                        self._redo.remove(position)

    def give_back(self, elements: list[Any], skip: bool = False) -> None:
        """Release the claims on ``elements``: todo again or, with ``skip``, skipped by this
        process. A done element given back without ``skip`` is todo for this object only."""
        self._check_writable()
        texts = [self.codec.encode(element) for element in elements]
        if not texts:
            return

        def give_back(connection: Any) -> list[tuple[Any, ...]]:
            owner = self._owner_id(connection)  # registered (again, after a fork)
            params = {
                "sweep": self._sweep_id,
                "texts": texts,
                "skip": skip,
                "creator": self._creator_row,
                "instance": self._instance,
                "holder": self._creator_row if skip else owner,
            }
            rows = connection.execute(_GIVE_BACK, params).fetchall()
            if skip and rows and not rows[0][2]:  # the creator's lease expired: not skipped
                self._register(connection)
                params["creator"] = params["holder"] = self._creator_row
                rows = connection.execute(_GIVE_BACK, params).fetchall()
            return rows  # type: ignore[no-any-return]

        before = {text: state for text, state, _ in self._run(give_back)}
        self._unhold(texts)
        with self._link.lock:
            if skip:
                self._own_skips.update(t for t in texts if before.get(t, "done") != "done")
            else:
                self._own_skips.difference_update(texts)
            for text in texts:
                if before.get(text) == "done" and not skip:  # todo again here only
                    position = self._position_of_text(text)
                    if position is not None and position not in self._redo:
                        bisect.insort(self._redo, position)

    def fail(self, elements: list[Any], error: str, max_attempts: int | None = None) -> list[Any]:
        """Count one failed attempt on each element not done, in one statement (see
        :data:`_FAIL`); returns those now failed for good, in the order given. Elements with
        no row (never in any sweeps of this database) are not counted."""
        self._check_writable()
        texts = [self.codec.encode(element) for element in elements]
        if not texts:
            return []

        def fail(connection: Any) -> list[tuple[Any, ...]]:
            params = {
                "sweep": self._sweep_id,
                "texts": texts,
                "error": error,
                "max": max_attempts,
                "owner": self._owner_id(connection),
                "creator": self._creator_row,
                "instance": self._instance,
            }
            return connection.execute(_FAIL, params).fetchall()  # type: ignore[no-any-return]

        failed = {text for text, state in self._run(fail) if state == "failed"}
        self._unhold(texts)
        with self._link.lock:
            self._own_skips.difference_update(texts)
        return [element for element, text in zip(elements, texts, strict=True) if text in failed]

    def failures(self) -> list[Failure]:
        """Every element with failed attempts counted, in sweeps order (``since``: the
        database's clock)."""
        rows = self._execute(
            "SELECT text, attempts, coalesce(last_error, ''), "
            "coalesce(extract(epoch FROM claimed_at)::float8, 0), state = 'failed' "
            "FROM execo_elements WHERE sweep = %(sweep)s AND attempts > 0 ORDER BY position"
        )
        elements = self._elements(row[0] for row in rows)
        return [Failure(e, *row[1:]) for e, row in zip(elements, rows, strict=True)]

    def release_mine(self, error: str | None = None, max_attempts: int | None = None) -> list[Any]:
        """Give back every element this object claimed and did not finish; returns them in
        the order they were claimed (with ``error``: as :meth:`fail`)."""
        if error is not None:
            with self._link.lock:
                mine = [self._sweeps[p] for p in self._held]
            self.fail(mine, error, max_attempts)
            return mine
        self._check_writable()
        with self._link.lock:  # forgotten once given back (known until then)
            held = dict(self._held)
            digests = [digest for digest in held.values() if digest]
            released: set[str] = set()
            if digests or self._unsure_claims:  # and what claims of unknown outcome took
                rows = self._run(
                    lambda connection: connection.execute(
                        _RELEASE,
                        {
                            "sweep": self._sweep_id,
                            "digests": digests,
                            "owner": self._owner_id(connection),
                        },
                    ).fetchall()
                )
                released = {digest for (digest,) in rows}
            self._drop_held()
        # not those another object marked done (or took back) meanwhile
        return [self._sweeps[p] for p, digest in held.items() if not digest or digest in released]

    def reset(self, claims: bool = False, failed: bool = False) -> None:
        """Forget this object's skips everywhere (done stays); with ``claims``, release
        every claim and skip of every instance too; with ``failed``, clear every failed attempt
        count (failed elements are todo again)."""
        self._check_writable()
        if failed:
            self._execute(_RESET_FAILED)

        def reset(connection: Any) -> None:
            connection.execute(
                "UPDATE execo_elements SET state = 'todo', owner = NULL, ticket = NULL "
                "WHERE sweep = %(sweep)s AND owner IS NOT NULL "
                "AND state IN ('skipped', 'claimed', 'todo') "
                "AND (%(claims)s OR (state = 'todo' AND owner = %(creator)s "
                "AND ticket = %(instance)s) OR (state = 'skipped' AND owner = %(owner)s "
                "AND ticket = %(instance)s))",
                {
                    "sweep": self._sweep_id,
                    "claims": claims,
                    "owner": self._owner_id(connection),
                    "creator": self._creator_row,
                    "instance": self._instance,
                },
            )

        self._run(reset)
        with self._link.lock:
            self._own_skips.clear()
        if claims:
            self._drop_held()

    def _drop_held(self) -> dict[int, str]:
        """Forget what this object holds (its redos claimed here are to redo again); returns
        it, position -> digest."""
        with self._link.lock:
            held, self._held = self._held, {}
            for position, digest in held.items():
                if not digest:
                    bisect.insort(self._redo, position)
        return held

    # -- liveness ----------------------------------------------------------------------------

    def _owners(self) -> list[_Judged]:
        """Every owner of the sweep, judged: one of this host and PID namespace by its pid
        alone, whatever its lease (a paused process, or one that could not renew while the
        server was down, lives); any other by its lease, as this object's
        :class:`~.leases.LeaseWatch` sees it; this process lives."""
        me = current_owner()
        with self._link.lock:
            rows = [
                (row_id, decode_owner(json.loads(text)), beat, lease)
                for row_id, text, beat, lease in self._execute(_OWNERS)
            ]
            by_lease = [row for row in rows if row[1] != me and not judged_by_pid(row[1])]
            expired = self._watch.expired(
                self._link.opened, ((row_id, beat, lease) for row_id, _, beat, lease in by_lease)
            )
        return [
            _Judged(row_id, owner, beat)
            if row_id in expired
            else _Judged(row_id, owner, None, owner != me and is_dead(owner))
            for row_id, owner, beat, _ in rows
        ]

    def _reclaim_dead(self, force: bool = False, reading: bool = False) -> bool:
        """Give back what dead owners hold (at most every
        :data:`~execo_engine.store.lease.DEAD_OWNER_CHECK_INTERVAL`
        seconds unless ``force``); whether anything was (``reading``: for an operation that
        only reads, see :mod:`execo_engine.store.messages`)."""
        now = time.monotonic()
        if self.read_only or (
            not force and now - self._last_dead_check < DEAD_OWNER_CHECK_INTERVAL
        ):
            return False
        self._last_dead_check = now
        owners = self._owners()
        dead = [o.row_id for o in owners if o.dead and o.expired_beat is None]
        expired = [o for o in owners if o.expired_beat is not None]
        if not dead and not expired:
            return False
        freed = self._run(lambda connection: self._bury(connection, dead, expired))
        for (host, pid, *_), count in freed:
            reclaimed_dead(self.name, count, self.dead_owner, host, pid, reading=reading)
        return bool(freed)

    def _bury(
        self, connection: Any, dead: list[int], expired: list[_Judged]
    ) -> list[tuple[list[Any], int]]:
        """Forget the owners of rows ``dead`` and those of ``expired`` that did not renew
        their lease meanwhile, then give back what they held, in one transaction of two
        statements (see :data:`_ME`); the owners (as their JSON lists) that held something,
        with how much."""
        with connection.transaction():
            params = {
                "sweep": self._sweep_id,
                "dead": dead,
                "expired": [o.row_id for o in expired],
                "beats": [o.expired_beat for o in expired],
            }
            forgotten = dict(connection.execute(_FORGET, params).fetchall())
            params = {"sweep": self._sweep_id, "ids": list(forgotten)}
            held = Counter(row_id for (row_id,) in connection.execute(_FREE, params).fetchall())
        return [(json.loads(forgotten[row_id]), count) for row_id, count in held.items()]

    def reclaim(self, older_than: float | None = None) -> list[Any]:
        """Give back what dead owners hold and, with ``older_than`` (seconds), every claim
        taken longer ago than that; returns the elements given back."""
        self._check_writable()
        before = {h.element: h for h in self.holders()}
        self._reclaim_dead(force=True)
        if older_than is not None:
            old = self._execute(
                "UPDATE execo_elements SET state = 'todo', owner = NULL, ticket = NULL "
                "WHERE sweep = %(sweep)s AND state = 'claimed' "
                "AND claimed_at < now() - %(seconds)s * interval '1 second' RETURNING digest",
                seconds=older_than,
            )
            if old:
                reclaimed_old(self.name, len(old), older_than)
        after = {h.element for h in self.holders()}
        return [element for element in before if element not in after]

    # -- looking -----------------------------------------------------------------------------

    def _state_bytes(self, reading: bool = True) -> bytearray:
        """The :class:`State` of each position of the sweeps, from one query (``reading``:
        for an operation that only reads)."""
        self._reclaim_dead(reading=reading)
        rows = self._execute(
            _STATES_QUERY,
            digest=self._digest,
            creator=self._creator_row,
            instance=self._instance,
        )
        states = bytearray(len(self._sweeps))
        for same, position, state, text, skipped_here in rows:
            if state not in _STATES:  # no row, or a state this version does not report
                continue
            mine = position if same else self._position_of_text(text)
            if mine is not None and 0 <= mine < len(states):
                # a todo row with an owner: skipped for that instance only
                states[mine] = State.SKIPPED if skipped_here else _STATES[state]
        with self._link.lock:
            for text in self._own_skips:
                position = self._position_of_text(text)
                if position is not None and states[position] == State.TODO:
                    states[position] = State.SKIPPED
            for position in self._redo:
                states[position] = State.TODO
            for position, digest in self._held.items():
                if not digest:  # a redo claimed here
                    states[position] = State.CLAIMED
        return states

    def states(self) -> dict[State, list[Any]]:
        """The elements of the sweeps in each state, in sweeps order, from one query (one
        snapshot); an element done but given back here is todo (claimed once claimed
        again)."""
        states = self._state_bytes()
        return {state: [self._sweeps[p] for p in _positions(states, state)] for state in State}

    def holders(self) -> list[Holder]:
        """Every claim and skip, oldest first (``since``: the database's clock); a writer
        gives back what dead owners hold first, as every store does."""
        self._reclaim_dead(reading=True)
        dead = {judged.owner: judged.dead for judged in self._owners()}
        found = []
        for text, state, holder, since in self._execute(_HOLDERS):
            owner = decode_owner(json.loads(holder)) if holder else Owner("?", 0, "", "")
            [element] = self._elements([text])
            gone = dead.get(owner, True)
            found.append(Holder(element, owner, since or 0.0, _STATES[state], gone))
        return found

    def heartbeat_ages(self) -> dict[Owner, float]:
        """Seconds since each owner's last renewal, by the database's clock."""
        rows = self._execute(
            "SELECT owner, extract(epoch FROM now() - heartbeat)::float8 FROM execo_owners "
            "WHERE sweep = %(sweep)s"
        )
        return {decode_owner(json.loads(owner)): max(0.0, age) for owner, age in rows}

    def done_texts(self) -> frozenset[str]:
        """The canonical text of every done element of the sweep."""
        rows = self._execute(
            "SELECT text FROM execo_elements WHERE sweep = %(sweep)s AND state = 'done'"
        )
        return frozenset(text for (text,) in rows)

    # -- results -----------------------------------------------------------------------------

    def append_result(self, record: HashableDict) -> None:
        """Add a result record; durable when it returns. Idempotent (a token)."""
        self._check_writable()
        self._execute(
            "INSERT INTO execo_results (sweep, token, record) "
            "VALUES (%(sweep)s, %(token)s, %(record)s) ON CONFLICT (token) DO NOTHING "
            "RETURNING id",
            token=uuid.uuid4(),
            record=result_text(self.codec, record),
        )

    def read_results(self) -> list[Any]:
        """Every readable result record, in the order they were written; one that is not
        (written by hand, or by an older version) is skipped with a warning naming its row
        (once per record and object)."""
        rows = self._execute(
            "SELECT id, record FROM execo_results WHERE sweep = %(sweep)s ORDER BY id"
        )
        results = []
        for row, text in rows:
            try:
                result = read_result(self.codec, text)
            except PickleNotAllowedError as error:
                raise PickleNotAllowedError(f"{self.location}: {error}") from None
            except ValueError as error:
                if row not in self._skipped:
                    self._skipped.add(row)
                    logger.warning(
                        "%s: unreadable result record in execo_results, id %d, skipped: %r "
                        "(%s); the other results are read",
                        self.location,
                        row,
                        text[:80],
                        error,
                    )
                continue
            result["combination"] = self.codec.element(result["combination"])
            results.append(result)
        return results

    # -- runs --------------------------------------------------------------------------------

    def add_run(self, record: dict[str, Any]) -> None:
        """Add a run record; durable when it returns. Idempotent (a token)."""
        self._check_writable()
        self._execute(
            "INSERT INTO execo_runs (sweep, token, record) "
            "VALUES (%(sweep)s, %(token)s, %(record)s) ON CONFLICT (token) DO NOTHING "
            "RETURNING id",
            token=uuid.uuid4(),
            record=encode_run(record),
        )

    def read_runs(self) -> list[dict[str, Any]]:
        """Every run record, in the order they were written (none in a database made before
        run records)."""
        try:
            rows = self._execute(
                "SELECT id, record FROM execo_runs WHERE sweep = %(sweep)s ORDER BY id"
            )
        except driver().errors.UndefinedTable:
            return []
        return decode_runs(((f"row {row}", text) for row, text in rows), "execo_runs")


def _positions(states: bytearray, state: State) -> Iterator[int]:
    """The positions in ``state``, in order."""
    position = states.find(state)
    while position >= 0:
        yield position
        position = states.find(state, position + 1)


def sweeps_below(url: str) -> dict[str, str]:
    """``{name: URL}`` of the sweeps named ``<this URL's sweep>/<name>``."""
    conninfo, prefix, _ = parse_url(url)
    shown = without_password(url)
    link = Link(conninfo, shown, lambda connection: create_schema(connection, True, shown))
    try:
        rows = link.run(
            lambda connection: connection.execute(
                "SELECT name FROM execo_sweeps WHERE starts_with(name, %s) ORDER BY name",
                (prefix + "/",),
            ).fetchall()
        )
    except FileNotFoundError:  # no execo tables at all
        return {}
    finally:
        link.close()
    return {name[len(prefix) + 1 :]: with_sweep(url, name) for (name,) in rows}
