"""Every ```python example of the documentation (README.md and docs/**/*.md) runs, as a reader
would run it, so that the documentation cannot drift from the code.

The examples of a page run in order, in one fresh directory (a page is a scenario: a later
example may import a module or read a sweep an earlier one made):

- an example that defines tests (``def test_...``) is a test module: it runs with
  ``python -m pytest -p no:cacheprovider -q FILE --execo-sweep-dir=results``;
- any other one is a script: it runs with ``python FILE``.

Each must exit with status 0. Its file name is its first line when that line is a comment
naming a ``.py`` file (``# grid.py``), else ``example_<line>.py`` (``test_example_<line>.py``
for a test module). A script's ``print(...)  # TEXT`` statements are checked (at any
indentation; the comment after the closing parenthesis, on the statement's last line when it
spans several): TEXT must be a line of its output, in that order.

HTML comments right above a fence change that (see CONTRIBUTING.md):

- ``<!-- docs-test: skip REASON -->``: not run (say why);
- ``<!-- docs-test: file -->``: only written (a ``conftest.py``, a module later examples
  import, a worker script); its first line must name it;
- ``<!-- docs-test: args ARG... -->``: the arguments after the file (for a test module they
  replace ``--execo-sweep-dir=results``);
- ``<!-- docs-test: exit N -->``: the exit status expected instead of 0;
- ``<!-- docs-test: postgresql -->``: ``postgresql://user@dbhost/experiments`` in the
  example is replaced by the URL of a real server started for the tests (the page's test is
  then marked slow).

The ```console blocks of docs/getting-started.md run too, as a session (see
test_getting_started_console_session).
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")],
    key=lambda path: path.relative_to(ROOT).as_posix(),
)
MARKER = re.compile(r"^\s*<!-- docs-test: (?P<what>[a-z]+)(?: (?P<rest>.*?))? -->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
NAME = re.compile(r"^# (?P<name>[\w.-]+\.py)\s*$")
TESTS = re.compile(r"^\s*(?:async )?def test_|^class Test", re.MULTILINE)
#: What follows a checked print statement on its last line.
PRINT_COMMENT = re.compile(r"^  # (?P<text>.+)$")
#: In examples marked postgresql: the URL the reader would give, replaced by the test server's.
PLACEHOLDER_URL = "postgresql://user@dbhost/experiments"
KINDS = ("skip", "file", "args", "exit", "postgresql")


class DocsError(ValueError):
    """A page's docs-test markers are wrong: the message names the page and the line."""


@dataclass
class Example:
    """One ```python block of a page and what its markers say."""

    page: str
    line: int  #: of the opening fence, from 1
    code: str
    skip: str | None = None
    file_only: bool = False
    args: list[str] | None = None
    exit: int = 0
    postgresql: bool = False
    name: str = field(init=False)

    def __post_init__(self) -> None:
        first = self.code.split("\n", 1)[0]
        named = NAME.match(first)
        if named:
            self.name = named.group("name")
        elif self.file_only:
            raise DocsError(f"{self.page}:{self.line}: a file example needs a `# NAME.py` line")
        else:
            self.name = f"{'test_' if self.is_test else ''}example_{self.line}.py"

    @property
    def is_test(self) -> bool:
        return bool(TESTS.search(self.code))

    def command(self) -> list[str]:
        if self.is_test:
            extra = ["--execo-sweep-dir=results"] if self.args is None else self.args
            return [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-q",
                self.name,
                *extra,
            ]
        return [sys.executable, self.name, *(self.args or [])]


