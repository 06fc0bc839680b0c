"""What a writer accepts, every reader reads (issue 27), as a property: Hypothesis generates
elements and result values of every supported shape and hostile ones (huge integers, NaN,
infinities, lone surrogates, NUL, deep nesting, bytes, frozensets, nested tuples, names of
tags and of columns, types the text format cannot carry), writes them through ParamSweeper
and checks, on both stores, that each call either is refused at once (with an error naming
the value, nothing written) or is read back exactly by a fresh instance, a read-only view,
``execo-sweep status`` and ``execo-sweep results``.

Profiles: ``dev`` (the default) and ``ci`` (chosen when ``CI`` is set, or by
``HYPOTHESIS_PROFILE``): few examples, so that the test runs in seconds; ``ci`` derandomized
(the same examples on every run) and without an example database.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from execo_engine.cli.__main__ import _str_keys, main
from execo_engine.codec import INT_DIGITS, MAX_DEPTH, Codec, is_hashable
from execo_engine.errors import UnsupportedValueError
from execo_engine.store.postgresql.urls import parse_url, with_sweep
from execo_engine.sweep import HashableDict, ParamSweeper
from execo_engine.sweeper import canonical_text

settings.register_profile(
    "dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

#: Every character, lone surrogates and NUL included
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=6)
#: Names that mean something elsewhere: the codec's tags, the columns of ``results``
NAMES = st.sampled_from(
    ["__tuple__", "__dict__", "__hdict__", "__bytes__", "__pickle__", "time", "outcome",
     "host", "duration", "sweep", "combination", "attempts", "value_time", ""]
)  # fmt: skip
INTEGERS = st.one_of(
    st.integers(),
    st.sampled_from([2**63, -(2**64)]),
    # around the default limit of digits (an int of ``digits`` digits), and far beyond it
    st.integers(INT_DIGITS - 3, INT_DIGITS + 3).map(lambda digits: 10 ** (digits - 1) + 7),
    st.just(5000).map(lambda digits: -(10**digits)),
)
FLOATS = st.floats()  # NaN, infinities, -0.0, subnormals
#: The values that break naive writers, drawn often rather than by luck
HOSTILE = st.sampled_from(
    [math.nan, math.inf, -math.inf, -0.0, "\ud800", "a\x00b", "\udcff\x00", b"\x00\xff", 2**63]
)
SCALARS = st.one_of(
    HOSTILE, st.none(), st.booleans(), INTEGERS, FLOATS, TEXT, NAMES, st.binary(max_size=6)
)
KEYS = st.one_of(TEXT, NAMES, st.integers(), st.booleans(), st.none(), FLOATS)
#: Values the text format cannot carry (refused unless allow_pickle=True)
UNSUPPORTED = st.sampled_from([{1, 2}, Fraction(1, 3), 1 + 2j, bytearray(b"x"), range(2)])


def _nested(depth: int, leaf: Any, wrap: Any) -> Any:
    return functools.reduce(lambda inner, _: wrap(inner), range(depth), leaf)


#: Tuples nested around the limit of the text format (MAX_DEPTH levels)
DEEP_TUPLES = st.integers(MAX_DEPTH - 5, MAX_DEPTH + 5).map(lambda d: _nested(d, 0, lambda x: (x,)))
DEEP_LISTS = st.integers(MAX_DEPTH - 5, MAX_DEPTH + 5).map(lambda d: _nested(d, 0, lambda x: [x]))


def _hashable(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=3).map(tuple),
        st.frozensets(children, max_size=3),
        st.dictionaries(KEYS, children, max_size=3).map(HashableDict),
    )


#: Sweep elements: a combination of plain levels (the common case), or any hashable shape
ELEMENTS = st.one_of(
    st.dictionaries(st.text(max_size=4), SCALARS, min_size=1, max_size=3).map(HashableDict),
    st.recursive(SCALARS, _hashable, max_leaves=8),
    DEEP_TUPLES,
)


def _any_value(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        _hashable(children.filter(is_hashable)),
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(KEYS, children, max_size=3),
    )


#: Result values: anything an experiment may record, hostile values included
VALUES = st.dictionaries(
    st.one_of(st.text(max_size=5), NAMES),
    st.one_of(
        st.recursive(st.one_of(SCALARS, ELEMENTS), _any_value, max_leaves=8),
        DEEP_TUPLES,
        DEEP_LISTS,
        UNSUPPORTED,
    ),
    max_size=4,
)
REFUSED = (TypeError, ValueError)  # UnsupportedValueError is a TypeError
_CODEC = Codec()


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types (NaN equal to NaN): their in-order texts are equal."""
    return _CODEC.encode_in_order(a) == _CODEC.encode_in_order(b)


