"""A throwaway PostgreSQL server for the tests: initdb in a temporary directory, pg_ctl on a free
port of 127.0.0.1, trust authentication, stopped and deleted at the end."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile


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
    """``Server().start()`` then ``url(sweep)``; ``stop()`` at the end."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _binary("initdb"), _binary("pg_ctl")
        self.directory = self.port = None
        self.as_user: list[str] = []

    @property
    def available(self) -> bool:
        return bool(self.initdb and self.pg_ctl)

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="execo-pg-")
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.directory, "data")
        self._run(self.initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.port = _free_port()
        self._run(
            self.pg_ctl,
            "-D",
            data,
            "-l",
            os.path.join(self.directory, "log"),
            "-w",
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-k {self.directory} -c fsync=on -c max_connections=200",
            "start",
        )

    def url(self, sweep: str, **parameters: str) -> str:
        query = "&".join([f"sweep={sweep}"] + [f"{k}={v}" for k, v in parameters.items()])
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?{query}"

    def stop(self) -> None:
        if self.directory is None:
            return
        try:
            self._run(
                self.pg_ctl, "-D", os.path.join(self.directory, "data"), "-m", "immediate", "stop"
            )
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
