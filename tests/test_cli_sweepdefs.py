"""execo-sweep status --by-factor and plot on a sweep with paired factors and exclusions."""

import json

from test_cli import cli

from execo_engine.sweep import ParamSweeper, sweep

TRAINING = {("model", "batch"): [("small", 256), ("large", 32)], "lr": [0.1, 0.01, 0.001]}
IMPOSSIBLE = [{"model": "large", "lr": 0.1}]


def trained(directory):
    """A saved sweep of 5 combinations (6 less the impossible one), the small model's 3 done
    with a recorded loss."""
    combinations = sweep(TRAINING, exclude=IMPOSSIBLE)
    sweeper = ParamSweeper(directory, combinations, save_sweeps=True)
    for combination in combinations[:3]:
        sweeper.record_result(combination, {"loss": combination["lr"] * 10}, "passed", 1.0)
        sweeper.done(combination)
    return combinations


def test_status_by_factor_counts_each_paired_name(tmp_path):
    trained(tmp_path / "sweep")
    [entry] = json.loads(cli("status", tmp_path / "sweep", "--json", "--by-factor").stdout)[
        "sweeps"
    ]
    assert (entry["total"], entry["done"], entry["remaining"]) == (5, 3, 2)
    by_factor = entry["by_factor"]
    assert by_factor["total"] == {
        "model": {"small": 3, "large": 2},
        "batch": {"256": 3, "32": 2},
        "lr": {"0.1": 1, "0.01": 2, "0.001": 2},
    }
    assert by_factor["done"] == {
        "model": {"small": 3},
        "batch": {"256": 3},
        "lr": {"0.1": 1, "0.01": 1, "0.001": 1},
    }
    assert by_factor["remaining_ratio"]["batch"] == {"256": 0.0, "32": 1.0}

    text = cli("status", tmp_path / "sweep", "--by-factor", "batch", "model").stdout
    assert "5 total, 3 done, 0 in progress, 2 remaining" in text
    assert "    model:" in text and "    batch:" in text and "lr:" not in text
    [line_32] = [line for line in text.splitlines() if line.strip().startswith("32 ")]
    assert line_32.endswith("2 total, 0 done, 0 in progress, 2 remaining")

    unknown = cli("status", tmp_path / "sweep", "--by-factor", "model, batch", check=False)
    assert unknown.returncode == 2
    assert "unknown factor 'model, batch' (available: model, batch, lr)" in unknown.stderr


def test_plot_takes_a_paired_name_as_x_or_hue(tmp_path):
    trained(tmp_path / "sweep")
    for x, hue in [("lr", "batch"), ("batch", "model")]:
        png = tmp_path / f"{x}-{hue}.png"
        drawn = cli("plot", tmp_path / "sweep", "--x", x, "--y", "loss", "--hue", hue, "-o", png)
        assert f"wrote {png}" in drawn.stdout
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = cli("results", tmp_path / "sweep").stdout.splitlines()
    assert rows[0].startswith("model,batch,lr,loss,")
    assert len(rows) == 4
