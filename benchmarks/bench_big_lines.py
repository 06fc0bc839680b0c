"""Reading one huge record: this tree's code side by side with the ``main`` branch's, in one run.

Usage::

    python benchmarks/bench_big_lines.py                 # 30, 120 and 200 MB
    python benchmarks/bench_big_lines.py --sizes 30 120  # other sizes (MB)
    python benchmarks/bench_big_lines.py --base ''       # this tree only

A ``sweeps`` file holding one element, a string of SIZE MB on one line, is loaded by
``DirectoryStore.load_sweeps()`` (what ``ParamSweeper(dir)`` and ``execo-sweep status`` do), each
time in a fresh process, once with this tree's ``execo_engine`` and once with the one of the
``--base`` git revision (extracted with ``git archive``). Each row gives the seconds and the
process's peak RSS growth while loading, in MB and as a multiple of the line's size.

Before the fix, a record longer than the 1 MiB read size was grown by ``data += piece`` with
``rfind`` over all of it after each piece: O(n²/1 MiB) bytes copied and searched.

Timings depend on the machine and its load: compare the ratios of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = 1_000_000


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    parent across exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def child(directory: str, size: int) -> None:
    """Load the sweeps of ``directory`` with the execo_engine on sys.path; print figures."""
    from execo_engine.codec import Codec

    try:
        from execo_engine.store.directory.store import DirectoryStore
    except ImportError:  # a tree from before the store package
        from execo_engine.dirstore import DirectoryStore  # type: ignore[no-redef,import-not-found]

    store = DirectoryStore(directory, Codec(), read_only=True)
    before = peak_rss_mb()
    start = time.perf_counter()
    loaded = store.load_sweeps()
    seconds = time.perf_counter() - start
    assert loaded is not None and len(loaded) == 1 and len(loaded[0]) == size - 3
    print(json.dumps({"seconds": seconds, "peak_mb": peak_rss_mb() - before}))


def measure(tree: str, directory: str, size: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", directory, str(size)],
        env={**os.environ, "PYTHONPATH": tree},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output)  # type: ignore[no-any-return]


def extract(revision: str, into: str) -> str:
    """The execo_engine of git ``revision``, extracted below ``into``."""
    archive = subprocess.run(
        ["git", "-C", HERE, "archive", revision, "execo_engine"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 120, 200], help="MB")
    parser.add_argument("--base", default="main", help="git revision to compare with ('': none)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"this": HERE}
        if args.base:
            base_dir = os.path.join(scratch, "base")
            os.mkdir(base_dir)
            trees[args.base] = extract(args.base, base_dir)
        print(f"{'MB':>5} " + " ".join(f"{name + ' s':>10} {name + ' peak':>14}" for name in trees))
        for megabytes in args.sizes:
            size = megabytes * MB
            directory = os.path.join(scratch, f"sweep{megabytes}")
            os.mkdir(directory)
            with open(os.path.join(directory, "sweeps"), "wb") as f:
                f.write(b'"')
                for start in range(0, size - 3, MB):  # piece by piece: this process stays small
                    f.write(b"x" * min(MB, size - 3 - start))
                f.write(b'"\n')
            row = [f"{megabytes:>5}"]
            figures = {name: measure(tree, directory, size) for name, tree in trees.items()}
            for result in figures.values():
                peak = result["peak_mb"]
                row.append(f"{result['seconds']:>10.2f} {peak:>7.0f} ({peak / megabytes:.1f}x)")
            if len(figures) == 2:
                this, base = figures["this"], figures[args.base]
                row.append(f"  {args.base}/this: {base['seconds'] / this['seconds']:.1f}x time")
            print(" ".join(row), flush=True)
            os.remove(os.path.join(directory, "sweeps"))


if __name__ == "__main__":
    main()
