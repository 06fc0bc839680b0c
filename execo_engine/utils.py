"""Small tools for experiment scripts: ``slugify``, ``redirect_outputs``, ``copy_outputs``.

``ParamSweeper`` also resolves here, as older documentation imports it from this module.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import subprocess
import sys
import termios
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from execo_engine.sweeper import ParamSweeper

__all__ = ["ParamSweeper", "copy_outputs", "redirect_outputs", "slugify"]

_NOT_WORD = re.compile(r"[^\w\s-]")


def slugify(value: Any, separator: str = "-") -> str:
    """A lower-case ASCII file name made from ``str(value)``, execo 2.x's, character for character
    (so file names made by an execo script are found again).

    Unicode is decomposed (NFKD) and reduced to ASCII, characters other than letters, digits,
    ``_``, white space and ``-`` are removed, the text is stripped of white space, and each run
    of white space and characters of ``separator`` becomes one ``separator``:
    ``slugify("Hello World!") == "hello-world"``. ``-`` is in those runs only when it is in the
    separator: ``slugify("a-b c", "_") == "a-b_c"`` and ``slugify({"a": -1}, "_") == "a_-1"``.
    execo's collisions are kept: ``slugify({"x": -1}) == slugify({"x": 1}) == "x-1"`` and
    ``slugify(1.5) == slugify(15)``. The separator is taken literally, whatever its characters
    (execo read it as part of a regular expression).

    The result never contains a path separator, and holds ``.`` only where a separator does
    (``slugify("a b", ".") == "a.b"``), never only dots: it is never ``.`` nor ``..``, so it
    names nothing but itself in its directory. Raises ``ValueError`` naming the separator when
    it contains a path separator.
    """
    if "/" in separator or os.sep in separator:
        raise ValueError(
            f"slugify: separator {separator!r} must not contain a path separator "
            f"(use '-' or '_', for example)"
        )
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    text = _NOT_WORD.sub("", text).strip().lower()
    return re.sub(r"[\s" + re.escape(separator) + "]+", lambda _: separator, text)


def _same_file(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and os.path.abspath(a) == os.path.abspath(b)


def _open_append(filename: str) -> int:
    return os.open(filename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()


def redirect_outputs(stdout_filename: str | None, stderr_filename: str | None) -> None:
    """Send file descriptors 1 and 2 (so also child processes' output) to files.

    The files are appended to (a continued experiment keeps its earlier output). The same file
    name for both merges them into one file; ``None`` leaves that stream alone.
    """
    _flush_std()
    merged_fd = None
    for fd, filename in ((1, stdout_filename), (2, stderr_filename)):
        if filename is None:
            continue
        if merged_fd is not None:
            os.dup2(merged_fd, fd)
            continue
        out = _open_append(filename)
        os.dup2(out, fd)
        os.close(out)
        if _same_file(stdout_filename, stderr_filename):
            merged_fd = fd


def _pseudo_terminal() -> tuple[int, int]:
    """A pseudo-terminal as ``(read end, write end)``: its master and its slave, with output
    processing off, so that what is read is what was written (no ``\n`` made ``\r\n``)."""
    master, slave = os.openpty()
    attributes = termios.tcgetattr(slave)
    attributes[1] &= ~termios.OPOST
    termios.tcsetattr(slave, termios.TCSANOW, attributes)
    return master, slave


def copy_outputs(
    stdout_filename: str | None, stderr_filename: str | None, use_pty: bool = False
) -> None:
    """Copy file descriptors 1 and 2 to files while they keep going to where they went.

    Works at the file descriptor level, so output of child processes is copied too. Each stream
    goes through a pipe to a small copier process (no external ``tee`` needed) that appends to
    the file and writes to the original destination. The same file name for both merges them
    into one file; ``None`` leaves that stream alone. At exit, Python's buffers are flushed and
    the copiers are waited for (up to 10 s if other processes still hold the output), so nothing
    printed just before the exit is lost; the copiers finish their work even if this process
    is killed.

    ``use_pty=True`` (execo's parameter) puts a pseudo-terminal in place of each pipe: the
    copied descriptors are terminals (``os.isatty(1)``), so child processes write line by line
    (and in colour) as on a terminal. The copies hold the bytes written (execo's pseudo-terminal
    made each ``\n`` a ``\r\n``). Python's own ``sys.stdout`` keeps the buffering it started with.
    """
    _flush_std()
    copiers: list[tuple[int, int, subprocess.Popen[bytes]]] = []
    for fd, filename in ((1, stdout_filename), (2, stderr_filename)):
        if filename is None:
            continue
        os.close(_open_append(filename))  # fail here, not in the copier, on a bad path
        original = os.dup(fd)
        read_end, write_end = _pseudo_terminal() if use_pty else os.pipe()
        copier = subprocess.Popen(
            [sys.executable, "-m", "execo_engine._tee", str(read_end), str(original), filename],
            pass_fds=(read_end, original),
            stdin=subprocess.DEVNULL,
        )
        os.close(read_end)
        os.dup2(write_end, fd)
        os.close(write_end)
        copiers.append((fd, original, copier))
    atexit.register(_stop_copies, copiers)


def _stop_copies(copiers: list[tuple[int, int, subprocess.Popen[bytes]]]) -> None:
    """Flush, give the original destinations back, and let the copiers drain the pipes."""
    _flush_std()
    for fd, original, _ in copiers:
        os.dup2(original, fd)
        os.close(original)
    for _, _, copier in copiers:
        # another process may still write to the pipe: the copier then goes on without us
        with contextlib.suppress(subprocess.TimeoutExpired):
            copier.wait(timeout=10)


def __getattr__(name: str) -> Any:
    if name == "ParamSweeper":
        from execo_engine.sweeper import ParamSweeper

        return ParamSweeper
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