def _apply(example_markers: list[tuple[int, str, str]], page: str) -> dict[str, Any]:
    """The keyword arguments of an Example from its markers (line, kind, rest)."""
    options: dict[str, Any] = {}
    for line, kind, rest in example_markers:
        where = f"{page}:{line}"
        if kind not in KINDS:
            raise DocsError(f"{where}: unknown docs-test marker {kind!r} (known: {KINDS})")
        if kind == "skip":
            if not rest:
                raise DocsError(f"{where}: say why an example is skipped: docs-test: skip REASON")
            options["skip"] = rest
        elif kind == "file":
            options["file_only"] = True
        elif kind == "args":
            options["args"] = shlex.split(rest)
        elif kind == "exit":
            if not rest.isdigit():
                raise DocsError(f"{where}: docs-test: exit takes a status number, not {rest!r}")
            options["exit"] = int(rest)
        else:
            options["postgresql"] = True
    return options


def closing_fence(fence: str) -> re.Pattern[str]:
    """What closes a block opened by ``fence``: as many of its characters or more, alone."""
    return re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")


def examples_of(text: str, page: str) -> list[Example]:
    """The python examples of the Markdown ``text`` of ``page``, with their markers."""
    lines = text.split("\n")
    found: list[Example] = []
    pending: list[tuple[int, str, str]] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        marker = MARKER.match(line)
        opening = FENCE.match(line)
        if marker:
            pending.append((number + 1, marker.group("what"), marker.group("rest") or ""))
            number += 1
            continue
        if not opening:
            if pending and line.strip():
                raise DocsError(
                    f"{page}:{pending[0][0]}: a docs-test marker must be right above a fence"
                )
            number += 1
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        language = opening.group("info").split()[0] if opening.group("info").split() else ""
        end = number + 1
        closing = closing_fence(fence)
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise DocsError(f"{page}:{number + 1}: a fence that is never closed")
        if language in ("python", "py"):
            code = textwrap.dedent("\n".join(lines[number + 1 : end])) + "\n"
            if indent and any(
                row and not row.startswith(indent) for row in lines[number + 1 : end]
            ):
                raise DocsError(f"{page}:{number + 1}: an example less indented than its fence")
            found.append(Example(page, number + 1, code, **_apply(pending, page)))
        elif pending:
            raise DocsError(
                f"{page}:{pending[0][0]}: a docs-test marker above a {language or 'plain'} block"
            )
        pending = []
        number = end + 1
    if pending:
        raise DocsError(f"{page}:{pending[0][0]}: a docs-test marker above no fence")
    return found


def page_examples(path: Path) -> list[Example]:
    return examples_of(path.read_text(), path.relative_to(ROOT).as_posix())


def _environment() -> dict[str, str]:
    """The reader's environment: this interpreter's scripts first on PATH, nothing of the test
    session's own pytest or execo settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "EXECO_"))}
    keep["PATH"] = os.path.dirname(sys.executable) + os.pathsep + keep.get("PATH", "")
    keep["PYTHONDONTWRITEBYTECODE"] = "1"
    return keep


def checked_prints(code: str) -> list[str]:
    """The TEXT of each ``print(...)  # TEXT`` statement of ``code``, in order: at any
    indentation, the comment after the call's closing parenthesis (on its last line)."""
    lines = code.split("\n")
    calls = [
        node
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "print"
    ]
    texts = []
    for call in sorted(calls, key=lambda node: node.lineno):
        assert call.end_lineno is not None and call.end_col_offset is not None
        after = lines[call.end_lineno - 1].encode()[call.end_col_offset :].decode()  # bytes
        comment = PRINT_COMMENT.match(after)
        if comment:
            texts.append(comment.group("text"))
    return texts


def _check_prints(example: Example, output: str) -> None:
    """Each ``print(...)  # TEXT`` of a script printed TEXT, in order."""
    printed = output.splitlines()
    at = 0
    for text in checked_prints(example.code):
        try:
            at = printed.index(text, at) + 1
        except ValueError:
            pytest.fail(
                f"{example.page}:{example.line}: the comment says {text!r}, but the example "
                f"printed (from line {at + 1} on):\n{output}"
            )