def run_cli(*args: str) -> str:
    """``execo-sweep ARGS`` run in this process (its real code): its standard output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(list(args))
    return out.getvalue()


def lines_of(text: str) -> list[str]:
    """The lines of JSON lines: split at newlines only (a value may hold U+0085 or U+2028,
    which str.splitlines() splits at too)."""
    return text.split("\n")[:-1]


def json_text(value: Any) -> str:
    """``value`` as JSON, keys sorted: a dict with keys that are not all strings is stored in
    its canonical order (by key), which the export shows."""
    return json.dumps(value, default=repr, ensure_ascii=False, sort_keys=True)


def cell_texts(row: dict[str, Any]) -> list[str]:
    return [json_text(cell) for cell in row.values()]


def holds_a_set(value: Any) -> bool:
    if isinstance(value, (set, frozenset)):
        return True
    if isinstance(value, dict):
        return any(map(holds_a_set, itertools.chain(value, value.values())))
    return isinstance(value, (list, tuple)) and any(map(holds_a_set, value))


def check_readers(location: str, element: Any, results: list[tuple[Any, dict[str, Any]]]) -> None:
    """Every reader reads ``element`` done (saved sweeps) and exactly ``results``."""
    fresh = ParamSweeper(location, [element])
    view = ParamSweeper(location, read_only=True)
    assert [canonical_text(e) for e in fresh.get_done()] == [canonical_text(element)]
    assert [canonical_text(e) for e in view.get_sweeps()] == [canonical_text(element)]
    assert [canonical_text(e) for e in view.get_done()] == [canonical_text(element)]
    for reader in (fresh, view):
        read = reader.get_results()
        assert len(read) == len(results)
        for record, (combination, values) in zip(read, results, strict=True):
            assert canonical_text(record["combination"]) == canonical_text(combination)
            assert same(record["values"], HashableDict(values))
    [status] = json.loads(run_cli("status", location, "--json"))["sweeps"]
    assert (status["total"], status["done"], status["remaining"]) == (1, 1, 0)
    rows = [
        json.loads(line) for line in lines_of(run_cli("results", location, "--format", "jsonl"))
    ]
    assert len(rows) == len(results)
    for row, (_, values) in zip(rows, results, strict=True):
        cells = cell_texts(row)
        for value in values.values():  # each value is in its row, as JSON shows it
            if not holds_a_set(value):  # (a set's repr follows its order in memory)
                assert json_text(_str_keys(value)) in cells


@pytest.fixture
def any_digits():
    """This process writes (and Hypothesis shows) integers of any length, as a writer that
    raised its limit would: the codec must still refuse what readers with the default limit
    cannot read (the commands run at the end are such readers)."""
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    yield
    sys.set_int_max_str_digits(before)


def test_what_a_writer_accepts_every_reader_reads(location, tmp_path, any_digits):
    names = itertools.count()
    accepted: list[int] = []  # results accepted, for the commands run once at the end

    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(
        element=ELEMENTS,
        values=VALUES,
        outcome=st.one_of(st.none(), TEXT),
        duration=st.one_of(st.none(), FLOATS, st.integers(-5, 10)),
    )
    # found by Hypothesis in CI: a dict keyed by an int and a string comes back in key order
    @example(
        element=HashableDict({"": None}),
        values={"": {0: None, "": math.nan}},
        outcome=None,
        duration=None,
    )
    def write_then_read(element, values, outcome, duration):
        url = location(f"example-{next(names)}")
        try:  # a directory encodes an element when it writes its first record, a database
            sweeper = ParamSweeper(url, [element], save_sweeps=True)  # when it loads the sweeps
            assert canonical_text(sweeper.get_next()) == canonical_text(element)
        except UnsupportedValueError as error:
            assert "cannot store" in str(error)
            assert ParamSweeper(url, [1]).get_remaining() == [1]  # the location is still sound
            return
        sweeper.done(element)
        results = [(element, {"baseline": 1.5})]
        sweeper.record_result(element, {"baseline": 1.5}, "passed", 0.5)
        try:
            sweeper.record_result(element, values, outcome, duration)
        except REFUSED as error:
            assert str(error)  # a message, naming the value (checked one by one elsewhere)
        else:
            results.append((element, values))
        accepted.append(len(results))
        check_readers(url, element, results)

    write_then_read()
    parent = str(tmp_path)  # the sweeps of every example, below one location
    if location().startswith("postgresql://"):
        parent = with_sweep(location(), parse_url(location())[1].rsplit("/", 1)[0])
    command = [sys.executable, "-m", "execo_engine"]
    status = subprocess.run([*command, "status", parent], capture_output=True, timeout=300)
    assert status.returncode == 0, status.stderr
    exported = subprocess.run(
        [*command, "results", parent, "--format", "jsonl"], capture_output=True, timeout=300
    )
    assert exported.returncode == 0, exported.stderr
    lines = lines_of(exported.stdout.decode("utf-8"))  # valid UTF-8: surrogates escaped
    # every result, in a process that reads integers of the default limit only
    assert len(lines) == sum(accepted), exported.stderr.decode(errors="replace")[-2000:]
    assert all(type(json.loads(line)) is dict for line in lines)
