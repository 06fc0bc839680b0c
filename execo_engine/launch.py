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
3. after such a signal, if COMMAND failed and ``requeue`` (or ``besteffort``) was asked, has
   the scheduler run it again: SLURM ``scontrol requeue`` of the array task (submitted with
   ``--requeue``); OAR exit status 99 (submitted with ``-t idempotent``, and ``-t besteffort``
   for ``besteffort``), which OAR honours only after more than 60 s of run, so a worker
   preempted sooner waits until then. A best-effort worker first waits for OAR's own kill,
   which comes after its ``--checkpoint`` delay and has OAR resubmit it: a job that exits by
   itself while OAR kills it is resubmitted by neither rule (see :data:`OAR_KILL_WAIT`).

A submission that fails leaves nothing behind: no scheduler command (``SubmitError`` "oarsub not
found: ..."), or the scheduler refused the job (``SubmitError`` with its output), and the script
and the directories ``submit`` created are removed. Local workers that fail raise
:class:`WorkersFailed`, which names each one and its output file.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from execo_engine.jobstate import TOOLS as STATUS_TOOLS
from execo_engine.log import logger
from execo_engine.preempt import INDEX_ENV, LOCATION_ENV, PREEMPTION_SIGNALS
from execo_engine.store.locations import (
    check_location,
    child_locations,
    local_directory,
    resolved,
    sweep_name,
)
from execo_engine.sweeper import ParamSweeper
from execo_engine.utils import slugify

_now, _pause = time.time, time.sleep  # submit() has a parameter named time

SCHEDULERS = ("local", "slurm", "oar")
#: Name of the submit directory inside a sweep directory.
SUBMIT_DIR = "execo-submit"
#: The file of the submit directory that lists the submissions, one JSON object a line.
JOBS_FILE = "jobs"
#: Exit status that has OAR resubmit an idempotent job (after more than
#: :data:`OAR_RESUBMIT_AFTER` seconds of run).
OAR_RESUBMIT_STATUS = 99
OAR_RESUBMIT_AFTER = 60
#: Seconds past its ``--checkpoint`` delay that a preempted best-effort worker waits for OAR to
#: kill it (OAR's scheduler runs at least once a minute: two rounds, and some slack), unless its
#: walltime comes first (the signal was then the walltime's checkpoint, and no kill would come
#: before it: the worker exits 99 at once). Exiting by itself before the kill would race it.
OAR_KILL_WAIT = 150
#: Seconds before its walltime at which a preempted best-effort worker stops waiting for OAR's
#: kill and exits 99 (resubmitted): the kill at the walltime itself would not resubmit it.
OAR_WALLTIME_MARGIN = 30
#: The signals the worker script forwards to its workers (see :mod:`execo_engine.preempt`),
#: by name; a scheduler option may also give them by number.
FORWARDED_SIGNALS = tuple(sig.name.removeprefix("SIG") for sig in PREEMPTION_SIGNALS)
_FORWARDED = {*FORWARDED_SIGNALS, *(str(int(sig)) for sig in PREEMPTION_SIGNALS)}
#: The command that submits to each batch scheduler, and where it is found.
SUBMITTERS = {"slurm": ("sbatch", "a SLURM login node"), "oar": ("oarsub", "an OAR frontend")}
#: Seconds that ``sbatch``/``oarsub`` get to answer (``submit_timeout``): both wait without
#: end, retrying, for a scheduler server (or its database) that does not answer.
SUBMIT_TIMEOUT = 120.0
#: The time formats each scheduler reads (SLURM ``--time``, OAR walltime), and an example.
TIME_FORMATS = {
    "slurm": (
        re.compile(
            r"(\d+|\d+:\d+|\d+:\d+:\d+|\d+-\d+|\d+-\d+:\d+|\d+-\d+:\d+:\d+|UNLIMITED|INFINITE)"
        ),
        "MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS or DAYS-HOURS[:MINUTES[:SECONDS]], "
        "e.g. 90 or 1:30:00",
    ),
    "oar": (re.compile(r"\d+(:\d+){0,2}"), "HOURS[:MINUTES[:SECONDS]], e.g. 1:30:00"),
}
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
    "oar": [
        f"# OAR resubmits an idempotent job that exits {OAR_RESUBMIT_STATUS} after more than "
        f"{OAR_RESUBMIT_AFTER} s",
        f'[ "$SECONDS" -gt {OAR_RESUBMIT_AFTER} ] || sleep $(({OAR_RESUBMIT_AFTER + 1} - SECONDS))',
        f"exit {OAR_RESUBMIT_STATUS}",
    ],
}


