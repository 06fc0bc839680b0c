"""``execo-sweep submit`` (start workers, see :mod:`execo_engine.launch`), the submitted jobs and
live workers in ``execo-sweep status``, and ``execo-sweep status --watch``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from execo_engine.cli.views import Views
from execo_engine.jobstate import job_states, states_text
from execo_engine.launch import (
    SCHEDULERS,
    SUBMIT_TIMEOUT,
    SubmitError,
    nothing_left,
    submissions,
    submit,
)
from execo_engine.sweeper import ParamSweeper

__all__ = [
    "SubmitError",
    "add_submit_parser",
    "add_watch_options",
    "main",
    "parse_args",
    "run_submit",
    "status_fields",
    "status_lines",
    "watch",
    "workers_alive",
]


#: Seconds between two frames of ``status --watch`` (``--interval``).
WATCH_INTERVAL = 2.0


def add_submit_parser(commands: Any) -> None:
    """Add the ``submit`` command to the ``execo-sweep`` subparsers ``commands``."""
    command = commands.add_parser(
        "submit",
        help="start workers on a sweep: local processes, a SLURM or OAR array",
        usage="execo-sweep submit LOCATION [options] -- COMMAND [ARG]...",
        description="Start N workers running COMMAND on the sweep LOCATION (a directory or a "
        "postgresql:// URL): each gets EXECO_SWEEP_LOCATION and EXECO_WORKER_INDEX. The "
        "worker script is written in LOCATION/execo-submit/ (for a URL: "
        "./execo-submit-<sweep>/), with the job ids and the workers' outputs.",
    )
    command.add_argument("location", metavar="LOCATION")
    command.add_argument("--scheduler", choices=SCHEDULERS, default="local")
    command.add_argument("--workers", type=int, default=1, metavar="N", help="workers (1)")
    command.add_argument(
        "--parallel", type=int, metavar="P", help="at most P workers at a time (local, SLURM)"
    )
    command.add_argument(
        "--time",
        metavar="T",
        help="time limit (SLURM --time; OAR walltime, HOURS[:MM[:SS]])",
    )
    command.add_argument(
        "--partition", "--queue", metavar="Q", help="SLURM partition, OAR queue (-q)"
    )
    command.add_argument(
        "--requeue",
        action="store_true",
        help="run a preempted worker again (SLURM --requeue, OAR -t idempotent)",
    )
    command.add_argument(
        "--signal-before",
        "--checkpoint",
        type=int,
        metavar="S",
        help="warn workers S seconds before the kill (SLURM --signal=B:USR1@S, "
        "OAR --checkpoint S): they give their claims back and exit",
    )
    oar = command.add_argument_group("OAR only")
    oar.add_argument(
        "--besteffort",
        action="store_true",
        help="-t besteffort -t idempotent: run on idle resources, killed (after the "
        "--checkpoint warning) when a normal job needs them, resubmitted by OAR",
    )
    oar.add_argument(
        "--resources",
        metavar="EXPR",
        help="oarsub -l resource expression, e.g. nodes=1 or /nodes=1/core=4 (the walltime "
        "comes from --time)",
    )
    oar.add_argument(
        "--property",
        dest="properties",
        metavar="SQL",
        help="oarsub -p: an SQL condition on resource properties, e.g. \"cluster='x'\"",
    )
    oar.add_argument("--project", metavar="NAME", help="oarsub --project")
    command.add_argument(
        "--scheduler-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="passed to sbatch/oarsub as it is (repeat for several)",
    )
    command.add_argument(
        "--submit-timeout",
        type=float,
        default=SUBMIT_TIMEOUT,
        metavar="S",
        help=f"seconds sbatch/oarsub get to answer ({SUBMIT_TIMEOUT:g}): they wait without "
        "end for a server that does not answer",
    )
    command.add_argument(
        "--dry-run", action="store_true", help="write and print the script, start nothing"
    )


def parse_args(top: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``top.parse_args(argv)``, where for ``submit`` what follows the first ``--`` is the
    worker command (``worker_command``), whatever options it has."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if argv[:1] == ["submit"] and "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
    args = top.parse_args(argv)
    if args.command == "submit":
        args.worker_command = command
    return args


def run_submit(args: argparse.Namespace) -> None:
    """``execo-sweep submit``: prints the job id; ``ValueError`` for bad arguments,
    :class:`SubmitError` when the submission failed or local workers failed."""
    job = submit(
        args.location,
        args.worker_command,
        scheduler=args.scheduler,
        workers=args.workers,
        parallel=args.parallel,
        time=args.time,
        partition=args.partition,
        requeue=args.requeue,
        signal_before=args.signal_before,
        scheduler_args=args.scheduler_arg,
        dry_run=args.dry_run,
        besteffort=args.besteffort,
        resources=args.resources,
        properties=args.properties,
        project=args.project,
        submit_timeout=args.submit_timeout,
    )
    if job is not None:
        print(job)


def add_watch_options(status: argparse.ArgumentParser) -> None:
    """Add ``--watch`` and ``--interval`` to the ``status`` command."""
    status.add_argument(
        "--watch",
        action="store_true",
        help="refresh in place until every sweep is complete (or Ctrl-C)",
    )
    status.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help=f"seconds between two refreshes of --watch ({WATCH_INTERVAL:g})",
    )


def workers_alive(claims: list[dict[str, Any]]) -> list[str]:
    """``host:pid`` of the live processes holding claims, from ``status``'s claim entries."""
    return sorted({f"{c['host']}:{c['pid']}" for c in claims if not c["dead"]})


