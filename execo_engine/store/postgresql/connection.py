"""One store's connection to the server: opened on first use, again after ``fork()`` and after
a loss; the hot path's prepared statements run on libpq itself."""

from __future__ import annotations

import itertools
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from execo_engine.errors import CannotConnectError, ConnectionLostError
from execo_engine.log import logger

T = TypeVar("T")

#: A connection lost after it worked is retried for this long (seconds) before the operation
#: fails (a first connection that fails is a :class:`CannotConnectError` at once).
RECONNECT_SECONDS = 120.0
#: How long (seconds) one connection attempt may take, unless the URL (``connect_timeout=``)
#: or the environment (``PGCONNECT_TIMEOUT``) says otherwise.
CONNECT_TIMEOUT = 10
#: Where the connection parameters a URL may give are listed.
PARAMETERS_PAGE = "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS"
#: How long (seconds) a new connection waits for the server session of a connection dropped
#: in the middle of a statement to end (see :meth:`Link._end_dropped`).
SESSION_END_SECONDS = 60.0
# This session's identity: a pid is reused, a pid with its start time is not.
_SESSION = "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
# Ends the given sessions (pid, start), and says which still run.
_END_SESSIONS = """
SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
WHERE (pid, backend_start) IN (SELECT * FROM unnest(%s::integer[], %s::timestamptz[]))"""


def driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ImportError(
            "a postgresql:// sweep needs psycopg 3: pip install 'execo_engine[postgresql]'"
        ) from None
    return psycopg


class Statement:
    """A statement of the hot path (claim, done), run by :meth:`Link.query` on libpq itself
    and prepared once per connection: on these one-row statements, psycopg's cursors cost the
    client more CPU than the statement costs the server, and a worker runs two per element.
    Parameters are ``$1``, ``$2``... (their types inferred by the server)."""

    _names = itertools.count(1)

    def __init__(self, sql: str) -> None:
        self.sql = sql.encode()
        self.name = f"execo_{next(self._names)}".encode()


#: SQLSTATEs of a session the server ended: admin_shutdown, crash_shutdown, cannot_connect_now
_LOST_STATES = ("57P01", "57P02", "57P03")
# libpq's PGRES_COMMAND_OK and PGRES_TUPLES_OK (a statement's success), CONNECTION_BAD
_SUCCESS = (1, 2)
_CONNECTION_BAD = 1
_IDLE = 0  # libpq's PQTRANS_IDLE: no statement nor transaction under way


def _wait_for(fileno: int, events: int) -> None:
    """Wait until the socket ``fileno`` is ready for ``events`` (poll: any descriptor number;
    a signal's exception, as ``KeyboardInterrupt``, interrupts it)."""
    poll = select.poll()
    poll.register(fileno, events)
    poll.poll()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _parameters(conninfo: str) -> dict[str, Any]:
    """The connection parameters of ``conninfo`` (a URL), as libpq reads them ({} if it
    cannot)."""
    try:
        parameters: dict[str, Any] = driver().conninfo.conninfo_to_dict(conninfo)
    except driver().ProgrammingError:
        return {}
    return parameters


#: What a server says while it restarts: it was reached, and takes connections again soon.
_RESTARTING = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
)


def _restarting(error: BaseException) -> bool:
    """Whether the failed connection attempt ``error`` was answered by a restarting server."""
    return any(text in str(error) for text in _RESTARTING)


def cannot_connect(conninfo: str, shown: str, error: BaseException) -> CannotConnectError:
    """The error saying that the server of ``conninfo`` could not be reached (``error``: the
    driver's), naming host and port and ``shown`` (the URL without its password)."""
    parameters = _parameters(conninfo)
    host = (
        parameters.get("host")
        or parameters.get("hostaddr")
        or os.environ.get("PGHOST")
        or "localhost"
    )
    port = parameters.get("port") or os.environ.get("PGPORT") or "5432"
    reason = _first_line(error).rsplit(" failed: ", 1)[-1].strip()
    password = parameters.get("password") or os.environ.get("PGPASSWORD")
    if password:
        reason = reason.replace(str(password), "***")
    return CannotConnectError(f"cannot connect to {host}:{port}: {reason}; check the URL {shown}")


