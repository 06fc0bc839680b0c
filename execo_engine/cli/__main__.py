"""``execo-sweep``: see where sweeps stand, reclaim or reset claims, export and plot results.

DIR is a ParamSweeper directory, or a directory holding several (a pytest ``--execo-sweep-dir``,
an Engine result directory), or a ``postgresql://...?sweep=NAME`` URL (the sweep NAME, or those
named NAME/...). ``status``, ``results`` and ``plot`` only read (no lock, no write:
they never slow a running sweep down for more than one read); ``reclaim`` and ``reset`` write
through ParamSweeper, safe while workers run, and log what they do.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from execo_engine.cli import submit as submitting
from execo_engine.errors import CorruptRecordError, PickleNotAllowedError
from execo_engine.log import DETAIL
from execo_engine.store.locations import shown, sweeps_at
from execo_engine.sweep import sweep_stats
from execo_engine.sweeper import ParamSweeper

BAR_WIDTH = 20


class UsageError(Exception):
    """Bad input: the message is printed and the command exits with status 2."""


def sweep_dirs(directory: str) -> list[str]:
    """The sweeps at ``directory`` (itself, or those below it: see
    :func:`execo_engine.store.locations.sweeps_at`); ``UsageError`` when there is none."""
    try:
        return sweeps_at(directory)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None


def open_view(directory: str) -> ParamSweeper[Any]:
    """A read-only ParamSweeper on ``directory`` (its saved sweeps, or none)."""
    try:
        return ParamSweeper(directory, read_only=True)
    except CorruptRecordError:  # a ValueError too, but not a missing sweeps file
        raise
    except ValueError:  # no saved sweeps: claims and results are still readable
        return ParamSweeper(directory, [], read_only=True)


def open_writer(directory: str, view: ParamSweeper[Any]) -> ParamSweeper[Any]:
    """A ParamSweeper on ``directory`` with the sweeps of its ``view``, to change claims."""
    return ParamSweeper(directory, view.get_sweeps())


def _bar(done: int, total: int) -> str:
    filled = round(BAR_WIDTH * done / total) if total else 0
    percent = f"{100 * done / total:5.1f}%" if total else "    -"
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent}"


def _str_keys(value: Any) -> Any:
    """``value`` with every dict key turned into text (JSON objects only have text keys)."""
    if isinstance(value, dict):
        return {_text(key): _str_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_str_keys(item) for item in value]
    return value


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


def _failed(view: ParamSweeper[Any]) -> list[dict[str, Any]]:
    """The failed combinations of ``view``, with their attempts and last error."""
    return [
        {
            "combination": c,
            "attempts": failure.attempts,
            "error": failure.error,
            "time": failure.since,
        }
        for c, failure in view.get_failed().items()
    ]


def _failed_count(failed: int) -> str:
    return f", {failed} failed" if failed else ""


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


def status(
    directory: str, by_factor: list[str] | None, as_json: bool, list_failed: bool = False
) -> None:
    """One row per sweep, its claims with owner, age and the age of the owner's heartbeat
    (directories), optionally per-factor tables (``by_factor``: the factors to show, [] for
    all) and, with ``list_failed``, each failed combination with its attempts and last error
    (always in the JSON output)."""
    now, report = time.time(), []
    for path in sweep_dirs(directory):
        view = open_view(path)
        beats = view.heartbeat_ages()
        failed_combinations = _failed(view)
        held = [
            {
                "combination": c,
                "host": owner[0],
                "pid": owner[1],
                "age": round(now - since, 1),
                "heartbeat_age": round(beats[owner], 1) if owner in beats else None,
                "dead": dead,
            }
            for c, owner, since, dead in view.get_claims() + view.get_skips()
        ]
        claims = len(view.get_claims())
        entry: dict[str, Any] = {
            "directory": shown(path),
            "name": view.name,
            **_counts(view),
            "sweeps_saved": bool(view.get_sweeps()),
            "claims": held[:claims],
            "skips": held[claims:],
            "failed_combinations": failed_combinations,
        }
        entry.update(submitting.status_fields(path, directory, entry["claims"]))
        if by_factor is not None:
            stats = (*view.stats(), [f["combination"] for f in failed_combinations])
            entry["by_factor"] = _by_factor(stats, by_factor) if view.get_sweeps() else None
        report.append(entry)
    if as_json:
        print(json.dumps({"sweeps": _str_keys(report)}, default=repr, indent=1, ensure_ascii=False))
        return
    width = max(len(e["name"]) for e in report)
    for e in report:
        skipped = f", {e['skipped']} skipped" if e["skipped"] else ""
        print(
            f"{e['name']:<{width}}  {_bar(e['done'], e['total'])}  {e['total']} total, "
            f"{e['done']} done, {e['inprogress']} in progress, {e['remaining']} remaining"
            f"{skipped}{_failed_count(e['failed'])}"
        )
        for failure in e["failed_combinations"] if list_failed else []:
            first, *more = failure["error"].splitlines() or [""]
            print(
                f"    failed: {dict(failure['combination'])} after {failure['attempts']} "
                f"attempt(s): {first}"
            )
            for line in more:
                print(f"        {line}")
        for what, key in (("in progress", "claims"), ("skipped", "skips")):
            for claim in e[key]:
                flag = "  DEAD (reclaim with: execo-sweep reclaim)" if claim["dead"] else ""
                beat = claim["heartbeat_age"]
                beat_text = "" if beat is None else f", heartbeat {beat:.0f} s ago"
                print(
                    f"    {what}: {dict(claim['combination'])} on {claim['host']} pid "
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


def reclaim(directory: str, older_than: float | None) -> None:
    """Give back the claims of dead processes (and older than ``older_than`` seconds), with a
    log line per owner (the DETAIL lines of the sweepers: asked for here)."""
    logging.getLogger("execo_engine").setLevel(DETAIL)
    for path in sweep_dirs(directory):
        limit = time.time() - older_than if older_than is not None else None
        view = open_view(path)
        targets = [
            c
            for c, _, since, dead in view.get_claims()
            if dead or (limit is not None and since < limit)
        ]
        writer = open_writer(path, view)  # opening it already reclaims dead processes' claims
        writer.reclaim(older_than)
        still = {claim[0] for claim in writer.get_claims()}
        reclaimed = [c for c in targets if c not in still]
        print(f"{writer.name}: reclaimed {len(reclaimed)} combination(s)")


def reset(directory: str, inprogress: bool, failed: bool) -> None:
    """Release every claim (``inprogress``) and make every failed combination todo again,
    attempts cleared (``failed``), in every sweep of ``directory``."""
    if not (inprogress or failed):
        raise UsageError("say what to reset: --inprogress, --failed, or both")
    log = logging.getLogger("execo_engine")
    for path in sweep_dirs(directory):
        writer = open_writer(path, open_view(path))
        held, failures = len(writer.get_claims()), len(writer.get_failed())
        writer.reset(reset_inprogress=inprogress, reset_failed=failed)
        done = ([f"released {held} claim(s)"] if inprogress else []) + (
            [f"{failures} failed combination(s) back to todo"] if failed else []
        )
        log.warning("%s: %s", shown(path), ", ".join(done))
        print(f"{writer.name}: {', '.join(done)}")


def result_rows(directory: str) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Factor names (in sweeps order), value names and rows of the recorded results: (sweep),
    factors, values, outcome, duration, attempts (the failed attempts counted on the
    combination, 0 for none), host, time."""
    paths = sweep_dirs(directory)
    factors: dict[str, None] = {}
    values: dict[str, None] = {}
    rows = []
    for path in paths:
        view = open_view(path)
        failures = view.get_failures()
        for first in view.get_sweeps()[:1]:
            factors.update(dict.fromkeys(map(str, first)))
        for record in view.get_results():
            combination, recorded = record["combination"], record["values"]
            factors.update(dict.fromkeys(map(str, combination)))
            values.update(dict.fromkeys(map(str, recorded)))
            when = datetime.datetime.fromtimestamp(record["time"], datetime.UTC).isoformat(
                timespec="seconds"
            )
            rows.append(
                {
                    "sweep": view.name,
                    **{str(k): v for k, v in combination.items()},
                    **{str(k): v for k, v in recorded.items()},
                    "outcome": record["outcome"],
                    "duration": record["duration"],
                    "attempts": getattr(failures.get(combination), "attempts", 0),
                    "host": record["host"],
                    "time": when,
                }
            )
    clash = set(factors) & set(values)
    if clash:
        raise UsageError(f"recorded values named like factors: {', '.join(sorted(clash))}")
    return list(factors), list(values), rows