def run_page(examples: list[Example], directory: Path, url: str | None) -> None:
    for example in examples:
        if example.skip:
            continue
        code = (
            example.code.replace(PLACEHOLDER_URL, url)
            if url and example.postgresql
            else example.code
        )
        (directory / example.name).write_text(code)
        if example.file_only:
            continue
        command = example.command()
        done = subprocess.run(
            command,
            cwd=directory,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == example.exit, (
            f"{example.page}:{example.line}: `{shlex.join(command[1:])}` exited with "
            f"{done.returncode}, not {example.exit}:\n{output}"
        )
        if not example.is_test:
            _check_prints(example, done.stdout)


def _page_param(path: Path) -> object:
    relative = path.relative_to(ROOT).as_posix()
    # each example runs in a subprocess: the fast lane keeps the README's only
    slow = relative != "README.md" or any(example.postgresql for example in page_examples(path))
    return pytest.param(path, id=relative, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("path", [_page_param(p) for p in PAGES if page_examples(p)])
def test_page_examples_run(path, tmp_path, request):
    examples = page_examples(path)
    url = None
    if any(example.postgresql for example in examples):
        url = request.getfixturevalue("postgresql").conninfo
    run_page(examples, tmp_path, url)


def test_the_docs_have_examples_to_run():
    runnable = [e for p in PAGES for e in page_examples(p) if not e.skip and not e.file_only]
    assert len(runnable) >= 30, [f"{e.page}:{e.line}" for e in runnable]
    assert any(e.page == "README.md" and e.is_test for e in runnable)
    assert any(e.page == "docs/getting-started.md" and not e.is_test for e in runnable)


MARKED = """\
Text.

<!-- docs-test: args -x --flag -->
<!-- docs-test: exit 1 -->
```python
# test_thing.py
def test_it():
    assert False
```

=== "tab"

    <!-- docs-test: skip needs a GPU -->
    ```python
    import torch
    ```

```sh
echo not python
```
"""


def test_markers_are_read():
    first, second = examples_of(MARKED, "page.md")
    assert (first.name, first.args, first.exit, first.is_test) == (
        "test_thing.py",
        ["-x", "--flag"],
        1,
        True,
    )
    assert first.command()[-3:] == ["test_thing.py", "-x", "--flag"]
    assert (second.skip, second.code, second.line) == ("needs a GPU", "import torch\n", 14)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<!-- docs-test: skip -->\n```python\nx\n```\n", "say why"),
        ("<!-- docs-test: sometimes -->\n```python\nx\n```\n", "unknown docs-test marker"),
        ("<!-- docs-test: file -->\n```python\nx = 1\n```\n", "needs a `# NAME.py` line"),
        ("<!-- docs-test: exit one -->\n```python\nx\n```\n", "status number"),
        ("<!-- docs-test: file -->\n```sh\nls\n```\n", "above a sh block"),
        ("<!-- docs-test: file -->\n\nSome text.\n", "right above a fence"),
        ("```python\nx = 1\n", "never closed"),
    ],
)
def test_wrong_markers_are_errors(text, error):
    with pytest.raises(DocsError, match=error):
        examples_of(text, "page.md")


def test_a_wrong_print_comment_fails(tmp_path):
    example = Example("page.md", 1, "print(1 + 1)  # 3\n")
    with pytest.raises(pytest.fail.Exception, match="the comment says '3'"):
        run_page([example], tmp_path, None)


def test_checked_prints_span_lines_and_blocks():
    code = "x = 1\nprint(\n    [x]\n)  # [1]\n"  # the comment after the closing line
    code += 'if x:\n    print("é", x)  # é 1\n'  # indented, after a non-ASCII character
    code += "print(x)\nprint(2)  # 2\n"  # none, then one
    assert checked_prints(code) == ["[1]", "é 1", "2"]


def test_a_wrong_indented_print_comment_fails(tmp_path):
    example = Example("page.md", 1, "if True:\n    print(\n        1 + 1\n    )  # 3\n")
    with pytest.raises(pytest.fail.Exception, match="the comment says '3'"):
        run_page([example], tmp_path, None)