class SubmitError(RuntimeError):
    """The submission failed: no scheduler command here, or the scheduler refused the job
    (the message has its command and output); nothing was left behind."""


class WorkersFailed(SubmitError):
    """Local workers exited with a non-zero status: the message names each one, its status
    and its output file (``job`` and ``failed``, a list of ``(index, status, output)``)."""

    def __init__(self, job: str, workers: int, failed: list[tuple[int, int, str]]) -> None:
        lines = [f"{job}: {len(failed)} of {workers} worker(s) failed:"]
        for index, status, output in failed:
            last = _last_line(output)
            lines.append(
                f"  worker {index}: status {status}, output {output}"
                + (f" (last line: {last})" if last else "")
            )
        super().__init__("\n".join(lines))
        self.job, self.failed = job, failed


def _last_line(path: str, limit: int = 200) -> str:
    try:
        with open(path, "rb") as output:
            output.seek(max(0, os.fstat(output.fileno()).st_size - 4096))
            lines = output.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return last[:limit]


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
    besteffort: bool = False
    resources: str | None = None
    properties: str | None = None
    project: str | None = None

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
        for name in ("partition", "resources", "properties", "project"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise ValueError(f"{name}={value!r}: give a value, or leave {name} out")
        if self.partition is not None and re.search(r"\s", self.partition):
            raise ValueError(
                f"partition={self.partition!r}: a queue or partition name has no space"
            )
        if self.scheduler != "oar":
            oar_only = {
                "besteffort": self.besteffort or None,
                "resources": self.resources,
                "properties": self.properties,
                "project": self.project,
            }
            named = [name for name, value in oar_only.items() if value is not None]
            if named:
                hint = " (sbatch options go through --scheduler-arg)" * (self.scheduler == "slurm")
                raise ValueError(f"{', '.join(named)}: only for scheduler='oar'{hint}")
        for signal_name in _passed_signals(self.scheduler_args):
            if signal_name.upper().removeprefix("SIG") not in _FORWARDED:
                raise ValueError(
                    f"--signal {signal_name}: the worker script forwards only "
                    f"{', '.join(FORWARDED_SIGNALS)} to the workers (a warning they answer by "
                    f"giving their claims back): choose one of those, or leave the "
                    f"scheduler's default"
                )
        if self.scheduler in TIME_FORMATS and self.time is not None:
            form, text = TIME_FORMATS[self.scheduler]
            if not form.fullmatch(self.time):
                raise ValueError(f"time={self.time!r}: {self.scheduler} reads {text}")
        if self.time is not None and self.resources and "walltime" in self.resources:
            raise ValueError(
                f"resources={self.resources!r} has a walltime and time={self.time!r} too: "
                "give the walltime once"
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


#: The output files of the workers of each scheduler, in the submit directory (``%jobid%``:
#: OAR's job id of each worker; ``%A_%a``: SLURM's array and task ids).
OUTPUTS = {"slurm": "slurm-%A_%a.out", "oar": "oar-%jobid%.out"}


def _oarsub_options(request: Request, submit_dir: str) -> list[str]:
    options = ["--array", str(request.workers), "-n", "execo-sweep"]
    options += ["-O", os.path.join(submit_dir, OUTPUTS["oar"])]
    options += ["-E", os.path.join(submit_dir, "oar-%jobid%.err")]
    walltime = f"walltime={request.time}" if request.time else None
    resources = ",".join(part for part in (request.resources, walltime) if part)
    if resources:
        options += ["-l", resources]  # one -l: several would be alternatives (moldable job)
    if request.properties:
        options += ["-p", request.properties]
    if request.project:
        options += ["--project", request.project]
    if request.partition:
        options += ["-q", request.partition]
    if request.besteffort:
        options += ["-t", "besteffort"]
    if request.besteffort or request.requeue:
        options += ["-t", "idempotent"]
    if request.signal_before:
        options += ["--checkpoint", str(request.signal_before)]
    return options


def submit_command(request: Request, script: str) -> list[str]:
    """The command that submits ``script`` (nothing to run for ``local``: ``[]``)."""
    if request.scheduler == "slurm":
        return ["sbatch", "--parsable", *request.scheduler_args, script]
    if request.scheduler == "oar":
        options = _oarsub_options(request, os.path.dirname(script))
        # OAR runs the command through the user's shell: quote the path
        return ["oarsub", *options, *request.scheduler_args, shlex.quote(script)]
    return []


def _wait_for_oar_kill(delay: int) -> list[str]:
    """The script lines of a preempted best-effort worker that wait for OAR's kill (see
    :data:`OAR_KILL_WAIT`); ``delay``: its ``--checkpoint`` seconds."""
    return [
        "# OAR kills a preempted best-effort job after its checkpoint delay and resubmits it:",
        "# wait for that kill (exiting meanwhile would race it), unless the walltime comes first",
        f"deadline=$((SECONDS + {delay + OAR_KILL_WAIT}))",
        f"walltime_end=$((${{OAR_JOB_WALLTIME_SECONDS:-0}} - {OAR_WALLTIME_MARGIN}))",
        'if [ -n "$OAR_JOB_WALLTIME_SECONDS" ] && [ "$walltime_end" -lt "$deadline" ]; then',
        '    deadline="$walltime_end"',
        "fi",
        'while [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done',
    ]


def batch_script(request: Request, submit_dir: str) -> str:
    """The text of the worker script (see the module documentation for what it does)."""
    quote = shlex.quote
    header = ["#!/bin/bash"]
    if request.scheduler == "slurm":
        header += _directives(request, os.path.join(submit_dir, OUTPUTS["slurm"]))
    requeue = _REQUEUE[request.scheduler] if request.requeue or request.besteffort else []
    if request.besteffort:
        requeue = _wait_for_oar_kill(request.signal_before or 0) + requeue
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
        f"trap forward {' '.join(FORWARDED_SIGNALS)}",
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


def _missing_directories(path: str) -> list[str]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while path and not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def _passed_signals(arguments: Sequence[str]) -> list[str]:
    """The signals that ``arguments`` (passed to oarsub/sbatch) ask for: OAR's ``--signal SIG``
    (``--signal=SIG``), SLURM's ``--signal=[B:]SIG[@TIME]``."""
    found = []
    for index, argument in enumerate(arguments):
        if argument == "--signal" and index + 1 < len(arguments):
            value = arguments[index + 1]
        elif argument.startswith("--signal="):
            value = argument.partition("=")[2]
        else:
            continue
        found.append(value.removeprefix("B:").removeprefix("R:").partition("@")[0])
    return found


def _remove(script: str, created: list[str]) -> None:
    """Undo :func:`_write_script`: the script, then the directories it created (deepest
    first, each only if empty)."""
    with contextlib.suppress(OSError):
        os.remove(script)
    for directory in created:
        with contextlib.suppress(OSError):  # not empty: something else uses it
            os.rmdir(directory)


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


def _job_ids(scheduler: str, output: str) -> tuple[str, list[str]]:
    """The job id in the output of sbatch --parsable (``id[;cluster]``) or oarsub
    (``OAR_ARRAY_ID=id`` or ``OAR_JOB_ID=id`` lines), and the ids of its workers' jobs (OAR:
    one job a worker; SLURM: none, its array tasks are ``id_index``)."""
    if scheduler == "slurm":
        return output.strip().splitlines()[-1].split(";")[0], []
    pairs = [line.strip().split("=", 1) for line in output.splitlines() if "=" in line]
    workers = [value for name, value in pairs if name == "OAR_JOB_ID"]
    job = dict(pairs).get("OAR_ARRAY_ID") or (workers or [""])[0]
    if not job:
        raise SubmitError(f"oarsub printed no OAR_ARRAY_ID nor OAR_JOB_ID: {output!r}")
    return job, workers


def _outputs(scheduler: str, submit_dir: str, job: str, workers: list[str]) -> str:
    """Where the workers' outputs go, for a log line."""
    if scheduler == "oar" and workers:
        return ", ".join(os.path.join(submit_dir, f"oar-{w}.out") for w in workers) + " (.err)"
    pattern = OUTPUTS[scheduler].replace("%A", job).replace("%a", "<index>")
    return os.path.join(submit_dir, pattern)


def _local_output(submit_dir: str, job: str, index: int) -> str:
    """The output file of local worker ``index`` of ``job``."""
    return os.path.join(submit_dir, f"{job.replace(':', '-')}_{index}.out")


def _run_local(request: Request, script: str, submit_dir: str, job: str) -> None:
    """Run the workers here, at most ``parallel`` at a time; wait for them all (a worker that
    fails is logged at once, the others go on); :class:`WorkersFailed` if any failed."""
    pending = list(range(request.workers))
    running: dict[int, subprocess.Popen[bytes]] = {}
    failed: list[tuple[int, int, str]] = []
    parallel = request.parallel or request.workers
    while pending or running:
        while pending and len(running) < parallel:
            index = pending.pop(0)
            output = _local_output(submit_dir, job, index)
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
                output = _local_output(submit_dir, job, index)
                failed.append((index, status, output))
                logger.warning(
                    "%s: worker %d exited with status %d (output %s)", job, index, status, output
                )
        if not ended:
            _pause(LOCAL_POLL_INTERVAL)
    if failed:
        raise WorkersFailed(job, request.workers, sorted(failed))
    logger.info(
        "%s: %d worker(s) ended with status 0 (outputs %s)",
        job,
        request.workers,
        _local_output(submit_dir, job, 0).replace("_0.out", "_<index>.out"),
    )


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
    *,
    besteffort: bool = False,
    resources: str | None = None,
    properties: str | None = None,
    project: str | None = None,
    submit_timeout: float = SUBMIT_TIMEOUT,
) -> str | None:
    """Start ``workers`` workers running ``command`` on the sweep at ``location`` (a
    directory, created if needed, or a ``postgresql://`` URL); returns the job id (None with
    ``dry_run``, which writes the script, prints it and the submit command on standard output,
    and starts nothing).

    Workers start in the current directory (the scheduler's default), with the location made
    absolute. ``scheduler``: ``"local"`` runs the workers here (``parallel`` at a time) and
    returns once they all ended (job id ``local:<time stamp>``); ``"slurm"`` submits one job array
    (``sbatch --array=0-(N-1)%P``); ``"oar"`` one array job (``oarsub --array N``).

    For batch schedulers only: ``time`` (SLURM ``--time``; OAR walltime, ``HOURS[:MM[:SS]]``),
    ``partition`` (SLURM partition, OAR queue), ``requeue`` (run a preempted worker again:
    SLURM ``--requeue``, OAR ``-t idempotent``), ``signal_before`` (seconds of warning before the
    kill: SLURM ``--signal=B:USR1@S``, OAR ``--checkpoint S``) and ``scheduler_args`` (passed to
    sbatch/oarsub as they are). For OAR only: ``besteffort`` (``-t besteffort -t idempotent``:
    the job runs on idle resources, is killed when a normal job needs them, and OAR resubmits
    it), ``resources`` (the ``-l`` resource expression, e.g. ``nodes=1`` or
    ``/nodes=1/core=4``; ``time`` is added to it as its walltime), ``properties`` (``-p``, an SQL
    condition on the resources' properties) and ``project`` (``--project``).

    ``ValueError`` names a bad argument. :class:`SubmitError`: no scheduler command here, the
    scheduler refused the job (its output is in the message), or its command did not answer
    within ``submit_timeout`` seconds (it is stopped); the script and the directories made for
    it are removed. :class:`WorkersFailed` (local): the workers that
    exited with a non-zero status, with their output files.
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
        besteffort,
        resources,
        properties,
        project,
    )
    request.check()
    if not submit_timeout > 0:
        raise ValueError(f"submit_timeout={submit_timeout!r}: give seconds > 0")
    check_location(request.location)  # a file in the way is named, before anything is made
    if request.scheduler in SUBMITTERS and not dry_run:
        name, where_to = SUBMITTERS[request.scheduler]
        if shutil.which(name) is None:
            raise SubmitError(
                f"{name} not found: run submit on {where_to} (or use --scheduler local)"
            )
    submit_dir = submit_directory(request.location)
    created = _missing_directories(submit_dir)
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
    try:
        try:
            done = subprocess.run(
                command_line, capture_output=True, text=True, check=False, timeout=submit_timeout
            )
        except subprocess.TimeoutExpired:
            raise SubmitError(
                f"{command_line[0]} did not answer within {submit_timeout:g} s and was stopped: "
                f"is the {request.scheduler.upper()} server (and its database) up and reachable "
                f"from here? If the job was submitted all the same, its workers find no script "
                f"(see {STATUS_TOOLS[request.scheduler]}); --submit-timeout gives it longer"
            ) from None
        if done.returncode != 0:
            said = "\n".join(part.strip() for part in (done.stdout, done.stderr) if part.strip())
            raise SubmitError(
                f"{shlex.join(command_line)} failed with status {done.returncode}: {said}"
            )
        job, worker_jobs = _job_ids(request.scheduler, done.stdout)
    except BaseException:
        _remove(script, created)
        raise
    _record(submit_dir, job, request, script)
    logger.info(
        "submitted %s job %s: %d worker(s), script %s, outputs %s",
        scheduler,
        job,
        workers,
        script,
        _outputs(request.scheduler, submit_dir, job, worker_jobs),
    )
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
        with view:
            _, remaining, _, inprogress, _ = view.stats()
        if remaining or inprogress:
            return False
    return found
