"""The execo tables of a database: created once (under an advisory lock), their version
checked by every connection."""

from __future__ import annotations

from typing import Any

from execo_engine.store.postgresql.connection import driver

SCHEMA_VERSION = 4
_SCHEMA_LOCK = 0x6578_6563_6F00  # "execo": the advisory lock serializing schema creation
_RUNS_TABLE = (
    "CREATE TABLE IF NOT EXISTS execo_runs (id bigserial PRIMARY KEY, "
    "sweep integer NOT NULL REFERENCES execo_sweeps ON DELETE CASCADE, "
    "token uuid NOT NULL UNIQUE, record text NOT NULL)"
)
_SCHEMA = [
    "CREATE TABLE execo_sweeps (id serial PRIMARY KEY, name text NOT NULL UNIQUE, "
    "order_digest bytea, size integer NOT NULL DEFAULT 0, saved_digest bytea, "
    "pickled boolean NOT NULL DEFAULT false, "
    "created timestamptz NOT NULL DEFAULT now())",
    # sweep: an execo_sweeps id (no foreign key: COPY of a million rows checks none).
    # (sweep, digest) is a row's only identity, and its only index besides the claim's: a
    # claim, which moves the row out of the claim's index, adds an entry to this one only
    "CREATE TABLE execo_elements (sweep integer NOT NULL, position integer, "
    "text text NOT NULL, digest uuid NOT NULL GENERATED ALWAYS AS (md5(text)::uuid) STORED, "
    "state text NOT NULL DEFAULT 'todo' "
    "CHECK (state IN ('todo', 'claimed', 'done', 'skipped', 'failed')), "
    # ticket: of the claim that took it, or the number of the store object that skipped it (a
    # skip leaves the row 'todo', with owner and ticket set; 'skipped' is what earlier versions
    # wrote: see store.py)
    "owner bigint, ticket bigint, claimed_at timestamptz, done_at timestamptz, "
    "attempts integer NOT NULL DEFAULT 0, last_error text, "
    # todo: what the claim's index holds, rather than state, so that a change of state
    # between others (claimed to done) updates no index (a HOT update)
    "todo boolean NOT NULL GENERATED ALWAYS AS (state = 'todo') STORED, "
    "PRIMARY KEY (sweep, digest))",
    # the claim: the first todo rows in order, from the index alone
    "CREATE INDEX execo_elements_todo ON execo_elements (sweep, position) WHERE todo",
    # the primary key also serves every query on one sweep's rows: no other index to update
    "CREATE TABLE execo_owners (id bigserial PRIMARY KEY, "
    "sweep integer NOT NULL REFERENCES execo_sweeps ON DELETE CASCADE, owner text NOT NULL, "
    "expires timestamptz NOT NULL, heartbeat timestamptz NOT NULL, UNIQUE (sweep, owner))",
    "CREATE TABLE execo_saved (sweep integer NOT NULL REFERENCES execo_sweeps ON DELETE "
    "CASCADE, position integer NOT NULL, text text NOT NULL, PRIMARY KEY (sweep, position))",
    "CREATE TABLE execo_results (id bigserial PRIMARY KEY, "
    "sweep integer NOT NULL REFERENCES execo_sweeps ON DELETE CASCADE, "
    "token uuid NOT NULL UNIQUE, record text NOT NULL)",
    "CREATE INDEX execo_results_sweep ON execo_results (sweep, id)",
    _RUNS_TABLE,
]


def create_schema(connection: Any, read_only: bool, shown: str) -> None:
    """Check the schema version of the execo tables; create them where there are none."""
    psycopg = driver()
    try:
        row = connection.execute("SELECT version FROM execo_schema").fetchone()
    except psycopg.errors.UndefinedTable:
        row = None
    if row is None:
        if read_only:
            raise FileNotFoundError(f"{shown}: no execo tables in this database")
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            connection.execute("CREATE TABLE IF NOT EXISTS execo_schema (version integer)")
            row = connection.execute("SELECT version FROM execo_schema").fetchone()
            if row is None:
                for statement in _SCHEMA:
                    connection.execute(statement)
                connection.execute("INSERT INTO execo_schema VALUES (%s)", (SCHEMA_VERSION,))
                row = (SCHEMA_VERSION,)
    if row[0] != SCHEMA_VERSION:
        writer = "an older" if row[0] < SCHEMA_VERSION else "a newer"
        raise RuntimeError(
            f"{shown}: the execo tables of this database are at schema version {row[0]}, "
            f"written by {writer} execo_engine; this one reads version {SCHEMA_VERSION} only. "
            + (
                "Finish or export those sweeps with the version that wrote them, or use "
                "another database or schema (add options=-c%20search_path%3DNAME to the URL)"
                if row[0] < SCHEMA_VERSION
                else "Upgrade execo_engine"
            )
        )
    if not read_only:
        _create_runs_table(connection)


def _create_runs_table(connection: Any) -> None:
    """Create ``execo_runs`` in a version 4 database made before it (see
    :mod:`execo_engine.store.postgresql.store`)."""
    if connection.execute("SELECT to_regclass('execo_runs')").fetchone()[0] is not None:
        return
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        connection.execute(_RUNS_TABLE)
