"""``execo-sweep``: see where sweeps stand, reclaim or reset claims, export, plot and report.

LOCATION is a ParamSweeper directory, or a directory holding several (a pytest
``--execo-sweep-dir``, an Engine result directory), or a ``postgresql://...?sweep=NAME`` URL
(the sweep NAME, or those named NAME/...). ``status``, ``results``, ``plot`` and ``report``
only read (no lock, no write: they never slow a running sweep down for more than one read);
``reclaim`` and ``reset`` write through ParamSweeper, safe while workers run, and log what
they do.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from execo_engine.cli import export, report
from execo_engine.cli import plot as plotting
from execo_engine.cli import submit as submitting
from execo_engine.cli.options import (
    CommandParser,
    check_output,
    check_output_directory,
    check_output_outside,
    check_seconds,
    check_status,
)
from execo_engine.cli.views import UsageError, open_view, sweep_locations, usage_errors
from execo_engine.errors import (
    CannotConnectError,
    CorruptRecordError,
    NewerFormatError,
    PickleNotAllowedError,
)
from execo_engine.log import DETAIL
from execo_engine.store.contract import Failure
from execo_engine.store.locations import shown
from execo_engine.sweep import sweep_stats
from execo_engine.sweeper import ParamSweeper

BAR_WIDTH = 20
#: What ``execo-sweep --help`` says first: plain text, as argparse prints it.
DESCRIPTION = """\
See where sweeps stand, export, plot and report their results and runs, reclaim
or reset claims, submit workers.

