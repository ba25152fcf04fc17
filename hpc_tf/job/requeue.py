"""Rank 0's side of a run that may outlive its time limit (issue 11, work in progress on branch issue-11).

hpc_tf's per-task runtime owns Slurm's warning signal (the job runs `python -m hpc_tf.job`, never submitit's
in-job runner, so nothing else handles it). The entry script is started with that signal ignored, so a script that
knows nothing of it is not killed; it is told through a file it can poll (`hpc_tf.checkpoint.requested()`). On the
signal, rank 0 decides (core.requeue) and writes the request; once its script has exited after saving, it records
the attempt's end and asks Slurm to requeue the job (`A_i` for a sweep trial), or says why it will not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Mapping

from ..checkpoint import PROGRESS_FILE
from ..core import transitions
from ..core.records import JobRecord, RunStatus
from ..core.requeue import cause_of_warning, decide_requeue
from ..rundir import RunDir, utc_now, write_atomic
from .context import TaskContext

EX_TEMPFAIL = 75  # "saved, requeue me": a script asked to stop exits with it (hpc_tf.checkpoint.exit())
QUERY_SECONDS = 5.0


def checkpoint_signal(job: JobRecord) -> int:
    return int(getattr(signal, f"SIG{job.checkpointing.signal}"))


def requeue_id(env: Mapping[str, str]) -> str:
    """The job Slurm should requeue: the array task alone for a sweep trial, else the job."""
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID", "")


def checkpoint_environment(run: RunDir, job: JobRecord, restart_count: int) -> dict[str, str]:
    """What the entry script is told: where to checkpoint, which attempt this is, the file that asks it to save."""
    folder = run.path / job.checkpointing.checkpoint_dir
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "HPC_TF_CHECKPOINT_DIR": str(folder),
        "HPC_TF_RESTART_COUNT": str(restart_count),
        "HPC_TF_CHECKPOINT_REQUEST": str(run.checkpoint_request(restart_count)),
    }


def seconds_left(job_id: str) -> float | None:
    """Time left before the job's limit, from `squeue -o %L` (None: unlimited or not known)."""
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%L"], capture_output=True, text=True, timeout=QUERY_SECONDS
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_time_left(out)


def parse_time_left(text: str) -> float | None:
    """Slurm's `[D-]H:MM:SS`, `MM:SS` or `SS` as seconds; UNLIMITED, INVALID or nothing as None."""
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if not all(p.isdigit() for p in parts) or len(parts) > 3 or (days and not days.isdigit()):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds + int(days or 0) * 86400


class Requeuer:
    """Decides on the warning signal (rank 0), and requeues once the script has saved and exited."""

    def __init__(self, run: RunDir, job: JobRecord, ctx: TaskContext, env: Mapping[str, str]) -> None:
        self.run, self.job, self.ctx = run, job, ctx
        self.job_id = requeue_id(env)
        self.cause = ""  # set by the warning

    def on_signal(self, signum: int) -> None:
        """The warning: write the request every rank's script sees (once). A SIGTERM is not ours to act on:
        `scancel` sends one too, and a preemption is requeued by Slurm itself (PreemptMode=REQUEUE, --requeue)."""
        if self.cause or signum != checkpoint_signal(self.job):
            return
        self.cause = cause_of_warning(seconds_left(self.job_id), self.job.checkpointing.lead_seconds)
        self.run.tasks_dir.mkdir(exist_ok=True)
        request = {"cause": self.cause, "time": utc_now()}
        write_atomic(self.run.checkpoint_request(self.ctx.restart_count), json.dumps(request))

    def after_exit(self, code: int) -> int:
        """After the script's exit: a script that saved and exited with EX_TEMPFAIL (75, `hpc_tf.checkpoint.exit()`)
        is requeued when `decide_requeue` allows it (the SIGTERM that follows is ours); refused, the run ends with 75
        and the reason. Any other exit is the script's own end: nothing is requeued."""
        if not self.cause or code != EX_TEMPFAIL:
            return code
        status = self.run.read_status()
        step = checkpoint_progress(self.run.path / self.job.checkpointing.checkpoint_dir)
        past = [a.cause for a in status.attempts[:-1]]
        steps = [a.checkpoint_step for a in status.attempts[:-1]] + [step]
        c = self.job.checkpointing
        decision = decide_requeue(self.cause, c.requeue_on, c.max_restarts, past, steps)

        def ended(s: RunStatus) -> RunStatus:
            return transitions.attempt_ended(s, self.cause, step, decision.reason, decision.allowed, utc_now())

        self.run.transition(ended)
        if decision.allowed:
            subprocess.run(["scontrol", "requeue", self.job_id], capture_output=True, timeout=QUERY_SECONDS * 2)
        return code


def checkpoint_progress(folder: Path) -> int | None:
    """How far the newest checkpoint is: the step a helper recorded (`hpc_tf.checkpoint.saved`), else the newest
    file's modification time in ns (any save counts as progress); None when nothing was ever saved."""
    try:
        return int(json.loads((folder / PROGRESS_FILE).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    times = [p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return max(times) if times else None


def ignore_in_child(job: JobRecord) -> tuple[int, ...]:
    """Signals the entry script starts with ignored: the warning, so a script that does not handle it lives on."""
    return (checkpoint_signal(job),) if job.checkpointing.requeue_on else ()


def restart_count(env: Mapping[str, str]) -> int:
    return int(env.get("SLURM_RESTART_COUNT") or os.environ.get("HPC_TF_RESTART_COUNT") or 0)
