"""Copier process used by :func:`execo_engine.utils.copy_outputs`.

``python -m execo_engine._tee READ_FD TERMINAL_FD FILE`` copies everything read from READ_FD (a
pipe, or a pseudo-terminal's master) to TERMINAL_FD and appends it to FILE, until every writer
has closed it. Running as its own process, it keeps copying what was written just before its
parent exited or was killed.
"""

import errno
import os
import sys


def _read(read_fd: int) -> bytes:
    """The next bytes of ``read_fd``, ``b""`` at its end: the end of a pipe, or the hang-up of a
    pseudo-terminal's master (``EIO`` once every writer closed its slave)."""
    try:
        return os.read(read_fd, 65536)
    except OSError as error:
        if error.errno == errno.EIO:
            return b""
        raise


def main(read_fd: int, terminal_fd: int, filename: str) -> None:
    """Copy ``read_fd`` to ``terminal_fd`` and ``filename`` until end of file."""
    out = os.open(filename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    while data := _read(read_fd):
        for fd in (out, terminal_fd):
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except OSError:  # the terminal went away: keep the file copy going
                    break


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
