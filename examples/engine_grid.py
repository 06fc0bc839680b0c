"""An Engine script: compress generated data with gzip at several levels and sizes, one result
file per combination in the result directory. Stop it (Ctrl-C, a crash) and continue with the
same ``-c DIR``.

    python examples/engine_grid.py                   # creates ./CompressionGrid_<date>_<offset>/
    python examples/engine_grid.py -c results/gzip   # creates results/gzip, or continues there
    python examples/engine_grid.py -c results/gzip -L --repeat 5   # copy the output there too
"""

import json
import os
import subprocess
import time

from execo_engine import Engine, logger, slugify, sweep


class CompressionGrid(Engine):
    """Time `gzip -LEVEL` on SIZE KiB of pseudo-random text."""

    def init(self) -> None:
        self.args_parser.add_argument(
            "--repeat", type=int, default=3, help="measurements per combination"
        )
        # The result directory exists already (and self.args holds the engine's options).
        logger.info("results in %s (log level %s)", self.result_dir, self.args.log_level)

    def run(self) -> None:
        sweeper = self.sweeper(
            sweep({"level": [1, 6, 9], "size_kib": [64, 512, 2048]}), progress_interval=5
        )
        for combination in sweeper:
            data = os.urandom(combination["size_kib"] * 512).hex().encode()
            seconds = []
            for _ in range(self.args.repeat):
                start = time.perf_counter()
                out = subprocess.run(
                    ["gzip", f"-{combination['level']}", "-c"],
                    input=data,
                    capture_output=True,
                    check=True,
                ).stdout
                seconds.append(time.perf_counter() - start)
            result = {"seconds": min(seconds), "ratio": len(out) / len(data)}
            path = os.path.join(self.result_dir, slugify(combination) + ".json")
            with open(path, "w") as f:
                json.dump({**combination, **result}, f)
            sweeper.record_result(combination, result, "passed", sum(seconds))
            sweeper.done(combination)
            logger.info("%s: %.4f s, ratio %.3f", combination, result["seconds"], result["ratio"])


if __name__ == "__main__":
    CompressionGrid().start()