def result_columns(directory: str, factors: list[str], values: list[str]) -> list[str]:
    """The columns of ``execo-sweep results``."""
    several = len(sweep_dirs(directory)) > 1
    return (
        (["sweep"] if several else [])
        + factors
        + values
        + ["outcome", "duration", "attempts", "host", "time"]
    )


def results(directory: str, output_format: str, output: str | None) -> None:
    """Export the recorded results as CSV or JSON lines."""
    factors, values, rows = result_rows(directory)
    columns = result_columns(directory, factors, values)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(output, "w", newline="")) if output else sys.stdout
        if output_format == "csv":
            writer = csv.DictWriter(out, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        else:
            for row in rows:
                out.write(
                    json.dumps({c: row.get(c) for c in columns}, default=repr, ensure_ascii=False)
                    + "\n"
                )


def _spans_decades(values: list[float]) -> bool:
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 100


def plot(directory: str, x: str, y: str, hue: str | None, output: str) -> None:
    """A PNG of ``y`` against ``x`` (mean over the other factors), a line per ``hue`` level."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("plot needs matplotlib: pip install 'execo_engine[plot]'") from None
    factors, values, rows = result_rows(directory)
    _check_factors([x] + ([hue] if hue else []), factors, "factor")
    _check_factors([y], [*values, "duration"], "value")
    series: dict[Any, dict[Any, list[float]]] = {}
    for row in rows:
        if isinstance(row.get(y), (int, float)) and row.get(x) is not None:
            series.setdefault(row.get(hue) if hue else y, {}).setdefault(row[x], []).append(row[y])
    if not series:
        raise UsageError(f"no numeric {y!r} value recorded in {directory}")
    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    for label, points in sorted(series.items(), key=lambda item: str(item[0])):
        xs = sorted(points, key=lambda v: (isinstance(v, str), v))
        axes.plot(
            [str(v) if isinstance(v, str) else v for v in xs],
            [sum(points[v]) / len(points[v]) for v in xs],
            marker="o",
            label=f"{hue}={label}" if hue else str(label),
        )
    xs_all = [v for points in series.values() for v in points if isinstance(v, (int, float))]
    ys_all = [y for points in series.values() for ys in points.values() for y in ys]
    if _spans_decades(xs_all):
        axes.set_xscale("log")  # levels spanning decades, as geom() makes them
    if _spans_decades(ys_all):
        axes.set_yscale("log")
    axes.set_xlabel(x)
    axes.set_ylabel(f"{y} (mean)")
    axes.set_title(f"{y} by {x}" + (f" and {hue}" if hue else ""))
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(output)
    plt.close(figure)
    print(f"wrote {output}")


def parser() -> argparse.ArgumentParser:
    """The command line parser."""
    top = argparse.ArgumentParser(
        prog="execo-sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True)
    command = commands.add_parser("status", help="where each sweep stands")
    command.add_argument("dir")
    command.add_argument(
        "--by-factor",
        nargs="*",
        metavar="FACTOR",
        help="counts per level of these factors (none named: all)",
    )
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument(
        "--failed",
        action="store_true",
        help="list each failed combination with its attempts and last error",
    )
    submitting.add_watch_options(command)
    command = commands.add_parser("reclaim", help="give back claims of dead processes")
    command.add_argument("dir")
    command.add_argument(
        "--older-than",
        type=float,
        metavar="SECONDS",
        help="also claims older than this, whoever holds them",
    )
    command = commands.add_parser("reset", help="release every claim, or retry failed ones")
    command.add_argument("dir")
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
    command = commands.add_parser("results", help="export recorded results")
    command.add_argument("dir")
    command.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    command.add_argument("-o", "--output", help="file to write (default: standard output)")
    command = commands.add_parser("plot", help="plot a recorded value against a factor")
    command.add_argument("dir")
    command.add_argument("--x", required=True, help="factor on the x axis")
    command.add_argument("--y", required=True, help="recorded value on the y axis")
    command.add_argument("--hue", help="factor drawn as one line per level")
    command.add_argument("-o", "--output", default="plot.png", help="PNG file (plot.png)")
    submitting.add_submit_parser(commands)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; bad input exits with status 2 and a message, no traceback."""
    args = submitting.parse_args(parser(), argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("execo_engine").setLevel(logging.INFO)
    try:
        if args.command == "status" and args.watch:
            sys.exit(submitting.watch(lambda: sweep_dirs(args.dir), open_view, _bar, args.interval))
        elif args.command == "status":
            status(args.dir, args.by_factor, args.json, args.failed)
        elif args.command == "submit":
            try:
                submitting.run_submit(args)
            except ValueError as error:
                raise UsageError(str(error)) from None
        elif args.command == "reclaim":
            reclaim(args.dir, args.older_than)
        elif args.command == "reset":
            reset(args.dir, args.inprogress, args.failed)
        elif args.command == "results":
            results(args.dir, args.format, args.output)
        else:
            plot(args.dir, args.x, args.y, args.hue, args.output)
    except UsageError as error:
        print(f"execo-sweep {args.command}: {error}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except (CorruptRecordError, PickleNotAllowedError, OSError, submitting.SubmitError) as error:
        print(f"execo-sweep {args.command}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
