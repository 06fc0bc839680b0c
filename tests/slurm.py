"""A throwaway one-node SLURM for the tests: munged, slurmctld and slurmd of Debian's
``munge`` and ``slurm-wlm`` packages, run as root in the foreground from a temporary directory
(a fresh munge key, a generated ``slurm.conf`` on free ports of 127.0.0.1,
``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none``, 8 CPUs whatever the machine
has), stopped and deleted at the end. Clients find it through ``SLURM_CONF`` (see :meth:`env`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo", "munge")
START_DEADLINE = 90.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _binary(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


class Cluster:
    """``Cluster().start()`` (raises :class:`Unavailable` with the reason when it cannot
    start), then :meth:`run` clients with :meth:`env`; ``stop()`` at the end."""

    class Unavailable(Exception):
        """SLURM cannot run here; the message says why."""

    def __init__(self) -> None:
        self.directory: str | None = None
        self.processes: list[subprocess.Popen[bytes]] = []

    def missing(self) -> str | None:
        """Why SLURM cannot start here, or None."""
        if os.geteuid() != 0:
            return "the one-node SLURM of the tests runs as root"
        absent = [name for name in DAEMONS + CLIENTS if _binary(name) is None]
        if absent:
            return f"{', '.join(absent)} not installed (apt-get install -y slurm-wlm munge)"
        return None

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with ``SLURM_CONF`` set, without the
        variables of the pytest session running the tests."""
        assert self.directory is not None
        env = {k: v for k, v in (base or os.environ).items() if not k.startswith("PYTEST_")}
        env["SLURM_CONF"] = os.path.join(self.directory, "slurm.conf")
        return env

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client against this cluster."""
        return subprocess.run(
            command, env=self.env(), check=check, capture_output=True, text=True, timeout=60
        )

    def _path(self, *names: str) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, *names)

    def _spawn(self, log: str, *command: str) -> None:
        with open(self._path(log), "ab") as out:
            self.processes.append(
                subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=self.env())
            )

    def _write_config(self) -> None:
        munge_socket = self._path("munge", "socket")
        config = {
            "ClusterName": "execotest",
            "SlurmctldHost": "localhost(127.0.0.1)",
            "SlurmctldPort": _free_port(),
            "SlurmdPort": _free_port(),
            "SlurmUser": "root",
            "SlurmdUser": "root",
            "AuthType": "auth/munge",
            "CredType": "cred/munge",
            # cred_expire: how long a requeued job waits before it starts again (and the job
            # step credentials' lifetime): 120 s by default, 20 s keeps the requeue test short
            "AuthInfo": f"socket={munge_socket},cred_expire=20",
            "StateSaveLocation": self._path("state"),
            "SlurmdSpoolDir": self._path("spool"),
            "SlurmctldPidFile": self._path("slurmctld.pid"),
            "SlurmdPidFile": self._path("slurmd.pid"),
            "SlurmctldLogFile": self._path("slurmctld.log"),
            "SlurmdLogFile": self._path("slurmd.log"),
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "SwitchType": "switch/none",
            "MpiDefault": "none",
            "SchedulerType": "sched/backfill",
            "SchedulerParameters": "sched_interval=1",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core",
            "SlurmdParameters": "config_overrides",  # 8 CPUs even on a smaller machine
            "ReturnToService": 2,
            "JobCompType": "jobcomp/none",
            "AccountingStorageType": "accounting_storage/none",
            "JobAcctGatherType": "jobacct_gather/none",
            "MinJobAge": 600,
            "KillWait": 5,
            "NodeName": "localhost NodeAddr=127.0.0.1 CPUs=8 RealMemory=1000 State=UNKNOWN",
            "PartitionName": "debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
        }
        with open(self._path("slurm.conf"), "w") as conf:
            conf.writelines(f"{key}={value}\n" for key, value in config.items())

    def _wait(self, what: str, ready) -> None:
        deadline = time.monotonic() + START_DEADLINE
        while not ready():
            dead = [str(p.args[0]) for p in self.processes if p.poll() is not None]  # type: ignore[index]
            if dead or time.monotonic() > deadline:
                raise self.Unavailable(
                    f"{what} did not come up ({', '.join(dead) or 'timeout'} ); logs:\n"
                    + self.logs()
                )
            time.sleep(0.1)

    def logs(self) -> str:
        """The tails of the daemons' logs."""
        text = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out"):
            try:
                with open(self._path(name)) as log:
                    text.append(f"== {name}\n" + "".join(log.readlines()[-15:]))
            except OSError:
                continue
        return "\n".join(text)

    def start(self) -> None:
        why_not = self.missing()
        if why_not:
            raise self.Unavailable(why_not)
        self.directory = tempfile.mkdtemp(prefix="execo-slurm-")
        os.chmod(self.directory, 0o755)
        for name in ("munge", "state", "spool"):
            os.mkdir(self._path(name), 0o755)
        key = self._path("munge", "key")
        with open(key, "wb") as out:
            out.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self._write_config()
        munge_socket = self._path("munge", "socket")
        self._spawn(
            "munged.out",
            _binary("munged") or "munged",
            "--foreground",
            "--force",
            f"--key-file={key}",
            f"--socket={munge_socket}",
            f"--pid-file={self._path('munge', 'pid')}",
            f"--seed-file={self._path('munge', 'seed')}",
            f"--log-file={self._path('munged.log')}",
        )
        self._wait("munged", lambda: os.path.exists(munge_socket))
        conf = self._path("slurm.conf")
        self._spawn("slurmctld.out", _binary("slurmctld") or "slurmctld", "-D", "-c", "-f", conf)
        self._spawn(
            "slurmd.out", _binary("slurmd") or "slurmd", "-D", "-N", "localhost", "-f", conf
        )

        def idle() -> bool:
            state = self.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip()
            return state == "idle"

        self._wait("the SLURM node", idle)

    def jobs(self) -> list[str]:
        """Every job still known to slurmctld that is not finished (``JOBID_TASK`` ids)."""
        listed = self.run("squeue", "-h", "-o", "%i %t", check=False).stdout.split("\n")
        return [line.split()[0] for line in listed if line.strip()]

    def stop(self) -> None:
        if self.directory is None:
            return
        try:
            if self.processes and self.processes[-1].poll() is None:
                self.run("scancel", "--signal=KILL", "--full", "--user=root", check=False)
                deadline = time.monotonic() + 60
                while self.jobs() and time.monotonic() < deadline:
                    time.sleep(0.2)
        finally:
            for process in reversed(self.processes):
                process.terminate()
            for process in reversed(self.processes):
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
