"""execo-sweep submit: local workers, a real one-node SLURM, an OAR array task's environment;
preemption-safe workers (Engine, ParamSweeper scripts, pytest sessions)."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from launch_helpers import (
    DEADLINE,
    WORKER,
    assert_each_done_once,
    clean_env,
    cli,
    dry_run_script,
    engine_script,
    events,
    pytest_grid,
    saved_sweep,
    wait_for,
)
from slurm import Cluster

from execo_engine import ParamSweeper
from execo_engine.launch import nothing_left, submissions, submit
from execo_engine.results import load_runs

# -- arguments, dry run ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"scheduler": "pbs"}, "unknown scheduler 'pbs'"),
        ({"workers": 0}, "workers=0"),
        ({"scheduler": "local", "time": "10"}, "time: only for a batch scheduler"),
        ({"scheduler": "local", "requeue": True}, "requeue: only for a batch scheduler"),
        ({"scheduler": "oar", "parallel": 2}, "OAR has no limit"),
        ({"scheduler": "slurm", "signal_before": 0}, "signal_before=0"),
        ({"scheduler": "slurm", "besteffort": True}, "besteffort: only for scheduler='oar' ("),
        ({"scheduler": "local", "project": "p"}, "project: only for scheduler='oar'"),
        ({"scheduler": "slurm", "resources": "nodes=1"}, "resources: only for scheduler='oar'"),
        ({"scheduler": "oar", "time": "90m"}, "time='90m': oar reads HOURS[:MINUTES[:SECONDS]]"),
        ({"scheduler": "slurm", "time": "1h"}, "time='1h': slurm reads MINUTES, "),
        (
            {"scheduler": "oar", "resources": "nodes=1,walltime=1", "time": "2"},
            "has a walltime and time='2' too: give the walltime once",
        ),
        ({"scheduler": "oar", "properties": " "}, "properties=' ': give a value"),
        ({"scheduler": "oar", "partition": "my queue"}, "a queue or partition name has no"),
        (
            {"scheduler": "oar", "scheduler_args": ["--signal", "SIGINT"]},
            "--signal SIGINT: the worker script forwards only TERM, USR1, USR2 to the workers",
        ),
        (
            {"scheduler": "slurm", "scheduler_args": ["--signal=B:HUP@60"]},
            "--signal HUP: the worker script forwards only TERM, USR1, USR2",
        ),
    ],
)
def test_bad_arguments_are_named(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        submit(tmp_path / "sweep", ["true"], **arguments)
    assert not (tmp_path / "sweep").exists()  # nothing written


@pytest.mark.parametrize(
    ("scheduler", "missing", "where"),
    [("oar", "oarsub", "an OAR frontend"), ("slurm", "sbatch", "a SLURM login node")],
)
def test_a_missing_scheduler_command_says_where_to_run_and_leaves_nothing(
    tmp_path, scheduler, missing, where
):
    empty = tmp_path / "bin"
    empty.mkdir()
    location = tmp_path / "sweep"
    done = cli(
        "submit", str(location), "--scheduler", scheduler, "--", "true",
        env={**clean_env(), "PATH": str(empty)},
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        f"execo-sweep submit: {missing} not found: run submit on {where} "
        "(or use --scheduler local)\n"
    )
    assert not location.exists()


@pytest.mark.skipif(shutil.which("sbatch") is None, reason="sbatch is not installed")
def test_a_submission_slurm_refuses_is_an_error_and_leaves_nothing(tmp_path):
    """sbatch with no SLURM configured here (an empty slurm.conf) fails: its message, and
    nothing left behind."""
    location = tmp_path / "sweep"
    (tmp_path / "slurm.conf").write_text("")
    env = {**clean_env(), "SLURM_CONF": str(tmp_path / "slurm.conf")}
    done = cli("submit", str(location), "--scheduler", "slurm", "--", "true", env=env)
    assert done.returncode == 1
    assert re.match(
        r"execo-sweep submit: sbatch --parsable \S+ failed with status \d+: .", done.stderr
    )
    assert not location.exists()


def test_oar_dry_run_prints_the_oarsub_options(tmp_path):
    location = str(tmp_path / "sweep")
    args = ["--workers", "4", "--besteffort", "--checkpoint", "120", "--time", "2:00:00"]
    args += ["--resources", "nodes=1", "--property", "cluster='a'", "--project", "p"]
    args += ["--queue", "q", "--scheduler-arg=--notify=mail:me@x"]
    script, out = dry_run_script(location, ["python", "run.py"], "oar", *args)
    oarsub = out.strip().splitlines()[-1]
    assert oarsub == shlex.join(
        [
            "oarsub", "--array", "4", "-n", "execo-sweep",
            "-O", os.path.join(location, "execo-submit", "oar-%jobid%.out"),
            "-E", os.path.join(location, "execo-submit", "oar-%jobid%.err"),
            "-l", "nodes=1,walltime=2:00:00", "-p", "cluster='a'", "--project", "p", "-q", "q",
            "-t", "besteffort", "-t", "idempotent", "--checkpoint", "120",
            "--notify=mail:me@x", script,
        ]
    )  # fmt: skip
    text = Path(script).read_text()
    assert '"$((OAR_ARRAY_INDEX - 1))"' in text
    assert '[ "$SECONDS" -gt 60 ] || sleep $((61 - SECONDS))\n    exit 99\n' in text
    assert "    deadline=$((SECONDS + 270))\n" in text  # OAR's kill: 120 s + OAR_KILL_WAIT
    requeue_script, requeue_only = dry_run_script(location, ["true"], "oar", "--requeue")
    assert "-t idempotent" in requeue_only and "besteffort" not in requeue_only
    assert "exit 99" in Path(requeue_script).read_text()
    assert "deadline" not in Path(requeue_script).read_text()  # no kill to wait for


def test_cli_without_command_says_how(tmp_path):
    done = cli("submit", str(tmp_path / "sweep"), "--workers", "2", env=clean_env())
    assert done.returncode == 2
    assert "give the worker command after --" in done.stderr


def test_slurm_dry_run_prints_the_script_and_sbatch_and_starts_nothing(tmp_path):
    location = str(tmp_path / "sweep")
    args = ["--workers", "4", "--parallel", "2", "--time", "30", "--partition", "short"]
    args += ["--requeue", "--signal-before", "60", "--scheduler-arg=--qos=low"]
    script, out = dry_run_script(location, ["python", "run.py", "-c", "a b"], "slurm", *args)
    assert os.path.dirname(script) == os.path.join(location, "execo-submit")
    text = Path(script).read_text()
    assert text in out
    for directive in (
        "--array=0-3%2",
        "--time=30",
        "--partition=short",
        "--requeue",
        "--signal=B:USR1@60",
    ):
        assert f"#SBATCH {directive}\n" in text
    assert "python run.py -c 'a b' &\n" in text
    assert 'scontrol requeue "$SLURM_JOB_ID" && sleep 600' in text
    assert f"sbatch --parsable --qos=low {script}" in out
    assert not submissions(location)  # nothing submitted, nothing recorded


# -- local ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_local_four_workers_one_sigkilled_grid_completes(tmp_path):
    location, report = str(tmp_path / "sweep"), str(tmp_path / "report")
    saved_sweep(location)
    command = [*WORKER, report, "2", "0.02"]  # worker 2 holds its first combination
    args = ["submit", location, "--scheduler", "local", "--workers", "4", "--", *command]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "execo_engine.cli", *args],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        holding = wait_for("worker 2 to hold a combination", lambda: events(report, "holding"))[0]
        status = cli("status", location, env=clean_env()).stdout
        assert re.search(
            rf"workers alive \(holding claims\): [1-4] \(.*:{holding['pid']}\b", status
        )
        os.kill(holding["pid"], signal.SIGKILL)
        out, err = launcher.communicate(timeout=DEADLINE)
    finally:
        launcher.kill()
        launcher.wait()
    (job,) = [entry["job"] for entry in submissions(location)]
    output = os.path.join(location, "execo-submit", f"{job.replace(':', '-')}_2.out")
    # the grid is complete, but a worker failed: submit says which, and where its output is
    assert launcher.returncode == 1 and out == "", err
    assert f"{job}: 1 of 4 worker(s) failed:\n  worker 2: status 137, output {output} (" in err
    assert "Killed" in Path(output).read_text()  # what bash said of its worker
    assert_each_done_once(location, report)
    redone = [e for e in events(report, "done") if e["i"] == holding["i"]]
    assert redone[0]["worker"] != 2  # another worker did the killed one's combination
    assert {e["worker"] for e in events(report, "claimed")} == {0, 1, 2, 3}
    runs = load_runs(location)  # each worker recorded its run, the killed one without an end
    assert sorted((r["kind"], r["worker"], r["ended"]) for r in runs) == [
        ("worker", 0, 1),
        ("worker", 1, 1),
        ("worker", 2, 0),
        ("worker", 3, 1),
    ]


@pytest.mark.slow
def test_local_workers_that_fail_make_submit_fail_naming_their_outputs(tmp_path):
    location = tmp_path / "sweep"
    args = ["submit", str(location), "--workers", "3", "--", "no-such-command", "--x"]
    done = cli(*args, env=clean_env())
    (job,) = [entry["job"] for entry in submissions(str(location))]
    outputs = [location / "execo-submit" / f"{job.replace(':', '-')}_{i}.out" for i in range(3)]
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert f"execo-sweep submit: {job}: 3 of 3 worker(s) failed:" in lines
    for index, output in enumerate(outputs):
        assert "no-such-command: command not found" in output.read_text()
        last = output.read_text().strip()
        assert f"  worker {index}: status 127, output {output} (last line: {last})" in lines


@pytest.mark.slow
def test_status_shows_jobs_and_watch_refreshes_until_complete(tmp_path):
    location, report = str(tmp_path / "sweep"), str(tmp_path / "report")
    saved_sweep(location)
    watch = [sys.executable, "-m", "execo_engine.cli", "status", location, "--watch"]
    watcher = subprocess.Popen(
        [*watch, "--interval", "0.2"],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        job = submit(location, [*WORKER, report, "-1", "0.05"], workers=2)
        out, err = watcher.communicate(timeout=DEADLINE)  # it stops by itself
    finally:
        watcher.kill()
        watcher.wait()
    assert watcher.returncode == 0, err
    frames = [line for line in out.splitlines() if line.startswith("sweep ")]
    assert len(frames) >= 2
    assert "0/40 done" in frames[0]
    assert re.search(r"40/40 done, 0 in progress, 0 remaining, complete$", frames[-1])
    assert any(re.search(r"\d+\.\d\d/s, about .* left", frame) for frame in frames)
    status = cli("status", location, env=clean_env())
    assert f"job {job} (local, 2 worker(s))" in status.stdout
    assert "workers alive (holding claims): 0" in status.stdout
    entry = json.loads(cli("status", location, "--json", env=clean_env()).stdout)["sweeps"][0]
    assert [j["job"] for j in entry["jobs"]] == [job] and entry["workers"] == []


@pytest.mark.slow
def test_a_worker_of_a_complete_sweep_exits_0_at_once(tmp_path):
    location, report = str(tmp_path / "sweep"), str(tmp_path / "report")
    saved_sweep(location, 3)
    assert not nothing_left(location)
    submit(location, [*WORKER, report, "-1", "0"], workers=1)
    assert nothing_left(location)
    before = events(report)
    job = submit(location, [*WORKER, report, "-1", "0"], workers=2)
    assert events(report) == before  # the command did not even start
    outputs = sorted((Path(location) / "execo-submit").glob(f"{job.replace(':', '-')}_*.out"))
    assert [p.read_text() for p in outputs] == [
        f"execo worker {i}: nothing left to do in the sweep\n" for i in (0, 1)
    ]


# -- preemption without a scheduler: the worker side --------------------------------------------


def preempt(process, report, event, signum):
    """Once ``process`` reported ``event``, send it ``signum``; returns that event, after
    checking that the process exited with status 128 + ``signum``."""
    try:
        first = wait_for(f"a {event} event", lambda: events(report, event))[0]
        process.send_signal(signum)
        assert process.wait(timeout=DEADLINE) == 128 + signum
    finally:
        process.kill()
        process.wait()
    return first


@pytest.mark.slow
def test_a_paramsweeper_worker_gives_its_claim_back_on_sigusr1(tmp_path):
    location, report = str(tmp_path / "sweep"), str(tmp_path / "report")
    saved_sweep(location, 5)
    env = {**clean_env(), "EXECO_SWEEP_LOCATION": location, "EXECO_WORKER_INDEX": "0"}
    worker = subprocess.Popen([*WORKER, report, "0", "0"], env=env)
    holding = preempt(worker, report, "holding", signal.SIGUSR1)
    exited = events(report, "exited")
    assert exited == [{**exited[0], "pid": worker.pid, "held": []}]  # given back while alive
    view = ParamSweeper(location, read_only=True)
    assert holding["i"] in [c["i"] for c in view.get_remaining()] and not view.get_inprogress()


@pytest.mark.slow
def test_an_engine_gives_its_claim_back_on_sigusr2(tmp_path):
    result, report = tmp_path / "result", tmp_path / "report"
    result.mkdir()
    script = engine_script(tmp_path / "engine.py", report, 5, hold=True)
    engine = subprocess.Popen([sys.executable, script, "-c", str(result)], env=clean_env())
    claimed = preempt(engine, report, "claimed", signal.SIGUSR2)
    view = ParamSweeper(str(result / "sweeps"), read_only=True)
    assert not view.get_inprogress() and claimed["i"] in [c["i"] for c in view.get_remaining()]


@pytest.mark.slow
def test_a_pytest_session_cancels_the_running_combination_on_sigusr1(tmp_path):
    location, report = tmp_path / "sweeps", tmp_path / "report"
    grid = pytest_grid(tmp_path / "test_grid.py", report, 4, hold=2)
    command = [sys.executable, "-m", "pytest", grid, f"--execo-sweep-dir={location}", "-q"]
    session = subprocess.Popen(
        [*command, "-p", "no:randomly", "-p", "no:cacheprovider"],
        env=clean_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for("the session to run i=2", lambda: events(report, "claimed")[2:])
        session.send_signal(signal.SIGUSR1)
        out = session.communicate(timeout=DEADLINE)[0]
    finally:
        session.kill()
        session.wait()
    assert session.returncode == 128 + signal.SIGUSR1, out
    assert "execo: preempted by SIGUSR1" in out
    (sweep_dir,) = location.iterdir()
    view = ParamSweeper(str(sweep_dir), read_only=True)
    assert [c["i"] for c in view.get_done()] == [0, 1]
    assert [c["i"] for c in view.get_remaining()] == [2, 3] and not view.get_inprogress()


@pytest.mark.slow
def test_a_preempted_pytest_n_2_worker_gives_every_claim_back(tmp_path):
    """The script forwards the warning to the worker's whole process group: the xdist workers
    of ``pytest -n 2`` stop too, and nothing stays claimed."""
    location, report = tmp_path / "sweeps", tmp_path / "report"
    grid = pytest_grid(tmp_path / "test_grid.py", report, 8, hold=2)
    command = [sys.executable, "-m", "pytest", grid, f"--execo-sweep-dir={location}", "-n", "2"]
    script, _ = dry_run_script(str(location), [*command, "-p", "no:randomly", "-q"])
    worker = subprocess.Popen(
        ["bash", script],
        env={**clean_env(), "EXECO_WORKER_INDEX": "0"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for("i=2 to run", lambda: [e for e in events(report, "claimed") if e["i"] == 2])
        worker.send_signal(signal.SIGTERM)
        out = worker.communicate(timeout=DEADLINE)[0]
    finally:
        worker.kill()
        worker.wait()
    assert worker.returncode == 128 + signal.SIGTERM, out
    assert "execo worker 0: preempted (status 143), claims given back" in out
    (sweep_dir,) = [p for p in location.iterdir() if p.name != "execo-submit"]
    view = ParamSweeper(str(sweep_dir), read_only=True)
    assert 2 in [c["i"] for c in view.get_remaining()] and not view.get_inprogress()
    assert 2 not in [c["i"] for c in view.get_done()]


# -- a real SLURM ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm_cluster():
    cluster = Cluster()
    why_not = cluster.missing()
    if why_not:
        if os.environ.get("CI"):
            pytest.fail(f"SLURM cannot run: {why_not} (.ci/run installs slurm-wlm and munge)")
        pytest.skip(f"SLURM cannot run: {why_not}")
    try:
        cluster.start()
    except Cluster.Unavailable as error:
        cluster.stop()
        pytest.skip(f"the one-node SLURM did not start: {error}")
    yield cluster
    cluster.stop()


def slurm_submit(cluster, cwd, location, *args):
    done = cli("submit", location, "--scheduler", "slurm", *args, env=cluster.env(), cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def job_fields(cluster, job):
    text = cluster.run("scontrol", "show", "job", job).stdout
    return dict(re.findall(r"(\w+)=(\S+)", text))


def wait_finished(cluster, job, tasks):
    """Until every task of the array ``job`` has ended (none pending nor running)."""
    ids = [f"{job}_{task}" for task in range(tasks)]
    wait_for(
        f"job {job} to finish",
        lambda: all(
            job_fields(cluster, i).get("JobState") in ("COMPLETED", "FAILED", "CANCELLED")
            for i in ids
        ),
    )


@pytest.mark.slow
def test_slurm_array_of_4_completes_a_40_combination_grid(slurm_cluster, tmp_path):
    location, report = str(tmp_path / "sweep"), str(tmp_path / "report")
    saved_sweep(location)
    job = slurm_submit(
        slurm_cluster, tmp_path, location, "--workers", "4", "--", *WORKER, report, "-1", "0.05"
    )
    assert job.isdigit()
    wait_finished(slurm_cluster, job, 4)
    assert_each_done_once(location, report)
    assert {e["worker"] for e in events(report, "claimed")} == {0, 1, 2, 3}
    status = cli("status", location, env=slurm_cluster.env()).stdout
    assert f"job {job} (slurm, 4 worker(s))" in status
    assert "; squeue: none pending or running\n" in status  # what the scheduler says
    assert (tmp_path / "sweep" / "execo-submit" / f"slurm-{job}_0.out").exists()


@pytest.mark.slow
def test_a_scheduler_that_does_not_answer_is_given_up_on_and_nothing_is_left(
    slurm_cluster, tmp_path
):
    """sbatch waits without end for a controller that does not answer (here: slurmctld
    stopped with SIGSTOP): submit stops it after --submit-timeout and says what to check."""
    [controller] = [p for p in slurm_cluster.processes if "slurmctld" in str(p.args[0])]  # type: ignore[index]
    location = tmp_path / "sweep"
    os.kill(controller.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        done = cli(
            "submit", str(location), "--scheduler", "slurm", "--submit-timeout", "2", "--", "true",
            env=slurm_cluster.env(clean_env()),
        )  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        os.kill(controller.pid, signal.SIGCONT)
    assert done.returncode == 1
    assert done.stderr == (
        "execo-sweep submit: sbatch did not answer within 2 s and was stopped: is the SLURM "
        "server (and its database) up and reachable from here? If the job was submitted all "
        "the same, its workers find no script (see squeue); --submit-timeout gives it longer\n"
    )
    assert elapsed < 30, elapsed  # sbatch alone waits far longer
    assert not location.exists()


@pytest.mark.slow
def test_slurm_runs_an_engine_script_and_a_pytest_session(slurm_cluster, tmp_path):
    result, report = tmp_path / "result", tmp_path / "engine-report"
    script = engine_script(tmp_path / "engine.py", report, 12)
    command = [sys.executable, script, "-c", str(result)]
    engine_job = slurm_submit(
        slurm_cluster, tmp_path, str(result), "--workers", "3", "--", *command
    )
    sessions, session_report = tmp_path / "sessions", tmp_path / "pytest-report"
    grid = pytest_grid(tmp_path / "test_grid.py", session_report, 12)
    command = [sys.executable, "-m", "pytest", grid, f"--execo-sweep-dir={sessions}", "-n", "2"]
    command += ["-p", "no:randomly", "-p", "no:cacheprovider", "-q"]
    pytest_job = slurm_submit(
        slurm_cluster, tmp_path, str(sessions), "--workers", "2", "--", *command
    )
    wait_finished(slurm_cluster, engine_job, 3)
    wait_finished(slurm_cluster, pytest_job, 2)
    assert_each_done_once(str(result / "sweeps"), report, 12)
    (sweep_dir,) = [p for p in sessions.iterdir() if p.name != "execo-submit"]
    assert_each_done_once(str(sweep_dir), session_report, 12)
    for job, tasks in ((engine_job, 3), (pytest_job, 2)):
        for task in range(tasks):
            assert job_fields(slurm_cluster, f"{job}_{task}")["ExitCode"] == "0:0"


@pytest.mark.slow
def test_slurm_usr1_gives_the_claim_back_and_requeues_the_task(slurm_cluster, tmp_path):
    location, report = str(tmp_path / "sweep"), str(tmp_path / "report")
    saved_sweep(location)
    args = ["--workers", "4", "--requeue", "--signal-before", "60"]
    job = slurm_submit(slurm_cluster, tmp_path, location, *args, "--", *WORKER, report, "1", "0.05")
    holding = wait_for("worker 1 to hold", lambda: events(report, "holding"))[0]
    # what --signal=B:USR1@60 does 60 s before the end: USR1 to the batch shell only
    slurm_cluster.run("scancel", "--batch", "--signal=USR1", f"{job}_1")
    exited = wait_for(
        "worker 1 to exit",
        lambda: [e for e in events(report, "exited") if e["pid"] == holding["pid"]],
    )
    assert exited[0]["held"] == []  # its claim came back while it was still alive
    seen = []

    def second_run_ended():  # SLURM starts a requeued job cred_expire (20 s) later (hurrying
        fields = job_fields(slurm_cluster, f"{job}_1")  # it with StartTime=now can fail its start)
        seen[:] = [fields]
        return fields.get("Restarts") == "1" and fields["JobState"] == "COMPLETED" and fields

    fields = wait_for(lambda: f"the requeued task to run and end: {seen}", second_run_ended)
    assert fields["ExitCode"] == "0:0"
    wait_finished(slurm_cluster, job, 4)
    assert_each_done_once(location, report)
    output = (tmp_path / "sweep" / "execo-submit" / f"slurm-{job}_1.out").read_text()
    assert "execo worker 1: preempted" in output


@pytest.mark.slow
def test_slurm_kill_without_warning_its_claim_comes_back(slurm_cluster, tmp_path):
    """A task killed outright cannot give its claim back: another
    worker takes it once the owner is known dead. On one host that is at once (its pid is
    gone); across hosts, after the lease. The deadline covers either."""
    location, report = str(tmp_path / "sweep"), str(tmp_path / "report")
    saved_sweep(location)
    job = slurm_submit(
        slurm_cluster, tmp_path, location, "--workers", "4", "--", *WORKER, report, "2", "0.05"
    )
    holding = wait_for("worker 2 to hold", lambda: events(report, "holding"))[0]
    # as when its node dies: the worker is killed outright. (scancel, even --signal=KILL, lets
    # slurmstepd send SIGTERM to the batch shell's children first, which a worker handles
    # like the warning signal: it would give its claim back itself.)
    os.kill(holding["pid"], signal.SIGKILL)
    slurm_cluster.run("scancel", f"{job}_2")
    wait_finished(slurm_cluster, job, 4)
    assert_each_done_once(location, report)
    assert not [e for e in events(report, "exited") if e["pid"] == holding["pid"]]  # killed
    redone = [e for e in events(report, "done") if e["i"] == holding["i"]]
    assert redone[0]["worker"] != 2
