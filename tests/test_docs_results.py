"""The ```python examples of ``docs/tutorials/results.md`` run, in order, in one fresh
directory, as a reader runs them: an example defining tests with ``pytest
--execo-sweep-dir=results``, any other with ``python``; each one's top-level ``print(...)  #
TEXT`` lines must print TEXT. An example is saved under the name its first line gives
(``# rows.py``)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "results.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
CHECKED_PRINT = re.compile(r"^print\(.*\)  # (?P<text>.+)$", re.MULTILINE)


def python_blocks(page):
    """The code of each ```python block of ``page``, in order."""
    return [match.group(1) for match in BLOCK.finditer(page.read_text())]


@pytest.mark.slow
def test_results_tutorial_runs(tmp_path):
    pytest.importorskip("pandas")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "EXECO_"))}
    environment["PATH"] = os.path.dirname(sys.executable) + os.pathsep + environment["PATH"]
    blocks = python_blocks(PAGE)
    assert len(blocks) >= 5
    for number, code in enumerate(blocks):
        name = code.split("\n", 1)[0].removeprefix("# ")
        assert name.endswith(".py"), f"example {number} does not name its file: {name!r}"
        (tmp_path / name).write_text(code)
        if re.search(r"^def test_", code, re.MULTILINE):
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name]
            command.append("--execo-sweep-dir=results")
        else:
            command = [sys.executable, name]
        done = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, env=environment, timeout=300
        )
        assert done.returncode == 0, f"{name}:\n{done.stdout}\n{done.stderr}"
        printed = done.stdout.splitlines()
        for expected in CHECKED_PRINT.finditer(code):
            assert expected.group("text") in printed, f"{name}: {expected.group('text')!r}"
