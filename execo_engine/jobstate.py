"""What the scheduler says about a submission of :func:`execo_engine.launch.submit`, for
``execo-sweep status``: the states of its jobs, counted (OAR: ``oarstat --array ID -J``, every
job of the array, resubmitted ones included; SLURM: ``squeue``, the array's tasks still pending
or running).

Asking is best effort: where the scheduler's command is missing, fails or is slow, the answer
is ``None`` (status then shows no state), never an error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from typing import Any

#: Seconds a scheduler's command gets to answer.
TIMEOUT = 30.0


def _ask(command: list[str]) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _oar(job: str) -> dict[str, int] | None:
    text = _ask(["oarstat", "--array", job, "-J"])
    if text is None:
        return None
    try:
        jobs = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    if not isinstance(jobs, dict):
        return None
    states = Counter(str(found.get("state")) for found in jobs.values())
    resubmitted = sum(1 for found in jobs.values() if found.get("resubmit_job_id"))
    if resubmitted:
        states["resubmitted"] = resubmitted
    return dict(states)


def _slurm(job: str) -> dict[str, int] | None:
    text = _ask(["squeue", "-h", "--array", "-j", job, "-o", "%T"])
    if text is None:
        return None
    return dict(Counter(line.strip() for line in text.splitlines() if line.strip()))


#: The command each scheduler's states come from, as status names it.
TOOLS = {"oar": "oarstat", "slurm": "squeue"}


def job_states(entry: dict[str, Any]) -> dict[str, int] | None:
    """The states of the jobs of the submission ``entry`` (one line of the ``jobs`` file:
    ``scheduler`` and ``job``), counted by state (OAR also counts ``resubmitted``, the jobs
    OAR resubmitted); ``None`` when the scheduler cannot be asked (or for local workers)."""
    if entry.get("scheduler") == "oar":
        return _oar(str(entry["job"]))
    if entry.get("scheduler") == "slurm":
        return _slurm(str(entry["job"]))
    return None


def states_text(scheduler: str, states: dict[str, int]) -> str:
    """``oarstat: 3 Terminated, 1 Running`` (``squeue: none pending or running``)."""
    counts = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    if not counts:
        counts = "none pending or running" if scheduler == "slurm" else "no job"
    return f"{TOOLS.get(scheduler, scheduler)}: {counts}"