#: Parts of a shown output line that differ from one run to the next, and what they match: a
#: time of the same shape (the same digits, separators and zone), any number, anything else of
#: their kind.
VARIABLE = re.compile(
    r"(?P<path>/home/me)"  # the directory the reader works in
    r"|(?P<time>\d{4}-\d\d-\d\dT[\d:.]+\+00:00)"
    r"|(?P<number>\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)"  # measures, durations
    r"|(?P<run>\br[0-9a-f]{11}\b)"  # a run's id
    r"|(?P<host>\bvm\b)"
)
MATCHES = {"path": ".*?", "number": r"[-+.e\d]+", "run": "r[0-9a-f]{11}", "host": r"[^\s,]+"}


def console_session(text: str) -> list[tuple[int, str, list[str]]]:
    """The commands of the ```console blocks of ``text`` (their lines that start with ``$ ``),
    in order: (line, command, the output lines shown below it)."""
    session: list[tuple[int, str, list[str]]] = []
    closing, indent = None, ""
    for number, line in enumerate(text.split("\n"), 1):
        if closing is None:
            opening = FENCE.match(line)
            if opening and opening.group("info").strip() == "console":
                closing, indent = closing_fence(opening.group("fence")), opening.group("indent")
        elif closing.match(line):
            closing = None
        elif line.removeprefix(indent).startswith("$ "):
            session.append((number, line.removeprefix(indent)[2:], []))
        else:  # a block starts with a command: its lines go with the one above them
            session[-1][2].append(line.removeprefix(indent))
    return session


def _literal(text: str) -> str:
    """``text`` as a pattern, a run of ``=`` matching any length: pytest centres its summary
    line, so a duration of more digits than the page shows takes some ``=`` away."""
    return re.sub(r"={2,}", "=+", re.escape(text))


def output_pattern(shown: list[str]) -> re.Pattern[str]:
    """What the real output must match, whole: each shown line, its VARIABLE parts matching
    the real values, and a line ``...`` any number of lines."""
    parts = []
    for line in shown:
        if line == "...":
            parts.append(r"(?:.*\n)*?")
            continue
        pieces, at = [], 0
        for variable in VARIABLE.finditer(line):
            kind, text = variable.lastgroup or "", variable.group()
            shape = re.sub(r"\d", r"\\d", re.escape(text))  # a time: its digits vary
            pieces += [_literal(line[at : variable.start()]), MATCHES.get(kind, shape)]
            at = variable.end()
        parts.append("".join([*pieces, _literal(line[at:])]) + r"\n")
    return re.compile("".join(parts))


@pytest.mark.slow
def test_getting_started_console_session(tmp_path):
    """The ```console blocks of docs/getting-started.md, run in order in one directory that
    holds the files its python blocks write (test_sorting.py, sorting.py): each shown output
    line is a line of the real output, in order and with nothing between them but where the
    page shows ``...``; the parts that vary (times, durations, measures, paths, run ids, the
    host) match the real values (VARIABLE). Only the install block (```sh, `pip install`) is
    not run: the package is installed in this interpreter's environment, whose scripts come
    first on PATH."""
    page = ROOT / "docs" / "getting-started.md"
    for example in page_examples(page):
        (tmp_path / example.name).write_text(example.code)
    session = console_session(page.read_text())
    assert [command.split()[0] for _, command, _ in session].count("pytest") >= 3
    environment = {**_environment(), "COLUMNS": "80", "LC_ALL": "C.UTF-8"}
    for line, command, shown in session:
        done = subprocess.run(
            ["sh", "-c", f"exec 2>&1; {command}"],  # its errors among its output, in order
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # 5: pytest ran no test, every combination being done (the page says so)
        assert done.returncode in (0, 5), f"docs/getting-started.md:{line}: {done.stdout}"
        assert output_pattern(shown).fullmatch(done.stdout), (
            f"docs/getting-started.md:{line}: `{command}` printed\n{done.stdout}\n"
            f"where the page shows\n" + "\n".join(shown)
        )
