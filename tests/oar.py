"""A throwaway one-node OAR for the tests, from Debian's ``oar-server``, ``oar-node`` and
``oar-user`` packages (OAR 2.5.9), run as root from a temporary directory:

- its own PostgreSQL cluster (:class:`pg.Server`, on a free port of 127.0.0.1), where
  ``oar-database --create`` makes OAR's database and users;
- the node's ``sshd`` (OAR starts every job through ssh as user ``oar``, with the keys the
  ``oar-node`` package generated), on a free port of 127.0.0.1 only;
- the server, ``Almighty`` (through OAR's setuid wrapper, as user ``oar``), in the foreground;
- :data:`CORES` resources on host ``localhost`` (properties ``host``, ``cpu``, ``core`` and, with
  cpusets, ``cpuset``), whatever the machine has (see :data:`CORES`).

Cpusets (OAR confining each job to the CPUs of its resources) are on where the machine can
provide them (:func:`cpuset_problem` says why not elsewhere): OAR 2.5.9's packaged job
resource manager, ``job_resource_manager_cgroups.pl``, uses the cgroup v1 controllers the
system mounted under /sys/fs/cgroup (cpuset, cpu, cpuacct, devices, freezer): it links them
from /dev/cpuset and /dev/oar_cgroups_links and makes the cgroup ``oar`` (CPUSET_PATH) and
one per job in each; the oar user's login shell, ``oarsh_shell``, puts each job into its own.
Resource ``core=N`` gets ``cpuset`` the machine's Nth CPU modulo their number (4 resources on
2 CPUs: cores 0 and 2 on CPU 0, cores 1 and 3 on CPU 1; a CPU may be in two jobs' cpusets,
OAR's are not exclusive). The cluster runs a copy of that script with one block off: at the
end of a user's last job on a node, it deletes every file of that user in /tmp, /dev/shm and
/var/tmp, runs fstrim on them and removes the user's SysV IPC objects; the tests' jobs run as
root, so that would be every root file there (pytest's own temporary directories and other
programs' files, as a first try here showed). Without cpusets (the packaged oar.conf without
JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD) OAR never runs the script, and a resource is a slot
that nothing binds. ``stop()`` removes the links and cgroups the cluster made.

OAR's setuid commands read ``/etc/oar/oar.conf`` and nothing else (the wrapper hard-codes
``OARCONFFILE``), so the cluster writes its configuration there while it runs: the packaged
one with this cluster's database, ports, log and runtime directory, cpusets as above, and the
minimum time between two scheduler runs and the job security time at one second. It runs
under a lock file of this machine (one test OAR at a time) and keeps the machine's file aside
(a hard link); ``stop()`` puts it back (a session that died leaves the saved copy, which the
next ``start()`` restores first).

The tests submit as root, which OAR's default admission rules refuse: the test database
disables that rule. Every batch job's bash first reads ``/var/lib/oar/.batch_job_bashrc``
(OAR sets ``BASH_ENV``), whose packaged version sources the user's ``~/.bashrc``: root's is the
machine's own (a pyenv set-up there made every job's bash start bashes without end), so the
cluster replaces that file with an empty one the same way, for the time it runs.

Almighty listens on all interfaces: OAR 2.5.9 gives its socket no address (only a free port).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import IO, Any

from pg import Server

CONF = "/etc/oar/oar.conf"
#: What every batch job's bash reads first (OAR sets BASH_ENV to it); the package's sources
#: the user's ~/.bashrc.
BATCH_BASHRC = "/var/lib/oar/.batch_job_bashrc"
#: Where the machine's own copy of a file the test OAR replaces waits (restored by stop()).
SAVED = ".execo-tests-saved"
#: The configuration the packages install, which the test configuration starts from.
PACKAGED_CONF = "/usr/share/oar/oar-common/oar.conf"
LOCK = "/run/lock/execo-oar-tests.lock"
HOST_KEY = "/etc/oar/oar_ssh_host_rsa_key"
OAR_HOME = "/var/lib/oar"
ALMIGHTY = "/usr/sbin/Almighty"
SSHD = "/usr/sbin/sshd"
CLIENTS = ("oarsub", "oarstat", "oardel", "oarnodes", "oarnodesetting", "oarproperty")
ADMIN = ("oar-database",)
#: Resources declared on host localhost (one per core, on cpu 0). A fixed count, not the
#: machine's: the tests need this many jobs running at once (4 array tasks for the
#: 40-combination grid, 3 best-effort workers holding at once), which OAR allows only with as
#: many free resources; with cpusets, resources share the machine's CPUs (see the module).
CORES = 4
#: The job resource manager of OAR's packaged oar.conf (JOB_RESOURCE_MANAGER_FILE).
RESOURCE_MANAGER = "/etc/oar/job_resource_manager_cgroups.pl"
#: Its dirty-user clean-up (files in /tmp, /dev/shm, /var/tmp, fstrim, SysV IPC of the job's
#: user once its last job on the node ends), which the cluster's copy turns off.
USER_PURGE = "if ($#cpusets < 0) {"
#: Where the system mounts the cgroup v1 controllers, and those the manager uses.
CGROUPS = "/sys/fs/cgroup"
CGROUP_CONTROLLERS = ("cpuset", "cpu", "cpuacct", "devices", "freezer")
#: What the manager makes outside its cgroups: links to them, and a lock file in oar's home.
CGROUP_LINKS = ("/dev/cpuset", "/dev/oar_cgroups_links")
CPUSET_LOCK = "/var/lib/oar/cpuset.lock.root"
#: OAR's cgroup (CPUSET_PATH of the packaged oar.conf), under each controller.
CPUSET_PATH = "oar"
START_DEADLINE = 90.0
LOCK_DEADLINE = 600.0
#: States of a job that will not change any more.
FINAL_STATES = ("Terminated", "Error")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _binary(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")


def cpu_list(text: str) -> list[int]:
    """The CPUs of a kernel CPU list (``0-3,8``)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if part:
            first, _, last = part.partition("-")
            cpus += range(int(first), int(last or first) + 1)
    return cpus


