"""Side by side with execo 2.8.2: the same inputs through both packages' ``sweep``, ``geom``,
``igeom``, ``slugify`` (with separators too) and ``sweep_stats``, and the names ``from
execo_engine import *`` gives.

    python benchmarks/compare_execo.py [--execo-python PATH] [--json]

execo's interpreter is ``--execo-python``, else ``$EXECO_PYTHON``, else
``/tmp/execo-venv/bin/python`` (a virtual environment with ``pip install execo==2.8.2``). Each
interpreter runs this file with ``--probe``, which imports *its* ``execo_engine`` and writes
every output as JSON; the outputs are then compared: exactly where execo's order is defined,
as sets where it is not (``sweep`` over set levels); ``dir(execo_engine)`` must hold execo's
names (it also lists this package's own submodules). Prints, per function, how many outputs
are equal and the first differences (``--json``: the differences as JSON), and the time of one
large ``sweep()`` in each, as a ratio (information, never a pass/fail condition).

Exit status: 0 when every output is equal, 1 when one differs, 2 when execo is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from typing import Any

DEFAULT_EXECO_PYTHON = "/tmp/execo-venv/bin/python"

SWEEPS: list[tuple[str, dict[Any, Any]]] = [
    ("two factors", {"a": [1, 2], "b": ["x", "y", "z"]}),
    (
        "execo documentation, sub-sweeps",
        {
            "param 1": ["a", "b"],
            "param 2": {
                1: {"param 1 1": ["x", "y"], "param 1 2": [0.0, 1.0]},
                2: {"param 2 1": [-10, 10]},
            },
        },
    ),
    ("range and tuple", {"n": range(3), "t": (0.5, 1.5), "u": [None, True, (1, 2)]}),
    ("empty", {}),
    ("a factor without levels", {"a": [], "b": [1, 2]}),
    ("empty sub-sweep", {"x": {1: {}, 2: {"y": [1, 2]}}}),
    ("deep sub-sweeps", {"x": [0, 1], "y": {"k": {"z": {1: {"w": [0, 5]}, 2: {}}}}}),
    ("numbers", {"size": [2**i for i in range(8)], "ratio": [0.1, 0.25], "n": [-1, 0, 1]}),
]
#: Sweeps whose levels are sets: execo's order follows the set's (salted) iteration order.
SET_SWEEPS: list[tuple[str, dict[Any, Any]]] = [
    ("set levels", {"s": {"b", "a", "c"}, "n": [1, 2]}),
    ("set of numbers", {"s": {3, 1, 2}, "t": {"x", "yy"}}),
]
SLUGS: list[Any] = [
    "Hello World!",
    "  Élan -- Vital ",
    "../../etc/passwd",
    "a\\b/c",
    "x.y",
    "--a--",
    " -a- ",
    "-",
    "",
    "日本語",
    "tab\there",
    "a\u00a0b",
    "ﬁ",
    "-_-",
    1.5,
    -1,
    None,
    True,
    (1, "a"),
    [1, 2],
    {"x": -1, "y": "a b"},
]
#: Separators given to ``slugify``, but those execo read as a regular expression of another
#: meaning or refused (``^`` first, ``\\``, ``[``, ``-`` not first): docs/execo-2.md.
SEPARATORS = ["-", "_", ".", "", " ", "xy", "+", "__", "-_", "~", ":", "a", "é", "]"]


def _canonical(value: Any) -> Any:
    """A JSON value equal for equal Python values, whatever their order inside dicts."""
    if isinstance(value, dict):
        return sorted([repr(key), _canonical(item)] for key, item in value.items())
    return repr(value)


def _geom_inputs() -> list[tuple[float, float, float]]:
    generator = random.Random(20261128)
    inputs: list[tuple[float, float, float]] = [
        (1, 20, 5),
        (1, 100, 3),
        (1, 1000, 7),
        (2, 1024, 11),
        (0.5, 8, 4),
        (10, 1, 4),
        (-1, -20, 5),
        (1.5, 10.5, 3),
        (3, 3, 4),
        (1, 10, 3.0),
        (1, 10, 1),
        (1, 10, 0),
        (1, 6.25, 3),
        (1e-300, 1e-5, 4),
        (3, 2**60 + 1, 4),
        (7, 2**55 + 3, 5),
    ]
    for _ in range(3000):
        low = generator.choice(
            [generator.randint(1, 100), generator.uniform(1e-3, 50), generator.randint(1, 9) + 0.5]
        )
        high = generator.choice(
            [generator.randint(1, 100000), generator.uniform(1e-3, 1e9), low * 2**10]
        )
        sign = -1 if generator.random() < 0.1 else 1
        inputs.append((sign * low, sign * high, generator.randint(0, 60)))
    return inputs


def probe() -> dict[str, list[list[Any]]]:
    """Every output of the ``execo_engine`` this interpreter imports, as
    ``{section: [[case, "ordered", "set" or "subset", output], ...]}``."""
    import execo_engine
    from execo_engine import geom, igeom, slugify, sweep, sweep_stats

    outputs: dict[str, list[list[Any]]] = {"sweep": [], "geom": [], "igeom": [], "slugify": []}
    for kind, cases in (("ordered", SWEEPS), ("set", SET_SWEEPS)):
        for name, parameters in cases:
            combinations = sweep(parameters)
            outputs["sweep"].append(
                [name, kind, [[_canonical(c), slugify(c)] for c in combinations]]
            )
    for low, high, steps in _geom_inputs():
        case = f"{low!r}, {high!r}, {steps!r}"
        outputs["geom"].append([case, "ordered", [repr(x) for x in geom(low, high, steps)]])
        outputs["igeom"].append([case, "ordered", igeom(low, high, steps)])
    # As strings, as argparse gives options; but 0 and 1 step, where execo gave [min, max] or
    # raised ZeroDivisionError for a string (docs/execo-2.md).
    for low, high, steps in [i for i in _geom_inputs()[:500] if i[2] >= 2]:
        strings = (str(low), str(high), str(int(steps)))
        outputs["geom"].append([repr(strings), "ordered", [repr(x) for x in geom(*strings)]])
        if isinstance(low, int) and isinstance(high, int):  # execo's igeom int()s its bounds
            outputs["igeom"].append([repr(strings), "ordered", igeom(*strings)])
    generator = random.Random(7)
    alphabet = "aZ09 -_.:/\\é\u00e0\u0301ß\t\n!?"
    texts = ["".join(generator.choice(alphabet) for _ in range(12)) for _ in range(500)]
    for value in [*SLUGS, *texts]:
        outputs["slugify"].append([repr(value), "ordered", slugify(value)])
    outputs["slugify(separator)"] = [
        [repr((value, separator)), "ordered", slugify(value, separator)]
        for value in [*SLUGS, *texts[:100]]
        for separator in SEPARATORS
    ]
    outputs["sweep_stats"] = []
    for name, parameters in SWEEPS:
        combinations = sweep(parameters)
        generator = random.Random(name)
        states: list[list[Any]] = [[], [], [], []]
        for combination in combinations:
            generator.choice(states).append(combination)
        stats = sweep_stats((combinations, *states))
        outputs["sweep_stats"].append([name, "ordered", _canonical(stats)])
    namespace: dict[str, Any] = {}
    exec("from execo_engine import *", namespace)
    names = sorted(name for name in namespace if not name.startswith("__"))
    outputs["import *"] = [["names", "set", names]]
    # The package also holds its own submodules (codec, stores, ...): execo's must be there.
    outputs["dir(execo_engine)"] = [
        ["public names", "subset", sorted(n for n in dir(execo_engine) if not n.startswith("_"))]
    ]
    return outputs


def timing() -> float:
    """Seconds of the best of 3 ``sweep()`` of a 200 000 combinations grid."""
    from execo_engine import sweep

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        sweep({"a": range(100), "b": range(100), "c": [str(i) for i in range(20)]})
        best = min(best, time.perf_counter() - start)
    return best


def run_probe(python: str) -> dict[str, Any]:
    """Run ``--probe`` with ``python`` in a scratch directory, without PYTHONPATH, so that it
    imports the ``execo_engine`` installed for that interpreter."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "probe.json")
        subprocess.run(
            [python, os.path.abspath(__file__), "--probe", out],
            cwd=scratch,
            env=env,
            check=True,
            timeout=600,
        )
        with open(out) as f:
            result: dict[str, Any] = json.load(f)
            return result


