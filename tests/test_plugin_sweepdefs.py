"""@pytest.mark.execo_sweep with paired factors and exclusions, through real pytest sessions."""

import subprocess
import sys

import pytest

from execo_engine.sweep import ParamSweeper

pytest_plugins = ["pytester"]

TRAINING_TEST = """
import pytest

@pytest.mark.execo_sweep(
    {("model", "batch"): [("small", 256), ("large", 32)], "lr": [0.1, 0.01]},
    exclude=EXCLUDE,
)
def test_train(combination, model, batch, lr):
    assert combination == {"model": model, "batch": batch, "lr": lr}
    assert list(combination) == ["model", "batch", "lr"]
"""


def write_training(pytester, exclude):
    pytester.makepyfile(test_train=TRAINING_TEST.replace("EXCLUDE", exclude))


@pytest.mark.parametrize(
    "exclude",
    [
        '[{"model": "large", "lr": 0.1}]',
        'lambda c: c["model"] == "large" and c["lr"] == 0.1',
    ],
)
def test_marker_pairs_factors_and_leaves_exclusions_out(pytester, exclude):
    write_training(pytester, exclude)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:randomly")
    result.stdout.fnmatch_lines(
        [
            "test_train.py::test_train[small-256-0.1]",
            "test_train.py::test_train[small-256-0.01]",
            "test_train.py::test_train[large-32-0.01]",
            "3 tests collected*",
        ]
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_excluded_combinations_are_never_remaining(pytester):
    write_training(pytester, '[{"model": "large", "lr": 0.1}]')
    pytester.runpytest("--execo-sweep-dir=results").assert_outcomes(passed=3)
    [directory] = (pytester.path / "results").glob("*test_train-*")
    sweeps, remaining, skipped, inprogress, done = ParamSweeper(directory).stats()
    assert len(sweeps) == len(done) == 3 and not remaining and not skipped and not inprogress
    assert {"model": "large", "batch": 32, "lr": 0.1} not in sweeps
    status = subprocess.run(
        [sys.executable, "-m", "execo_engine", "status", str(pytester.path / "results")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "3 total, 3 done, 0 in progress, 0 remaining" in status.stdout
    # nothing left to run: the excluded combination is not waiting anywhere
    second = pytester.runpytest("--execo-sweep-dir=results")
    assert second.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    second.stdout.fnmatch_lines(["execo: 3/3 combinations done in *, running 0"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            '{"model": ["a"], "lr": [1]}, exclude=[{"modle": "a"}]',
            "*exclude[[]0[]] names 'modle', which is no factor of the sweep "
            "(factors: 'model', 'lr')*",
        ),
        (
            '{("model", "batch"): [("small", 256), ("large",)]}',
            "*level ('large',) of paired factor ('model', 'batch') has 1 value(s), needs 2*",
        ),
        (
            '{"lr": [1]}, exclude={"lr": 1}',
            "*exclude must be a callable*got dict: wrap it in a list*",
        ),
        (
            '[{"lr": 1}, {"lr": 2}], exclude=[{"lr": 1}]',
            "*test_bad: @pytest.mark.execo_sweep(exclude=...) needs a sweep dict*",
        ),
        (
            '{"lr": [1]}, exlude=[{"lr": 1}]',
            "*test_bad: @pytest.mark.execo_sweep takes one argument, a sweep dict or a list "
            "of combinations, and for a sweep dict exclude=...*",
        ),
    ],
)
def test_bad_marker_is_a_collection_error_naming_the_culprit(pytester, marker, message):
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.execo_sweep({marker})
        def test_bad(combination):
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])
