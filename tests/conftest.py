"""Fixtures shared by the tests: where a sweep lives (a directory, or a PostgreSQL sweep on a
real server started for the session)."""

import itertools
import os

import pytest
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


@pytest.fixture(params=["directory", "postgresql"])
def location(request, tmp_path):
    """A factory of sweep locations of one kind: ``location("name")``."""
    if request.param == "directory":
        return lambda name="sweep", **parameters: str(tmp_path / name)
    server = request.getfixturevalue("postgresql")
    test = f"{request.node.name}-{next(_names)}"
    return lambda name="sweep", **parameters: server.url(f"{test}/{name}", **parameters)


GRID = {"a": [1, 2, 3], "b": ["x", "y"]}


@pytest.fixture
def sweeps():
    """The 6 combinations of a small grid, in sweeps order."""
    return sweep(GRID)


_PG_NO_FAILURES = (
    "issue 14: the PostgreSQL store of this branch does not keep failed attempts yet (the "
    "one-row-per-combination store of branch postgres carries attempts and the last error)"
)


@pytest.fixture
def failing(location, request):
    """``location``, with the PostgreSQL case expected to fail (strictly) until its store
    keeps failed attempts."""
    if request.node.callspec.params.get("location") == "postgresql":
        request.applymarker(pytest.mark.xfail(strict=True, reason=_PG_NO_FAILURES))
    return location
