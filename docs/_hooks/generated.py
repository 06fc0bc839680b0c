"""MkDocs hook: the reference pages' generated parts, made at build time from the code itself,
so that they cannot drift from it.

A page asks for a part with an HTML comment on a line of its own:

- ``<!-- generated: execo-sweep -->``: ``execo-sweep --help``, then the ``--help`` of each of
  its commands (found in the top-level usage line), each under a heading;
- ``<!-- generated: pytest-options -->``: the "execo" group of ``pytest --help``;
- ``<!-- generated: pytest-ini -->``: the ``execo_*`` ini options of ``pytest --help``;
- ``<!-- generated: pytest-markers -->``: the ``execo_*`` markers of ``pytest --markers``
  (but those it calls internal), wrapped;
- ``<!-- generated: imports -->``: each module of the packages and the modules of ours it
  imports (``tests/test_layers.py``, which also checks that they form no circle).

Each part is the output of the real command, run with this interpreter (the environment
``mkdocs`` runs in, where the package is installed). A part that cannot be found (a command
failing, a group renamed) stops the build with an error naming it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from typing import Any

MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)
WIDTH = 80  #: columns of the help texts (argparse and pytest read $COLUMNS)
EXECO_GROUP = "execo parameter sweeps (pytest_execo):"


class GenerationError(RuntimeError):
    """A generated part could not be made: the message names it and why."""


def _run(*arguments: str) -> str:
    """The standard output of ``python ARGUMENTS`` in an empty directory (no ini file, no
    conftest around), with a fixed width and no colours."""
    environment = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1", "PYTHON_COLORS": "0"}
    with tempfile.TemporaryDirectory() as empty:
        done = subprocess.run(
            [sys.executable, *arguments],
            cwd=empty,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if done.returncode != 0:
        raise GenerationError(
            f"python {' '.join(arguments)} exited with status {done.returncode}: {done.stderr}"
        )
    return done.stdout


def _code(text: str) -> str:
    return f"```text\n{text.rstrip()}\n```\n"


def execo_sweep() -> str:
    """``execo-sweep --help`` and the help of every command it lists."""
    top = _run("-m", "execo_engine", "--help")
    found = re.search(r"\{([\w,-]+)\}", top)
    if not found:
        raise GenerationError("execo-sweep --help lists no {command,...} in its usage")
    parts = [_code(top)]
    for command in found.group(1).split(","):
        help_text = _run("-m", "execo_engine", command, "--help")
        parts.append(f"## `execo-sweep {command}`\n\n{_code(help_text)}")
    return "\n".join(parts)


def _pytest_help() -> str:
    return _run("-m", "pytest", "-p", "no:cacheprovider", "--help")


def pytest_options() -> str:
    """The plugin's command-line options, as ``pytest --help`` shows them."""
    lines = _pytest_help().splitlines()
    if EXECO_GROUP not in lines:
        raise GenerationError(f"pytest --help has no {EXECO_GROUP!r} group")
    start = lines.index(EXECO_GROUP) + 1
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return _code("\n".join(lines[start:end]))


def pytest_ini() -> str:
    """The plugin's ini options (``execo_*``), as ``pytest --help`` shows them."""
    kept: list[str] = []
    keeping = False
    for line in _pytest_help().splitlines():
        if re.match(r"^  \S", line):  # an ini option's first line
            keeping = line.lstrip().startswith("execo_")
        elif not line.startswith("   "):  # the end of the ini section
            keeping = False
        if keeping:
            kept.append(line)
    if not kept:
        raise GenerationError("pytest --help lists no execo_* ini option")
    return _code("\n".join(kept))


def pytest_markers() -> str:
    """The plugin's markers, as ``pytest --markers`` shows them."""
    text = _run("-m", "pytest", "-p", "no:cacheprovider", "--markers")
    kept = [
        textwrap.fill(block, WIDTH, subsequent_indent="    ")
        for block in text.split("\n\n")
        if block.startswith("@pytest.mark.execo_") and not block.endswith("(internal)")
    ]
    if not kept:
        raise GenerationError("pytest --markers lists no execo_* marker")
    return _code("\n\n".join(kept))


def imports() -> str:
    """The import graph of the packages, as ``tests/test_layers.py`` reads it."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return _code(_run(os.path.join(root, "tests", "test_layers.py")))


PARTS: dict[str, Callable[[], str]] = {
    "imports": imports,
    "execo-sweep": execo_sweep,
    "pytest-options": pytest_options,
    "pytest-ini": pytest_ini,
    "pytest-markers": pytest_markers,
}


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    """Replace each ``<!-- generated: NAME -->`` line of a page by its part."""

    def part(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PARTS:
            raise GenerationError(f"unknown generated part {name!r} (known: {', '.join(PARTS)})")
        return PARTS[name]()

    return MARKER.sub(part, markdown)
