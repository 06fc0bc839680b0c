"""This checkout and others, side by side in one run: a measurement run in a fresh process that
imports the package of a given checkout, and rounds that alternate which checkout goes first
(for ``bench_cpu.py`` and ``bench_catch_up.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  #: this checkout


def run_role(script: str, checkout: str, *args: str) -> dict[str, Any]:
    """``python SCRIPT --role ARGS...`` importing the package of ``checkout`` (through
    ``PYTHONPATH``); the JSON object its last line prints."""
    output = subprocess.run(
        [sys.executable, os.path.abspath(script), "--role", *args],
        env=dict(os.environ, PYTHONPATH=checkout),
        cwd=tempfile.gettempdir(),  # never the checkout of the script: PYTHONPATH decides
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.splitlines()[-1])
    return result


def alternate(
    baselines: list[str], rounds: int, measure: Callable[[str, int], dict[str, Any]]
) -> tuple[list[str], dict[str, list[dict[str, Any]]]]:
    """``measure(checkout, round)`` for this checkout and each of ``baselines``, ``rounds``
    times, each checkout first in turn; the checkouts (this one first) and their results."""
    checkouts = [HERE, *map(os.path.abspath, baselines)]
    runs: dict[str, list[dict[str, Any]]] = {checkout: [] for checkout in checkouts}
    for index in range(rounds):
        order = checkouts[index % len(checkouts) :] + checkouts[: index % len(checkouts)]
        for checkout in order:
            runs[checkout].append(measure(checkout, index))
    return checkouts, runs
