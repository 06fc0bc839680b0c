"""An example experiment grid as pytest tests: time two sorting algorithms over input sizes.

Run it with the plugin so that every finished combination is recorded and never redone::

    pytest examples --execo-sweep-dir=example-results
"""

import random
import time

import pytest


def insertion_sort(values: list[int]) -> list[int]:
    result: list[int] = []
    for value in values:
        position = len(result)
        while position and result[position - 1] > value:
            position -= 1
        result.insert(position, value)
    return result


ALGORITHMS = {"builtin": sorted, "insertion": insertion_sort}


@pytest.mark.execo_sweep(
    {"algo": ["builtin", "insertion"], "size": [10, 100, 1000], "seed": [1, 2]}
)
def test_sorting(combination, algo, size, seed, execo_record):
    values = random.Random(seed).sample(range(10 * size), size)
    start = time.perf_counter()
    result = ALGORITHMS[algo](values)
    elapsed = time.perf_counter() - start
    execo_record(seconds=elapsed)  # see: execo-sweep results example-results
    assert result == sorted(values)
    print(f"{combination}: {elapsed * 1e6:.0f} us")