LOCATION is a ParamSweeper directory, a directory holding several (a pytest
--execo-sweep-dir, an Engine result directory), or a postgresql://...?sweep=NAME
URL (the sweep NAME, or those named NAME/...). status, results, runs, plot and
report only read (no lock, no write: they never slow a running sweep down for
more than one read); reclaim and reset write through ParamSweeper, safe while
workers run, and log what they do."""
#: The help of every command's LOCATION argument.
LOCATION_HELP = "a sweep directory, a directory of sweeps, or a postgresql:// URL"


def open_writer(location: str, view: ParamSweeper[Any]) -> ParamSweeper[Any]:
    """A ParamSweeper on ``location`` with the sweeps of its ``view``, to change claims."""
    return ParamSweeper(location, view.get_sweeps())


def _bar(done: int, total: int) -> str:
    filled = round(BAR_WIDTH * done / total) if total else 0
    percent = f"{100 * done / total:5.1f}%" if total else "    -"
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent}"


def _str_keys(value: Any) -> Any:
    """``value`` with every dict key turned into text (JSON objects only have text keys),
    also in lists and tuples (which JSON writes as lists)."""
    if isinstance(value, dict):
        return {_text(key): _str_keys(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_str_keys(item) for item in value]
    return value


def _shown(combination: Any) -> Any:
    """A combination as status lines print it: a dict as a plain dict, anything else as is."""
    return dict(combination) if isinstance(combination, dict) else combination


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _check_factors(names: Iterable[str], available: Sequence[str], what: str) -> None:
    for name in names:
        if name not in available:
            raise UsageError(
                f"unknown {what} {name!r} (available: {', '.join(map(str, available)) or 'none'})"
            )


def _by_factor(stats: Sequence[Iterable[Any]], factors: list[str]) -> dict[str, Any]:
    """``sweep_stats`` of ``stats``, restricted to ``factors`` when some are named."""
    table = sweep_stats(stats)
    _check_factors(factors, [str(f) for f in table["total"]], "factor")
    if not factors:
        return table
    return {
        state: {f: levels for f, levels in per_factor.items() if str(f) in factors}
        for state, per_factor in table.items()
    }


def _failure_rows(failures: dict[Any, Failure]) -> list[dict[str, Any]]:
    """One row per combination with failed attempts: its attempts and last error."""
    return [
        {"combination": c, "attempts": f.attempts, "error": f.error, "time": f.since}
        for c, f in failures.items()
    ]


def _retrying(view: ParamSweeper[Any], failed: dict[Any, Failure]) -> list[dict[str, Any]]:
    """The combinations of ``view`` with failed attempts that are neither ``failed`` for good
    nor done (todo again, or running again), with their attempts and last error."""
    done = view.get_done()
    return _failure_rows(
        {c: f for c, f in view.get_failures().items() if c not in failed and c not in done}
    )


def _failed_count(failed: int) -> str:
    return f", {failed} failed" if failed else ""


def claimed_ahead(
    claims: Sequence[tuple[Any, Any, float, bool]], runs: list[dict[str, Any]]
) -> set[int]:
    """The indexes in ``claims`` (oldest first, as ``get_claims`` gives them) of the
    combinations claimed ahead: held by a process that claims before it runs (a pytest session,
    see :mod:`execo_engine.provenance`), which runs one at a time, its oldest claim."""
    owners = {tuple(owner) for run in runs for owner in run["owners_ahead"]}
    running: set[tuple[Any, ...]] = set()
    ahead = set()
    for index, (_, owner, _, _) in enumerate(claims):
        if tuple(owner) in owners:
            if tuple(owner) in running:
                ahead.add(index)
            running.add(tuple(owner))
    return ahead


def _counts(view: ParamSweeper[Any]) -> dict[str, int]:
    """The counts of ``view`` as a status shows them: a skip belongs to the instance that made
    it (every other one, this view included, sees it todo), but a status counts every skip
    held as skipped, whoever holds it, as it lists them."""
    counts = view.counts()
    if view.get_sweeps():  # from the view's states: skips of others are in its remaining
        held = {c for c, _, _, _ in view.get_skips()} & set(view.get_remaining())
        counts["skipped"] += len(held)
        counts["remaining"] -= len(held)
    return counts


def _status_entry(
    path: str, location: str, view: ParamSweeper[Any], now: float, by_factor: list[str] | None
) -> dict[str, Any]:
    """The status of the sweep at ``path`` (its ``view``), as ``--json`` prints it."""
    beats = view.heartbeat_ages()
    failed = view.get_failed()
    failed_combinations = _failure_rows(failed)
    claims, skips = view.get_claims(), view.get_skips()
    ahead = claimed_ahead(claims, view.get_runs())
    held = [
        {
            "combination": c,
            "host": owner[0],
            "pid": owner[1],
            "age": round(now - since, 1),
            "heartbeat_age": round(beats[owner], 1) if owner in beats else None,
            "dead": dead,
            "ahead": i in ahead,
        }
        for i, (c, owner, since, dead) in enumerate(claims + skips)
    ]
    entry: dict[str, Any] = {
        "location": shown(path),
        "directory": shown(path),  # its name before 3.0, kept for scripts that read it
        "name": view.name,
        **_counts(view),
        "claimed_ahead": len(ahead),
        "sweeps_saved": bool(view.get_sweeps()),
        "claims": held[: len(claims)],
        "skips": held[len(claims) :],
        "failed_combinations": failed_combinations,
        "retrying_combinations": _retrying(view, failed),
    }
    for skip in entry["skips"]:
        del skip["ahead"]
    entry.update(submitting.status_fields(path, location, entry["claims"]))
    if by_factor is not None:
        stats = (*view.stats(), [f["combination"] for f in failed_combinations])
        entry["by_factor"] = _by_factor(stats, by_factor) if view.get_sweeps() else None
    return entry


def status(
    location: str, by_factor: list[str] | None, as_json: bool, list_failed: bool = False
) -> None:
    """One row per sweep, its claims with owner, age and the age of the owner's heartbeat
    (directories), optionally per-factor tables (``by_factor``: the factors to show, [] for
    all) and, with ``list_failed``, each failed combination with its attempts and last error
    (always in the JSON output)."""
    now, report = time.time(), []
    for path in sweep_locations(location):
        with open_view(path) as view:
            report.append(_status_entry(path, location, view, now, by_factor))
    if as_json:
        print(json.dumps({"sweeps": _str_keys(report)}, default=repr, indent=1, ensure_ascii=False))
        return
    width = max(len(e["name"]) for e in report)
    for e in report:
        skipped = f", {e['skipped']} skipped" if e["skipped"] else ""
        ahead = e["claimed_ahead"]
        running = f" ({e['inprogress'] - ahead} running, {ahead} claimed ahead)" if ahead else ""
        print(
            f"{e['name']:<{width}}  {_bar(e['done'], e['total'])}  {e['total']} total, "
            f"{e['done']} done, {e['inprogress']} in progress{running}, {e['remaining']} "
            f"remaining{skipped}{_failed_count(e['failed'])}"
        )
        for form, key in (
            ("failed: {} after {} attempt(s)", "failed_combinations"),
            ("retrying: {} after {} failed attempt(s)", "retrying_combinations"),
        ):
            for failure in e[key] if list_failed else []:
                first, *more = failure["error"].splitlines() or [""]
                what = form.format(_shown(failure["combination"]), failure["attempts"])
                print(f"    {what}: {first}")
                for line in more:
                    print(f"        {line}")
        for what, key in (("in progress", "claims"), ("skipped", "skips")):
            for claim in e[key]:
                flag = "  DEAD (reclaim with: execo-sweep reclaim)" if claim["dead"] else ""
                beat = claim["heartbeat_age"]
                beat_text = "" if beat is None else f", heartbeat {beat:.0f} s ago"
                print(
                    f"    {'claimed ahead' if claim.get('ahead') else what}: "
                    f"{_shown(claim['combination'])} on {claim['host']} pid "
                    f"{claim['pid']}, for {claim['age']:.0f} s{beat_text}{flag}"
                )
        if by_factor is not None and e["by_factor"] is None:
            print(
                "    per-factor tables need saved sweeps: this directory has none (create it "
                "with ParamSweeper(..., save_sweeps=True))"
            )
        for line in submitting.status_lines(e):
            print(line)
        for factor, levels in (e.get("by_factor") or {}).get("total", {}).items():
            print(f"    {_text(factor)}:")
            for level, total in levels.items():
                counts = {
                    state: e["by_factor"][state].get(factor, {}).get(level, 0)
                    for state in ("done", "inprogress", "remaining", "failed")
                }
                print(
                    f"      {_text(level):>12}  {_bar(counts['done'], total)}  {total} total, "
                    f"{counts['done']} done, {counts['inprogress']} in progress, "
                    f"{counts['remaining']} remaining{_failed_count(counts['failed'])}"
                )


def reclaim(location: str, older_than: float | None) -> None:
    """Give back the claims of dead processes (and older than ``older_than`` seconds), with a
    log line per owner (the DETAIL lines of the sweepers: asked for here)."""
    logging.getLogger("execo_engine").setLevel(DETAIL)
    for path in sweep_locations(location):
        limit = time.time() - older_than if older_than is not None else None
        with open_view(path) as view:
            targets = [
                c
                for c, _, since, dead in view.get_claims()
                if dead or (limit is not None and since < limit)
            ]
            writer = open_writer(path, view)  # opening it already reclaims dead owners' claims
        with writer:
            writer.reclaim(older_than)
            still = {claim[0] for claim in writer.get_claims()}
        reclaimed = [c for c in targets if c not in still]
        print(f"{writer.name}: reclaimed {len(reclaimed)} combination(s)")


def reset(location: str, inprogress: bool, failed: bool) -> None:
    """Release every claim (``inprogress``) and make every failed combination todo again,
    attempts cleared (``failed``), in every sweep at ``location``."""
    if not (inprogress or failed):
        raise UsageError("say what to reset: --inprogress, --failed, or both")
    log = logging.getLogger("execo_engine")
    for path in sweep_locations(location):
        with open_view(path) as view:
            writer = open_writer(path, view)
        with writer:
            held, failures = len(writer.get_claims()), len(writer.get_failed())
            writer.reset(reset_inprogress=inprogress, reset_failed=failed)
        done = ([f"released {held} claim(s)"] if inprogress else []) + (
            [f"{failures} failed combination(s) back to todo"] if failed else []
        )
        log.warning("%s: %s", shown(path), ", ".join(done))
        print(f"{writer.name}: {', '.join(done)}")


def parser() -> argparse.ArgumentParser:
    """The command line parser."""
    top = argparse.ArgumentParser(
        prog="execo-sweep",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    command = commands.add_parser("status", help="where each sweep stands")
    command.add_argument("location", metavar="LOCATION", help=LOCATION_HELP)
    command.add_argument(
        "--by-factor",
        nargs="*",
        metavar="FACTOR",
        help="counts per level of these factors (none named: all); after LOCATION, which "
        "it would take for a factor",
    )
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument(
        "--failed",
        action="store_true",
        help="list each failed combination, and each one running again after failed "
        "attempts, with its attempts and last error",
    )
    submitting.add_watch_options(command)
    command = commands.add_parser("reclaim", help="give back claims of dead processes")
    command.add_argument("location", metavar="LOCATION", help=LOCATION_HELP)
    command.add_argument(
        "--older-than",
        type=float,
        metavar="SECONDS",
        help="also claims older than this, whoever holds them",
    )
    command = commands.add_parser("reset", help="release every claim, or retry failed ones")
    command.add_argument("location", metavar="LOCATION", help=LOCATION_HELP)
    command.add_argument(
        "--inprogress",
        action="store_true",
        help="release every in-progress claim (done is never reset)",
    )
    command.add_argument(
        "--failed",
        action="store_true",
        help="make every failed combination todo again, its attempts cleared",
    )
    command = commands.add_parser(
        "results",
        help="export recorded results, one flat row each",
        description="Export the recorded results: one row per result, the factors, the "
        "recorded values, outcome, attempts, duration, host, time (UTC), sweep, run, commit "
        "and dirty, as execo_engine.load_results gives them.",
    )
    command.add_argument("location", metavar="LOCATION", help=LOCATION_HELP)
    command.add_argument(
        "--format",
        choices=export.FORMATS,
        help="what to write (default: the one -o's extension names, .csv .jsonl .parquet .md; "
        "else csv)",
    )
    command.add_argument(
        "-o", "--output", help="file to write (default: standard output; parquet needs one)"
    )
    command = commands.add_parser(
        "runs",
        help="the runs that wrote to each sweep: commit, host, what each finished",
    )
    command.add_argument("location", metavar="LOCATION", help=LOCATION_HELP)
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command = commands.add_parser("plot", help="plot a recorded value against a factor")
    command.add_argument("location", metavar="LOCATION", help=LOCATION_HELP)
    command.add_argument("--x", required=True, help="factor on the x axis")
    command.add_argument("--y", required=True, help="recorded value on the y axis")
    command.add_argument("--hue", help="factor drawn as one line per level")
    command.add_argument(
        "-o",
        "--output",
        default="plot.png",
        help="PNG file (plot.png; .png added to a name without one)",
    )
    command = commands.add_parser(
        "report",
        help="one self-contained HTML page: progress, failures, figures, results",
        description="Write one HTML file that needs nothing else (it opens offline): each "
        "sweep's progress, failures, claims, per-factor counts, figures of each numeric "
        "recorded value against each factor, the runs and the results (sort, filter). Needs "
        "the extra 'report': pip install 'execo_engine[report]'.",
    )
    command.add_argument("location", metavar="LOCATION", help=LOCATION_HELP)
    command.add_argument(
        "-o", "--output", default="report.html", help="HTML file to write (report.html)"
    )
    command.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="rewrite the file every SECONDS until every sweep is complete (the page reloads)",
    )
    submitting.add_submit_parser(commands)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; bad input exits with status 2 and a message, no traceback."""
    args = submitting.parse_args(parser(), argv)
    for stream in (sys.stdout, sys.stderr):  # a lone surrogate in a value never stops output
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("execo_engine").setLevel(logging.INFO)
    try:
        check_output(getattr(args, "output", None))
        if args.command in ("results", "plot", "report"):
            check_output_outside(args.output, args.location)
            check_output_directory(args.output)
        if args.command == "status":
            check_status(args)
        if args.command == "status" and args.watch:
            sweeps = functools.partial(sweep_locations, args.location)
            interval = submitting.WATCH_INTERVAL if args.interval is None else args.interval
            sys.exit(submitting.watch(sweeps, _bar, interval))
        elif args.command == "status":
            status(args.location, args.by_factor, args.json, args.failed)
        elif args.command == "submit":
            try:
                submitting.run_submit(args)
            except ValueError as error:
                raise UsageError(str(error)) from None
        elif args.command == "reclaim":
            if args.older_than is not None:
                check_seconds("--older-than", args.older_than, zero=True)
            reclaim(args.location, args.older_than)
        elif args.command == "reset":
            reset(args.location, args.inprogress, args.failed)
        elif args.command == "report":
            sys.exit(report.run(args.location, args.output, args.watch))
        elif args.command == "results":
            with usage_errors():
                output_format = export.format_of(args.format, args.output)
                wrote = export.export(args.location, output_format, args.output)
            if wrote:
                print(wrote)
        elif args.command == "runs":
            with usage_errors():
                export.list_runs(args.location, args.json)
        else:
            with usage_errors():
                lines = plotting.plot(args.location, args.x, args.y, args.hue, args.output)
            print("\n".join(lines))
    except UsageError as error:
        print(f"execo-sweep {args.command}: {error}", file=sys.stderr)
        sys.exit(2)
    except CannotConnectError as error:  # a configuration error, as bad input
        print(f"execo-sweep {args.command}: {error}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except (
        CorruptRecordError,
        PickleNotAllowedError,
        NewerFormatError,
        OSError,
        submitting.SubmitError,
    ) as error:
        print(f"execo-sweep {args.command}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
