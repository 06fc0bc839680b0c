"""Names of swept tests: the ids of combinations, and where each sweep lives.

- An item's id holds its combination's levels, joined by ``-`` (``test_sort[builtin-10]``), a
  form ``-k`` accepts, the same in every process (sets in sorted order, no memory address).
  Levels that would print alike stay apart: a string that reads as a number, a bool or None
  (or is empty) gets a ``str:`` prefix (``1`` vs ``str:1``); where two combinations still get
  the same id (sub-sweeps with other factors), their ids name the factors (``a:1`` vs
  ``b:1``), and a position suffix settles what is left.
- A *sweep* is the unit of recording: one test function and, when other parametrizations than
  the marker's give each combination several items (``@pytest.mark.parametrize``, an indirect
  fixture, a parametrized class, pytest-repeat, anyio backends), one sweep per such extra id.
  Its key names the test by its file's path relative to the project root (the directory of
  the ini file pytest read or else the nearest ancestor holding a project or VCS marker), so it
  does not depend on the directory pytest runs from, on the rootdir, nor on where the checkout
  lives. Its directory name is a readable slug plus a digest of the key.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Files or directories that mark a project root (the first ancestor holding one).
ROOT_MARKERS = (
    "pytest.ini",
    ".pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
    "setup.py",
    ".git",
    ".hg",
)
_STRING_PREFIX = "str:"
_NOT_STRINGS = frozenset({"True", "False", "None"})
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  #: in the default repr of an object


def _reads_as_other_type(text: str) -> bool:
    if not text or text in _NOT_STRINGS or text.startswith(_STRING_PREFIX):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _same_everywhere(value: Any) -> str:
    """``repr(value)``, but the same in every process (pytest-xdist workers must collect the
    same ids): the members of a set in sorted order (their order follows string hashes, which
    differ between processes), no memory address (``<Level object at 0x7f...>``)."""
    if isinstance(value, (set, frozenset)):
        members = ", ".join(sorted(map(_same_everywhere, value)))
        if type(value) is set:
            return f"{{{members}}}" if members else "set()"
        return f"{type(value).__name__}({{{members}}})" if members else f"{type(value).__name__}()"
    if type(value) in (tuple, list):
        members = ", ".join(map(_same_everywhere, value))
        if type(value) is list:
            return f"[{members}]"
        return f"({members},)" if len(value) == 1 else f"({members})"
    if isinstance(value, dict):
        pairs = (f"{_same_everywhere(k)}: {_same_everywhere(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return _ADDRESS.sub("", repr(value))


def level_text(value: Any) -> str:
    """The text of one level in an id: distinct for ``1``, ``"1"``, ``1.0`` and ``True``, and
    the same in every process."""
    if isinstance(value, str):
        return _STRING_PREFIX + value if _reads_as_other_type(value) else value
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    return _same_everywhere(value)


def combination_ids(combinations: Sequence[Mapping[Any, Any]]) -> list[str]:
    """One distinct id per combination (see the module docstring)."""
    ids = ["-".join(map(level_text, c.values())) for c in combinations]
    if len(set(ids)) == len(ids):
        return ids
    seen: dict[str, int] = {}
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
    ids = [
        "-".join(f"{level_text(f)}:{level_text(v)}" for f, v in c.items()) if seen[i] > 1 else i
        for i, c in zip(ids, combinations, strict=True)
    ]
    taken: set[str] = set()
    unique = []
    for position, i in enumerate(ids):
        while i in taken:
            i = f"{i}:{position}"
        taken.add(i)
        unique.append(i)
    return unique


def extra_id(item_id: str, own_id: str) -> str:
    """What other parametrizations add to an item's id (``""`` when none): ``item_id`` is
    ``-``-joined ids, one of which is ``own_id``, the marker's."""
    if item_id == own_id:
        return ""
    if item_id.startswith(own_id + "-"):
        return item_id[len(own_id) + 1 :]
    if item_id.endswith("-" + own_id):
        return item_id[: -len(own_id) - 1]
    before, found, after = item_id.partition(f"-{own_id}-")
    return f"{before}-{after}" if found else item_id


@functools.lru_cache(maxsize=256)
def project_root(directory: Path) -> Path:
    """The nearest ancestor of ``directory`` (itself included) holding a :data:`ROOT_MARKERS`
    entry, else ``directory``."""
    for candidate in (directory, *directory.parents):
        if any(os.path.exists(candidate / marker) for marker in ROOT_MARKERS):
            return candidate
    return directory


def function_key(path: Path, nodeid: str, inipath: Path | None) -> str:
    """The key of a test function that stays the same wherever pytest runs from:
    ``<file relative to the project root>::<class>::<function>``.

    ``nodeid`` is the function's node id (without parameters); ``inipath`` the ini file pytest
    read, whose directory is the root of the files below it.
    """
    root = inipath.parent if inipath is not None and inipath.parent in path.parents else None
    root = root or project_root(path.parent)
    relative = Path(os.path.relpath(path, root)).as_posix()
    return f"{relative}::{nodeid.partition('::')[2]}"


def sweep_key(function: str, extra: str) -> str:
    """The key of the sweep of a test function's items whose extra id is ``extra``."""
    return f"{function}[{extra}]" if extra else function


@functools.lru_cache(maxsize=1024)
def sweep_subdir_name(key: str) -> str:
    """The readable, unique name of the directory of the sweep ``key``
    (:func:`sweep_key`; given a plain node id, the name older versions used)."""
    from execo_engine.utils import slugify  # only sessions with a sweep dir need it

    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    path, _, test = key.partition("::")
    readable = slugify(
        f"{Path(path).stem} {test}".replace("::", " ").replace("[", " "), separator="-"
    )[:60]
    return f"{readable}-{digest}"