class Link:
    """The connection of one store: opened on first use, again in a child after ``fork()``
    and again after it was lost.

    :meth:`run` calls ``work(connection)`` and, when the connection is lost after it worked,
    waits for the server (up to :data:`RECONNECT_SECONDS`) and calls it again, with
    :attr:`retrying` set: the outcome of the lost call is unknown, ``work`` must make its
    second run safe (idempotent, or finding out what the first one did). What the second run
    finds is final: before any work on a new connection, the server session of a connection
    dropped in the middle of a statement (a connection broken on the client's side, or an
    exception while waiting for the answer) is ended and gone (:meth:`_end_dropped`): a
    statement the server was still running for it can no longer commit afterwards. When
    :meth:`run` raises (the server stayed away, or an exception such as ``KeyboardInterrupt``
    interrupted the exchange), the outcome is unknown too: the caller finds out what happened
    on its next call. A first connection that fails (each attempt lasts at most
    :data:`CONNECT_TIMEOUT` seconds unless the URL says otherwise) is a
    :class:`~execo_engine.errors.CannotConnectError` at once: a configuration error, not a
    loss.
    """

    def __init__(self, conninfo: str, shown: str, setup: Callable[[Any], None]) -> None:
        """``setup(connection)`` runs on each new connection (the schema's check)."""
        self._conninfo, self._shown, self._setup = conninfo, shown, setup
        self._timeout: dict[str, Any] = {}
        if "connect_timeout" not in _parameters(conninfo) and not os.environ.get(
            "PGCONNECT_TIMEOUT"
        ):
            self._timeout = {"connect_timeout": CONNECT_TIMEOUT}
        self._reached = False  #: whether a connection ever worked (then a loss is retried)
        self._connection: Any = None
        self._pid = 0
        self.lock = threading.RLock()
        self.retrying = False  #: in :meth:`run`, whether ``work`` runs again after a loss
        self.opened = 0  #: how many connections were opened (which one is in use)
        self.encoding = "utf-8"  #: the client encoding of the connection (a Python codec)
        self._prepared: set[bytes] = set()  # the names of the statements prepared on it
        self._readable = select.poll()  # waits for an answer on the connection's socket
        self._session: tuple[int, Any] | None = None  # (pid, start) of the connection's session
        self._dropped: list[tuple[int, Any]] = []  # sessions of connections dropped midway

    @property
    def forked(self) -> bool:
        """Whether the connection, if any, was opened by another process (a parent)."""
        return self._pid != os.getpid()

    def _connect(self) -> Any:
        if self._connection is None or self.forked:
            if self.forked:  # a parent's connection is not closed here (nor its session ended)
                self._connection, self._session, self._dropped = None, None, []
            try:
                connection = driver().connect(self._conninfo, autocommit=True, **self._timeout)
            except driver().ProgrammingError as error:  # a parameter libpq refuses
                raise ValueError(
                    f"{self._shown}: {_first_line(error)}: fix or remove that URL parameter "
                    f"(those libpq takes: {PARAMETERS_PAGE})"
                ) from None
            except driver().OperationalError as error:
                if self._reached or _restarting(error):
                    raise  # lost after it worked, or a server restarting: run() retries
                raise cannot_connect(self._conninfo, self._shown, error) from None
            self._reached = True
            try:
                if "synchronous_commit" not in self._conninfo:  # unless the URL says otherwise
                    connection.execute("SET synchronous_commit TO on")  # whatever the server's
                session = connection.execute(_SESSION).fetchone()
                if self._dropped:
                    self._end_dropped(connection)
                self._setup(connection)
            except BaseException:
                connection.close()
                raise
            self._connection, self._pid, self._session = connection, os.getpid(), session
            self.opened += 1
            self.encoding, self._prepared = connection.info.encoding, set()
            self._readable = select.poll()
            self._readable.register(connection.pgconn.socket, select.POLLIN)
        return self._connection

    def query(
        self, connection: Any, statement: Statement, *params: object
    ) -> list[tuple[Any, ...]]:
        """The rows of ``statement`` run with ``params`` (each sent as ``str(param)``, None as
        NULL), each column as the bytes of its text form (None: NULL). The same errors as
        psycopg's ``execute`` (``OperationalError`` when the connection is lost)."""
        pgconn = connection.pgconn
        if statement.name not in self._prepared:
            self._exchange(connection, pgconn.send_prepare, statement.name, statement.sql)
            self._prepared.add(statement.name)
        encoding = self.encoding
        values = [None if p is None else str(p).encode(encoding) for p in params]
        result = self._exchange(connection, pgconn.send_query_prepared, statement.name, values)
        value, columns = result.get_value, range(result.nfields)
        return [tuple([value(row, c) for c in columns]) for row in range(result.ntuples)]

    def _exchange(self, connection: Any, send: Callable[..., None], *args: Any) -> Any:
        """Send a query with ``send(*args)`` and wait for its result (interruptible, as
        psycopg's own wait): the result, or its error raised. A connection interrupted
        in the middle is closed (the next operation opens another one)."""
        pgconn, results = connection.pgconn, []
        try:
            send(*args)
            while pgconn.flush():  # a non-blocking connection: the rest of the query
                _wait_for(pgconn.socket, select.POLLIN | select.POLLOUT)
                pgconn.consume_input()
            while True:
                while pgconn.is_busy():
                    self._readable.poll()
                    pgconn.consume_input()
                result = pgconn.get_result()
                if result is None:
                    break
                results.append(result)
        except BaseException:
            self._drop()
            raise
        failed = [result for result in results if result.status not in _SUCCESS]
        if pgconn.status == _CONNECTION_BAD or not results:
            message = failed[0].get_error_message(self.encoding) if failed else "no answer"
            raise driver().OperationalError(f"the connection is lost: {message}")
        if failed:
            raise driver().errors.error_from_result(failed[0], encoding=self.encoding)
        return results[-1]

    def _drop(self) -> None:
        """Close the connection, in the middle of a statement perhaps: its session is to be
        ended before anything else (see :meth:`_end_dropped`)."""
        if self._connection is not None:
            self._connection.close()
        if self._session is not None:
            self._dropped.append(self._session)
        self._connection = self._session = None

    def _end_dropped(self, connection: Any) -> None:
        """End the server sessions of the connections dropped midway and wait until they are
        gone (up to :data:`SESSION_END_SECONDS`): what their statements did is then final.
        A session the server ended already (a restart) is not found at once."""
        pids, starts = [list(column) for column in zip(*self._dropped, strict=True)]
        deadline = time.monotonic() + SESSION_END_SECONDS
        while connection.execute(_END_SESSIONS, (pids, starts)).fetchall():
            if time.monotonic() > deadline:
                logger.warning(
                    "%s: the server sessions of a lost connection did not end within %g s",
                    self._shown,
                    SESSION_END_SECONDS,
                )
                break
            time.sleep(0.01)  # polling a condition with a deadline
        self._dropped = []

    def _is_lost(self, error: Exception) -> bool:
        """Whether ``error`` means the connection is lost (then closed here): it is broken
        or closed, or the server said so (a connection exception, SQLSTATE class 08, or an
        operator's intervention: terminated backend, shutdown, crash, starting up) before
        libpq saw the socket close."""
        connection = self._connection
        state = getattr(error, "sqlstate", None) or ""
        if (
            connection is None
            or connection.broken
            or connection.closed
            or state.startswith("08")
            or state in _LOST_STATES
        ):
            self._drop()
            return True
        return False

    def run(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` under the lock, with reconnections (see the class)."""
        with self.lock:
            self.retrying, deadline, attempts = False, 0.0, 0
            while True:
                try:
                    connection = self._connect()
                    if attempts:
                        logger.warning(
                            "%s: reconnected to the database (%d attempt(s))",
                            self._shown,
                            attempts,
                        )
                        attempts = 0
                    return work(connection)
                except driver().OperationalError as error:  # evaluated on an exception only
                    if not self._is_lost(error):
                        self._drop_if_busy()
                        raise
                    now = time.monotonic()
                    if not deadline:
                        deadline = now + RECONNECT_SECONDS
                        logger.warning(
                            "%s: lost the connection to the database (%s): reconnecting",
                            self._shown,
                            _first_line(error),
                        )
                    elif now >= deadline:
                        raise ConnectionLostError(
                            f"{self._shown}: could not reach the database again within "
                            f"{RECONNECT_SECONDS:g} s ({_first_line(error)}); the sweep's state "
                            f"is safe in the database: run again once the server is back"
                        ) from error
                    self.retrying, attempts = True, attempts + 1
                    time.sleep(min(0.05 * 2**attempts, 1.0, max(0.0, deadline - now)))
                except BaseException:
                    self._drop_if_busy()
                    raise

    def _drop_if_busy(self) -> None:
        """After ``work`` raised: close the connection unless it is idle (an exception, say
        from a signal handler, interrupted a statement or a transaction: its answer would
        come to the next one). The next operation opens another."""
        connection = self._connection
        if (
            connection is not None
            and not connection.closed
            and connection.pgconn.transaction_status != _IDLE
        ):
            self._drop()

    def close(self) -> None:
        """Close the connection (only the one this process opened)."""
        with self.lock:
            if self._connection is not None and not self.forked:
                self._connection.close()
            self._connection = self._session = None