def status_fields(path: str, top: str, claims: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``jobs`` submitted to the sweep at ``path`` (or to ``top``, the location given to
    ``status``, that holds it) and its live ``workers``, for ``execo-sweep status``. Each job
    has the ``states`` its scheduler gives (:func:`execo_engine.jobstate.job_states`: counts by
    state, or None)."""
    jobs = submissions(path) + (submissions(top) if top != path else [])
    for job in jobs:
        job["states"] = job_states(job)
    return {
        "jobs": sorted(jobs, key=lambda job: job["submitted"]),
        "workers": workers_alive(claims),
    }


def status_lines(entry: dict[str, Any]) -> list[str]:
    """The lines ``execo-sweep status`` prints about :func:`status_fields`."""
    lines = [
        f"    job {job['job']} ({job['scheduler']}, {job['workers']} worker(s)), submitted "
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(job['submitted']))}"
        + (
            f"; {states_text(job['scheduler'], job['states'])}"
            if job.get("states") is not None
            else ""
        )
        for job in entry["jobs"]
    ]
    if entry["jobs"] or entry["workers"]:
        workers = entry["workers"]
        lines.append(
            f"    workers alive (holding claims): {len(workers)}"
            + (f" ({', '.join(workers)})" if workers else "")
        )
    return lines


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class _Watched:
    """One sweep seen by ``--watch``: when the watch first saw it, and its done count then,
    for the rate."""

    def __init__(self, now: float) -> None:
        self.since = now
        self.first: int | None = None

    def line(
        self, view: ParamSweeper[Any], now: float, bar: Callable[[int, int], str]
    ) -> tuple[str, bool]:
        """Its frame line, read from its ``view`` (with the failed combinations, if any), and
        whether it is complete: nothing remaining nor in progress (a sweep of no combination
        at once)."""
        counts = view.counts()
        done, total, remaining = counts["done"], counts["total"], counts["remaining"]
        if self.first is None:
            self.first = done
        rate = (done - self.first) / (now - self.since) if now > self.since else 0.0
        if not remaining and not counts["inprogress"]:
            left = "complete"
        elif rate > 0:
            left = f"{rate:.2f}/s, about {_duration(remaining / rate)} left"
        else:
            left = "no rate yet"
        failed = f", {counts['failed']} failed" if counts["failed"] else ""
        line = (
            f"{view.name}  {bar(done, total)}  {done}/{total} done, "
            f"{counts['inprogress']} in progress, {remaining} remaining{failed}, {left}"
        )
        return line, left == "complete"


def watch(
    find: Callable[[], list[str]],
    bar: Callable[[int, int], str],
    interval: float = WATCH_INTERVAL,
    out: TextIO = sys.stdout,
) -> int:
    """Print a frame (one line per sweep of ``find()``) every ``interval`` seconds, in place on a
    terminal (appended otherwise), until every sweep is complete (returns 0) or Ctrl-C (130)."""
    watched: dict[str, _Watched] = {}
    views = Views()
    shown = 0
    try:
        while True:
            now = time.monotonic()
            for path in find():
                if path not in watched:
                    watched[path] = _Watched(now)
            lines = []
            for path, seen in watched.items():
                with views.reading(path, len(watched)) as view:
                    lines.append(seen.line(view, now, bar))
            frame = [time.strftime("%H:%M:%S"), *(line for line, _ in lines)]
            if shown and out.isatty():
                out.write(f"\x1b[{shown}F\x1b[J")  # back to the previous frame's first line
            out.write("\n".join(frame) + "\n")
            out.flush()
            shown = len(frame)
            if all(complete for _, complete in lines):
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 130
    finally:
        views.close()


def main(argv: Sequence[str]) -> int:
    """``python -m execo_engine.cli.submit nothing-left LOCATION``, what the worker scripts
    run first: status 0 when nothing is left (see :func:`execo_engine.launch.nothing_left`),
    1 otherwise."""
    if len(argv) != 2 or argv[0] != "nothing-left":
        print("usage: python -m execo_engine.cli.submit nothing-left LOCATION", file=sys.stderr)
        return 2
    return 0 if nothing_left(argv[1]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
