"""Pytest sessions killed outright (SIGKILL) right after a test's report, one after another, on
swept grids in one directory, for the killed-sessions test of pytest_execo.

``python killed_sessions.py DIR KILLS SEED MODE``: in DIR (holding ``test_cells.py`` and
``conftest.py``, see ``test_plugin_killed_sessions.py``), runs sessions until KILLS processes that
record (the session, MODE ``serial``; its xdist workers, MODE ``xdist``: ``-n 2``) were killed
by the conftest at a random instant, then one last session that completes the grid. Each grid
(a *round*, its own sweep dir ``results-ROUND``) is replaced by a fresh one once a session
completed it. The sessions are forked from this process, which imports pytest and the plugin
once (a killed session costs little more than its collection). Prints the number of rounds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile

import pytest


def warm_up() -> None:
    """Import what every session imports (pytest's modules, the plugins of the entry points,
    pytest_execo), with a session that collects nothing in an empty directory, output
    discarded: the forked sessions inherit them."""
    saved = os.dup(1)
    with tempfile.TemporaryDirectory() as empty, open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        try:
            pytest.main(
                ["-q", "-p", "no:cacheprovider", "--collect-only", "--rootdir", empty, empty]
            )
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    import pytest_execo.recorder  # noqa: F401 (imported by sessions with a sweep dir only)


def session(directory: str, round_: int, seed: int, mode: str, kill: bool) -> int:
    """Run one pytest session in a forked child; its exit status, or minus the signal that
    killed it."""
    with contextlib.suppress(FileNotFoundError):  # see the conftest: may a worker kill itself
        os.unlink(os.path.join(directory, "kill.token"))
    pid = os.fork()
    if pid == 0:  # the session
        try:
            os.chdir(directory)
            os.environ.update(KILLS_ROUND=str(round_), KILLS_SEED=str(seed))
            os.environ["KILLS_MODE"] = mode if kill else ""
            output = os.open("session.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(output, 1)
            os.dup2(output, 2)
            args = ["-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
            args.append(f"--execo-sweep-dir=results-{round_}")
            if mode == "xdist":  # each kill starts a worker: without the plugins not needed
                args += ["-n", "2", "--max-worker-restart=100000"]
                args += [f"-pno:{name}" for name in ("anyio", "forked", "repeat", "rerunfailures")]
            code = pytest.main(args)
            sys.stdout.flush()
            os._exit(int(code))
        except BaseException:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def kills(directory: str) -> int:
    """How many processes the conftest killed so far (it logs each kill first)."""
    try:
        with open(os.path.join(directory, "events.log")) as log:
            return sum(1 for line in log if line.startswith("kill "))
    except FileNotFoundError:  # no session ran yet
        return 0


def main(directory: str, wanted: int, seed: int, mode: str) -> None:
    for name in list(os.environ):  # run from an xdist worker: its sessions are not workers
        if name.startswith("PYTEST_XDIST_"):
            del os.environ[name]
    warm_up()
    round_, number = 1, 0
    while kills(directory) < wanted:
        number += 1
        if number > 20 * wanted:
            raise SystemExit(f"{number - 1} sessions killed {kills(directory)} processes only")
        status = session(directory, round_, seed + number, mode, kill=True)
        if status == pytest.ExitCode.NO_TESTS_COLLECTED:  # this grid is complete: a new one
            round_ += 1
        elif status not in (-signal.SIGKILL, pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            raise SystemExit(f"session {number} ended with status {status}: see session.log")
    status = session(directory, round_, seed, mode, kill=False)
    if status not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise SystemExit(f"the last session ended with status {status}: see session.log")
    print(round_)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
