"""execo-sweep submit --scheduler oar against a real one-node OAR (``tests/oar.py``): an array
job on a grid, its state in ``execo-sweep status``, the oarsub options, an Engine script and
``pytest -n 2`` as workers, best-effort preemption (checkpoint signal, kill, OAR's own
resubmission), a job killed outright by ``oardel``, and workers confined to the CPUs of their
resources where the machine provides cpusets."""

import json
import re
import sys
from pathlib import Path

import pytest
from launch_helpers import (
    WORKER,
    assert_each_done_once,
    cli,
    engine_script,
    events,
    pytest_grid,
    saved_sweep,
    wait_for,
)
from oar import FINAL_STATES, cpu_list

from execo_engine.launch import submissions

pytestmark = pytest.mark.slow


def oar_submit(cluster, cwd, location, *args):
    done = cli("submit", location, "--scheduler", "oar", *args, env=cluster.env(), cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_ended(cluster, array, jobs):
    """Until the array has ``jobs`` jobs (resubmissions included), all ended; returns them
    as ``oarstat -f`` gives them."""
    seen = {}

    def ended():
        seen.update(cluster.array_states(array))
        return len(seen) == jobs and all(state in FINAL_STATES for state in seen.values())

    wait_for(lambda: f"the {jobs} jobs of array {array} to end: {seen}", ended, interval=0.3)
    return cluster.jobs("--array", array)


def wait_job(cluster, job):
    """Until ``job`` has ended; its final state."""
    wait_for(f"job {job} to end", lambda: cluster.state(job) in FINAL_STATES, interval=0.3)
    return cluster.state(job)


def event_types(job):
    """The types of the events OAR logged for ``job`` (an ``oarstat -f -J`` entry), oldest
    first."""
    return [event["type"] for event in sorted(job["events"], key=lambda e: e["event_id"])]


def by_index(jobs):
    return {job["array_index"]: job for job in jobs.values()}


def submit_normal_job(cluster, directory):
    """A normal (not best-effort) job that wants the whole node; its id."""
    done = cluster.run(
        "oarsub", "-l", "nodes=1", "-d", str(directory), "-O", str(directory / "normal.out"),
        "-E", str(directory / "normal.err"), "echo normal job ran",
    )  # fmt: skip
    return re.search(r"OAR_JOB_ID=(\d+)", done.stdout)[1]


def status(cluster, location):
    done = cli("status", location, "--json", env=cluster.env())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["sweeps"][0]


def test_array_of_4_completes_a_40_combination_grid_with_the_options_given(oar_cluster, tmp_path):
    # a path with spaces: OAR runs the worker script through the user's shell
    location, report = str(tmp_path / "my sweeps" / "grid"), str(tmp_path / "report")
    saved_sweep(location)
    options = ["--workers", "4", "--time", "0:10:00", "--resources", "core=1"]
    options += ["--property", "host='localhost'", "--project", "execo-tests"]
    options += ["--queue", "default"]
    array = oar_submit(
        oar_cluster, tmp_path, location, *options, "--", *WORKER, report, "-1", "0.05"
    )
    jobs = wait_ended(oar_cluster, array, 4)
    assert_each_done_once(location, report)
    # (how many workers got a combination is a matter of timing: OAR starts them one by one)
    assert sorted(by_index(jobs)) == [1, 2, 3, 4]  # OAR_ARRAY_INDEX 1..4: workers 0..3
    assert {e["job"] for e in events(report, "done")} <= {str(j) for j in jobs}
    for job in jobs.values():
        assert (job["state"], job["exit_code"], job["array_id"]) == ("Terminated", 0, int(array))
        assert "/core=1,walltime=0:10:0" in job["wanted_resources"]
        assert job["walltime"] == 600 and "(host='localhost')" in job["properties"]
        assert (job["project"], job["queue"], job["name"]) == (
            "execo-tests",
            "default",
            "execo-sweep",
        )
        assert Path(location, "execo-submit", f"oar-{job['Job_Id']}.out").exists()
    entry = status(oar_cluster, location)
    assert [(j["job"], j["states"]) for j in entry["jobs"]] == [(array, {"Terminated": 4})]
    text = cli("status", location, env=oar_cluster.env()).stdout
    assert f"job {array} (oar, 4 worker(s)), submitted " in text
    assert "; oarstat: 4 Terminated\n" in text


def test_an_engine_script_and_a_pytest_n_2_session_as_workers(oar_cluster, tmp_path):
    result, report = tmp_path / "result", tmp_path / "engine-report"
    script = engine_script(tmp_path / "engine.py", report, 12)
    command = [sys.executable, script, "-c", str(result)]
    engine_array = oar_submit(oar_cluster, tmp_path, str(result), "--workers", "2", "--", *command)
    sessions, session_report = tmp_path / "sessions", tmp_path / "pytest-report"
    grid = pytest_grid(tmp_path / "test_grid.py", session_report, 12)
    command = [sys.executable, "-m", "pytest", grid, f"--execo-sweep-dir={sessions}", "-n", "2"]
    command += ["-p", "no:randomly", "-p", "no:cacheprovider", "-q"]
    pytest_array = oar_submit(
        oar_cluster, tmp_path, str(sessions), "--workers", "2", "--", *command
    )
    for array in (engine_array, pytest_array):
        for job in wait_ended(oar_cluster, array, 2).values():
            assert (job["state"], job["exit_code"]) == ("Terminated", 0), job
    assert_each_done_once(str(result / "sweeps"), report, 12)
    (sweep_dir,) = [p for p in sessions.iterdir() if p.name != "execo-submit"]
    assert_each_done_once(str(sweep_dir), session_report, 12)


def test_besteffort_preempted_gives_claims_back_on_checkpoint_and_oar_resubmits(
    oar_cluster, tmp_path
):
    """The Grid'5000 way: two best-effort workers each hold a combination; a normal job wants
    the whole node.
    OAR sends each the checkpoint signal (SIGUSR2), waits the --checkpoint delay, kills them,
    and resubmits them (idempotent); the resubmitted jobs do the whole grid."""
    location, report = str(tmp_path / "sweep"), str(tmp_path / "report")
    saved_sweep(location)
    options = ["--workers", "2", "--besteffort", "--checkpoint", "5"]
    array = oar_submit(
        oar_cluster, tmp_path, location, *options, "--", *WORKER, report, "all", "0.05"
    )
    wait_for("2 workers to hold", lambda: len(events(report, "holding")) == 2, interval=0.3)
    holding = events(report, "holding")
    first = oar_cluster.jobs("--array", array)
    assert all(job["types"] == ["besteffort", "idempotent"] for job in first.values()), first
    normal = submit_normal_job(oar_cluster, tmp_path)
    jobs = wait_ended(oar_cluster, array, 4)
    assert wait_job(oar_cluster, normal) == "Terminated"
    # each preempted worker gave its claim back while alive, then its job was resubmitted
    for held in holding:
        exited = [e for e in events(report, "exited") if e["pid"] == held["pid"]]
        assert exited and exited[0]["held"] == [], (held, exited)
    resubmitted = {job["resubmit_job_id"]: job for job in jobs.values() if job["resubmit_job_id"]}
    assert sorted(resubmitted) == sorted(int(j) for j in first)
    for job_id in first:
        kinds = event_types(jobs[job_id])
        assert "CHECKPOINT_SUCCESSFULL" in kinds and "RESUBMIT_JOB_AUTOMATICALLY" in kinds, kinds
        assert "BESTEFFORT_KILL" in kinds, kinds  # the worker waited for OAR's kill
        output = (tmp_path / "sweep" / "execo-submit" / f"oar-{job_id}.out").read_text()
        assert re.search(r"execo worker \d: preempted \(status 143\), claims given back", output)
    for job in resubmitted.values():
        assert (job["state"], job["exit_code"]) == ("Terminated", 0), job
    # nothing done twice, and all of it by the resubmitted jobs
    assert_each_done_once(location, report)
    assert {e["job"] for e in events(report, "done")} <= {
        str(j["Job_Id"]) for j in resubmitted.values()
    }
    states = status(oar_cluster, location)["jobs"][0]["states"]
    assert states.pop("resubmitted") == 2 and sum(states.values()) == 4, states


def test_killed_outright_by_oardel_or_preemption_claims_come_back_and_oar_resubmits(
    oar_cluster, tmp_path
):
    """Killed outright (SIGKILL to every process of the job: ``oardel``, or a best-effort
    job submitted without --checkpoint whose resources a normal job wants), a worker cannot
    give its claims back: they come back once its owner is known dead (at once on one host,
    its pid is gone; after the lease from another host). OAR resubmits the preempted
    best-effort jobs (idempotent), not the one the user deleted."""
    location, report = str(tmp_path / "sweep"), str(tmp_path / "report")
    saved_sweep(location)
    array = oar_submit(
        oar_cluster, tmp_path, location, "--workers", "3", "--besteffort", "--",
        *WORKER, report, "all", "0.05",
    )  # fmt: skip
    wait_for("3 workers to hold", lambda: len(events(report, "holding")) == 3, interval=0.3)
    holding = events(report, "holding")
    deleted = holding[0]["job"]
    oar_cluster.run("oardel", deleted)
    wait_job(oar_cluster, deleted)
    normal = submit_normal_job(oar_cluster, tmp_path)
    jobs = wait_ended(oar_cluster, array, 5)
    assert wait_job(oar_cluster, normal) == "Terminated"
    killed = {h["pid"] for h in holding}  # none of them could give its claim back
    assert not [e for e in events(report, "exited") if e["pid"] in killed]
    assert jobs[deleted]["state"] == "Error"
    assert "RESUBMIT_JOB_AUTOMATICALLY" not in event_types(jobs[deleted])
    preempted = {h["job"] for h in holding[1:]}
    for job_id in preempted:
        kinds = event_types(jobs[job_id])
        assert "BESTEFFORT_KILL" in kinds and "RESUBMIT_JOB_AUTOMATICALLY" in kinds, kinds
        assert "CHECKPOINT" not in kinds
    resubmitted = {str(j["resubmit_job_id"]): j for j in jobs.values() if j["resubmit_job_id"]}
    assert set(resubmitted) == preempted
    for job in resubmitted.values():
        assert (job["state"], job["exit_code"]) == ("Terminated", 0), job
    assert_each_done_once(location, report)
    assert {e["job"] for e in events(report, "done")} <= {
        str(j["Job_Id"]) for j in resubmitted.values()
    }


def test_a_job_oar_refuses_is_an_error_and_leaves_nothing_behind(oar_cluster, tmp_path):
    location = tmp_path / "sweep"
    done = cli(
        "submit", str(location), "--scheduler", "oar", "--property", "no_such_property = 1",
        "--", "true", env=oar_cluster.env(), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert re.search(r"execo-sweep submit: oarsub .* failed with status \d+: ", done.stderr)
    assert "no_such_property" in done.stderr  # what OAR said
    assert not location.exists() and not submissions(str(location))


def test_status_shows_the_state_of_a_held_job(oar_cluster, tmp_path):
    """--scheduler-arg passes oarsub options as they are: --hold keeps the job in state Hold,
    and status says so."""
    location = str(tmp_path / "sweep")
    saved_sweep(location, 3)
    array = oar_submit(oar_cluster, tmp_path, location, "--scheduler-arg=--hold", "--", "true")
    try:
        assert oar_cluster.state(array) == "Hold"
        text = cli("status", location, env=oar_cluster.env()).stdout
        assert f"job {array} (oar, 1 worker(s)), submitted " in text
        assert "; oarstat: 1 Hold\n" in text
    finally:
        oar_cluster.run("oardel", array, check=False)


def test_each_worker_runs_confined_to_the_cpus_of_its_resources(oar_cluster, tmp_path):
    """With cpusets (on where the machine can provide them, see tests/oar.py), OAR puts each
    job in a cgroup of its own with the CPUs of its resources' ``cpuset`` property: the
    command a worker script starts sees only those CPUs."""
    if oar_cluster.cpuset_problem:
        pytest.skip(f"OAR cannot use cpusets here: {oar_cluster.cpuset_problem}")
    location, seen = str(tmp_path / "sweep"), tmp_path / "seen"
    saved_sweep(location, 3)
    seen.mkdir()
    record = (  # what the worker's command sees: its CPUs, its cgroup (last line)
        "import os, sys; seen = open('/proc/self/status').read() + open('/proc/self/cpuset').read()"
        "; open(os.path.join(sys.argv[1], os.environ['OAR_JOB_ID']), 'w').write(seen)"
    )
    array = oar_submit(
        oar_cluster, tmp_path, location, "--workers", "2", "--resources", "core=1",
        "--", sys.executable, "-c", record, str(seen),
    )  # fmt: skip
    jobs = wait_ended(oar_cluster, array, 2)
    cpusets = dict(oar_cluster.sql("SELECT resource_id, cpuset FROM resources"))
    for job_id, job in jobs.items():
        assert (job["state"], job["exit_code"]) == ("Terminated", 0), job
        (resource,) = job["assigned_resources"]
        seen_by_worker = (seen / job_id).read_text()
        allowed = re.search(r"^Cpus_allowed_list:\s*(\S+)$", seen_by_worker, re.M)[1]
        assert cpu_list(allowed) == [int(cpusets[resource])], seen_by_worker
        assert seen_by_worker.endswith(f"/oar/root_{job_id}\n"), seen_by_worker  # its cgroup
