"""What keeps a path from being a directory, named for the user: shared by the directory
store, the Engine's result directory and the launcher's submission directory."""

from __future__ import annotations

import os


def in_the_way(path: str) -> str | None:
    """The first component of ``path`` (``path`` itself included) that exists and is not a
    directory (symbolic links followed), or None when the whole path is, or can be made, a
    directory."""
    parts = os.path.normpath(path).split(os.sep)
    for end in range(1, len(parts) + 1):
        prefix = os.sep.join(parts[:end]) or os.sep
        if not os.path.exists(prefix):
            return None
        if not os.path.isdir(prefix):
            return prefix
    return None


def not_a_directory(path: str) -> str | None:
    """What keeps ``path`` from being a directory, naming the component in the way (see
    :func:`in_the_way`): ``"'a' is in the way: ..."``, or ``"exists and is not a directory
    ..."`` for ``path`` itself; None when nothing does."""
    blocker = in_the_way(path)
    if blocker is None:
        return None
    kind = "a file" if os.path.isfile(blocker) else "something else"
    if blocker == os.path.normpath(path):
        return f"exists and is not a directory (it is {kind})"
    return (
        f"{blocker!r} is in the way: it is {kind}, not a directory (choose another path, or "
        f"move {blocker!r} away)"
    )
