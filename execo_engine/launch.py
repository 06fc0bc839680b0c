"""Start workers on a sweep: local processes, a SLURM job array, an OAR array job.

The sweep is the coordinator (pull model): every worker runs the same COMMAND (an Engine script
with ``-c DIR``, ``pytest --execo-sweep-dir=DIR``, a ParamSweeper script...), which takes the
combinations nobody holds. :func:`submit` only starts workers. Each worker gets
``EXECO_SWEEP_LOCATION`` and ``EXECO_WORKER_INDEX`` (0 to N-1) in its environment.

Every submission writes a batch script in the *submit directory* (:func:`submit_directory`:
``LOCATION/execo-submit/`` for a directory, ``./execo-submit-<sweep>/`` for a
``postgresql://`` URL), with the workers' output files, and appends the job id to its ``jobs``
file (see :func:`submissions`). The script, readable and adaptable:

1. exits 0 at once when the sweep has nothing left (every saved sweep done, no claim), so a
   requeued or late worker costs nothing;
2. runs COMMAND in a process group of its own and forwards SIGUSR1, SIGUSR2 and SIGTERM to
   that group as SIGTERM, once (the warning of ``--signal-before``: SLURM
   ``--signal=B:USR1@S``, OAR ``--checkpoint S``, which sends SIGUSR2); Python workers (and
   the xdist workers of ``pytest -n``) then give their claims back and exit (see
   :mod:`execo_engine.preempt`);
3. after such a signal, if COMMAND failed and ``requeue`` was asked, has the scheduler run it
   again: SLURM ``scontrol requeue`` of the array task (submitted with ``--requeue``), OAR exit
   status 99 (submitted with ``-t besteffort -t idempotent``).
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from execo_engine.log import logger
from execo_engine.preempt import INDEX_ENV, LOCATION_ENV
from execo_engine.store.locations import child_locations, local_directory, resolved, sweep_name
from execo_engine.sweeper import ParamSweeper
from execo_engine.utils import slugify

_now, _pause = time.time, time.sleep  # submit() has a parameter named time

SCHEDULERS = ("local", "slurm", "oar")
#: Name of the submit directory inside a sweep directory.
SUBMIT_DIR = "execo-submit"
#: The file of the submit directory that lists the submissions, one JSON object a line.
JOBS_FILE = "jobs"
#: Exit status that has OAR resubmit an idempotent job.
OAR_RESUBMIT_STATUS = 99
#: Seconds between two looks at the local workers.
LOCAL_POLL_INTERVAL = 0.1

#: How each scheduler's array task tells its index (0-based; OAR_ARRAY_INDEX starts at 1).
_INDEX = {
    "local": f'"${{{INDEX_ENV}:?}}"',
    "slurm": '"$SLURM_ARRAY_TASK_ID"',
    "oar": '"$((OAR_ARRAY_INDEX - 1))"',
}
#: The script lines that have the scheduler run the worker again after a preemption.
_REQUEUE = {
    "local": [],
    # SLURM ends this run itself to requeue it: exiting first could record it as failed
    "slurm": ["trap - USR1 USR2 TERM", 'scontrol requeue "$SLURM_JOB_ID" && sleep 600'],
    "oar": [f"exit {OAR_RESUBMIT_STATUS}"],
}


@dataclass(frozen=True)
class Request:
    """What to submit (the arguments of :func:`submit`, checked)."""

    location: str
    command: tuple[str, ...]
    scheduler: str
    workers: int
    parallel: int | None
    time: str | None
    partition: str | None
    requeue: bool
    signal_before: int | None
    scheduler_args: tuple[str, ...]

    def check(self) -> None:
        """``ValueError`` naming the argument at fault and the fix."""
        if self.scheduler not in SCHEDULERS:
            raise ValueError(
                f"unknown scheduler {self.scheduler!r}: choose one of {', '.join(SCHEDULERS)}"
            )
        if not self.command:
            raise ValueError("no command: give the worker command after --, e.g. -- python x.py")
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: start at least 1 worker")
        if self.parallel is not None and self.parallel < 1:
            raise ValueError(f"parallel={self.parallel}: allow at least 1 worker at a time")
        if self.signal_before is not None and self.signal_before < 1:
            raise ValueError(f"signal_before={self.signal_before}: give a number of seconds >= 1")
        if self.scheduler == "oar" and self.parallel is not None:
            raise ValueError(
                "parallel: OAR has no limit of running array jobs; submit fewer workers instead"
            )
        if self.scheduler == "local":
            unused = {
                "time": self.time,
                "partition": self.partition,
                "requeue": self.requeue or None,
                "signal_before": self.signal_before,
                "scheduler_args": self.scheduler_args or None,
            }
            named = [name for name, value in unused.items() if value is not None]
            if named:
                raise ValueError(
                    f"{', '.join(named)}: only for a batch scheduler, not scheduler='local' "
                    f"(use scheduler='slurm' or 'oar', or drop them)"
                )


def submit_directory(location: str) -> str:
    """Where the scripts, outputs and job ids of the submissions to ``location`` go: its
    ``execo-submit`` subdirectory, or for a ``postgresql://`` URL ``execo-submit-<sweep>`` in
    the current directory."""
    directory = local_directory(location)
    if directory is not None:
        return os.path.join(directory, SUBMIT_DIR)
    return os.path.abspath(f"{SUBMIT_DIR}-{slugify(sweep_name(location), separator='-')}")


def _directives(request: Request, output: str) -> list[str]:
    """The ``#SBATCH`` lines of a SLURM submission."""
    last = request.workers - 1
    array = f"0-{last}" + (f"%{request.parallel}" if request.parallel else "")
    lines = [f"--array={array}", "--job-name=execo-sweep", f"--output={output}"]
    lines.append("--open-mode=append")  # a requeued task adds to its output
    if request.time:
        lines.append(f"--time={request.time}")
    if request.partition:
        lines.append(f"--partition={request.partition}")
    if request.requeue:
        lines.append("--requeue")
    if request.signal_before:
        lines.append(f"--signal=B:USR1@{request.signal_before}")
    return [f"#SBATCH {shlex.quote(line)}" for line in lines]


