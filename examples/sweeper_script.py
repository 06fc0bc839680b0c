"""ParamSweeper in a plain script: run it several times, in parallel or after a crash, and the
grid is shared and resumed through the directory.

    python examples/sweeper_script.py example-script-results
"""

import sys
import time

from execo_engine import sweep
from execo_engine.sweep import ParamSweeper


def main(directory: str) -> None:
    sweeper = ParamSweeper(directory, sweep({"size": [1, 10, 100], "algo": ["naive", "fast"]}))
    print(sweeper)
    while True:
        with sweeper.claim() as combination:  # done on success, back to todo on an exception
            if combination is None:
                break
            time.sleep(0.01)  # the experiment
            print("done", combination)
    print(sweeper)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "example-script-results")