def machine_cpus() -> list[int]:
    """The CPUs of the root cpuset (those OAR's cgroup ``oar`` gets)."""
    with open(os.path.join(CGROUPS, "cpuset", "cpuset.cpus")) as cpus:
        return cpu_list(cpus.read())


def cpuset_problem() -> str | None:
    """Why OAR's job resource manager cannot confine jobs to cpusets here, or None: it needs
    the cgroup v1 controllers mounted by the system under /sys/fs/cgroup, each alone, writable,
    and a CPU list and memory nodes it can give a job (tried: a process moved into a cgroup
    of one CPU must see only that CPU)."""
    if not os.path.exists(RESOURCE_MANAGER):
        return f"{RESOURCE_MANAGER} (oar-server's job resource manager) is not installed"
    with open(RESOURCE_MANAGER) as manager:
        if manager.read().count(USER_PURGE) != 1:
            return f"{RESOURCE_MANAGER} is not OAR 2.5.9's: its user clean-up was not found"
    absent = [c for c in CGROUP_CONTROLLERS if not os.path.exists(f"{CGROUPS}/{c}/tasks")]
    if absent:
        return (
            f"OAR 2.5.9's job resource manager uses the cgroup v1 controllers "
            f"{', '.join(CGROUP_CONTROLLERS)} mounted each at {CGROUPS}/NAME; not here: "
            f"{', '.join(absent)} (a cgroup v2 only machine has none; without "
            f"{CGROUPS}/cpuset the manager mounts them together at /dev/oar_cgroups, which "
            "the kernel refuses, 'already mounted or mount point busy', where any of them is "
            "mounted on its own: not tried here)"
        )
    for link in CGROUP_LINKS:
        if os.path.lexists(link) and not os.path.islink(link):
            return f"{link} exists and is not a link (the manager replaces it with one)"
    cpus = machine_cpus()
    nodes = "/sys/devices/system/node"
    unplaced = [cpu for cpu in cpus if not any(
        os.path.exists(f"{nodes}/{node}/cpu{cpu}") for node in
        (os.listdir(nodes) if os.path.isdir(nodes) else [])
    )]  # fmt: skip
    if unplaced:
        return f"CPUs {unplaced} are in no memory node of {nodes} (the manager's cpuset.mems)"
    probe = f"{CGROUPS}/cpuset/execo-tests-probe-{os.getpid()}"
    try:
        os.mkdir(probe)
        try:
            with open(f"{CGROUPS}/cpuset/cpuset.mems") as mems:
                knobs = {"cpuset.cpus": str(cpus[0]), "cpuset.mems": mems.read().strip()}
            for name, value in knobs.items():
                with open(os.path.join(probe, name), "w") as knob:
                    knob.write(value)
            seen = subprocess.run(
                ["sh", "-c", 'echo $$ > "$1/tasks" && grep Cpus_allowed_list /proc/self/status',
                 "sh", probe],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        finally:
            os.rmdir(probe)
    except OSError as error:
        return f"cannot make a cpuset cgroup in {CGROUPS}/cpuset: {error}"
    allowed = seen.stdout.split(":")[-1].strip()
    if seen.returncode != 0 or cpu_list(allowed) != cpus[:1]:
        return (
            f"a process moved into a cpuset of CPU {cpus[0]} saw CPUs {allowed!r} "
            f"(status {seen.returncode}: {seen.stderr.strip()})"
        )
    return None


class Cluster:
    """``Cluster().start()`` (raises :class:`Unavailable` with the reason when it cannot
    start), then :meth:`run` OAR's commands; ``stop()`` at the end."""

    class Unavailable(Exception):
        """OAR cannot run here; the message says which piece and why."""

    def __init__(self) -> None:
        #: Why jobs are not confined to cpusets here (:func:`cpuset_problem`), or None;
        #: known once :meth:`start` ran.
        self.cpuset_problem: str | None = "the cluster did not start"
        self._made: list[str] = []  # links, cgroups, files the job resource manager will make
        self.directory: str | None = None
        self.database = Server()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.server_port = 0
        self.ssh_port = 0
        self._lock: IO[str] | None = None
        self._replaced: list[str] = []

    def missing(self) -> str | None:
        """Why OAR cannot start here, or None."""
        if os.geteuid() != 0:
            return "the one-node OAR of the tests runs as root (it writes /etc/oar/oar.conf)"
        absent = [name for name in CLIENTS + ADMIN if _binary(name) is None]
        files = (ALMIGHTY, SSHD, CONF, PACKAGED_CONF, BATCH_BASHRC, HOST_KEY)
        absent += [path for path in files if not os.path.exists(path)]
        if absent:
            return (
                f"{', '.join(absent)} not installed "
                "(apt-get install -y oar-server oar-node oar-user openssh-server)"
            )
        if not os.path.exists(os.path.join(OAR_HOME, ".ssh", "id_rsa")):
            return f"{OAR_HOME}/.ssh/id_rsa missing: the oar-node package did not set up oar's key"
        try:
            pwd.getpwnam("oar")
        except KeyError:
            return "no user oar (the oar-common package creates it)"
        if not self.database.available:
            return "PostgreSQL (initdb, pg_ctl) is not installed (apt-get install postgresql)"
        return None

    # -- clients --------------------------------------------------------------------------------

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) without the variables of the pytest
        session running the tests (OAR's commands need nothing more: they read oar.conf)."""
        return {k: v for k, v in (base or os.environ).items() if not k.startswith("PYTEST_")}

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an OAR command against this cluster (found in /usr/sbin too: the admin ones)."""
        program = _binary(command[0]) or command[0]
        done = subprocess.run(
            [program, *command[1:]],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done

    def jobs(self, *selection: str) -> dict[str, dict[str, Any]]:
        """``oarstat -f -J`` of the ``selection`` (e.g. ``--array 12``; default: every job
        not finished), by job id."""
        done = self.run("oarstat", "-f", "-J", *selection, check=False)
        text = done.stdout.strip()
        if done.returncode != 0 or not text:
            return {}
        return dict(json.loads(text))

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of ``query`` on OAR's database (as its owner)."""
        import psycopg

        with psycopg.connect(self._dburl(), autocommit=True) as connection:
            cursor = connection.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

    def _dburl(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.database.port}/oar"

    # -- start ----------------------------------------------------------------------------------

    def _path(self, *names: str) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, *names)

    def _take_machine_lock(self) -> None:
        os.makedirs(os.path.dirname(LOCK), exist_ok=True)
        self._lock = open(LOCK, "a")  # noqa: SIM115 (held until stop())
        deadline = time.monotonic() + LOCK_DEADLINE
        while True:
            try:
                fcntl.lockf(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise self.Unavailable(
                        f"another test session runs this machine's OAR (it holds {LOCK})"
                    ) from None
                time.sleep(0.5)

    def _replace(self, path: str, text: str) -> None:
        """Write ``text`` to ``path`` (same owner and mode), the machine's copy waiting in
        ``path + SAVED``; a copy left there by a session that died is put back first."""
        saved = path + SAVED
        if os.path.exists(saved):
            os.replace(saved, path)
        status = os.stat(path)
        with open(path + ".execo-tests-new", "w") as new:
            new.write(text)
        os.chown(path + ".execo-tests-new", status.st_uid, status.st_gid)
        os.chmod(path + ".execo-tests-new", status.st_mode & 0o7777)
        os.link(path, saved)  # the machine's file itself (owner, mode, times) waits there
        self._replaced.append(path)
        os.replace(path + ".execo-tests-new", path)

    def _conf(self, values: dict[str, str]) -> str:
        """The packaged oar.conf with ``values``, without cpusets (no
        JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD) unless ``values`` sets them."""
        with open(PACKAGED_CONF) as packaged:
            lines = packaged.read().splitlines()
        dropped = {*values, "JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD"}
        kept = [line for line in lines if line.split("=", 1)[0].strip() not in dropped]
        return "\n".join(kept + [f'{key}="{value}"' for key, value in values.items()]) + "\n"

    def _spawn(self, log: str, *command: str) -> subprocess.Popen[bytes]:
        with open(self._path(log), "ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                start_new_session=True,  # stopped with everything it started
            )
        self.processes.append(process)
        return process

    def _wait(self, what: str, ready: Callable[[], object]) -> None:
        deadline = time.monotonic() + START_DEADLINE
        while not ready():
            dead = [str(p.args[0]) for p in self.processes if p.poll() is not None]  # type: ignore[index]
            if dead or time.monotonic() > deadline:
                raise self.Unavailable(
                    f"{what} did not come up ({', '.join(dead) or 'timeout'}); logs:\n"
                    + self.logs()
                )
            time.sleep(0.1)

    def logs(self) -> str:
        """The tails of the daemons' logs."""
        text = []
        for name in ("oar/oar.log", "sshd.log", "almighty.log", "oar-database.log"):
            try:
                with open(self._path(name), errors="replace") as log:
                    text.append(f"== {name}\n" + "".join(log.readlines()[-25:]))
            except OSError:
                continue
        return "\n".join(text)

    def _sshd_config(self) -> str:
        settings = {
            "Port": self.ssh_port,
            "ListenAddress": "127.0.0.1",
            "HostKey": HOST_KEY,
            "PidFile": self._path("sshd.pid"),
            "AuthorizedKeysFile": f"{OAR_HOME}/.ssh/authorized_keys",
            "PubkeyAuthentication": "yes",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "PermitRootLogin": "no",
            "AllowUsers": "oar",
            "PermitUserEnvironment": "yes",
            "AcceptEnv": "OAR_CPUSET OAR_USER_CPUSET OAR_USER_GPUDEVICE OAR_JOB_USER",
            "UsePAM": "no",
            "X11Forwarding": "no",
            "PrintMotd": "no",
            "MaxStartups": "1024",
            "LogLevel": "INFO",
        }
        path = self._path("sshd_config")
        with open(path, "w") as config:
            config.writelines(f"{key} {value}\n" for key, value in settings.items())
        return path

    def start(self) -> None:
        why_not = self.missing()
        if why_not:
            raise self.Unavailable(why_not)
        self._take_machine_lock()
        self.directory = tempfile.mkdtemp(prefix="execo-oar-")
        os.chmod(self.directory, 0o755)
        oar = pwd.getpwnam("oar")
        for name in ("oar", "oar/runtime"):  # written by OAR's daemons, as user oar
            os.mkdir(self._path(name), 0o755)
            os.chown(self._path(name), oar.pw_uid, oar.pw_gid)
        self.database.start()
        self.server_port, self.ssh_port = _free_port(), _free_port()
        ssh = f"/usr/bin/ssh -p {self.ssh_port} -e none -o UserKnownHostsFile=/dev/null"
        self.cpuset_problem = cpuset_problem()
        conf = self._conf(
            self._cpuset_conf()
            | {
                "DB_HOSTNAME": "127.0.0.1",
                "DB_PORT": str(self.database.port),
                "DB_BASE_PASSWD": secrets.token_hex(8),  # trust authentication: unused
                "DB_BASE_PASSWD_RO": secrets.token_hex(8),
                "SERVER_HOSTNAME": "127.0.0.1",
                "SERVER_PORT": str(self.server_port),
                "LOG_FILE": self._path("oar", "oar.log"),
                "LOG_LEVEL": "3",
                "OAR_RUNTIME_DIRECTORY": self._path("oar", "runtime"),
                "OPENSSH_CMD": ssh + " -o LogLevel=ERROR",
                "SCHEDULER_MIN_TIME_BETWEEN_2_CALLS": "1",
                "SCHEDULER_JOB_SECURITY_TIME": "1",
            }
        )
        self._replace(CONF, conf)
        # jobs run as root (see the module docstring), whose ~/.bashrc is the machine's own
        self._replace(BATCH_BASHRC, "# execo tests: batch jobs do not read ~/.bashrc\n")
        with open(self._path("oar-database.log"), "w") as log:
            created = subprocess.run(
                [
                    _binary("oar-database") or "oar-database",
                    "--create",
                    "--db-admin-user=postgres",
                    "--db-admin-pass=-",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                timeout=120,
                check=False,
            )
        if created.returncode != 0:
            raise self.Unavailable("oar-database --create failed; logs:\n" + self.logs())
        # the tests submit as root, which OAR's default admission rules refuse
        rule = "%root and oar users are not allowed to submit jobs%"
        disabled = self.sql(
            "UPDATE admission_rules SET enabled = 'NO' WHERE rule LIKE %s RETURNING id", rule
        )
        if len(disabled) != 1:
            raise self.Unavailable(f"OAR's admission rule refusing root not found: {disabled}")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation
        self._spawn("sshd.log", SSHD, "-D", "-e", "-f", self._sshd_config())
        self._spawn("almighty.log", ALMIGHTY)
        self._wait("sshd", lambda: os.path.exists(self._path("sshd.pid")))
        self._wait("Almighty", self._almighty_listens)
        self.run("oarproperty", "-q", "-a", "host", "-c")
        self.run("oarproperty", "-q", "-a", "cpu", "-a", "core")
        cpus = machine_cpus() if self.cpuset_problem is None else []
        for core in range(CORES):
            cpuset = ["-p", f"cpuset={cpus[core % len(cpus)]}"] if cpus else []
            self.run(
                "oarnodesetting", "-a", "-h", "localhost", "-s", "Alive",
                "-p", "host=localhost", "-p", "cpu=0", "-p", f"core={core}", *cpuset,
            )  # fmt: skip
        self._wait("the node's resources", self._alive)
        self._smoke()

    def _cpuset_conf(self) -> dict[str, str]:
        """oar.conf's cpuset settings (none without cpusets): the packaged manager, copied
        without its clean-up of the user's files (see the module docstring)."""
        if self.cpuset_problem is not None:
            return {}
        with open(RESOURCE_MANAGER) as packaged:
            script = packaged.read().replace(
                USER_PURGE, "if (0) { # execo tests: jobs run as root, keep root's files"
            )
        manager = self._path("job_resource_manager_cgroups.pl")
        with open(manager, "w") as copy:
            copy.write(script)
        os.chmod(manager, 0o644)  # read by bipbip, as user oar
        made = [*CGROUP_LINKS, CPUSET_LOCK]
        made += [f"{CGROUPS}/{controller}/{CPUSET_PATH}" for controller in CGROUP_CONTROLLERS]
        self._made = [path for path in made if not os.path.lexists(path)]
        return {
            "JOB_RESOURCE_MANAGER_PROPERTY_DB_FIELD": "cpuset",
            "JOB_RESOURCE_MANAGER_FILE": manager,
            "CPUSET_PATH": f"/{CPUSET_PATH}",
        }

    def _almighty_listens(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.server_port), timeout=1):
                return True
        except OSError:
            return False

    def _alive(self) -> bool:
        rows = self.sql("SELECT state FROM resources")
        return len(rows) == CORES and all(state == "Alive" for (state,) in rows)

    def _smoke(self) -> None:
        """A first job, run to its end: the whole chain (oarsub, Almighty, bipbip, ssh,
        oarexec) works, or the reason is in the logs."""
        out = self._path("smoke.out")
        done = self.run("oarsub", "-O", out, "-E", out, "-d", self._path(), "echo smoke")
        job = next(
            line.split("=", 1)[1] for line in done.stdout.splitlines() if "OAR_JOB_ID=" in line
        )
        self._wait(f"the first job ({job})", lambda: self.state(job) in FINAL_STATES)
        if self.state(job) != "Terminated" or not os.path.exists(out):
            raise self.Unavailable(
                f"the first job ({job}) ended {self.state(job)}; oarstat -f:\n"
                f"{self.run('oarstat', '-f', '-j', job, check=False).stdout}"
                f"logs:\n{self.logs()}"
            )

    def state(self, job: str) -> str:
        """The state of one job (Waiting, Launching, Running, ..., Terminated, Error), read
        in OAR's database: cheaper than ``oarstat`` for polling (each OAR command is a Perl
        start-up, which a 2-CPU machine feels)."""
        rows = self.sql("SELECT state FROM jobs WHERE job_id = %s", int(job))
        return str(rows[0][0]) if rows else ""

    def array_states(self, array: str) -> dict[str, str]:
        """The state of every job of the array job ``array`` (resubmissions included), read in
        OAR's database like :meth:`state`."""
        rows = self.sql("SELECT job_id, state FROM jobs WHERE array_id = %s", int(array))
        return {str(job): str(state) for job, state in rows}

    # -- stop -----------------------------------------------------------------------------------

    def _unfinished(self) -> list[str]:
        rows = self.sql("SELECT job_id FROM jobs WHERE state NOT IN ('Terminated', 'Error')")
        return [str(job) for (job,) in rows]

    def _job_processes(self) -> list[int]:
        """Pids of what this cluster's jobs run: OAR gives every job's processes
        ``OAR_FILE_NODES`` in this cluster's runtime directory, and writes the pid of each
        job's oarexec there."""
        runtime = self._path("oar", "runtime")
        mark = f"OAR_FILE_NODES={runtime}/".encode()
        pids = []
        for name in os.listdir(runtime) if os.path.isdir(runtime) else []:
            if name.startswith("pid_of_oarexec_for_jobId_"):
                with open(os.path.join(runtime, name)) as pid:
                    pids += [int(pid.read().strip() or 0)]
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/environ", "rb") as environ:
                    if entry.isdigit() and mark in environ.read():
                        pids.append(int(entry))
            except OSError:
                continue
        return [pid for pid in pids if pid > 1 and pid != os.getpid()]

    def _kill_job_processes(self) -> None:
        """SIGKILL what this cluster's jobs left (stopped first, so that none forks more)."""
        for _ in range(100):
            pids = self._job_processes()
            if not pids:
                return
            for signum in (signal.SIGSTOP, signal.SIGKILL):
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signum)

    def stop(self) -> None:
        if self.directory is None:
            self._restore()
            return
        try:
            if self.processes and all(p.poll() is None for p in self.processes):
                try:
                    unfinished = self._unfinished()
                    if unfinished:
                        self.run("oardel", *unfinished, check=False)
                    deadline = time.monotonic() + 60
                    while self._unfinished() and time.monotonic() < deadline:
                        time.sleep(0.2)
                except Exception:  # the database is gone: stop what runs anyway
                    pass
        finally:
            self._kill_job_processes()  # left by a job OAR could not delete
            for process in reversed(self.processes):
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
            for process in reversed(self.processes):
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            self.processes = []
            self._remove_made()
            self.database.stop()
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
            self._restore()

    def _remove_made(self) -> None:
        """Remove what the job resource manager made that was not there before: its links in
        /dev, its lock file, and OAR's cgroups (those of jobs it did not clean first)."""
        for path in self._made:
            if path.startswith(CGROUPS):
                for directory, _, _ in sorted(os.walk(path), reverse=True):  # children first
                    with contextlib.suppress(OSError):
                        os.rmdir(directory)
            elif os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        self._made = []

    def _restore(self) -> None:
        """Put the machine's oar.conf back and let the next test OAR start."""
        while self._replaced:
            path = self._replaced.pop()
            if os.path.exists(path + SAVED):
                os.replace(path + SAVED, path)
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None