def _oarsub_options(request: Request, submit_dir: str) -> list[str]:
    options = ["--array", str(request.workers), "-n", "execo-sweep"]
    options += ["-O", os.path.join(submit_dir, "oar-%jobid%.out")]
    options += ["-E", os.path.join(submit_dir, "oar-%jobid%.err")]
    if request.time:
        options += ["-l", f"walltime={request.time}"]
    if request.partition:
        options += ["-q", request.partition]
    if request.requeue:
        options += ["-t", "besteffort", "-t", "idempotent"]
    if request.signal_before:
        options += ["--checkpoint", str(request.signal_before)]
    return options


def submit_command(request: Request, script: str) -> list[str]:
    """The command that submits ``script`` (nothing to run for ``local``: ``[]``)."""
    if request.scheduler == "slurm":
        return ["sbatch", "--parsable", *request.scheduler_args, script]
    if request.scheduler == "oar":
        options = _oarsub_options(request, os.path.dirname(script))
        return ["oarsub", *options, *request.scheduler_args, script]
    return []


def batch_script(request: Request, submit_dir: str) -> str:
    """The text of the worker script (see the module documentation for what it does)."""
    quote = shlex.quote
    header = ["#!/bin/bash"]
    if request.scheduler == "slurm":
        header += _directives(request, os.path.join(submit_dir, "slurm-%A_%a.out"))
    requeue = _REQUEUE[request.scheduler] if request.requeue else []
    body = [
        f"# A worker of the sweep {request.location}, written by execo-sweep submit",
        f"# (scheduler {request.scheduler}); adapt it freely.",
        f"export {LOCATION_ENV}={quote(request.location)}",
        f"export {INDEX_ENV}={_INDEX[request.scheduler]}",
        f"if {quote(sys.executable)} -m execo_engine.cli.submit nothing-left "
        f'"${LOCATION_ENV}"; then',
        f'    echo "execo worker ${INDEX_ENV}: nothing left to do in the sweep"',
        "    exit 0",
        "fi",
        "preempted=0",
        "forward() {  # to every process of the worker (pytest -n: its xdist workers too)",
        '    if [ "$preempted" = 0 ]; then',
        "        preempted=1",
        '        kill -TERM -- "-$worker" 2>/dev/null',
        "    fi",
        "}",
        "trap forward USR1 USR2 TERM",
        "set -m  # the worker in a process group of its own",
        " ".join(map(quote, request.command)) + " &",
        "set +m",
        "worker=$!",
        "# wait returns early when a signal is trapped: wait again until the worker is gone",
        'while wait "$worker"; status=$?; kill -0 "$worker" 2>/dev/null; do :; done',
        'if [ "$preempted" = 1 ] && [ "$status" != 0 ]; then',
        f'    echo "execo worker ${INDEX_ENV}: preempted (status $status), claims given back"',
        *(f"    {line}" for line in requeue),
        "fi",
        'exit "$status"',
    ]
    return "\n".join(header + body) + "\n"


