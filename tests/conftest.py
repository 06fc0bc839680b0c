"""Fixtures shared by the tests: where a sweep lives (a directory, or a PostgreSQL sweep on a
real server started for the session), a real one-node OAR, small tmpfs file systems."""

import contextlib
import itertools
import os
import subprocess
import sys
import time

import pytest

# The helper modules beside this file (pg, namespaces, plugin_helpers, ...) are imported by
# name: put this directory on sys.path explicitly, whatever pytest's import mode and rootdir.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import oar
from pg import Server

from execo_engine.sweep import sweep

_names = itertools.count()


@pytest.fixture(scope="session")
def postgresql():
    """A real PostgreSQL server on 127.0.0.1 for the session (skipped if none is installed,
    except in CI, where .ci/run installs it)."""
    server = Server()
    if not server.available:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is not installed: .ci/run installs it")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oar_cluster():
    """A real one-node OAR (tests/oar.py) for the session: skipped with the reason where a piece
    of it cannot run (in CI, where .ci/run installs the packages, a missing piece fails)."""
    cluster = oar.Cluster()
    why_not = cluster.missing()
    if why_not:
        if os.environ.get("CI"):
            pytest.fail(f"OAR cannot run: {why_not} (.ci/run installs the OAR packages)")
        pytest.skip(f"OAR cannot run: {why_not}")
    try:
        cluster.start()
    except oar.Cluster.Unavailable as error:
        cluster.stop()
        pytest.skip(f"the one-node OAR did not start: {error}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["directory", pytest.param("postgresql", marks=pytest.mark.slow)])
def location(request, tmp_path):
    """A factory of sweep locations of one kind: ``location("name")``."""
    if request.param == "directory":
        return lambda name="sweep", **_parameters: str(tmp_path / name)
    server = request.getfixturevalue("postgresql")
    test = f"{request.node.name}-{next(_names)}"
    return lambda name="sweep", **parameters: server.url(f"{test}/{name}", **parameters)


GRID = {"a": [1, 2, 3], "b": ["x", "y"]}


@pytest.fixture
def sweeps():
    """The 6 combinations of a small grid, in sweeps order."""
    return sweep(GRID)


def _poll(condition, what, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling a real condition, not synchronizing by sleeping


@pytest.fixture
def poll():
    """``poll(condition, what, timeout=120)``: wait until ``condition()`` is true, failing
    with ``what`` after a generous deadline (a loaded machine is slow)."""
    return _poll


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(name, options)``: a tmpfs mounted at ``tmp_path / name`` with mount
    ``options`` (``"size=256k"``, ``"ro,size=64k"``), unmounted at the end; skips without
    root or where mounting fails."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with contextlib.ExitStack() as mounted:

        def mount(name, options):
            mount_point = tmp_path / name
            mount_point.mkdir()
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
            # lazily: a process of the test may keep a file open there (a lock file)
            mounted.callback(subprocess.run, ["umount", "--lazy", str(mount_point)], check=True)
            return mount_point

        yield mount
