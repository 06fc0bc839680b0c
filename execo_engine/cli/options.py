"""Checks of the ``execo-sweep`` options that argparse cannot make: each refuses bad input
with a :class:`~execo_engine.cli.views.UsageError` naming the option and what to give."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from typing import NoReturn

from execo_engine.cli.views import UsageError, sweep_locations
from execo_engine.store.locations import local_directory


class CommandParser(argparse.ArgumentParser):
    """The parser of one command: a LOCATION missing because ``--by-factor`` (which takes every
    word after it for a factor) took it is said so, with the order that works."""

    _words: Sequence[str] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._words = list(args) if args is not None else []
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if "LOCATION" in message and "--by-factor" in self._words:
            message += (
                " (--by-factor takes every word after it for a factor: put LOCATION first, "
                "as in: execo-sweep status LOCATION --by-factor FACTOR ...)"
            )
        super().error(message)


def check_seconds(option: str, value: float, zero: bool = False) -> None:
    """Refuse ``value`` of ``option`` unless it is a finite number of seconds above 0
    (``zero``: or 0)."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        least = "0 or more" if zero else "above 0"
        raise UsageError(f"{option} {value:g}: give a finite number of seconds {least}")


def check_status(args: argparse.Namespace) -> None:
    """Refuse the options of ``status`` that do not go together: ``--json``, ``--failed`` or
    ``--by-factor`` with ``--watch`` (which shows one line per sweep, nothing else), and
    ``--interval`` without ``--watch``; and an ``--interval`` that is no number of seconds."""
    if not args.watch:
        if args.interval is not None:
            raise UsageError(
                f"--interval {args.interval:g} needs --watch: add --watch, or leave out --interval"
            )
        return
    given = {
        "--json": args.json,
        "--failed": args.failed,
        "--by-factor": args.by_factor is not None,
    }
    names = ", ".join(name for name, present in given.items() if present)
    if names:
        raise UsageError(
            f"--watch does not go with {names} (it shows one line per sweep): leave out "
            f"{names}, or --watch"
        )
    if args.interval is not None:
        check_seconds("--interval", args.interval)


def check_output(output: str | None) -> None:
    """Refuse an empty ``-o`` (``-o ''``): no file could be written under that name."""
    if output == "":
        raise UsageError("-o '': an empty file name: give the file to write, or leave out -o")


def check_output_directory(output: str | None) -> None:
    """Refuse an ``-o`` whose directory does not exist, or is a file: the command would fail
    at its end, after its work, in a raw error naming a temporary file of its own."""
    parent = os.path.dirname(output) if output else ""
    if parent and not os.path.isdir(parent):
        what = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise UsageError(
            f"-o {output}: {parent} {what}: create that directory first, or give a file in an "
            f"existing one"
        )


def check_output_outside(output: str | None, location: str) -> None:
    """Refuse an ``-o`` inside one of the sweep directories at ``location`` (symbolic links
    resolved): the file written there would replace one of the sweep's (``-o sweep/done``
    made it unreadable) or sit among them."""
    if not output or os.path.isdir(output) or local_directory(location) is None:
        return  # no file, or a directory: the command says what it expects
    try:
        sweeps = sweep_locations(location)
    except UsageError:
        return  # no sweep there: the command says so, after what it needs (an extra)
    target = os.path.realpath(output)
    for sweep in sweeps:
        directory = os.path.realpath(sweep)
        if os.path.commonpath([target, directory]) == directory:
            raise UsageError(
                f"-o {output}: inside the sweep directory {sweep}, where it would replace or "
                f"sit among the sweep's own files: write it outside the sweep directory"
            )