def differences(ours: dict[str, Any], execo: dict[str, Any]) -> dict[str, list[Any]]:
    """Per section, the cases whose outputs differ: ``[case, ours, execo]``."""
    found: dict[str, list[Any]] = {}
    for section, cases in execo.items():
        ours_by_case = {case: output for case, _, output in ours.get(section, [])}
        found[section] = []
        for case, kind, output in cases:
            mine = ours_by_case.get(case)
            if mine is None:
                same = False
            elif kind == "set":
                same = sorted(map(json.dumps, mine)) == sorted(map(json.dumps, output))
            elif kind == "subset":
                same = set(output) <= set(mine)
            else:
                same = mine == output
            if not same:
                found[section].append([case, mine, output])
    return found


def execo_python(given: str | None) -> str | None:
    """The interpreter with execo 2.8.2, or None when there is none."""
    candidate = given or os.environ.get("EXECO_PYTHON") or DEFAULT_EXECO_PYTHON
    return candidate if os.access(candidate, os.X_OK) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execo-python", help=f"default: $EXECO_PYTHON or {DEFAULT_EXECO_PYTHON}")
    parser.add_argument("--json", action="store_true", help="print the differences as JSON")
    parser.add_argument("--probe", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        with open(args.probe, "w") as f:
            json.dump({**probe(), "seconds": timing()}, f)
        return
    python = execo_python(args.execo_python)
    if python is None:
        print("execo 2.8.2 not found: pass --execo-python or set EXECO_PYTHON", file=sys.stderr)
        sys.exit(2)
    execo, ours = run_probe(python), run_probe(sys.executable)
    seconds = {"execo": execo.pop("seconds"), "ours": ours.pop("seconds")}
    found = differences(ours, execo)
    if args.json:
        json.dump({"differences": found, "seconds": seconds}, sys.stdout)
    else:
        for section, cases in execo.items():
            print(f"{section:18} {len(cases) - len(found[section]):5}/{len(cases)} equal")
            for case, mine, theirs in found[section][:3]:
                print(f"    {case}\n      ours:  {mine}\n      execo: {theirs}")
        print(
            f"sweep() of 200000 combinations: execo {seconds['execo']:.3f} s, "
            f"ours {seconds['ours']:.3f} s, ours/execo {seconds['ours'] / seconds['execo']:.2f}"
        )
    sys.exit(1 if any(found.values()) else 0)


if __name__ == "__main__":
    main()
