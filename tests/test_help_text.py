"""The help texts a user reads in a terminal, `execo-sweep --help` (and each command's) and the
plugin's options in `pytest --help`, are plain text: no reST or Markdown markup, which a
terminal shows raw (the documentation site prints these very texts, see docs/_hooks)."""

import re

import pytest

from execo_engine.cli.__main__ import main

# ``literal``, :role:`target`, `literal` (a backquote right before or after a word)
MARKUP = re.compile(r"``|:[a-z]+:`|`\S[^`\n]*`")


def help_of(capsys, *arguments):
    with pytest.raises(SystemExit) as exited:
        main([*arguments, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_execo_sweep_help_is_plain_text(capsys):
    top = help_of(capsys)
    commands = re.search(r"\{([\w,-]+)\}", top)
    assert commands, top
    names = commands.group(1).split(",")
    assert {"status", "reset", "results", "plot", "submit"} <= set(names)
    for name, text in [("execo-sweep", top), *((n, help_of(capsys, n)) for n in names)]:
        assert not MARKUP.search(text), f"{name} --help shows markup: {MARKUP.findall(text)}"


def test_a_marked_up_text_is_caught():
    for text in ("see ``status``", "see :mod:`x`", "run `execo-sweep reset DIR`"):
        assert MARKUP.search(text), text
    assert not MARKUP.search("a plain text, with a -- and a 'quote'")


def test_plugin_help_is_plain_text(pytester):
    lines = pytester.runpytest("--help").outlines
    group = lines.index("execo parameter sweeps (pytest_execo):")
    options = lines[group + 1 : lines.index("", group)]
    assert any("--execo-sweep-dir" in line for line in options)
    ini, keeping = [], False
    for line in lines:  # an ini option: "  name (type):", then lines indented further
        if re.match(r"^  \S", line) or not line.startswith("   "):
            keeping = line.startswith("  execo_")
        if keeping:
            ini.append(line)
    assert sum(line.startswith("  execo_") for line in ini) >= 4, ini
    for line in options + ini:
        assert not MARKUP.search(line), f"pytest --help shows markup: {line}"