def _write_script(request: Request, submit_dir: str) -> str:
    os.makedirs(submit_dir, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = os.path.join(submit_dir, f"worker-{request.scheduler}-{stamp}.sh")
    with open(path, "w") as script:
        script.write(batch_script(request, submit_dir))
    os.chmod(path, 0o755)
    return path


def _record(submit_dir: str, job: str, request: Request, script: str) -> None:
    entry = {
        "job": job,
        "scheduler": request.scheduler,
        "workers": request.workers,
        "script": script,
        "command": list(request.command),
        "submitted": round(_now(), 3),
    }
    with open(os.path.join(submit_dir, JOBS_FILE), "a") as jobs:
        jobs.write(json.dumps(entry) + "\n")


def submissions(location: str) -> list[dict[str, Any]]:
    """The submissions recorded for ``location`` (oldest first): ``job``, ``scheduler``,
    ``workers``, ``script``, ``command``, ``submitted`` (a time stamp)."""
    path = os.path.join(submit_directory(location), JOBS_FILE)
    try:
        with open(path) as jobs:
            return [json.loads(line) for line in jobs if line.strip()]
    except FileNotFoundError:
        return []


def _job_id(scheduler: str, output: str) -> str:
    """The job id in the output of sbatch --parsable (``id[;cluster]``) or oarsub
    (``OAR_ARRAY_ID=id`` or ``OAR_JOB_ID=id`` lines)."""
    if scheduler == "slurm":
        return output.strip().splitlines()[-1].split(";")[0]
    values = dict(line.strip().split("=", 1) for line in output.splitlines() if "=" in line.strip())
    job = values.get("OAR_ARRAY_ID") or values.get("OAR_JOB_ID")
    if not job:
        raise RuntimeError(f"oarsub printed no OAR_ARRAY_ID nor OAR_JOB_ID: {output!r}")
    return job


def _run_local(request: Request, script: str, submit_dir: str, job: str) -> None:
    """Run the workers here, at most ``parallel`` at a time; wait for them all (a worker that
    fails is logged, the others go on)."""
    pending = list(range(request.workers))
    running: dict[int, subprocess.Popen[bytes]] = {}
    parallel = request.parallel or request.workers
    while pending or running:
        while pending and len(running) < parallel:
            index = pending.pop(0)
            output = os.path.join(submit_dir, f"{job.replace(':', '-')}_{index}.out")
            with open(output, "ab") as out:
                running[index] = subprocess.Popen(
                    ["bash", script],
                    env={**os.environ, INDEX_ENV: str(index)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        ended = [index for index, worker in running.items() if worker.poll() is not None]
        for index in ended:
            status = running.pop(index).returncode
            if status != 0:
                logger.warning("%s: worker %d exited with status %d", job, index, status)
        if not ended:
            _pause(LOCAL_POLL_INTERVAL)


def submit(
    location: str | os.PathLike[str],
    command: Sequence[str],
    scheduler: str = "local",
    workers: int = 1,
    parallel: int | None = None,
    time: str | None = None,
    partition: str | None = None,
    requeue: bool = False,
    signal_before: int | None = None,
    scheduler_args: Sequence[str] = (),
    dry_run: bool = False,
) -> str | None:
    """Start ``workers`` workers running ``command`` on the sweep at ``location`` (a
    directory, created if needed, or a ``postgresql://`` URL); returns the job id (None with
    ``dry_run``, which writes the script, prints it and the submit command on standard output,
    and starts nothing).

    Workers start in the current directory (the scheduler's default), with the location made
    absolute. ``scheduler``: ``"local"`` runs the workers here (``parallel`` at a time) and
    returns once they all ended (job id ``local:<time stamp>``); ``"slurm"`` submits one job array
    (``sbatch --array=0-(N-1)%P``); ``"oar"`` one array job (``oarsub --array N``). ``time``
    (the scheduler's format: SLURM ``--time``, OAR walltime), ``partition`` (SLURM partition,
    OAR queue), ``requeue`` (run a preempted worker again), ``signal_before`` (seconds of
    warning before the kill) and ``scheduler_args`` (passed to sbatch/oarsub as they are) are
    for batch schedulers only. ``ValueError`` names a bad argument;
    ``subprocess.CalledProcessError`` a failed submission.
    """
    where = os.fspath(location)
    request = Request(
        resolved(where),
        tuple(command),
        scheduler,
        workers,
        parallel,
        time,
        partition,
        requeue,
        signal_before,
        tuple(scheduler_args),
    )
    request.check()
    submit_dir = submit_directory(request.location)
    script = _write_script(request, submit_dir)
    command_line = submit_command(request, script)
    if dry_run:
        with open(script) as text:
            print(f"# worker script {script}:\n{text.read()}")
        print(f"# submit with:\n{shlex.join(command_line or ['bash', script])}")
        return None
    if request.scheduler == "local":
        job = "local:" + os.path.basename(script).removesuffix(".sh").rpartition("-")[2]
        _record(submit_dir, job, request, script)
        _run_local(request, script, submit_dir, job)
        return job
    done = subprocess.run(command_line, check=True, capture_output=True, text=True)
    job = _job_id(request.scheduler, done.stdout)
    _record(submit_dir, job, request, script)
    logger.info("submitted %s job %s: %d worker(s), script %s", scheduler, job, workers, script)
    return job


def nothing_left(location: str) -> bool:
    """True when the sweeps saved at ``location`` (itself, or the sweeps below it) are known
    and have nothing todo and nothing in progress; False when something is left or when no
    saved sweeps are found (the first worker has not created them yet)."""
    found = False
    for candidate in [location, *child_locations(location).values()]:
        try:
            view = ParamSweeper(candidate, read_only=True)
        except (ValueError, FileNotFoundError):  # not a sweep, or no saved sweeps
            continue
        found = True
        _, remaining, _, inprogress, _ = view.stats()
        if remaining or inprogress:
            return False
    return found
