"""A throwaway PostgreSQL server for the tests and benchmarks: initdb in a temporary directory,
pg_ctl on a free port of 127.0.0.1, trust authentication, stopped and deleted at the end.

The one place that starts, restarts and stops servers: tests and benchmarks use this class.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``Server().start()`` then ``url(sweep)``; ``stop()`` at the end.

    ``settings`` are extra ``-c name=value`` server settings (e.g.
    ``shared_preload_libraries=pg_stat_statements``).
    """

    def __init__(self, *settings: str) -> None:
        self.initdb, self.pg_ctl = _binary("initdb") or "", _binary("pg_ctl") or ""
        self.settings = settings
        self.directory: str | None = None
        self.port = 0
        self.as_user: list[str] = []

    @property
    def available(self) -> bool:
        return bool(self.initdb and self.pg_ctl)

    @property
    def data(self) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, "data")

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, timeout=300)

    def start(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="execo-pg-")
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run(self.initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.port = _free_port()
        self._ctl("start")

    def _ctl(self, action: str, *options: str) -> None:
        settings = "".join(f" -c {setting}" for setting in self.settings)
        assert self.directory is not None
        self._run(
            self.pg_ctl,
            "-D",
            self.data,
            "-l",
            os.path.join(self.directory, "log"),
            "-w",
            "-t",
            "120",
            *options,
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            f"-c fsync=on -c synchronous_commit=on -c max_connections=200{settings}",
            action,
        )

    def restart(self, mode: str) -> None:
        """``pg_ctl restart -m MODE`` (``fast``: clients are disconnected, clean shutdown;
        ``immediate``: a crash, recovered from the WAL at start)."""
        self._ctl("restart", "-m", mode)

    def shut_down(self, mode: str) -> None:
        """``pg_ctl stop -m MODE``, keeping the data (:meth:`start_again` starts it again)."""
        self._ctl("stop", "-m", mode)

    def start_again(self) -> None:
        """Start the server :meth:`shut_down` stopped, on the same port."""
        self._ctl("start")

    def hold_commits(self) -> None:
        """From now on, every commit of a session with ``synchronous_commit`` on stays in
        flight: its record is in the WAL (it survives a crash) but nobody sees it, and its
        locks are held, until :meth:`release_commits` (it waits for a synchronous standby
        that does not exist). Sessions with ``synchronous_commit=local`` are not held.

        New sessions hold their commits as soon as this returns; a session open before it
        applies the new setting only after its next statement (a backend rereads its
        configuration between statements), which the caller must make it run."""
        self.execute("ALTER SYSTEM SET synchronous_standby_names = 'execo_nobody'")
        self.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 120  # the server rereads its files after the call returns
        while self.execute("SHOW synchronous_standby_names") != [("execo_nobody",)]:
            assert time.monotonic() < deadline, "the server did not reload its configuration"
            time.sleep(0.01)

    def release_commits(self, reload: bool = True) -> None:
        """End :meth:`hold_commits`: the commits held complete (without ``reload``, only at
        the next start of the server)."""
        self.execute("ALTER SYSTEM RESET synchronous_standby_names")
        if reload:
            self.execute("SELECT pg_reload_conf()")

    def url(self, sweep: str, **parameters: str) -> str:
        query = "&".join([f"sweep={sweep}"] + [f"{k}={v}" for k, v in parameters.items()])
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?{query}"

    @property
    def conninfo(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def execute(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """The rows of one statement run on a connection of its own."""
        import psycopg

        # never held by hold_commits
        options = "-c synchronous_commit=local"
        with psycopg.connect(self.conninfo, autocommit=True, options=options) as connection:
            cursor = connection.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

    def terminate_backends(self) -> int:
        """``pg_terminate_backend`` on every other client connection; how many."""
        rows = self.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return int(rows[0][0])

    def stop(self) -> None:
        if self.directory is None:
            return
        try:
            self._run(self.pg_ctl, "-D", self.data, "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
