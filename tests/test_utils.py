"""slugify, redirect_outputs and copy_outputs (in real subprocesses)."""

import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execo_engine.utils import slugify

PRINTER = textwrap.dedent("""
    import os, subprocess, sys
    from execo_engine.utils import {function}
    {function}({out!r}, {err!r})
    print("python out 1")
    print("python err 1", file=sys.stderr)
    subprocess.run([sys.executable, "-c",
                    "import sys; print('child out'); print('child err', file=sys.stderr)"])
    os.system("echo shell out; echo shell err >&2")
    print("python out last", end="")
    sys.stderr.write("python err last")
""")
OUT_LINES = ["python out 1", "child out", "shell out", "python out last"]
ERR_LINES = ["python err 1", "child err", "shell err", "python err last"]


def run_printer(tmp_path, function, out, err):
    script = PRINTER.format(
        function=function,
        out=str(tmp_path / out) if out else None,
        err=str(tmp_path / err) if err else None,
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )


def lines(path):
    return path.read_text().replace("last", "last\n").split()  # "last" lines lack a newline


def words(text):
    return text.replace("last", "last\n").split()


def as_words(expected):
    return " ".join(expected).split()


@pytest.mark.parametrize(
    "value,slug",
    [
        ("Hello World!", "hello-world"),
        ("  Élan -- Vital ", "elan-vital"),
        ("../../etc/passwd", "etcpasswd"),
        ("a\\b/c", "abc"),
        ({"x": 1}, "x-1"),
        ("___", "___"),
        (-1, "-1"),  # not "1": a leading separator stays, as in execo
        ("  --a-- ", "-a-"),
        ({"x": -1, "y": "a b"}, "x-1-y-a-b"),
    ],
)
def test_slugify(value, slug):
    assert slugify(value) == slug


def test_slugify_separator():
    assert slugify("Hello  World", separator="_") == "hello_world"
    with pytest.raises(ValueError, match=r"separator '/' must not contain a path separator"):
        slugify("x", separator="/")


# Values printed by execo 2.8.2 (compared over many more by test_same_outputs_as_execo), but the
# last two: execo read the separator as a regular expression ("^ ^", re.error).
@pytest.mark.parametrize(
    "value,separator,slug",
    [
        ({"a": -1}, "_", "a_-1"),
        ("a-b c", "_", "a-b_c"),
        ("a- -b", "_", "a-_-b"),
        ("a _ b", "_", "a_b"),
        ("a b", ".", "a.b"),
        ("a xy b", "xy", "axyb"),
        ("a b", "", "ab"),
        ("a b", "^", "a^b"),
        ("a b", "\\", "a\\b"),
    ],
)
def test_slugify_with_a_separator_gives_execo_values(value, separator, slug):
    assert slugify(value, separator) == slug


@given(st.text(), st.text().filter(lambda separator: "/" not in separator))
def test_slugify_gives_a_plain_name_with_any_separator(value, separator):
    slug = slugify(value, separator)
    assert "/" not in slug and slug not in (".", "..")
    assert slug.replace(separator, "").isascii()


def test_redirect_outputs_separate_files(tmp_path):
    result = run_printer(tmp_path, "redirect_outputs", "out.txt", "err.txt")
    assert result.stdout == "" and result.stderr == ""
    assert lines(tmp_path / "out.txt") == as_words(OUT_LINES)
    assert lines(tmp_path / "err.txt") == as_words(ERR_LINES)


def test_redirect_outputs_merged(tmp_path):
    run_printer(tmp_path, "redirect_outputs", "both.txt", "both.txt")
    merged = lines(tmp_path / "both.txt")
    assert sorted(merged) == sorted(as_words(OUT_LINES + ERR_LINES))


def test_copy_outputs_files_and_terminal(tmp_path):
    result = run_printer(tmp_path, "copy_outputs", "out.txt", "err.txt")
    assert lines(tmp_path / "out.txt") == as_words(OUT_LINES)
    assert lines(tmp_path / "err.txt") == as_words(ERR_LINES)
    assert words(result.stdout) == as_words(OUT_LINES)
    assert words(result.stderr) == as_words(ERR_LINES)


TERMINAL_CHECK = textwrap.dedent("""
    import subprocess, sys
    from execo_engine.utils import copy_outputs
    copy_outputs(sys.argv[1], sys.argv[2], use_pty=sys.argv[3] == "pty")
    subprocess.run("test -t 1 && echo out: terminal || echo out: no terminal", shell=True)
    subprocess.run("test -t 2 && echo err: terminal >&2 || echo err: no terminal >&2", shell=True)
""")


@pytest.mark.parametrize("through,seen", [("pipe", "no terminal"), ("pty", "terminal")])
def test_copy_outputs_use_pty_makes_outputs_terminals(tmp_path, through, seen):
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    result = subprocess.run(
        [sys.executable, "-c", TERMINAL_CHECK, out, err, through],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert out.read_bytes() == result.stdout == f"out: {seen}\n".encode()  # no \r\n
    assert err.read_bytes() == result.stderr == f"err: {seen}\n".encode()


def is_interleaving(merged, first, second):
    """Whether ``merged`` is ``first`` and ``second`` interleaved, each in its own order (the
    writes of two streams into one file may interleave anywhere: an unbuffered ``print``
    writes its text and its newline separately)."""
    if len(merged) != len(first) + len(second):
        return False
    # reachable[j]: merged[: i + j] can be first[:i] and second[:j] interleaved
    reachable = [True] * (len(second) + 1)
    for j in range(1, len(second) + 1):
        reachable[j] = reachable[j - 1] and second[j - 1] == merged[j - 1]
    for i in range(1, len(first) + 1):
        reachable[0] = reachable[0] and first[i - 1] == merged[i - 1]
        for j in range(1, len(second) + 1):
            reachable[j] = (reachable[j] and first[i - 1] == merged[i + j - 1]) or (
                reachable[j - 1] and second[j - 1] == merged[i + j - 1]
            )
    return reachable[-1]


def test_is_interleaving():
    assert is_interleaving("abcd\n\n", "ab\n", "cd\n") and is_interleaving("acbd", "ab", "cd")
    assert not is_interleaving("abdc", "ab", "cd") and not is_interleaving("abc", "ab", "cd")


def test_copy_outputs_merged_keeps_each_stream_in_order(tmp_path):
    result = run_printer(tmp_path, "copy_outputs", "both.txt", "both.txt")
    assert words(result.stdout) == as_words(OUT_LINES)
    assert words(result.stderr) == as_words(ERR_LINES)
    merged = (tmp_path / "both.txt").read_text()
    assert is_interleaving(merged, result.stdout, result.stderr), merged


@pytest.mark.slow
def test_copy_outputs_keeps_output_of_a_killed_process(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        from execo_engine.utils import copy_outputs
        copy_outputs({str(tmp_path / "out.txt")!r}, None)
        for i in range(1000):
            print("line", i)
        sys.stdout.flush()
        os._exit(0)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    expected = [f"line {i}" for i in range(1000)]
    # the copier outlives the process and drains the pipe; wait for it through the terminal copy
    assert result.stdout.splitlines() == expected
    assert (tmp_path / "out.txt").read_text().splitlines() == expected
