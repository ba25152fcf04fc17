"""Rank 0's side of a run that may outlive its time limit (issue 11, work in progress on branch issue-11).

hpc_tf's per-task runtime owns Slurm's warning signal (the job runs `python -m hpc_tf.job`, never submitit's
in-job runner, so nothing else handles it). The entry script is started with that signal ignored, so a script that
knows nothing of it is not killed; it is told through a file it can poll (`hpc_tf.checkpoint.requested()`). On the
signal, rank 0 decides (core.requeue) and writes the request; once its script has exited after saving, it records
the attempt's end and asks Slurm to requeue the job (`A_i` for a sweep trial), or says why it will not.

On the local backend its supervisor plays Slurm's part: it sends the warning only for the time limit (so its cause is
`timeout`, no `scontrol` is asked), and a requeue is asked of it with a file (`RunDir.requeue_request`).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping

from ..backends.slurm_text import parse_scontrol_job
from ..checkpoint import PROGRESS_FILE
from ..core import transitions
from ..core.records import JobRecord, RunStatus
from ..core.requeue import cause_of_unannounced_end, decide_requeue, unhealthy_nodes, warning_cause
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
        "HPC_TF_CHECKPOINT_EVERY": str(job.checkpointing.every),
        "HPC_TF_CHECKPOINT_REQUEST": str(run.checkpoint_request(restart_count)),
    }


def job_fields(job_id: str) -> dict[str, str]:
    """This job's `scontrol show job -o` fields (bounded; {} when Slurm does not answer)."""
    return parse_scontrol_job(_ask(["scontrol", "show", "job", "-o", job_id]))


def node_states(nodes: list[str]) -> dict[str, str]:
    """`scontrol show node -o` State of each node ({} when Slurm does not answer)."""
    if not nodes:
        return {}
    text = _ask(["scontrol", "show", "node", "-o", ",".join(nodes)])
    return dict(NODE_STATE.findall(text))


NODE_STATE = re.compile(r"^NodeName=(\S+) .*?\bState=(\S+)", re.MULTILINE)


def _ask(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=QUERY_SECONDS).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def read_request(path: Path) -> str | None:
    """The cause a checkpoint request recorded (None: no request, or unreadable)."""
    try:
        return str(json.loads(path.read_text())["cause"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Requeuer:
    """Decides on the warning signal (rank 0), and requeues once the script has saved and exited."""

    def __init__(self, run: RunDir, job: JobRecord, ctx: TaskContext, env: Mapping[str, str]) -> None:
        self.run, self.job, self.ctx = run, job, ctx
        self.job_id = requeue_id(env)
        self.cause = ""  # set by the warning
        self.requeued = False  # this attempt asked Slurm for the next one

    def on_signal(self, signum: int) -> None:
        """The warning: write the request every rank's script sees (once). A SIGTERM is not ours to act on:
        `scancel` sends one too, and a preemption is requeued by Slurm itself (PreemptMode=REQUEUE, --requeue)."""
        if self.cause or signum != checkpoint_signal(self.job):
            return
        lead = self.job.checkpointing.lead_seconds
        self.cause = "timeout" if self.ctx.local else warning_cause(job_fields(self.job_id), lead)
        self.run.tasks_dir.mkdir(exist_ok=True)
        request = {"cause": self.cause, "time": utc_now()}
        write_atomic(self.run.checkpoint_request(self.ctx.restart_count), json.dumps(request))

    def after_exit(self, code: int, before_requeue: Callable[[], None] | None = None) -> bool:
        """After the script's exit: a script that saved and exited with EX_TEMPFAIL (75, `hpc_tf.checkpoint.exit()`)
        is requeued when `decide_requeue` allows it (the SIGTERM that follows is ours); refused, the run ends with 75
        and the reason. Any other exit is the script's own end: nothing is requeued. Returns whether it requeued."""
        if not self.cause or code != EX_TEMPFAIL:
            return False
        if before_requeue is not None:  # the other tasks end before the attempt's end is recorded and Slurm kills them
            before_requeue()
        if self._decide(self.cause, "not requeued"):
            self._requeue()
            self.requeued = True
        return self.requeued

    def _requeue(self) -> None:
        """Ask for the next attempt: Slurm, or the local supervisor, which restarts the job in place."""
        if self.ctx.local:
            write_atomic(self.run.requeue_request(self.ctx.restart_count), json.dumps({"time": utc_now()}))
        else:
            subprocess.run(["scontrol", "requeue", self.job_id], capture_output=True, timeout=QUERY_SECONDS * 2)

    def gate(self) -> str | None:
        """At the start of a restart Slurm made after an attempt that recorded no end (a node failed, an operator
        requeued it, a preemption's grace ran out, a save was killed): record that attempt's cause and whether it may
        go on. Returns the refusal (the script is then not started), or None."""
        status = self.run.read_status()
        if self.ctx.restart_count == 0 or not status.attempts or status.attempts[-1].end is not None:
            return None
        last = status.attempts[-1]
        if last.n >= self.ctx.restart_count:
            return None
        states = {} if self.ctx.local else node_states(last.nodes)
        cause = cause_of_unannounced_end(read_request(self.run.checkpoint_request(last.n)), unhealthy_nodes(states))
        return None if self._decide(cause, "not restarted", known_end=False) else self.run.read_status().message

    def _decide(self, cause: str, refused: str, known_end: bool = True) -> bool:
        """Close the current attempt with its cause, checkpoint step and what core.requeue decides."""
        status = self.run.read_status()
        step = checkpoint_progress(self.run.path / self.job.checkpointing.checkpoint_dir)
        past = [a.cause for a in status.attempts[:-1]]
        steps = [a.checkpoint_step for a in status.attempts[:-1]] + [step]
        c = self.job.checkpointing
        decision = decide_requeue(cause, c.requeue_on, c.max_restarts, past, steps)

        def ended(s: RunStatus) -> RunStatus:
            now = utc_now() if known_end else ""
            return transitions.attempt_ended(s, cause, step, decision.reason, decision.allowed, now, refused)

        self.run.transition(ended)
        return decision.allowed


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


OTHERS_STOP_SECONDS = 20.0


def wait_for_other_tasks(run: RunDir, ntasks: int) -> None:
    """Until every other task of this attempt has recorded its end (bounded: a requeue ends them anyway)."""
    deadline = time.monotonic() + OTHERS_STOP_SECONDS
    while time.monotonic() < deadline:
        ended = {r.rank for r in run.read_tasks() if r.end_time is not None}
        if ended >= set(range(1, ntasks)):
            return
        time.sleep(0.1)
